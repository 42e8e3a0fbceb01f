import { Inflights } from './inflights.ts';

/**
 * How the leader replicates to one follower:
 * - probe: one append per heartbeat interval until the follower's log position is found;
 * - replicate: optimistic pipelining, bounded by the inflight window;
 * - snapshot: a snapshot is on its way, appends pause until it is reported applied.
 */
export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** The leader's view of one follower (etcd-raft's tracker.Progress). */
export class Progress {
  /** Highest index known to be in the follower's log, matching the leader's. */
  match = 0;
  /** Next index to send. */
  next: number;
  state: ProgressState = 'probe';
  /** Index of the snapshot in flight (state 'snapshot'). */
  pendingSnapshot = 0;
  /** Heard from since the last CheckQuorum round. */
  recentActive = false;
  /** In probe state: an append was sent this heartbeat interval, wait for a response. */
  probeSent = false;
  /** The leader tick of the newest heartbeat this follower acknowledged (for the read lease). */
  ackedLeaderTick = -1;
  /**
   * The leader tick at which replication to this follower last moved: an ack advanced
   * `match`, or entries went out to an empty window. A heartbeat response sends an empty
   * append (a probe that a lost append would make the follower reject) only when entries have
   * been outstanding longer than a heartbeat interval since then.
   */
  flowTick = 0;
  /**
   * An append went out to this follower since the leader's last heartbeat round. The append
   * did a heartbeat's work (the follower's election timer restarts, and its response echoes
   * the leader tick for the lease), so the next round skips this follower while it replicates.
   */
  appendedSinceBeat = false;
  readonly inflights: Inflights;
  isLearner: boolean;

  constructor(next: number, inflightMessagesMax: number, inflightBytesMax: number, isLearner: boolean) {
    this.next = next;
    this.inflights = new Inflights(inflightMessagesMax, inflightBytesMax);
    this.isLearner = isLearner;
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      const pendingSnapshot = this.pendingSnapshot;
      this.resetState('probe');
      this.next = Math.max(this.match + 1, pendingSnapshot + 1);
    } else {
      this.resetState('probe');
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  /** Called after sending entries up to `lastIndex` (optimistically advances `next`). */
  sentEntries(lastIndex: number, bytes: number, entryCount: number): void {
    if (this.state === 'replicate') {
      if (entryCount > 0) {
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex, bytes);
      }
    } else if (this.state === 'probe') {
      this.probeSent = true;
    }
  }

  /** Follower acknowledged up to `index`; returns false when the ack is stale. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /**
   * The follower rejected an append at `rejected`; `matchHint` is the leader's best guess of
   * the highest index both logs may share. Returns false when the rejection is stale.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1, 1);
    this.probeSent = false;
    return true;
  }

  /** Sending is paused: probing with a message outstanding, a full window, or a snapshot in flight. */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }
}
