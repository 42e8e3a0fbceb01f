/**
 * Disk reads of the log engine (cache misses): at most `logFetchesInflightMax` asynchronous
 * reads, their results kept per group (at most `logFetchedRangesMax`) until the core asks
 * again, and `loadEntries`, the awaiting read for hosts and tests. A result is dropped when the
 * group's entries changed meanwhile (its generation moved on).
 */
import { RaftError, type Entry } from '@flotilla/raft';
import { logFetchedRangesMax, logFetchesInflightMax } from './constants.ts';
import { assert } from './errors.ts';
import { PACKED_ENTRY_HEADER_BYTES, decodePackedEntry, readU32 } from './log-format.ts';
import type { FetchedRange, GroupState } from './log-group.ts';
import { READ_HEADER_BYTES, READ_OK } from './log-task.ts';
import type { ShardClient } from './shard-client.ts';
import { limitEntries } from './util.ts';

/** What the reader needs from the engine. */
export interface ReaderHost {
  checkUsable(): void;
  isOpen(): boolean;
  /** Whether `s` is still the engine's state of its group (not destroyed and recreated). */
  isLive(s: GroupState): boolean;
  clientOf(groupId: number): ShardClient;
  /** Resolves when everything submitted to the group's shard so far is durable. */
  drained(groupId: number): Promise<void>;
  onFetched(groupId: number): void;
}

export class LogReader {
  private readonly fetched = new Map<number, FetchedRange>();
  private inflight = 0;
  private readonly waiters = new Set<Promise<void>>();
  fetches = 0;

  constructor(private readonly host: ReaderHost) {}

  fetchedFor(s: GroupState, lo: number): FetchedRange | null {
    const f = this.fetched.get(s.groupId);
    if (f === undefined) return null;
    if (f.generation !== s.generation || !this.host.isLive(s)) {
      this.fetched.delete(s.groupId);
      return null;
    }
    if (lo < f.lo || lo >= f.lo + f.entries.length) return null;
    return f;
  }

  drop(groupId: number): void {
    this.fetched.delete(groupId);
  }

  start(s: GroupState, lo: number, hi: number, maxBytes: number): void {
    if (s.fetching || this.inflight >= logFetchesInflightMax) return;
    if (!this.host.isLive(s)) return;
    s.fetching = true;
    this.inflight++;
    this.fetches++;
    const generation = s.generation;
    const done = this.host
      .clientOf(s.groupId)
      .read(s.groupId, lo, hi, maxBytes)
      .then(
        (bytes) => {
          if (generation !== s.generation || !this.host.isLive(s)) return;
          const entries = decodeRead(bytes);
          if (entries === null || entries.length === 0) return;
          this.fetched.delete(s.groupId);
          this.fetched.set(s.groupId, { lo, entries, generation, complete: lo + entries.length >= hi });
          while (this.fetched.size > logFetchedRangesMax) {
            const oldest = this.fetched.keys().next();
            if (oldest.done === true) break;
            this.fetched.delete(oldest.value);
          }
        },
        (err: unknown) => {
          // Never hand out damaged data: the group's next read raises the error.
          if (generation === s.generation) s.fetchError = err;
        },
      )
      .finally(() => {
        s.fetching = false;
        this.inflight--;
        this.waiters.delete(done);
        if (this.host.isOpen()) this.host.onFetched(s.groupId);
      });
    this.waiters.add(done);
  }

  /** Entries [lo, hi) within maxBytes (at least one), waiting for the disk when not cached. */
  async load(s: GroupState, lo: number, hi: number, maxBytes: number): Promise<Entry[]> {
    if (lo <= s.truncIndex) throw new RaftError('FLOTILLA_RAFT_COMPACTED', `entry ${lo} is compacted (first index ${s.firstIndex()})`);
    if (hi > s.last + 1) throw new RaftError('FLOTILLA_RAFT_UNAVAILABLE', `entries up to ${hi - 1} requested, last index ${s.last}`);
    if (lo >= hi) return [];
    for (;;) {
      const generation = s.generation;
      if (lo >= s.cache.first) return s.entries(lo, hi, maxBytes);
      // Everything submitted before this read must have reached the shard.
      await this.host.drained(s.groupId);
      this.host.checkUsable();
      const bytes = await this.host.clientOf(s.groupId).read(s.groupId, lo, Math.min(hi, s.cache.first), maxBytes);
      if (generation !== s.generation) continue;
      const read = decodeRead(bytes);
      if (read === null) throw new RaftError('FLOTILLA_RAFT_COMPACTED', `entry ${lo} is compacted`);
      assert(read.length > 0, `group ${s.groupId}: a read of ${lo} returned entries`);
      const end = lo + read.length;
      if (end >= hi || end < s.cache.first) return limitEntries(read, 0, Math.min(read.length, hi - lo), maxBytes);
      let size = 0;
      for (const e of read) size += e.data.byteLength;
      const rest = size < maxBytes ? s.entries(end, hi, maxBytes - size) : [];
      return limitEntries(read.concat(rest), 0, hi - lo, maxBytes);
    }
  }

  /** Resolves when no read is in flight. */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.waiters]);
  }
}

/** Decodes a read answer (null: the range was compacted meanwhile). */
function decodeRead(bytes: Uint8Array): Entry[] | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0) !== READ_OK) return null;
  const count = view.getUint32(4);
  const first = view.getFloat64(8);
  const out: Entry[] = [];
  let at = READ_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    out.push(decodePackedEntry(first + i, bytes, at));
    at += PACKED_ENTRY_HEADER_BYTES + readU32(bytes, at + 12);
  }
  return out;
}
