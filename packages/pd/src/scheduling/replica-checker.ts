/**
 * The replica checker: keeps every region at `maxReplicas` voters on healthy, well isolated
 * stores. Rules, first match wins (one operator per region):
 * 1. a replica on a store that is down (for storeDownMs), offline, tombstone or unknown is
 *    replaced: learner on the best store, then one joint change promoting it and removing the
 *    bad one (a bad learner is simply removed). With no target and voters to spare, removed;
 * 2. fewer voters than maxReplicas: promote a healthy learner on an up store, else add one;
 * 3. more voters than maxReplicas: remove the worst placed (least isolated, then heaviest store);
 * 4. learners left over (an operator that timed out half way): removed;
 * 5. a voter less isolated than some other store would be: moved there (location labels).
 * Regions are checked most urgent first: fewest good voters. The per-store operator limit
 * applies to the stores that receive replicas (a bad store does no work to lose one).
 */
import type { ClusterView, Operator, RegionInfo, RegionPeer } from '../cluster/types.ts';
import type { ScheduleConfig } from './config.ts';
import { accept, bestLeaderStore, fillScore, isBusy, newContext, rankTargets, storesOf, type PlanContext } from './context.ts';
import { buildAddReplica, buildMovePeer, buildPromoteLearner, buildRemoveReplica, leaderCandidates, regionsHeldBy, type OperatorMeta } from './operators.ts';
import { isolationScore, mustLeaveReason } from './placement.ts';
import { PRIORITY, isPeerUnhealthy, isRegionHealthy, leaderPeer, learners, voters, type AllocateId, type SchedulingView } from './types.ts';

function meta(ctx: PlanContext, reason: string, priority: number): OperatorMeta {
  return { origin: 'replica-checker', reason, priority, nowMs: ctx.view.nowMs, timeouts: ctx.config.operatorTimeoutMs };
}

function badReason(ctx: PlanContext, peer: RegionPeer): string | null {
  return mustLeaveReason(ctx.stores.get(peer.storeId), peer.storeId, ctx.config, ctx.view.nowMs);
}

function leaderToFor(ctx: PlanContext, region: RegionInfo, leavingStoreId: number): number | undefined {
  return bestLeaderStore(ctx, leaderCandidates(region, leavingStoreId));
}

/** Voters that are not on a bad store and not reported down by the leader. */
function goodVoters(ctx: PlanContext, region: RegionInfo): RegionPeer[] {
  return voters(region).filter((p) => badReason(ctx, p) === null && !region.downPeerIds.includes(p.id));
}

/** Rule 1: replace (or drop) one replica on a bad store. */
function replaceBadPeer(ctx: PlanContext, region: RegionInfo): Operator | null {
  const id = region.meta.id;
  const bad = region.meta.peers.filter((p) => badReason(ctx, p) !== null);
  const staying = goodVoters(ctx, region).map((p) => p.storeId);
  for (const peer of bad) {
    const why = badReason(ctx, peer)!;
    if (peer.role === 'learner') {
      return buildRemoveReplica(region, peer.storeId, meta(ctx, `${why}: remove the learner of region ${id} there`, PRIORITY.replicaRepair), ctx.allocateId);
    }
    const target = rankTargets(ctx, region, staying)[0];
    const leaderTo = leaderToFor(ctx, region, peer.storeId);
    if (target !== undefined) {
      const reason = `${why}: replace its replica of region ${id} with one on store ${target.store.id}`;
      return buildMovePeer(region, peer.storeId, target.store.id, meta(ctx, reason, PRIORITY.replicaRepair), ctx.allocateId, leaderTo);
    }
    if (voters(region).length > ctx.config.maxReplicas) {
      const reason = `${why}, no store can take a replacement, region ${id} has voters to spare: remove it`;
      const op = buildRemoveReplica(region, peer.storeId, meta(ctx, reason, PRIORITY.replicaRepair), ctx.allocateId, leaderTo);
      if (op !== null) return op;
    }
  }
  return null;
}

