/**
 * Readiness after a restart: the store answers `/ready` only once the replicas it had when it
 * started have caught up with their leaders. A rolling restart (a StatefulSet waits for each
 * pod to be ready before it takes the next one down) then never has two stores behind at once:
 * with three replicas, a region whose restarted replica still lags and whose next store goes
 * down would stall its writes until the first one caught up.
 *
 * Caught up means: every entry committed before the start is applied here — the replica's
 * safe time (replica-reads.ts) reached the start. A ReadIndex round issued after the start
 * gives it: the leader answers with its commit index, at a moment after the request was made.
 * The commit index in a leader's messages would not do: appends queued for the store while it
 * was down arrive first after it reconnects, with the commit index of their day.
 *
 * Replicas created after the start (splits, new replicas) are not waited for: readiness is a
 * start-up gate, and once open it stays open. Two bounds keep it from holding a store forever:
 * a replica that knows no leader for `leaderlessMaxMs` (its region lost its quorum, or the
 * replica was removed while the store was down) is not waited for, and after `waitMaxMs` the
 * gate opens whatever is left (both reported through `onRelease`).
 */
import { NO_NODE, type NodeId } from '@flotilla/raft';

/** What the gate needs of a replica. */
export interface CatchUpReplica {
  /** The leader the replica knows now (NO_NODE: none). */
  readonly leader: NodeId;
  /** Every entry committed before this moment (ms on `now`'s clock) is applied here. */
  readonly safeTimeMs: number;
  /**
   * Starts (or joins) a ReadIndex round issued at or after the start and resolves once it is
   * applied (true) or it failed: no leader known, timed out (false). Called again after a failure.
   */
  confirm(): Promise<boolean>;
}

interface Pending {
  /** A confirm() is under way. */
  confirming: boolean;
  /** Since when the replica has known no leader, as the checks saw it (undefined: it knows one). */
  leaderlessSinceMs: number | undefined;
}

export interface CatchUpOptions {
  /** The start (ms on `now`'s clock): entries committed before it must be applied. */
  readonly startMs: number;
  /** Longest the gate stays closed after the start (0: it never closes). */
  readonly waitMaxMs: number;
  /** A replica that knows no leader this long is not waited for. */
  readonly leaderlessMaxMs: number;
  /** The clock of the replicas' safe times (ms). */
  readonly now: () => number;
}

export type CatchUpStatus =
  | { readonly caughtUp: true }
  | { readonly caughtUp: false; readonly waiting: number; readonly of: number; readonly example: number };

/** Replicas the gate stopped waiting for without their catching up (the host logs it). */
export interface CatchUpRelease {
  readonly regionIds: readonly number[];
  readonly reason: 'noLeader' | 'waitMaxReached';
}

export class CatchUpGate {
  private readonly pending = new Map<number, Pending>();
  private readonly of: number;

  constructor(
    regionIds: Iterable<number>,
    /** A replica's state now (undefined: it left the store). */
    private readonly replica: (regionId: number) => CatchUpReplica | undefined,
    private readonly options: CatchUpOptions,
    private readonly onRelease: (release: CatchUpRelease) => void = () => {},
  ) {
    if (options.waitMaxMs > 0) for (const id of regionIds) this.pending.set(id, { confirming: false, leaderlessSinceMs: undefined });
    this.of = this.pending.size;
  }

  /**
   * Checks every replica still waited for, and starts a round for those with none under way
   * (the readiness probes drive the retries).
   */
  status(): CatchUpStatus {
    if (this.pending.size === 0) return { caughtUp: true };
    const now = this.options.now();
    if (now - this.options.startMs >= this.options.waitMaxMs) {
      this.onRelease({ regionIds: [...this.pending.keys()], reason: 'waitMaxReached' });
      this.pending.clear();
      return { caughtUp: true };
    }
    const leaderless: number[] = [];
    for (const [id, p] of this.pending) {
      const r = this.replica(id);
      if (r === undefined || r.safeTimeMs >= this.options.startMs) {
        this.pending.delete(id);
        continue;
      }
      p.leaderlessSinceMs = r.leader !== NO_NODE ? undefined : (p.leaderlessSinceMs ?? now);
      if (p.leaderlessSinceMs !== undefined && now - p.leaderlessSinceMs >= this.options.leaderlessMaxMs) {
        leaderless.push(id);
        this.pending.delete(id);
        continue;
      }
      if (!p.confirming) this.confirm(p, r);
    }
    if (leaderless.length > 0) this.onRelease({ regionIds: leaderless, reason: 'noLeader' });
    const example = this.pending.keys().next();
    if (example.done === true) return { caughtUp: true };
    return { caughtUp: false, waiting: this.pending.size, of: this.of, example: example.value };
  }

  private confirm(p: Pending, r: CatchUpReplica): void {
    p.confirming = true;
    const done = (): void => {
      p.confirming = false;
    };
    r.confirm().then(done, done);
  }
}
