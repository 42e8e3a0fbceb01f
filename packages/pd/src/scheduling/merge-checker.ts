/**
 * The merge checker: a small region (at or under mergeMaxBytes AND mergeMaxKeys) merges into
 * an adjacent region (its end key is the other's start key, or the reverse) when:
 * - the merged region stays within regionMaxBytes and regionMaxKeys (or it would split again);
 * - both are healthy (known leader, no down/pending peers, no learners) with exactly
 *   maxReplicas voters, and neither holds an operator;
 * - neither's version changed (split or merge) within splitMergeCooldownMs — judged from
 *   `SchedulingView.regionTimes`, so a region PD has not been watching that long waits too;
 * - their replicas are on the SAME stores. When they are not, the checker aligns first, as
 *   TiKV does: it moves one replica of the source onto a store of the target (never lowering
 *   the source's isolation), and merges in a later pass once the stores match.
 * Of two eligible neighbours, an aligned one is preferred, then the smaller one.
 */
import type { Operator, RegionInfo } from '../cluster/types.ts';
import type { ScheduleConfig } from './config.ts';
import { accept, bestLeaderStore, isBusy, isSourceStore, isTargetStore, newContext, storesOf, type PlanContext } from './context.ts';
import { buildMerge, buildMovePeer, leaderCandidates, type OperatorMeta } from './operators.ts';
import { isolationScore } from './placement.ts';
import { PRIORITY, isRegionHealthy, voters, type AllocateId, type SchedulingView } from './types.ts';

function meta(ctx: PlanContext, reason: string): OperatorMeta {
  return { origin: 'merge-checker', reason, priority: PRIORITY.merge, nowMs: ctx.view.nowMs, timeouts: ctx.config.operatorTimeoutMs };
}

function isSmall(region: RegionInfo, config: ScheduleConfig): boolean {
  return region.approximateBytes <= config.mergeMaxBytes && region.approximateKeys <= config.mergeMaxKeys;
}

function cooledDown(ctx: PlanContext, region: RegionInfo): boolean {
  const times = ctx.view.regionTimes.get(region.meta.id);
  // Unknown history counts as "changed just now": wait rather than merge a fresh split.
  if (times === undefined || times.version !== region.meta.epoch.version) return false;
  return ctx.view.nowMs - times.versionSinceMs >= ctx.config.splitMergeCooldownMs;
}

/** Healthy, idle, fully replicated, out of its cooldown: may take part in a merge. */
function mergeable(ctx: PlanContext, region: RegionInfo): boolean {
  return (
    !isBusy(ctx, [region.meta.id]) &&
    isRegionHealthy(region) &&
    voters(region).length === ctx.config.maxReplicas &&
    cooledDown(ctx, region)
  );
}

function fitsAfterMerge(a: RegionInfo, b: RegionInfo, config: ScheduleConfig): boolean {
  return a.approximateBytes + b.approximateBytes <= config.regionMaxBytes && a.approximateKeys + b.approximateKeys <= config.regionMaxKeys;
}

function storeSet(region: RegionInfo): Set<number> {
  return new Set(region.meta.peers.map((p) => p.storeId));
}

export function aligned(a: RegionInfo, b: RegionInfo): boolean {
  const sa = storeSet(a);
  const sb = storeSet(b);
  return sa.size === sb.size && [...sa].every((s) => sb.has(s));
}

/** The neighbours of regions[index] that share a key boundary with it (the list is sorted by start key). */
function neighbours(regions: readonly RegionInfo[], index: number): RegionInfo[] {
  const region = regions[index]!;
  const out: RegionInfo[] = [];
  const prev = regions[index - 1];
  if (prev !== undefined && Buffer.compare(prev.meta.endKey, region.meta.startKey) === 0) out.push(prev);
  const next = regions[index + 1];
  if (next !== undefined && region.meta.endKey.byteLength > 0 && Buffer.compare(region.meta.endKey, next.meta.startKey) === 0) out.push(next);
  return out;
}

/** One move bringing `source` closer to `target`'s stores without lowering its isolation, or null. */
function alignStep(ctx: PlanContext, source: RegionInfo, target: RegionInfo): Operator | null {
  const sourceStores = storeSet(source);
  const targetStores = storeSet(target);
  const labels = ctx.config.locationLabels;
  for (const from of [...sourceStores].filter((s) => !targetStores.has(s)).sort((a, b) => a - b)) {
    if (!isSourceStore(ctx, from)) continue;
    const staying = storesOf(ctx, [...sourceStores].filter((s) => s !== from));
    const fromStore = ctx.stores.get(from);
    const fromIsolation = fromStore === undefined ? -1 : isolationScore(labels, fromStore, staying);
    for (const to of [...targetStores].filter((s) => !sourceStores.has(s)).sort((a, b) => a - b)) {
      const toStore = ctx.stores.get(to);
      if (toStore === undefined || !isTargetStore(ctx, toStore)) continue;
      if (isolationScore(labels, toStore, staying) < fromIsolation) continue;
      const reason = `region ${source.meta.id} is small and merges into region ${target.meta.id}: first move its replica from store ${from} to store ${to} to align their stores`;
      const leaderTo = bestLeaderStore(ctx, leaderCandidates(source, from));
      return buildMovePeer(source, from, to, meta(ctx, reason), ctx.allocateId, leaderTo);
    }
  }
  return null;
}

/** The merge checker's operator for regions[index] as a source, or null. */
export function checkRegionMerge(ctx: PlanContext, regions: readonly RegionInfo[], index: number): Operator | null {
  const source = regions[index]!;
  if (!isSmall(source, ctx.config) || !mergeable(ctx, source)) return null;
  const targets = neighbours(regions, index)
    .filter((t) => mergeable(ctx, t) && fitsAfterMerge(source, t, ctx.config))
    .sort((a, b) => Number(aligned(source, b)) - Number(aligned(source, a)) || a.approximateBytes - b.approximateBytes);
  for (const target of targets) {
    if (aligned(source, target)) {
      const reason = `region ${source.meta.id} (${source.approximateBytes} bytes, ${source.approximateKeys} keys) is small: merge it into neighbour ${target.meta.id}`;
      return buildMerge(source, target, meta(ctx, reason), ctx.allocateId);
    }
    const align = alignStep(ctx, source, target);
    if (align !== null) return align;
  }
  return null;
}

export function mergeCheckerPass(ctx: PlanContext, budget: number): void {
  let left = budget;
  const regions = ctx.view.regions;
  for (let index = 0; index < regions.length && left > 0; index++) {
    const op = checkRegionMerge(ctx, regions, index);
    if (op === null) continue;
    accept(ctx, op);
    left--;
  }
}

export function checkMerges(view: SchedulingView, config: ScheduleConfig, allocateId: AllocateId): Operator[] {
  const ctx = newContext(view, config, allocateId);
  mergeCheckerPass(ctx, Number.POSITIVE_INFINITY);
  return ctx.made;
}
