/**
 * The clock for durations, deadlines and ages: milliseconds on the monotonic clock, on the Unix
 * epoch's scale (equal to Date.now() when the process started). A wall-clock step — an NTP
 * correction, an operator's `date -s`, a VM restored from a snapshot — moves Date.now() but not
 * this, so a timeout never fires early or late because of one, as Go's monotonic time.Since
 * guarantees TiKV's PD. Date.now() is kept for timestamps people read or other machines compare.
 * (Replica reads order sub-millisecond events with replica-reads.ts's storeMoment(), on the
 * same monotonic source.)
 */
export function monotonicNowMs(): number {
  // Whole milliseconds, as Date.now(): readings end up in records that hold integers.
  return Math.floor(performance.timeOrigin + performance.now());
}
