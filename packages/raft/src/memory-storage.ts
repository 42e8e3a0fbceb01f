import { RaftError, fail } from './errors.ts';
import type { RaftStorage } from './storage.ts';
import {
  EMPTY_BYTES,
  EMPTY_CONF_STATE,
  EMPTY_HARD_STATE,
  type ConfState,
  type Entry,
  type HardState,
  type Snapshot,
} from './types.ts';
import { limitEntriesBytes } from './util.ts';

/**
 * The in-memory twin of a durable Raft log: used by unit tests, the simulator (as the
 * "disk" of a simulated node) and benchmarks. Writes are the host's; the core only reads.
 *
 * Layout: `entriesFromDummy[0]` is a dummy entry carrying the snapshot's index and term, so
 * term(snapshotIndex) is always answerable (needed for the log-matching check of appends).
 */
export class MemoryStorage implements RaftStorage {
  private hardState: HardState = EMPTY_HARD_STATE;
  /**
   * The configuration a restarting node starts with, and the index it took effect at. It is
   * the snapshot's unless the host recorded a newer one with setConfState (hosts that persist
   * their applied index together with the configuration, TiKV style). A host that re-applies
   * the log from the snapshot on restart must not call setConfState: it would apply the same
   * changes twice.
   */
  private confState: ConfState = EMPTY_CONF_STATE;
  private confStateIndex = 0;
  private currentSnapshot: Snapshot = { metadata: { index: 0, term: 0, confState: EMPTY_CONF_STATE }, data: EMPTY_BYTES };
  private entriesFromDummy: Entry[] = [{ index: 0, term: 0, type: 'normal', data: EMPTY_BYTES }];

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hardState, confState: this.confState };
  }

  setHardState(hardState: HardState): void {
    this.hardState = hardState;
  }

  /**
   * Records the configuration in force from `index` on (the conf change entry's index). It is
   * kept apart from the snapshot: a snapshot's configuration stays the one at its own index.
   */
  setConfState(confState: ConfState, index = this.confStateIndex): void {
    this.confState = confState;
    this.confStateIndex = index;
  }

  /** Index at which the configuration returned by initialState() took effect. */
  confStateAppliedIndex(): number {
    return this.confStateIndex;
  }

  private get offset(): number {
    return this.entriesFromDummy[0]!.index;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo <= this.offset) throw new RaftError('FLOTILLA_RAFT_COMPACTED', `entry ${lo} is compacted (first index ${this.firstIndex()})`);
    if (hi > this.lastIndex() + 1) throw new RaftError('FLOTILLA_RAFT_UNAVAILABLE', `entries up to ${hi - 1} requested, last index ${this.lastIndex()}`);
    if (this.entriesFromDummy.length === 1) return [];
    return limitEntriesBytes(this.entriesFromDummy.slice(lo - this.offset, hi - this.offset), maxBytes);
  }

  term(index: number): number {
    if (index < this.offset) throw new RaftError('FLOTILLA_RAFT_COMPACTED', `term of ${index} is compacted`);
    if (index > this.lastIndex()) throw new RaftError('FLOTILLA_RAFT_UNAVAILABLE', `term of ${index} is beyond the last index ${this.lastIndex()}`);
    return this.entriesFromDummy[index - this.offset]!.term;
  }

  firstIndex(): number {
    return this.offset + 1;
  }

  lastIndex(): number {
    return this.offset + this.entriesFromDummy.length - 1;
  }

  snapshot(): Snapshot {
    return this.currentSnapshot;
  }

  /** Replaces the whole log with a snapshot received from the leader. */
  applySnapshot(snapshot: Snapshot): void {
    if (snapshot.metadata.index <= this.currentSnapshot.metadata.index) {
      throw new RaftError('FLOTILLA_RAFT_SNAPSHOT_OUT_OF_DATE', `snapshot at ${snapshot.metadata.index} is not newer than ${this.currentSnapshot.metadata.index}`);
    }
    this.currentSnapshot = snapshot;
    this.adoptSnapshotConf(snapshot);
    this.entriesFromDummy = [{ index: snapshot.metadata.index, term: snapshot.metadata.term, type: 'normal', data: EMPTY_BYTES }];
  }

  /**
   * Records a snapshot of the state machine taken at `index` (which must be applied by the
   * host) so it can be sent to lagging followers; does not compact.
   */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    if (index <= this.currentSnapshot.metadata.index) {
      throw new RaftError('FLOTILLA_RAFT_SNAPSHOT_OUT_OF_DATE', `snapshot at ${index} is not newer than ${this.currentSnapshot.metadata.index}`);
    }
    if (!(index <= this.lastIndex())) fail(`snapshot index ${index} beyond last index ${this.lastIndex()}`);
    this.currentSnapshot = { metadata: { index, term: this.term(index), confState }, data };
    this.adoptSnapshotConf(this.currentSnapshot);
    return this.currentSnapshot;
  }

  private adoptSnapshotConf(snapshot: Snapshot): void {
    if (snapshot.metadata.index < this.confStateIndex) return; // a newer recorded config wins
    this.confState = snapshot.metadata.confState;
    this.confStateIndex = snapshot.metadata.index;
  }

  /** Discards entries up to and including `compactIndex`. */
  compact(compactIndex: number): void {
    if (compactIndex <= this.offset) throw new RaftError('FLOTILLA_RAFT_COMPACTED', `already compacted past ${compactIndex}`);
    if (!(compactIndex <= this.lastIndex())) fail(`compact ${compactIndex} beyond last index ${this.lastIndex()}`);
    const at = compactIndex - this.offset;
    const dummy: Entry = { index: compactIndex, term: this.entriesFromDummy[at]!.term, type: 'normal', data: EMPTY_BYTES };
    this.entriesFromDummy = [dummy, ...this.entriesFromDummy.slice(at + 1)];
  }

  /**
   * Appends entries, truncating any conflicting suffix (entries at or after the first new
   * index are replaced). Entries already compacted are ignored.
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0]!.index + entries.length - 1;
    if (last < first) return;
    const fresh = first > entries[0]!.index ? entries.slice(first - entries[0]!.index) : entries;
    const at = fresh[0]!.index - this.offset;
    if (!(at <= this.entriesFromDummy.length)) fail(`append leaves a gap: first new ${fresh[0]!.index}, last ${this.lastIndex()}`);
    this.entriesFromDummy.length = at;
    for (const entry of fresh) this.entriesFromDummy.push(entry);
  }
}
