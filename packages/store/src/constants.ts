import { limits as storageLimits } from '@flotilla/storage';
import { limits as wire } from '@flotilla/wire';

/**
 * Every bound of the multi-raft host, named once (TigerBeetle style), with load-time checks
 * of how they relate.
 */
export const limits = Object.freeze({
  /** Length of one raft tick for every group of the store. */
  tickMs: 100,
  /** Ticks without a leader's word before a follower campaigns (randomized up to 2x). */
  electionTicks: 10,
  /**
   * Ticks between a leader's heartbeat rounds: 300 ms (CockroachDB: 1 s against a 3 s election;
   * etcd's 100 ms : 1 s suits one group, not thousands). A round skips followers
   * sent an append since the last one, so a follower hears its leader at least every 2 rounds
   * (600 ms, within the 1 s election timeout). At 4,096 regions taking ~1.5 writes a second
   * each, 300 ms instead of 200 ms cost ~15% less store CPU per put (benchmarks/RESULTS.md).
   */
  heartbeatTicks: 3,
  /**
   * Ticks a leader's read lease is shorter than an election timeout (the core's
   * maxClockDriftTicks): a lease of 6 ticks outlives a heartbeat round (3) and its ack, and
   * leaves room for ticks up to ~1.5 tick lengths apart (read-lease.ts derives the bound).
   */
  readLeaseDriftTicks: 4,
  /** Idle ticks after which a quiet group hibernates (0: never). */
  hibernateAfterTicks: 20,
  /**
   * Raft log shards of a new data directory (`--log-shards`; one appender thread and one
   * RocksDB each). One, measured in the 3-store cluster on 2 cores (benchmarks/storage/RESULTS.md,
   * "Shard placement"): two shards wrote no more at 16 to 4,096 regions, and at 16 requests in
   * flight cost two fsyncs where one costs one (a turn's groups sit in both) and ~13% of the
   * throughput. The storage engine's own default (two) is measured with the cores to itself.
   */
  logShardsDefault: 1,
  /**
   * Longest a restarted store answers 503 on /ready while the replicas it started with catch
   * up with their leaders (catch-up.ts); then it is ready whatever is left behind.
   */
  readyCatchUpWaitMaxMs: 10 * 60_000,
  /**
   * A replica that knows no leader this long after the start is not waited for (its region
   * lost its quorum, or the replica was removed while the store was down): 15 to 30 election
   * timeouts, while a live group has a leader within a few.
   */
  readyLeaderlessMaxMs: 30_000,
  /** How long one catch-up round of a restarted replica may wait before it is tried again. */
  readyCatchUpRoundMs: 10_000,
  /** Proposals waiting for their entry to apply, per region; past it: ServerBusy. */
  pendingProposalsPerRegionMax: 4096,
  /** Reads waiting for their ReadIndex, per region; past it: ServerBusy. */
  pendingReadsPerRegionMax: 4096,
  /**
   * Largest `maxStalenessMs` of a stale read: the wire's own bound, so that every request the
   * codec accepts is valid here too (a larger one is refused before any operation runs).
   */
  staleReadBoundMsMax: wire.kvStalenessMsMax,
  /**
   * A replica that serves a stale read locally starts a background ReadIndex round once its
   * safe time is older than this fraction of the read's bound, so that steady read traffic
   * keeps the safe time fresh and never waits for a round trip.
   */
  staleReadRefreshFraction: 0.5,
  /**
   * A ReadIndex round not answered within this long (with the same leader and term) is
   * presumed lost — a leader drops requests it can't queue, and the network may drop the
   * forwarded request — and is sent again. A leader change resends at once.
   */
  readIndexRetryMs: 2_000,
  /** Write commands in one proposed entry. */
  commandsPerEntryMax: 1024,
  /**
   * Bytes of one proposed entry (the log engine and the wire refuse entries over 8 MiB). A
   * request's writes to one region are split into entries under it; one write larger than
   * it alone is refused with REQUEST_TOO_LARGE — it never reaches the log.
   */
  entryBytesMax: storageLimits.entryDataBytesMax,
  /** Requests worked on at once by the store; past it: ServerBusy. */
  requestsInFlightMax: 65_536,
  /** Retry-after hint when the store has too many requests in flight. */
  serverBusyRetryAfterMs: 10,
  /** Default and maximum time a request may take. */
  requestTimeoutMsDefault: 10_000,
  requestTimeoutMsMax: 600_000,
  /** Regions (peers) one store hosts at most. */
  peersMax: 100_000,
  /** Founding regions created by one bootstrap call (one log write, one KV batch). */
  bootstrapRegionsMax: 10_000,
  /** Applied entries a region's log may hold before it is compacted. */
  compactAfterEntries: 10_000,
  /** Entries kept below the applied index on compaction (followers just behind need them). */
  compactKeepEntries: 1_000,
  /** How often the store reads its data disk's free space (disk-guard.ts: one statfs). */
  diskCheckMs: 1_000,
  /** The KV engine is synced (to let compaction advance) at most this often. */
  kvSyncIntervalMs: 1_000,
  /** How often a graceful shutdown re-checks the leaderships it is moving away. */
  leaderTransferPollMs: 20,
  /** A failed snapshot to a peer is reported to the core after a backoff from this base... */
  snapshotRetryBaseMs: 200,
  /** ...doubling per consecutive failure up to this cap (snapshots.ts, SnapshotRetryBackoff). */
  snapshotRetryMaxMs: 10_000,
  /** Peers whose snapshot failures are counted at once (the oldest is forgotten past it). */
  snapshotRetriesTrackedMax: 4_096,
  /** Tombstones remembered (peers removed from this store) to ignore their stale messages. */
  tombstonesMax: 100_000,
  /** Every this many ticks, the frozen merge sources led here move their merges on (merge-driver.ts). */
  mergeDriveTicks: 5,
  /**
   * The ticker visits only groups not known to hibernate; every this many ticks it visits all
   * of them once, a safety net for a group woken by a path that did not mark it dirty (awake-groups.ts).
   */
  tickSweepTicks: 10,
  /** Merge sources driven at once (each holds a proposal in flight). */
  mergesInFlightMax: 64,
  /**
   * A frozen merge source whose commit waits this long for a replica to hold the prepare
   * entry is rolled back (its target fenced first): a dead store must not freeze a range.
   */
  mergeCommitWaitMs: 30_000,
  /** Retry-after hint for requests to a region frozen by a merge (it ends within a few ticks). */
  mergingRetryAfterMs: 50,
});

