import type { ConfState, Entry, HardState, Snapshot } from './types.ts';

/**
 * The read-only view of the durable log that the core needs. The host owns writes: it appends
 * what a Ready tells it to persist, and only then calls advance(). Implementations: MemoryStorage
 * (below, in memory-storage.ts) and the RocksDB log engine in @flotilla/storage.
 *
 * Errors: throw RaftError FLOTILLA_RAFT_COMPACTED for indexes below firstIndex() and
 * FLOTILLA_RAFT_UNAVAILABLE above lastIndex(). Any other throw is fatal to the node.
 */
export interface RaftStorage {
  /** The persisted hard state and configuration, read once when a node starts. */
  initialState(): { hardState: HardState; confState: ConfState };
  /**
   * Entries in [lo, hi), at most `maxBytes` of entry data in total but always at least one
   * entry when lo < hi.
   *
   * A storage whose disk reads are asynchronous (the RocksDB engine reads through its worker)
   * may throw FLOTILLA_RAFT_LOG_TEMPORARILY_UNAVAILABLE after starting a fetch of the range;
   * the leader then skips that send and retries on the follower's next response (heartbeat
   * responses keep coming), by when the fetch has filled the cache. Committed entries to
   * apply (a restarted node's, or a follower's evicted from the cache) are not offered again
   * until the host calls `RawNode.entriesAvailable()` when the fetch completed.
   */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /**
   * Term of the entry at `index`; valid for firstIndex()-1 ..= lastIndex(). Must answer
   * synchronously (keep an in-memory index of terms; terms change rarely, so it compresses
   * to runs).
   */
  term(index: number): number;
  /** Index of the first entry still in the log (snapshot index + 1 after compaction). */
  firstIndex(): number;
  lastIndex(): number;
  /** The most recent snapshot; may throw FLOTILLA_RAFT_SNAPSHOT_TEMPORARILY_UNAVAILABLE. */
  snapshot(): Snapshot;
}