/** Rule 2: too few voters. */
function addMissing(ctx: PlanContext, region: RegionInfo): Operator | null {
  const id = region.meta.id;
  const have = voters(region).length;
  const want = ctx.config.maxReplicas;
  const promotable = learners(region).find((p) => ctx.stores.get(p.storeId)?.state === 'up' && !isPeerUnhealthy(region, p.id));
  if (promotable !== undefined) {
    const reason = `region ${id} has ${have} of ${want} voters: promote its learner on store ${promotable.storeId}`;
    return buildPromoteLearner(region, promotable.storeId, meta(ctx, reason, PRIORITY.replicaRepair), ctx.allocateId);
  }
  const leftover = learners(region)[0];
  if (leftover !== undefined) {
    const reason = `region ${id} has ${have} of ${want} voters and an unhealthy learner on store ${leftover.storeId}: remove it first`;
    return buildRemoveReplica(region, leftover.storeId, meta(ctx, reason, PRIORITY.replicaRepair), ctx.allocateId);
  }
  const target = rankTargets(ctx, region, voters(region).map((p) => p.storeId))[0];
  if (target === undefined) return null;
  const reason = `region ${id} has ${have} of ${want} voters: add one on store ${target.store.id}`;
  return buildAddReplica(region, target.store.id, meta(ctx, reason, PRIORITY.replicaRepair), ctx.allocateId);
}

/** Voters sorted worst placed first: least isolated, not the leader, fullest store (fillScore), highest id. */
function worstPlaced(ctx: PlanContext, region: RegionInfo): { peer: RegionPeer; isolation: number }[] {
  const all = voters(region);
  const leaderId = leaderPeer(region)?.id;
  const scored = all.map((peer) => {
    const others = storesOf(ctx, all.filter((p) => p !== peer).map((p) => p.storeId));
    const store = ctx.stores.get(peer.storeId);
    return { peer, isolation: store === undefined ? -1 : isolationScore(ctx.config.locationLabels, store, others) };
  });
  return scored.sort(
    (a, b) =>
      a.isolation - b.isolation ||
      Number(a.peer.id === leaderId) - Number(b.peer.id === leaderId) ||
      fillScore(ctx, b.peer.storeId) - fillScore(ctx, a.peer.storeId) ||
      b.peer.storeId - a.peer.storeId,
  );
}

/** Rule 3: too many voters. */
function removeExtra(ctx: PlanContext, region: RegionInfo): Operator | null {
  const have = voters(region).length;
  const worst = worstPlaced(ctx, region)[0];
  if (worst === undefined) return null;
  const storeId = worst.peer.storeId;
  const reason = `region ${region.meta.id} has ${have} voters, ${ctx.config.maxReplicas} wanted: remove the least isolated, on store ${storeId}`;
  return buildRemoveReplica(region, storeId, meta(ctx, reason, PRIORITY.replicaAdjust), ctx.allocateId, leaderToFor(ctx, region, storeId));
}

/** Rule 4: learners nobody is promoting. */
function removeLeftoverLearner(ctx: PlanContext, region: RegionInfo): Operator | null {
  const learner = learners(region)[0];
  if (learner === undefined) return null;
  const reason = `region ${region.meta.id} has all its voters and a leftover learner on store ${learner.storeId}: remove it`;
  return buildRemoveReplica(region, learner.storeId, meta(ctx, reason, PRIORITY.replicaAdjust), ctx.allocateId);
}

/** Rule 5: a strictly better isolated store exists for the worst placed voter. */
function improveIsolation(ctx: PlanContext, region: RegionInfo): Operator | null {
  if (ctx.config.locationLabels.length === 0 || !isRegionHealthy(region)) return null;
  const worst = worstPlaced(ctx, region)[0];
  if (worst === undefined) return null;
  const staying = voters(region).filter((p) => p !== worst.peer).map((p) => p.storeId);
  const best = rankTargets(ctx, region, staying)[0];
  if (best === undefined || best.isolation <= worst.isolation) return null;
  const from = worst.peer.storeId;
  const reason = `region ${region.meta.id}: its replica on store ${from} shares a location with another; store ${best.store.id} is better isolated`;
  return buildMovePeer(region, from, best.store.id, meta(ctx, reason, PRIORITY.replicaAdjust), ctx.allocateId, leaderToFor(ctx, region, from));
}

