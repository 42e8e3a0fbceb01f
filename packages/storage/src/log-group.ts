/**
 * One group's log as the Raft core reads it, on the main thread: hard state, conf state,
 * truncation, last index, a run-length term index, and the cache of its recent entries
 * (log-cache.ts). Everything the core asks synchronously is answered from here; a cache miss
 * starts one asynchronous disk read through the owner (log-reads.ts) and throws
 * LOG_TEMPORARILY_UNAVAILABLE.
 */
import {
  EMPTY_CONF_STATE,
  EMPTY_HARD_STATE,
  RaftError,
  entryBytes,
  type ConfState,
  type Entry,
  type HardState,
  type Snapshot,
} from '@flotilla/raft';
import { logFetchBytesMax, termRunsPerGroupMax } from './constants.ts';
import { fail } from './errors.ts';
import { EntryCache } from './log-cache.ts';
import type { GroupLog, GroupLogView } from './log-types.ts';
import { limitEntries } from './util.ts';

/** A disk read's result, kept until the core asks again. */
export interface FetchedRange {
  readonly lo: number;
  readonly entries: Entry[];
  readonly generation: number;
  /** The read reached the end it asked for (not stopped by a fetch bound). */
  readonly complete: boolean;
}

/** What a group's view needs from the engine that owns it. */
export interface GroupOwner {
  checkUsable(): void;
  snapshotOf(groupId: number): Snapshot;
  fetchedFor(s: GroupState, lo: number): FetchedRange | null;
  dropFetched(groupId: number): void;
  startFetch(s: GroupState, lo: number, hi: number, maxBytes: number): void;
  countCacheRead(hit: boolean): void;
}

export class GroupState implements GroupLog, GroupLogView {
  hard: HardState = EMPTY_HARD_STATE;
  conf: ConfState = EMPTY_CONF_STATE;
  truncIndex = 0;
  truncTerm = 0;
  last = 0;
  /** Runs of equal terms over (truncIndex, last]. */
  runStarts: number[] = [];
  runTerms: number[] = [];
  /** Recent entries: a contiguous suffix of the log (cache.first = last + 1 when empty). */
  readonly cache = new EntryCache(1);
  /** Bumped whenever existing entries may change (overwrite, snapshot): stale fetches are dropped. */
  generation = 0;
  fetching = false;
  fetchError: unknown = null;
  /** Stamp of the last write() call that touched the group (duplicate check without a Set). */
  writeStamp = 0;
  /** Links of the engine's cache LRU (least recently appended first). */
  lruPrev: GroupState | null = null;
  lruNext: GroupState | null = null;
  inLru = false;

