/**
 * Every bound of @flotilla/storage, in one place (TigerBeetle style). Units and qualifiers
 * last. The checks at the bottom run at load time and state how the bounds relate.
 */

// ---- On-disk formats -------------------------------------------------------------------
/**
 * Version of the log shards' layout (log-format.ts): the manifest, the format record and the
 * version byte of every value. 2: a group's entries are packed into records of many entries
 * (one key per pack instead of one per entry). Version 1 directories are read and upgraded in
 * place: a version 1 entry value reads as a pack of one entry (log-format.ts).
 */
export const LOG_FORMAT_VERSION = 2;
/** The oldest log format this build reads (and upgrades on open). */
export const LOG_FORMAT_VERSION_OLDEST = 1;
/**
 * Version of the KV engine's layout (format record in its meta column). 2: a region record
 * carries the region's raft configuration (kv-format.ts), 3: and its merge state, 4: apply
 * states go to the apply journal (kv-apply-journal.ts). Version 3 directories are read and
 * upgraded in place (their records did not change); older ones are refused.
 */
export const KV_FORMAT_VERSION = 4;
/** The oldest KV layout this build reads (and upgrades). */
export const KV_FORMAT_VERSION_OLDEST = 3;
/** Version byte of region snapshot streams and staged snapshot files (2: the header carries the configuration, 3: the merge state). */
export const SNAPSHOT_FORMAT_VERSION = 3;

// ---- Raft log ----------------------------------------------------------------------------
/** Payload of one entry. */
export const entryDataBytesMax = 8 * 1024 * 1024;
/** Groups hosted by one log engine (the per-group state map). */
export const groupsMax = 1 << 20;
/** Appender shards (each one worker thread and one RocksDB). */
export const appenderShardsMax = 16;
/**
 * Default number of shards of a new log directory, chosen by measurement
 * (benchmarks/storage/RESULTS.md): on the 2-core reference machine two shards append up to
 * ~30% more than one at 256 groups when the appenders have the cores to themselves (two fsyncs
 * and two batch writes overlap); more shards than cores only add contention. A store, which
 * shares the cores with its event loop and its peers, picks its own (store constants).
 */
export const appenderShardsDefault = 2;
/**
 * Nice value of appender threads (Linux; a store's `--appender-nice`). 0, chosen by measurement
 * in the 3-store cluster (bench:peer inserts, 2026-11-23, alternate runs): against 10, the log
 * write a commit waits for took 0.8-1.1 ms instead of 1.6 ms at one client, and inserts/s rose
 * 30-78% at C=1, 9-38% at C=16, 18-37% at C=64, 2-3% at C=256 — a niced appender waits for a
 * core behind the busy main threads every time it wakes. 10 favours the main thread's event
 * loop instead (storage benchmark alone: event-loop p99 4.9 -> 3.3 ms at 256 groups, 20 -> 12 ms
 * at 4,096, scavenges half as long, same throughput).
 */
export const appenderNiceDefault = 0;
/**
 * Append tasks in flight per INLINE shard (submitted, not yet durable). Writes arriving meanwhile
 * coalesce into the shard's one open task (group commit); when that task is full too, write()
 * rejects with QUEUE_FULL.
 */
export const appendTasksInflightPerShardMax = 1;
/**
 * Append tasks in flight per WORKER shard. Each flush posts the open task at once; the worker
 * writes every task that arrived during its previous batch as one batch with one sync. Together
 * the tasks in flight never exceed ONE task's entries, bytes and pieces (so any run of them fits
 * one batch, and a shard holds at most two tasks' worth with its open task); this count only
 * bounds the acknowledgement queue. Measured against piscina's one task in flight
 * (benchmarks/storage/RESULTS.md): the appender no longer idles between batches.
 */
