/**
 * The hot-region scheduler: spreads the load of hot regions (write or read bytes/s over the
 * config's thresholds) off the store carrying the most of it.
 *
 * In order, per operator:
 * 1. write leaders: the store leading the most hot write bytes hands a hot region's leadership
 *    to the voter store leading the least (writes are proposed by the leader);
 * 2. write peers: the store holding replicas of the most hot write bytes moves one replica to
 *    the store holding the least (every replica applies every write), isolation never lower;
 * 3. read leaders: as 1, for read bytes (reads are served by the leader by default).
 * A change happens only when the source's load exceeds the target's by more than
 * 2 × tolerantSizeRatio × the region's rate, so it never invites its reverse. Hottest regions
 * are considered first.
 */
import type { ClusterView, Operator, RegionInfo } from '../cluster/types.ts';
import type { ScheduleConfig } from './config.ts';
import { accept, bestLeaderStore, isReadHot, isSourceStore, isWriteHot, loadOf, newContext, type PlanContext, type StoreLoad } from './context.ts';
import { balanceTargets, isBalanceable, sourcesBy } from './balance.ts';
import { buildMovePeer, buildTransferLeader, leaderCandidates, type OperatorMeta } from './operators.ts';
import { withoutHistory } from './replica-checker.ts';
import { PRIORITY, leaderStoreId, peerOnStore, type AllocateId } from './types.ts';

function meta(ctx: PlanContext, reason: string): OperatorMeta {
  return { origin: 'hot-region', reason, priority: PRIORITY.hotRegion, nowMs: ctx.view.nowMs, timeouts: ctx.config.operatorTimeoutMs };
}

type Flow = 'write' | 'read';

function rate(region: RegionInfo, flow: Flow): number {
  return flow === 'write' ? region.rates.writeBytes : region.rates.readBytes;
}

function hotRegions(ctx: PlanContext, flow: Flow): RegionInfo[] {
  const hot = ctx.view.regions.filter((r) => (flow === 'write' ? isWriteHot(r, ctx.config) : isReadHot(r, ctx.config)));
  return hot.sort((a, b) => rate(b, flow) - rate(a, flow) || a.meta.id - b.meta.id);
}

function worthIt(ctx: PlanContext, source: number, target: number, key: keyof StoreLoad, regionRate: number): boolean {
  return loadOf(ctx, source)[key] - loadOf(ctx, target)[key] > 2 * ctx.config.tolerantSizeRatio * regionRate;
}

function moveHotLeader(ctx: PlanContext, flow: Flow): Operator | null {
  const key = flow === 'write' ? 'hotWriteLeader' : 'hotReadLeader';
  const source = sourcesBy(ctx, (id) => loadOf(ctx, id)[key])[0];
  if (source === undefined || loadOf(ctx, source.id)[key] <= 0) return null;
  for (const region of hotRegions(ctx, flow)) {
    if (leaderStoreId(region) !== source.id || !isBalanceable(ctx, region)) continue;
    const target = leaderCandidates(region, source.id)
      .filter((id) => ctx.stores.get(id)?.state === 'up')
      .sort((a, b) => loadOf(ctx, a)[key] - loadOf(ctx, b)[key] || a - b)[0];
    if (target === undefined || !worthIt(ctx, source.id, target, key, rate(region, flow))) continue;
    const reason = `store ${source.id} leads ${loadOf(ctx, source.id)[key]} hot ${flow} B/s, store ${target} ${loadOf(ctx, target)[key]}: hand over hot region ${region.meta.id} (${rate(region, flow)} B/s)`;
    return buildTransferLeader(region, target, meta(ctx, reason), ctx.allocateId);
  }
  return null;
}

function moveHotPeer(ctx: PlanContext): Operator | null {
  const key = 'hotWritePeer';
  const source = sourcesBy(ctx, (id) => loadOf(ctx, id)[key])[0];
  if (source === undefined || loadOf(ctx, source.id)[key] <= 0 || !isSourceStore(ctx, source.id)) return null;
  for (const region of hotRegions(ctx, 'write')) {
    if (peerOnStore(region, source.id)?.role !== 'voter' || !isBalanceable(ctx, region)) continue;
    const target = balanceTargets(ctx, region, source.id, (id) => loadOf(ctx, id)[key])[0];
    if (target === undefined || !worthIt(ctx, source.id, target.id, key, region.rates.writeBytes)) continue;
    const reason = `store ${source.id} holds ${loadOf(ctx, source.id)[key]} hot write B/s, store ${target.id} ${loadOf(ctx, target.id)[key]}: move hot region ${region.meta.id} (${region.rates.writeBytes} B/s)`;
    const leaderTo = bestLeaderStore(ctx, leaderCandidates(region, source.id));
    return buildMovePeer(region, source.id, target.id, meta(ctx, reason), ctx.allocateId, leaderTo);
  }
  return null;
}

/** Makes up to `budget` hot-region operators, re-reading loads (with influence) after each. */
export function hotRegionPass(ctx: PlanContext, budget: number): void {
  for (let made = 0; made < budget; made++) {
    const op = moveHotLeader(ctx, 'write') ?? moveHotPeer(ctx) ?? moveHotLeader(ctx, 'read');
    if (op === null) return;
    accept(ctx, op);
  }
}

export function scheduleHotRegions(view: ClusterView, config: ScheduleConfig, allocateId: AllocateId, budget = config.hotRegionScheduleLimit): Operator[] {
  const ctx = newContext(withoutHistory(view), config, allocateId);
  hotRegionPass(ctx, budget);
  return ctx.made;
}
