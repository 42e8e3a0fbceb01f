import { isRaftError, RaftError, fail } from './errors.ts';
import { UnstableLog } from './log-unstable.ts';
import type { RaftStorage } from './storage.ts';
import type { Entry, Snapshot } from './types.ts';
import { limitEntriesBytes } from './util.ts';

/**
 * The node's log: what storage has (stable) followed by what the host has not yet persisted
 * (unstable), plus the commit and apply cursors. Invariant: applied <= applying <= committed.
 */
export class RaftLog {
  readonly unstable: UnstableLog;
  committed: number;
  /** Highest index handed to the host for applying (in a Ready) but maybe not yet applied. */
  applying: number;
  /** The storage threw TEMPORARILY_UNAVAILABLE for committed entries; see nextCommittedEntries. */
  private applyWaitsForStorage = false;
  /** The host stopped applying at an entry that must wait (holdApplying): none offered until resumed. */
  private applyHeld = false;
  /** Highest index the host confirmed applied. */
  applied: number;

  constructor(
    readonly storage: RaftStorage,
    /** Bound on the bytes of committed entries handed out in one Ready. */
    readonly committedBytesPerReadyMax: number,
  ) {
    const firstIndex = storage.firstIndex();
    const lastIndex = storage.lastIndex();
    this.unstable = new UnstableLog(lastIndex + 1);
    this.committed = firstIndex - 1;
    this.applying = firstIndex - 1;
    this.applied = firstIndex - 1;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  /** Term of the entry at `index`, or undefined when it is compacted or beyond the last index. */
  termOrUndefined(index: number): number | undefined {
    const dummy = this.firstIndex() - 1;
    if (index < dummy || index > this.lastIndex()) return undefined;
    const unstableTerm = this.unstable.maybeTerm(index);
    if (unstableTerm !== undefined) return unstableTerm;
    try {
      return this.storage.term(index);
    } catch (err) {
      if (isRaftError(err, 'FLOTILLA_RAFT_COMPACTED') || isRaftError(err, 'FLOTILLA_RAFT_UNAVAILABLE')) return undefined;
      throw err;
    }
  }

  /** Term of the entry at `index`; 0 when unknown (the index before the first is known). */
  term(index: number): number {
    return this.termOrUndefined(index) ?? 0;
  }

  matchTerm(index: number, term: number): boolean {
    return this.termOrUndefined(index) === term;
  }

  /** Raft §5.4.1: a candidate's log is at least as up to date as ours. */
  isUpToDate(lastIndex: number, term: number): boolean {
    const ourTerm = this.lastTerm();
    return term > ourTerm || (term === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Follower side of an append: returns the last index of the new entries when the log
   * matches at (index, logTerm), undefined otherwise.
   */
  maybeAppend(index: number, logTerm: number, committed: number, entries: readonly Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + entries.length;
    const conflict = this.findConflict(entries);
    if (conflict !== 0) {
      if (!(conflict > this.committed)) fail(`entry ${conflict} conflicts with committed entry (committed ${this.committed})`);
      this.append(entries.slice(conflict - (index + 1)));
    }
    // Only what the leader verified matches us may be committed (not our stale suffix).
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  append(entries: readonly Entry[]): number {
    const first = entries[0];
    if (first === undefined) return this.lastIndex();
    if (!(first.index - 1 >= this.committed)) fail(`append at ${first.index} would overwrite committed ${this.committed}`);
    this.unstable.truncateAndAppend(entries);
    return this.lastIndex();
  }

  /** First index whose term differs from ours, or whose index we don't have; 0 if none. */
  findConflict(entries: readonly Entry[]): number {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0;
  }

  /**
   * Fast backtracking: the largest index <= `index` whose term is <= `term`. The leader uses
   * it to skip a whole conflicting term per round trip instead of one entry.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    let i = Math.min(index, this.lastIndex());
    const floor = this.firstIndex() - 1;
    while (i > floor) {
      const t = this.term(i);
      if (t <= term) return { index: i, term: t };
      i--;
    }
    return { index: i, term: this.term(i) };
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    if (!(index <= this.lastIndex())) fail(`commit ${index} beyond last index ${this.lastIndex()}`);
    this.committed = index;
  }

  /** The current-term commit rule (Raft §5.4.2, figure 8): only count replicas for our own term. */
  maybeCommit(index: number, term: number): boolean {
    if (index > this.committed && this.term(index) === term) {
      this.commitTo(index);
      return true;
    }
    return false;
  }

  appliedTo(index: number): void {
    if (index === 0) return;
    if (!(index <= this.committed)) fail(`applied ${index} beyond committed ${this.committed}`);
    if (!(index >= this.applied)) fail(`applied ${index} moves back from ${this.applied}`);
    this.applied = index;
    if (this.applying < index) this.applying = index;
  }

  hasNextCommittedEntries(): boolean {
    if (this.unstable.snapshot) return false; // apply the snapshot first
    if (this.applyWaitsForStorage) return false; // until the storage has them (storageReady)
    if (this.applyHeld) return false; // until the host resumes (resumeApplying)
    return this.committed > this.applying && this.applying + 1 >= this.firstIndex();
  }

  /**
   * Committed entries not yet handed out for applying, bounded by bytes. A storage still
   * reading them from disk (TEMPORARILY_UNAVAILABLE) yields none, and no more are offered
   * until storageReady(): otherwise the host would spin on empty Readys.
   */
  nextCommittedEntries(): Entry[] {
    if (!this.hasNextCommittedEntries()) return [];
    try {
      return this.slice(this.applying + 1, this.committed + 1, this.committedBytesPerReadyMax);
    } catch (err) {
      if (!isRaftError(err, 'FLOTILLA_RAFT_LOG_TEMPORARILY_UNAVAILABLE')) throw err;
      this.applyWaitsForStorage = true;
      return [];
    }
  }

  /** The storage can serve the entries it was reading: offer committed entries again. */
  storageReady(): void {
    this.applyWaitsForStorage = false;
  }

  /**
   * The host applied what it was handed only up to `index`: the entry after it must wait for
   * something outside this group (a merge's target waits for its source). The rest is offered
   * again, from index + 1, once the host calls resumeApplying.
   */
  holdApplying(index: number): void {
    if (!(index >= this.applied && index <= this.applying)) fail(`hold at ${index} outside applied ${this.applied}..applying ${this.applying}`);
    this.applying = index;
    this.applyHeld = true;
  }

  resumeApplying(): void {
    this.applyHeld = false;
  }

  get applyingHeld(): boolean {
    return this.applyHeld;
  }

  acceptApplying(index: number): void {
    if (!(index <= this.committed)) fail(`applying ${index} beyond committed ${this.committed}`);
    this.applying = Math.max(this.applying, index);
  }

  /**
   * The last index the host has persisted that is still part of this log (entries from the
   * unstable offset on are not yet durable). 0 while a received snapshot waits to be persisted.
   */
  persistedIndex(): number {
    return this.unstable.snapshot ? 0 : this.unstable.offset - 1;
  }

  unstableEntries(): Entry[] {
    return this.unstable.entries;
  }

  stableTo(index: number, term: number): void {
    this.unstable.stableTo(index, term);
  }

  stableSnapshotTo(index: number): void {
    this.unstable.stableSnapshotTo(index);
  }

  /** Entries from `index` on, up to `maxBytes` (at least one). */
  entries(index: number, maxBytes: number): Entry[] {
    if (index > this.lastIndex()) return [];
    return this.slice(index, this.lastIndex() + 1, maxBytes);
  }

  /** [lo, hi) across storage and unstable; throws COMPACTED or LOG_TEMPORARILY_UNAVAILABLE. */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    this.checkBounds(lo, hi);
    if (lo === hi) return [];
    const unstableOffset = this.unstable.offset;
    let result: Entry[] = [];
    if (lo < unstableOffset) {
      const stored = this.storage.entries(lo, Math.min(hi, unstableOffset), maxBytes);
      // Storage stopped early because of the size limit: we are done.
      if (stored.length < Math.min(hi, unstableOffset) - lo) return stored;
      result = stored;
    }
    if (hi > unstableOffset) {
      const fresh = this.unstable.slice(Math.max(lo, unstableOffset), hi);
      result = result.length > 0 ? result.concat(fresh) : fresh;
    }
    return limitEntriesBytes(result, maxBytes);
  }

  private checkBounds(lo: number, hi: number): void {
    if (!(lo <= hi)) fail(`invalid slice ${lo} > ${hi}`);
    const first = this.firstIndex();
    if (lo < first) throw new RaftError('FLOTILLA_RAFT_COMPACTED', `entry ${lo} is compacted (first index ${first})`);
    if (!(hi <= this.lastIndex() + 1)) fail(`slice [${lo},${hi}) beyond last index ${this.lastIndex()}`);
  }

  /** Replaces the log with a snapshot (follower receiving InstallSnapshot). */
  restore(snapshot: Snapshot): void {
    this.committed = snapshot.metadata.index;
    this.unstable.restore(snapshot);
  }

  /** The snapshot to send a lagging follower: the unstable one if pending, else storage's. */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

}
