/**
 * The balance schedulers.
 *
 * balance-region moves a replica from the fullest store to a less full one. Full is the
 * fill score (context.ts): a store's region weight (sum of its regions' sizes, each at least
 * REGION_WEIGHT_MIN_BYTES, influence of running operators included) over its share of the
 * largest store's capacity — with equal disks, the region weight itself; a store with half the
 * disk is as full with half the bytes, so stores of different sizes fill evenly instead of the
 * smallest running out first. A move happens only when the source's score exceeds the target's
 * by more than moveThreshold (2 × tolerantSizeRatio × the region's weight with equal disks):
 * after it the source is still at least as full as the target, so the move never invites its
 * reverse. The target must be at least as isolated from the region's other replicas as the
 * source was (labels never get worse).
 *
 * balance-leader transfers a leadership from the store leading the most regions to the
 * region's voter (healthy, on an up store) leading the fewest, when the difference exceeds
 * 2 × tolerantSizeRatio leaders. A store whose disk is below its reserve (refusingWrites in its
 * heartbeat) refuses puts to the regions it leads although their other replicas have room, so
 * it gives its leaderships away first, whatever the counts, and never takes one (TiKV does not
 * transfer leaders to a store whose disk is almost full either).
 *
 * Both move healthy regions only (known leader, no down/pending peers, no learners, full
 * voters); repair is the replica checker's.
 */
import type { ClusterView, Operator, RegionInfo, StoreInfo } from '../cluster/types.ts';
import type { ScheduleConfig } from './config.ts';
import { accept, bestLeaderStore, capacityShare, fillScore, isBusy, isSourceStore, loadOf, moveThreshold, newContext, rankTargets, refusesWrites, regionWeight, storesOf, type PlanContext } from './context.ts';
import { buildMovePeer, buildTransferLeader, leaderCandidates, type OperatorMeta } from './operators.ts';
import { REGION_WEIGHT_MIN_BYTES, isolationScore } from './placement.ts';
import { withoutHistory } from './replica-checker.ts';
import { PRIORITY, isRegionHealthy, leaderStoreId, peerOnStore, voters, type AllocateId } from './types.ts';

function meta(ctx: PlanContext, origin: 'balance-region' | 'balance-leader', reason: string): OperatorMeta {
  return { origin, reason, priority: PRIORITY.balance, nowMs: ctx.view.nowMs, timeouts: ctx.config.operatorTimeoutMs };
}

/** Up stores, heaviest first by `score`, then lowest id. */
export function sourcesBy(ctx: PlanContext, score: (storeId: number) => number): StoreInfo[] {
  return ctx.view.stores.filter((s) => s.state === 'up').sort((a, b) => score(b.id) - score(a.id) || a.id - b.id);
}

/** A region balance may move: healthy, fully replicated, idle. */
export function isBalanceable(ctx: PlanContext, region: RegionInfo): boolean {
  return !isBusy(ctx, [region.meta.id]) && isRegionHealthy(region) && voters(region).length === ctx.config.maxReplicas;
}

/** Regions with a voter on `storeId`, followers first (moving a follower needs no leader transfer). */
function regionsOnStore(ctx: PlanContext, storeId: number): RegionInfo[] {
  const on = ctx.view.regions.filter((r) => peerOnStore(r, storeId)?.role === 'voter' && isBalanceable(ctx, r));
  return on.sort((a, b) => Number(leaderStoreId(a) === storeId) - Number(leaderStoreId(b) === storeId) || a.meta.id - b.meta.id);
}

/**
 * Stores that may take `region`'s replica from `sourceId` without lowering its isolation,
 * lightest first by `score`.
 */
export function balanceTargets(ctx: PlanContext, region: RegionInfo, sourceId: number, score: (storeId: number) => number): StoreInfo[] {
  const others = region.meta.peers.filter((p) => p.storeId !== sourceId).map((p) => p.storeId);
  const source = ctx.stores.get(sourceId);
  if (source === undefined) return [];
  const floor = isolationScore(ctx.config.locationLabels, source, storesOf(ctx, others));
  return rankTargets(ctx, region, others)
    .filter((c) => c.isolation >= floor)
    .map((c) => c.store)
    .sort((a, b) => score(a.id) - score(b.id) || a.id - b.id);
}

/**
 * How far `sourceId` is above the lowest other up store by `score`: every target of a move or
 * transfer off it is such a store, so no move closes a wider gap. A balanced cluster's passes
 * end on this bound instead of ranking targets for each of the source's regions (at 100,000
 * regions that ranking took ~0.65 s of PD's event loop per balance-region pass).
 */
export function widestGap(ctx: PlanContext, sourceId: number, score: (storeId: number) => number): number {
  let lowest = Infinity;
  for (const store of ctx.view.stores) if (store.state === 'up' && store.id !== sourceId) lowest = Math.min(lowest, score(store.id));
  return score(sourceId) - lowest;
}