export const appendTasksInflightPerWorkerMax = 256;
/** Entries in one append task (the writes of many groups to one shard). */
export const appendTaskEntriesMax = 64 * 1024;
/** Encoded bytes of one append task (entry payloads + headers). */
export const appendTaskBytesMax = 64 * 1024 * 1024;
/** Groups touched by one append task. */
export const appendTaskGroupsMax = 64 * 1024;
/** Entries cached per group (a contiguous suffix of its log). */
export const logCacheEntriesPerGroupMax = 1024;
/** Payload bytes cached per group. */
export const logCacheBytesPerGroupMax = 4 * 1024 * 1024;
/** Smallest payload ring of a group's cache (log-cache.ts); it doubles as the group caches more. */
export const logCacheRingBytesMin = 4096;
/** Payload bytes cached over all groups of one engine. */
export const logCacheBytesMax = 256 * 1024 * 1024;
/** Shared buffer that small cache reads copy their payloads into (log-cache.ts, readSpace). */
export const logCacheReadSlabBytes = 16 * 1024;
/** Reads of more payload bytes than this get a buffer of their own, not a slab's. */
export const logCacheReadSlabPieceBytesMax = 2 * 1024;
/** Disk reads (cache misses) in flight per engine; further misses wait for the next retry. */
export const logFetchesInflightMax = 64;
/** Entries one disk read loads. */
export const logFetchEntriesMax = 4096;
/** Payload bytes one disk read loads (at least one entry is always loaded). */
export const logFetchBytesMax = 8 * 1024 * 1024;
/** Fetched ranges kept (one per group at most) until the core asks again. */
export const logFetchedRangesMax = 256;
/**
 * Entries in one pack, the on-disk record of consecutive entries of one group (log-format.ts).
 * A shard owner packs a group's entries of one batch into as few packs as these bounds allow:
 * one RocksDB key per pack instead of one per entry took the appenders' CPU per entry down by a
 * third at 256 groups (benchmarks/storage/RESULTS.md, "Packs"). The bounds keep a cache-miss
 * read of one entry from verifying a huge record.
 */
export const logPackEntriesMax = 256;
/** Payload bytes of one pack; a single larger entry gets a pack of its own. */
export const logPackBytesMax = 1024 * 1024;
/** Runs of equal terms kept per group in the in-memory term index. */
export const termRunsPerGroupMax = 1 << 20;
/** Rows read per `nextv` while recovering or scanning. */
export const scanRowsPerStepMax = 1000;

// ---- KV state machine ---------------------------------------------------------------------
export const kvKeyBytesMax = 8 * 1024;
export const kvValueBytesMax = 8 * 1024 * 1024;
/** Regions applied in one apply batch. */
export const kvApplyRegionsMax = 64 * 1024;
/** Commands in one apply batch (over all its regions). */
export const kvApplyCommandsMax = 256 * 1024;
/**
 * Apply-journal records (one per apply batch, holding the apply states of its regions) kept
 * before a checkpoint writes each region's own apply-state record and deletes them
 * (kv-apply-journal.ts). Recovery reads at most this many.
 */
export const kvApplyJournalRecordsMax = 256;
/** Region states over all live apply-journal records before a checkpoint (bounds recovery's reading). */
export const kvApplyJournalStatesMax = 256 * 1024;
/** Apply batches queued behind the one running. A full queue rejects with QUEUE_FULL. */
export const kvApplyQueueMax = 64;
/** Keys one delete-range command may delete (point deletes inside the apply batch). */
export const kvDeleteRangeKeysMax = 256 * 1024;
/** Keys in one getMany. */
export const kvGetManyKeysMax = 64 * 1024;
/**
 * Point reads of one turn read on the main thread first when at most this many (point-reads.ts):
 * the thread hop of a pool MultiGet cost ~90 µs of CPU on the 2-vCPU machine, more than a
 * cached read; larger batches share one hop and read on another core. 8 against 0 (Flotilla-
 * only reads, two alternating pairs): store CPU per read 151/159 → 112/88 µs at 16 in flight,
 * 47/56 → 45/38 at 64, 30/35 → 33/20 at 256; 32 was slower than 0 at 256 in flight (the
 * main thread took reads a pool thread would have run beside it).
 */
