/**
 * The coordinator: one scheduling pass over a cluster view, as TiKV's PD coordinator.
 *
 * Order, which is also priority: the replica checker (repair first), the split checker, the
 * merge checker, then the enabled schedulers whose interval has passed: hot-region,
 * balance-leader, balance-region. A region with a running operator (or held by a running
 * merge as its target) gets no new one, and every pass stays within the config's limit of
 * running operators of its origin, and the per-store operator limit.
 *
 * The only memory between passes is the explicit `SchedulerState` the caller keeps: when
 * each scheduler last ran, and per region when its version last changed and since when it
 * has been hot (bounded: regions PD no longer sees are forgotten). A fresh state (a new PD
 * leader) treats every region as changed just now: merges and load splits wait a cooldown.
 */
import type { ClusterView, Operator, RegionInfo } from '../cluster/types.ts';
import type { ScheduleConfig, SchedulerName } from './config.ts';
import { balanceLeaderPass, balanceRegionPass } from './balance.ts';
import { isReadHot, isWriteHot, newContext, type PlanContext } from './context.ts';
import { hotRegionPass } from './hot-region.ts';
import { mergeCheckerPass } from './merge-checker.ts';
import { replicaCheckerPass } from './replica-checker.ts';
import { splitCheckerPass } from './split-checker.ts';
import { LIMIT_OF_ORIGIN, type AllocateId, type LimitName, type RegionTimes, type SchedulingView } from './types.ts';

export interface SchedulerState {
  readonly regionTimes: Map<number, RegionTimes>;
  readonly lastRunMs: Map<SchedulerName, number>;
}

export function newSchedulerState(): SchedulerState {
  return { regionTimes: new Map(), lastRunMs: new Map() };
}

function observeRegion(prev: RegionTimes | undefined, region: RegionInfo, config: ScheduleConfig, nowMs: number): RegionTimes {
  const version = region.meta.epoch.version;
  const hot = isWriteHot(region, config) || isReadHot(region, config);
  // Nothing changed (most regions, most passes): the same record, not a new one per region per pass.
  if (prev !== undefined && prev.version === version && (prev.hotSinceMs !== null) === hot) return prev;
  return {
    version,
    versionSinceMs: prev !== undefined && prev.version === version ? prev.versionSinceMs : nowMs,
    hotSinceMs: hot ? (prev?.hotSinceMs ?? nowMs) : null,
  };
}

/**
 * Records what the view shows about each region's version and heat into `state`, forgets
 * regions no longer in the view, and returns the view with that history attached.
 */
export function observeRegions(state: SchedulerState, view: ClusterView, config: ScheduleConfig): SchedulingView {
  const times = state.regionTimes;
  for (const region of view.regions) {
    const id = region.meta.id;
    const prev = times.get(id);
    const next = observeRegion(prev, region, config, view.nowMs);
    if (next !== prev) times.set(id, next);
  }
  // Every region of the view has its record now; more records than regions means some are of
  // regions PD no longer sees (the view's ids are unique). Only then look for them.
  if (times.size > view.regions.length) {
    const seen = new Set(view.regions.map((r) => r.meta.id));
    for (const id of times.keys()) if (!seen.has(id)) times.delete(id);
  }
  return { ...view, regionTimes: times };
}

/** How many more operators counted against `limit` may start now. */
export function room(view: ClusterView, config: ScheduleConfig, limit: LimitName): number {
  const running = view.running.filter((op) => LIMIT_OF_ORIGIN[op.origin] === limit).length;
  return Math.max(0, config[limit] - running);
}

function due(state: SchedulerState, config: ScheduleConfig, name: SchedulerName, nowMs: number): boolean {
  const switchOf = config.schedulers[name];
  if (!switchOf.enabled) return false;
  const last = state.lastRunMs.get(name);
  return last === undefined || nowMs - last >= switchOf.intervalMs;
}

const SCHEDULERS: readonly { name: SchedulerName; limit: LimitName; pass: (ctx: PlanContext, budget: number) => void }[] = [
  { name: 'hotRegion', limit: 'hotRegionScheduleLimit', pass: hotRegionPass },
  { name: 'balanceLeader', limit: 'leaderScheduleLimit', pass: balanceLeaderPass },
  { name: 'balanceRegion', limit: 'regionScheduleLimit', pass: balanceRegionPass },
];

/** One scheduling pass: the new operators, highest priority first (the order they were made). */
export function schedule(view: ClusterView, config: ScheduleConfig, allocateId: AllocateId, state: SchedulerState): Operator[] {
  const ctx = newContext(observeRegions(state, view, config), config, allocateId);
  const { checkers } = config;
  if (checkers.replicaChecker.enabled) replicaCheckerPass(ctx, room(view, config, 'replicaScheduleLimit'));
  if (checkers.splitChecker.enabled) splitCheckerPass(ctx, room(view, config, 'splitScheduleLimit'));
  if (checkers.mergeChecker.enabled) mergeCheckerPass(ctx, room(view, config, 'mergeScheduleLimit'));
  for (const { name, limit, pass } of SCHEDULERS) {
    if (!due(state, config, name, view.nowMs)) continue;
    state.lastRunMs.set(name, view.nowMs);
    pass(ctx, room(view, config, limit));
  }
  return ctx.made;
}
