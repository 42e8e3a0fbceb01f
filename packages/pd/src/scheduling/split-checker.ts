/**
 * The split checker: a region over regionMaxBytes or regionMaxKeys is split at its middle
 * (the store picks the key); a region hot (write or read over the hot threshold) for at least
 * loadSplitSpanMs is split too (load split), so its halves can be spread over stores.
 *
 * The hot span counts from the later of "hot since" and the last version change, so the
 * halves of a load split wait a full span before they are split again.
 */
import type { Operator, RegionInfo } from '../cluster/types.ts';
import type { ScheduleConfig } from './config.ts';
import { accept, isBusy, newContext, type PlanContext } from './context.ts';
import { buildSplit, type OperatorMeta } from './operators.ts';
import { formatDuration } from './placement.ts';
import { PRIORITY, leaderPeer, type AllocateId, type SchedulingView } from './types.ts';

/** A region with fewer keys can't be split usefully by load: there is no middle key to pick. */
export const LOAD_SPLIT_KEYS_MIN = 2;

function meta(ctx: PlanContext, reason: string): OperatorMeta {
  return { origin: 'split-checker', reason, priority: PRIORITY.split, nowMs: ctx.view.nowMs, timeouts: ctx.config.operatorTimeoutMs };
}

function sizeReason(region: RegionInfo, config: ScheduleConfig): string | null {
  const id = region.meta.id;
  if (region.approximateBytes > config.regionMaxBytes) return `region ${id} holds ${region.approximateBytes} bytes, over ${config.regionMaxBytes}: split it`;
  if (region.approximateKeys > config.regionMaxKeys) return `region ${id} holds ${region.approximateKeys} keys, over ${config.regionMaxKeys}: split it`;
  return null;
}

function loadReason(ctx: PlanContext, region: RegionInfo): string | null {
  const { config, view } = ctx;
  if (config.loadSplitSpanMs === 0 || region.approximateKeys < LOAD_SPLIT_KEYS_MIN) return null;
  const times = view.regionTimes.get(region.meta.id);
  if (times === undefined || times.hotSinceMs === null) return null;
  const hotForMs = view.nowMs - Math.max(times.hotSinceMs, times.versionSinceMs);
  if (hotForMs < config.loadSplitSpanMs) return null;
  const { writeBytes, readBytes } = region.rates;
  return `region ${region.meta.id} hot for ${formatDuration(hotForMs)} (write ${writeBytes} B/s, read ${readBytes} B/s): split it to spread the load`;
}

/** Why the region should be split now, or null (no side effects: nothing is allocated). */
function splitReason(ctx: PlanContext, region: RegionInfo): string | null {
  if (leaderPeer(region) === undefined) return null;
  return sizeReason(region, ctx.config) ?? loadReason(ctx, region);
}

/** The split operator for `region`, for `reason`. */
function splitFor(ctx: PlanContext, region: RegionInfo, reason: string): Operator {
  return buildSplit(region, [], meta(ctx, reason), ctx.allocateId);
}

/** The split checker's operator for one region, or null. */
export function checkRegionSplit(ctx: PlanContext, region: RegionInfo): Operator | null {
  const reason = splitReason(ctx, region);
  return reason === null ? null : splitFor(ctx, region, reason);
}

export function splitCheckerPass(ctx: PlanContext, budget: number): void {
  let left = budget;
  for (const region of ctx.view.regions) {
    if (left <= 0) return;
    // The reason first: most regions need no split, and asking costs no allocation; only then
    // whether an operator holds the region (the same operators as asking in the other order).
    const reason = splitReason(ctx, region);
    if (reason === null || isBusy(ctx, [region.meta.id])) continue;
    accept(ctx, splitFor(ctx, region, reason));
    left--;
  }
}

export function checkSplits(view: SchedulingView, config: ScheduleConfig, allocateId: AllocateId): Operator[] {
  const ctx = newContext(view, config, allocateId);
  splitCheckerPass(ctx, Number.POSITIVE_INFINITY);
  return ctx.made;
}