export const kvPointReadsNowKeysMax = 8;
/** How long a main-thread MultiGet may take before its unread keys go to the thread pool (ms, RocksDB's deadline). */
export const kvPointReadsNowDeadlineMs = 1;
/** Rows one scan returns. */
export const kvScanRowsMax = 64 * 1024;
/** Key + value bytes one scan returns (at least one row is always returned). */
export const kvScanBytesMax = 32 * 1024 * 1024;
/** Peers in one region's metadata. */
export const regionPeersMax = 64;
/** Regions hosted by one KV engine. */
export const regionsMax = 1 << 20;

// ---- Region snapshots ----------------------------------------------------------------------
/** Key + value bytes per snapshot chunk; a chunk still carries one pair when it is larger. */
export const snapshotChunkBytesMax = 1024 * 1024;
/** Pairs per snapshot chunk. */
export const snapshotChunkPairsMax = 16 * 1024;
/** Encoded bytes of one chunk frame: the bound a receiver enforces before buffering it. */
export const snapshotFrameBytesMax = snapshotChunkBytesMax + kvKeyBytesMax + kvValueBytesMax + 64 * 1024;
/** Pairs per ingest batch when a snapshot is applied (one batch per received chunk). */
export const snapshotIngestBatchPairsMax = 16 * 1024;

// ---- Load-time checks of how the bounds relate --------------------------------------------
function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`storage constants: ${what}`);
}
check(appenderShardsDefault >= 1 && appenderShardsDefault <= appenderShardsMax, 'default shards within 1..appenderShardsMax');
check(appendTaskBytesMax >= entryDataBytesMax + 1024, 'one maximal entry fits in one append task');
check(appendTaskEntriesMax >= logCacheEntriesPerGroupMax, 'a task can carry a whole cached window');
check(appendTaskGroupsMax <= 2 ** 17, 'piece numbers of a task fit the batch sort key (log-batch.ts)');
check(appendTasksInflightPerShardMax >= 1 && appendTasksInflightPerWorkerMax >= 1, 'a shard has a task in flight');
check(logCacheBytesPerGroupMax >= entryDataBytesMax / 2, 'a group caches at least half a maximal entry');
check(logCacheBytesMax >= logCacheBytesPerGroupMax, 'the global cache holds at least one group window');
check(logCacheRingBytesMin >= 64 && logCacheRingBytesMin <= logCacheBytesPerGroupMax, 'a cache ring starts small');
check(logCacheReadSlabPieceBytesMax >= 1 && logCacheReadSlabPieceBytesMax <= logCacheReadSlabBytes, 'a slab holds at least one read it takes');
check(logFetchBytesMax >= entryDataBytesMax, 'a fetch can always load one maximal entry');
check(logPackEntriesMax >= 1 && logPackEntriesMax <= logFetchEntriesMax, 'a pack holds at least one entry, at most one fetch');
check(logFetchedRangesMax >= logFetchesInflightMax, 'every fetch in flight has a slot for its result');
check(kvApplyCommandsMax >= kvApplyRegionsMax, 'each region of a batch may carry a command');
check(kvScanBytesMax >= kvKeyBytesMax + kvValueBytesMax, 'a scan can always return one maximal row');
check(snapshotFrameBytesMax > snapshotChunkBytesMax + kvKeyBytesMax + kvValueBytesMax, 'a chunk frame holds a full chunk plus one maximal pair');
check(snapshotIngestBatchPairsMax >= snapshotChunkPairsMax, 'one received chunk fits one ingest batch');
check(snapshotFrameBytesMax >= 64 + 2 * kvKeyBytesMax + 17 * regionPeersMax + 20 + 4 * 8 * regionPeersMax, 'a header frame holds a maximal region and configuration');
check(Number.isSafeInteger(groupsMax * logCacheEntriesPerGroupMax), 'cache arithmetic stays exact');