/** The replica checker's operator for one region, or null when it is fine (or can't be helped now). */
export function checkRegionReplicas(ctx: PlanContext, region: RegionInfo): Operator | null {
  // Operators are executed by the leader: without a known one, nothing can run.
  if (leaderPeer(region) === undefined) return null;
  const have = voters(region).length;
  const want = ctx.config.maxReplicas;
  return (
    replaceBadPeer(ctx, region) ??
    (have < want ? addMissing(ctx, region) : null) ??
    (have > want ? removeExtra(ctx, region) : null) ??
    removeLeftoverLearner(ctx, region) ??
    improveIsolation(ctx, region)
  );
}

/** Regions, most urgent first: fewest good voters, then region id. */
export function byUrgency(ctx: PlanContext, regions: readonly RegionInfo[] = ctx.view.regions): RegionInfo[] {
  const good = new Map(regions.map((r) => [r.meta.id, goodVoters(ctx, r).length]));
  return [...regions].sort((a, b) => good.get(a.meta.id)! - good.get(b.meta.id)! || a.meta.id - b.meta.id);
}

/**
 * Whether the checker surely makes no operator for `region` under rules 1–4: every replica a
 * voter on a store it need not leave, as many as wanted. Without location labels (rule 5 off)
 * the pass leaves such regions out before ordering — most regions, most passes: the ordering
 * and the rules allocated arrays for each of them every second (~110 → ~60 ms a pass at
 * 100,000 regions).
 */
export function surelyFine(ctx: PlanContext, region: RegionInfo, mustLeave: (storeId: number) => boolean): boolean {
  let have = 0;
  for (const peer of region.meta.peers) {
    if (peer.role !== 'voter' || mustLeave(peer.storeId)) return false;
    have++;
  }
  return have === ctx.config.maxReplicas;
}

/** Whether a store's replicas must leave it (rule 1): it depends on the store only, so it is asked once per store. */
export function mustLeaveByStore(ctx: PlanContext): (storeId: number) => boolean {
  const leaving = new Map<number, boolean>();
  return (storeId) => {
    let bad = leaving.get(storeId);
    if (bad === undefined) leaving.set(storeId, (bad = mustLeaveReason(ctx.stores.get(storeId), storeId, ctx.config, ctx.view.nowMs) !== null));
    return bad;
  };
}

/** Runs the replica checker over a pass, making at most `budget` operators. */
export function replicaCheckerPass(ctx: PlanContext, budget: number): void {
  let left = budget;
  const mustLeave = mustLeaveByStore(ctx);
  const rule5 = ctx.config.locationLabels.length > 0;
  const candidates = rule5 ? ctx.view.regions : ctx.view.regions.filter((r) => !surelyFine(ctx, r, mustLeave));
  for (const region of byUrgency(ctx, candidates)) {
    if (left <= 0) return;
    if (isBusy(ctx, [region.meta.id])) continue;
    const op = checkRegionReplicas(ctx, region);
    if (op === null || isBusy(ctx, regionsHeldBy(op))) continue;
    accept(ctx, op);
    left--;
  }
}

export function withoutHistory(view: ClusterView): SchedulingView {
  return { ...view, regionTimes: new Map() };
}

/** The replica checker on its own: every region without a running operator, no limits but the per-store one. */
export function checkReplicas(view: ClusterView, config: ScheduleConfig, allocateId: AllocateId): Operator[] {
  const ctx = newContext(withoutHistory(view), config, allocateId);
  replicaCheckerPass(ctx, Number.POSITIVE_INFINITY);
  return ctx.made;
}
