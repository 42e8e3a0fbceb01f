/**
 * The host's half of the read lease: ticks that keep pace with real time.
 *
 * A leader serves a read from its lease while a quorum acknowledged a heartbeat (or append)
 * sent at leader tick t and its tick is still below t + L, L = electionTicks - driftTicks
 * (`Raft.leaseValid`). It rests on CheckQuorum's promise: a voter that heard from its leader
 * votes for no one else until electionTicks of ITS ticks have passed. In real time, a voter
 * that acknowledged a heartbeat sent at s refuses votes until at least
 *
 *   s + (electionTicks - 1) * voterTickMsMin
 *
 * (the first of its ticks after the heartbeat may come at once). A host's ticks can run SLOW
 * (a blocked event loop, a stopped process, a paused VM): then tick t + L comes later than
 * L tick lengths after t, and the lease would outlive the voters' promise. So the host bounds
 * the gap between two of its ticks by G, at each tick and, since the last tick, each time a
 * lease is about to be used (`beforeLeaseUse`). A longer gap voids the lease of every leader
 * of the host (`voidLease`: acks of earlier heartbeats stop counting, and a phantom tick
 * starts a new count). With every gap at most G, a read served at leader tick k < t + L
 * happens before
 *
 *   time(tick t) + (k - t + 1) * G  <=  s + L * G
 *
 * which is safe when L * G <= (electionTicks - 1) * voterTickMsMin: that fixes G.
 */
export interface LeaseTiming {
  /** The shortest real time (ms) the tick of any voter of the group may take. */
  readonly voterTickMsMin: number;
  /** This host's tick (ms): a gap bound at or below it would void every lease. */
  readonly tickMs: number;
  readonly electionTicks: number;
  /** Ticks the lease is shorter than an election timeout (the core's maxClockDriftTicks). */
  readonly driftTicks: number;
}

/** The longest safe gap between two ticks (ms, see above); 0 when none is longer than a tick. */
export function maxTickGapMs(timing: LeaseTiming): number {
  const leaseTicks = timing.electionTicks - timing.driftTicks;
  if (leaseTicks <= 0) return 0;
  const gap = ((timing.electionTicks - 1) * timing.voterTickMsMin) / leaseTicks;
  return gap > timing.tickMs ? gap : 0;
}

/** A host's watch over its ticks: voids every lease it holds when a gap passed `maxGapMs`. */
export class LeaseClock {
  private lastTickMs: number;
  private stallCount = 0;

  constructor(
    private readonly maxGapMs: number,
    /** Voids the lease of every leader of the host (each node's voidLease()). */
    private readonly voidAll: () => void,
    private readonly now: () => number,
  ) {
    this.lastTickMs = now();
  }

  /** Times a gap voided the leases (each one sends reads to ReadIndex rounds for a while). */
  get stalls(): number {
    return this.stallCount;
  }

  /** The ticker starts (or starts again): gaps count from now. */
  startTicking(): void {
    this.lastTickMs = this.now();
  }

  /** At every tick of the host, before its groups tick. */
  onTick(): void {
    const now = this.now();
    if (now - this.lastTickMs > this.maxGapMs) this.stall();
    this.lastTickMs = now;
  }

  /** Before a leader relies on its lease (the core's beforeLeaseUse): the time since the last tick must be within the bound too. */
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
