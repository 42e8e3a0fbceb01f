import { LeaseClock, maxTickGapMs } from '@flotilla/raft';
import { limits } from './constants.ts';

/**
 * Lease reads in a store. The leaders answer linearizable reads from their read lease, with
 * no heartbeat round, while their ticks keep pace with real time: the core's LeaseClock
 * (packages/raft/src/lease-clock.ts has the argument) bounds the gap between two ticks and
 * voids every lease of the store past it.
 *
 * A store's ticks come from one setInterval. It never fires faster than tickMs, except that
 * timers fire on whole milliseconds of the event loop's clock (up to 1 ms early), so a voter's
 * tick lasts at least tickMs - 1. For 100 ms ticks, 10 election ticks and a lease 4 ticks
 * shorter: gaps up to 9 * 99 / 6 = 148.5 ms. The stores of a cluster must run the same
 * --tick-ms (a voter with shorter ticks keeps its promise for less time); clock rates of
 * different machines differ by parts per million, well inside the margin.
 */

/** How early a timer may fire: timers fire on whole milliseconds of the loop's clock. */
const TIMER_EARLY_MS = 1;

/** The longest gap between two ticks of a store ticking every `tickMs` (0: lease reads off). */
export function storeTickGapMs(tickMs: number): number {
  return maxTickGapMs({ tickMs, voterTickMsMin: tickMs - TIMER_EARLY_MS, electionTicks: limits.electionTicks, driftTicks: limits.readLeaseDriftTicks });
}

/**
 * The store's lease clock: undefined when lease reads are off (`enabled` false) or when the
 * tick is too short for a gap bound above it (then every linearizable read takes a ReadIndex
 * round).
 */
export function readLeaseClock(enabled: boolean, tickMs: number, voidAll: () => void): LeaseClock | undefined {
  if (!enabled) return undefined;
  const gapMs = storeTickGapMs(tickMs);
  return gapMs > 0 ? new LeaseClock(gapMs, voidAll, () => performance.now()) : undefined;
}