if (2 * limits.heartbeatTicks >= limits.electionTicks) throw new Error('store limits: 2 * heartbeatTicks must be < electionTicks, or the raft core stops skipping the heartbeats of followers just sent an append (raft-replication.ts), the setting the 300 ms round was measured with');
if (limits.requestTimeoutMsDefault > limits.requestTimeoutMsMax) throw new Error('store limits: default timeout above maximum');
if (limits.compactKeepEntries >= limits.compactAfterEntries) throw new Error('store limits: compaction must keep fewer entries than it waits for');
if (limits.pendingProposalsPerRegionMax > limits.requestsInFlightMax) throw new Error('store limits: per-region proposals above the store total');
if (limits.staleReadRefreshFraction <= 0 || limits.staleReadRefreshFraction > 1) throw new Error('store limits: staleReadRefreshFraction must be in (0, 1]');
if (limits.entryBytesMax > storageLimits.entryDataBytesMax) throw new Error('store limits: an entry above the log engine\'s entryDataBytesMax');
if (!(limits.logShardsDefault >= 1 && limits.logShardsDefault <= storageLimits.appenderShardsMax)) throw new Error('store limits: logShardsDefault outside the log engine\'s 1..appenderShardsMax');

/**
 * glibc malloc settings every store process must start with (they are read from the environment
 * when the process starts, so whoever launches a store sets them: the container image, the
 * Kubernetes manifests, `flotilla dev`, the test and benchmark harnesses).
 *
 * Measured with benchmarks/cluster/idle-memory.ts (10,000 idle regions per store, after a full
 * GC): with glibc's defaults a store kept 73-80 MiB in 16 arenas, 44-50 MiB of it FREE chunks
 * (malloc_trim(0) then gave 16-20 MiB of RSS back). Once a large mmapped chunk is freed, glibc
 * raises its dynamic mmap threshold (up to 32 MiB): the election storm's later large transient
 * allocations are then carved out of the arenas, and their space stays resident after free()
 * behind long-lived allocations made in between; and 8 arenas per core each keep leftovers.
 * With a fixed threshold of 128 KiB (setting it also turns off the dynamic trim threshold) and
 * 2 arenas, the same store kept 21-27 MiB of arenas (5-11 MiB free) plus 15-20 MiB of live
 * mmapped blocks: ~35 MiB, 3.5 KB per idle region, less (benchmarks/RESULTS.md, idle section).
 * - 128 KiB, not less: libuv reads sockets into 64 KiB buffers, which must stay in the arenas
 *   (64 KiB measured the same here).
 * - 2 arenas: MALLOC_ARENA_MAX=2 alone did not help (26-33 MiB of free chunks stayed); the two
 *   together were measured, the threshold alone was not.
 * - The price on the write path (benchmarks/cluster/write.ts, alternating runs): ~10-13% more
 *   store CPU per put at 256 active regions, within the noise at 1, 16 and 4,096 (an mmap/munmap
 *   pair per allocation of 128 KiB or more).
 */
export const MALLOC_MMAP_THRESHOLD_BYTES = 128 * 1024;
export const MALLOC_ARENAS_MAX = 2;
export const storeMallocEnv: Readonly<Record<string, string>> = Object.freeze({
  MALLOC_ARENA_MAX: String(MALLOC_ARENAS_MAX),
  MALLOC_MMAP_THRESHOLD_: String(MALLOC_MMAP_THRESHOLD_BYTES),
});