  constructor(
    readonly groupId: number,
    private readonly owner: GroupOwner,
  ) {}

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hard, confState: this.conf };
  }

  hardState(): HardState {
    return this.hard;
  }

  confState(): ConfState {
    return this.conf;
  }

  truncatedIndex(): number {
    return this.truncIndex;
  }

  firstIndex(): number {
    return this.truncIndex + 1;
  }

  lastIndex(): number {
    return this.last;
  }

  term(index: number): number {
    if (index < this.truncIndex) throw new RaftError('FLOTILLA_RAFT_COMPACTED', `term of ${index} is compacted`);
    if (index > this.last) throw new RaftError('FLOTILLA_RAFT_UNAVAILABLE', `term of ${index} is beyond the last index ${this.last}`);
    if (index === this.truncIndex) return this.truncTerm;
    const starts = this.runStarts;
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (starts[mid]! <= index) lo = mid;
      else hi = mid - 1;
    }
    if (starts.length === 0 || starts[lo]! > index) fail(`group ${this.groupId}: term index does not cover ${index}`);
    return this.runTerms[lo]!;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    this.owner.checkUsable();
    if (lo <= this.truncIndex) throw new RaftError('FLOTILLA_RAFT_COMPACTED', `entry ${lo} is compacted (first index ${this.firstIndex()})`);
    if (hi > this.last + 1) throw new RaftError('FLOTILLA_RAFT_UNAVAILABLE', `entries up to ${hi - 1} requested, last index ${this.last}`);
    if (lo >= hi) return [];
    if (this.fetchError !== null) throw this.fetchError;
    const cacheFirst = this.cache.first;
    if (lo >= cacheFirst) {
      this.owner.countCacheRead(true);
      return this.cache.slice(lo, hi, maxBytes);
    }
    let fetched = this.owner.fetchedFor(this, lo);
    // A complete read that the log has outgrown (appends, cache eviction): read again.
    if (fetched !== null && fetched.complete && fetched.lo + fetched.entries.length < Math.min(hi, cacheFirst)) {
      this.owner.dropFetched(this.groupId);
      fetched = null;
    }
    if (fetched !== null) {
      const start = lo - fetched.lo;
      const fetchedEnd = fetched.lo + fetched.entries.length;
      const head = limitEntries(fetched.entries, start, Math.min(fetched.entries.length, start + (hi - lo)), maxBytes);
      // The read ended where the cache begins: continue into the cache within the byte budget.
      if (head.length === fetchedEnd - lo && fetchedEnd < hi && fetchedEnd >= cacheFirst) {
        let size = 0;
        for (const e of head) size += entryBytes(e);
        if (size < maxBytes) {
          const tail = this.cache.slice(fetchedEnd, hi, maxBytes - size);
          const total = head.concat(tail);
          return limitEntries(total, 0, total.length, maxBytes);
        }
      }
      return head;
    }
    this.owner.countCacheRead(false);
    // Read ahead up to the cache (bounded by logFetchEntriesMax / logFetchBytesMax in the shard).
    this.owner.startFetch(this, lo, cacheFirst, logFetchBytesMax);
    throw new RaftError('FLOTILLA_RAFT_LOG_TEMPORARILY_UNAVAILABLE', `group ${this.groupId}: entries from ${lo} are being read from disk`);
  }

  snapshot(): Snapshot {
    return this.owner.snapshotOf(this.groupId);
  }

  // ---- term index (main thread, after validation) ----------------------------------------------

  /**
   * Entries from `firstNew` on replace the log's suffix. The run arrays are rebuilt at their
   * exact length, and only when a run changes (a new term, an overwrite): a store holds them
   * for thousands of groups, and push() would leave each with room for 17 runs.
   */
  setTermsFrom(firstNew: number, entries: readonly Entry[]): void {
    let keep = this.runStarts.length;
    while (keep > 0 && this.runStarts[keep - 1]! >= firstNew) keep--;
    let lastTerm = keep > 0 ? this.runTerms[keep - 1] : undefined;
    let newStarts: number[] | undefined;
    let newTerms: number[] | undefined;
    for (const e of entries) {
      if (lastTerm === e.term) continue;
      lastTerm = e.term;
      (newStarts ??= []).push(e.index);
      (newTerms ??= []).push(e.term);
    }
    if (keep === this.runStarts.length && newStarts === undefined) return;
    if (keep + (newStarts?.length ?? 0) > termRunsPerGroupMax) fail(`group ${this.groupId}: more than termRunsPerGroupMax term runs`);
    this.runStarts = this.runStarts.slice(0, keep).concat(newStarts ?? []);
    this.runTerms = this.runTerms.slice(0, keep).concat(newTerms ?? []);
  }

  dropTermsThrough(index: number): void {
    // Keep the run containing index + 1 (restarted there) and everything after it.
    let k = 0;
    while (k + 1 < this.runStarts.length && this.runStarts[k + 1]! <= index + 1) k++;
    if (index >= this.last) {
      this.runStarts = [];
      this.runTerms = [];
      return;
    }
    this.runStarts = this.runStarts.slice(k);
    this.runTerms = this.runTerms.slice(k);
    if (this.runStarts.length > 0) this.runStarts[0] = index + 1;
  }
}

/** A view of a group that does not exist yet (validation of its first write). */
export const EMPTY_VIEW: GroupLogView = {
  truncatedIndex: () => 0,
  lastIndex: () => 0,
  term: (index: number) => {
    if (index === 0) return 0;
    throw new RaftError('FLOTILLA_RAFT_UNAVAILABLE', `term of ${index} is beyond the last index 0`);
  },
  hardState: () => EMPTY_HARD_STATE,
};
