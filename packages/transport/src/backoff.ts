/**
 * Capped exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And
 * Jitter"): the n-th consecutive failure waits a uniformly random delay in [0, min(cap, base·2^(n-1))].
 * Full jitter spreads the reconnects of many stores that lost the same peer at the same moment.
 * The random source is injected (raft's RandomSource), so a seeded one makes tests deterministic.
 */
import type { RandomSource } from '@flotilla/raft';
import { reconnectBackoffDoublingsMax } from './constants.ts';
import { assert } from './errors.ts';

/** The ceiling of the delay after `failures` consecutive failures (failures >= 1). */
export function backoffCeilingMs(failures: number, baseMs: number, maxMs: number): number {
  assert(Number.isSafeInteger(failures) && failures >= 1, 'failures >= 1');
  assert(baseMs >= 1 && baseMs <= maxMs, '1 <= base <= cap');
  const doublings = Math.min(failures - 1, reconnectBackoffDoublingsMax);
  return Math.min(maxMs, baseMs * 2 ** doublings);
}

/** A full-jitter delay in [0, backoffCeilingMs(failures, ...)] drawn from `random`. */
export function backoffDelayMs(failures: number, baseMs: number, maxMs: number, random: RandomSource): number {
  const ceiling = backoffCeilingMs(failures, baseMs, maxMs);
  const delay = random.nextInt(ceiling + 1);
  assert(Number.isInteger(delay) && delay >= 0 && delay <= ceiling, 'the random source answers within its bound');
  return delay;
}

/** The default source when none is injected: Math.random (production needs no reproducibility here). */
export const mathRandom: RandomSource = {
  nextInt(bound: number): number {
    return Math.floor(Math.random() * bound);
  },
};
