/**
 * Lease reads, and the one thing they need of the host: ticks that keep pace with real time.
 *
 * A leader serves a linearizable read from its lease — with no heartbeat round — while a
 * quorum acknowledged a heartbeat (or append) sent at leader tick t and the leader's tick is
 * still below t + L, where L = electionTicks - driftTicks (the raft core's `leaseValid`). It
 * rests on the voters' side of CheckQuorum: a follower that heard from its leader refuses
 * votes until electionTicks of ITS ticks have passed.
 *
 * In real time (ms). A follower acknowledged the heartbeat after it was sent, at s or later, and
 * then refuses votes for electionTicks ticks. A store's ticks come from one setInterval: it
 * never fires faster than tickMs, except that timers fire on whole milliseconds of the event
 * loop's clock (up to 1 ms early), and the first tick after the heartbeat may come at once:
 *
 *   no other leader before  s + (electionTicks - 1) * (tickMs - 1)
 *
 * The leader's ticks can run SLOW (a blocked event loop, a stopped process, a busy machine):
 * then tick t + L comes later than t + L tick lengths, and the lease would outlive the
 * followers' promise. So the host bounds the gap between two ticks by `maxTickGapMs` G:
 * the ticker checks each gap, and a read checks the gap since the last tick before the lease
 * is used (`beforeLeaseUse`). A gap past G voids the lease of every leader here (the core's
 * voidLease: earlier acks stop counting, and a phantom tick starts a new count). With every
 * gap at most G, a read served at leader tick k < t + L happens before
 *
 *   time(tick t) + (k - t + 1) * G  <=  s + L * G
 *
 * which is safe when L * G <= (electionTicks - 1) * (tickMs - 1): that fixes G. The stores
 * of a cluster must run the same --tick-ms (a follower with shorter ticks refuses votes for
 * less time). Clock rate differences between machines (parts per million) fit in the margin.
 */

import { limits } from './constants.ts';

/** How early a timer may fire: timers fire on whole milliseconds of the loop's clock. */
const TIMER_EARLY_MS = 1;

export interface ReadLeaseTiming {
  readonly tickMs: number;
  readonly electionTicks: number;
  /** Ticks the lease is shorter than an election timeout (the core's maxClockDriftTicks). */
  readonly driftTicks: number;
}

/**
 * The longest gap between two ticks under which the lease is still safe (ms, see above); 0
 * when no gap longer than a tick is (the tick is too short for lease reads to pay: every
 * timer's jitter would void them).
 */
export function maxTickGapMs(timing: ReadLeaseTiming): number {
  const leaseTicks = timing.electionTicks - timing.driftTicks;
  if (leaseTicks <= 0) return 0;
  const followersRefuseMs = (timing.electionTicks - 1) * (timing.tickMs - TIMER_EARLY_MS);
  const gap = Math.floor(followersRefuseMs / leaseTicks);
  return gap > timing.tickMs ? gap : 0;
}

/**
 * The store's watch over its ticks: voids every lease here when a gap between ticks (or since
 * the last tick, when a lease is about to be used) passed `maxGapMs`.
 */
export class ReadLeaseClock {
  private lastTickMs: number;
  private stallCount = 0;

  constructor(
    private readonly maxGapMs: number,
    /** Voids the lease of every leader of the store (each node's voidLease()). */
    private readonly voidAll: () => void,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.lastTickMs = now();
  }

  /** Times a gap voided the leases (a metric: each one sends reads to ReadIndex rounds for a while). */
  get stalls(): number {
    return this.stallCount;
  }

  /** The ticker starts (or starts again): gaps count from now. */
  startTicking(): void {
    this.lastTickMs = this.now();
  }

  /** At every tick of the store, before its groups tick. */
  onTick(): void {
    const now = this.now();
    if (now - this.lastTickMs > this.maxGapMs) this.stall();
    this.lastTickMs = now;
  }

  /** Before a leader relies on its lease: the time since the last tick must be within the bound too. */
  beforeLeaseUse(): void {
    const now = this.now();
    if (now - this.lastTickMs <= this.maxGapMs) return;
    this.stall();
    // Every leader just counted a phantom tick: it is the last tick the next gap is measured from.
    this.lastTickMs = now;
  }

  private stall(): void {
    this.stallCount++;
    this.voidAll();
  }
}

/**
 * The store's lease clock: undefined when lease reads are off (`enabled` false) or when the
 * store's tick is too short for a safe gap bound (then every linearizable read takes a
 * ReadIndex round).
 */
export function readLeaseClock(enabled: boolean, tickMs: number, voidAll: () => void): ReadLeaseClock | undefined {
  if (!enabled) return undefined;
  const gapMs = maxTickGapMs({ tickMs, electionTicks: limits.electionTicks, driftTicks: limits.readLeaseDriftTicks });
  return gapMs > 0 ? new ReadLeaseClock(gapMs, voidAll) : undefined;
}