function tryMoveRegion(ctx: PlanContext, source: StoreInfo): Operator | null {
  const fill = (id: number): number => fillScore(ctx, id);
  if (!isSourceStore(ctx, source.id)) return null;
  // No target's share is above 1, so no move off this store needs less than this factor of
  // the region's weight (moveThreshold with a target of share 1); at least the minimum weight.
  const factor = ctx.config.tolerantSizeRatio * (1 / capacityShare(ctx, source.id) + 1);
  const reach = widestGap(ctx, source.id, fill);
  if (reach <= factor * REGION_WEIGHT_MIN_BYTES) return null;
  for (const region of regionsOnStore(ctx, source.id)) {
    if (reach <= factor * regionWeight(region)) continue;
    const target = balanceTargets(ctx, region, source.id, fill)[0];
    if (target === undefined) continue;
    if (fill(source.id) - fill(target.id) <= moveThreshold(ctx, regionWeight(region), source.id, target.id)) continue;
    const reason = `store ${source.id} holds ${bytesOf(ctx, source.id)}, store ${target.id} ${bytesOf(ctx, target.id)}: move region ${region.meta.id} (${regionWeight(region)} bytes)`;
    const leaderTo = bestLeaderStore(ctx, leaderCandidates(region, source.id));
    return buildMovePeer(region, source.id, target.id, meta(ctx, 'balance-region', reason), ctx.allocateId, leaderTo);
  }
  return null;
}

/** A store's region bytes for an operator's reason, with its capacity share when disks differ. */
function bytesOf(ctx: PlanContext, storeId: number): string {
  const share = capacityShare(ctx, storeId);
  const bytes = `${loadOf(ctx, storeId).regionWeight} region bytes`;
  return share === 1 ? bytes : `${bytes} on ${Math.round(100 * share)}% of the largest store's capacity`;
}

/** Makes up to `budget` balance-region moves, re-reading loads (with influence) after each. */
export function balanceRegionPass(ctx: PlanContext, budget: number): void {
  for (let made = 0; made < budget; made++) {
    let op: Operator | null = null;
    for (const source of sourcesBy(ctx, (id) => fillScore(ctx, id))) {
      op = tryMoveRegion(ctx, source);
      if (op !== null) break;
    }
    if (op === null) return;
    accept(ctx, op);
  }
}

function tryMoveLeader(ctx: PlanContext, source: StoreInfo): Operator | null {
  const leaders = (id: number): number => loadOf(ctx, id).leaderCount;
  // A store refusing writes gives every leadership away; the others only past the tolerance.
  const evacuate = source.refusingWrites;
  if (!evacuate && widestGap(ctx, source.id, leaders) <= 2 * ctx.config.tolerantSizeRatio) return null;
  for (const region of ctx.view.regions) {
    if (leaderStoreId(region) !== source.id || isBusy(ctx, [region.meta.id])) continue;
    const target = bestLeaderStore(ctx, leaderCandidates(region, source.id));
    if (target === undefined || refusesWrites(ctx, target)) continue;
    if (!evacuate && leaders(source.id) - leaders(target) <= 2 * ctx.config.tolerantSizeRatio) continue;
    const why = evacuate ? `store ${source.id} refuses writes (its disk is below its reserve)` : `store ${source.id} leads ${leaders(source.id)} regions, store ${target} ${leaders(target)}`;
    return buildTransferLeader(region, target, meta(ctx, 'balance-leader', `${why}: transfer region ${region.meta.id}'s leadership`), ctx.allocateId);
  }
  return null;
}

/** Makes up to `budget` leader transfers: from stores refusing writes first, then from those leading the most regions. */
export function balanceLeaderPass(ctx: PlanContext, budget: number): void {
  for (let made = 0; made < budget; made++) {
    let op: Operator | null = null;
    for (const source of sourcesBy(ctx, (id) => (refusesWrites(ctx, id) ? Number.MAX_SAFE_INTEGER : loadOf(ctx, id).leaderCount))) {
      op = tryMoveLeader(ctx, source);
      if (op !== null) break;
    }
    if (op === null) return;
    accept(ctx, op);
  }
}

export function balanceRegions(view: ClusterView, config: ScheduleConfig, allocateId: AllocateId, budget = config.regionScheduleLimit): Operator[] {
  const ctx = newContext(withoutHistory(view), config, allocateId);
  balanceRegionPass(ctx, budget);
  return ctx.made;
}

export function balanceLeaders(view: ClusterView, config: ScheduleConfig, allocateId: AllocateId, budget = config.leaderScheduleLimit): Operator[] {
  const ctx = newContext(withoutHistory(view), config, allocateId);
  balanceLeaderPass(ctx, budget);
  return ctx.made;
}
