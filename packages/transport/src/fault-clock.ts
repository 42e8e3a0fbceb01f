/**
 * Fault injection for tests on real processes (test/chaos): a jump of this process's wall
 * clock, as an NTP step or an operator's `date -s` makes one. Only `Date.now()` moves (every
 * timestamp and wall-clock timeout in Flotilla reads it); `performance.now()`, timers and the
 * raft ticks that ride on them do not, just as CLOCK_MONOTONIC does not move when the wall
 * clock is stepped. Inert unless a fault control file sets an offset (see fault-switch.ts).
 * Code that kept a reference to the original `Date.now` function keeps the real clock; Flotilla
 * calls `Date.now()` at each reading (timestamps) and times durations with monotonicNowMs().
 */

/** The largest jump a control file may ask for, either way. */
export const WALL_CLOCK_OFFSET_MAX_MS = 24 * 60 * 60 * 1000;

const realDateNow = Date.now;
let offsetMs = 0;

/** Moves `Date.now()` by `ms` from the real wall clock (0 restores it). */
export function setWallClockOffset(ms: number): void {
  offsetMs = ms;
  Date.now = ms === 0 ? realDateNow : () => realDateNow() + offsetMs;
}

/** The offset in force (0: the real wall clock). */
export function wallClockOffsetMs(): number {
  return offsetMs;
}
