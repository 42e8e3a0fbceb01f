import type { RaftStatus } from '@flotilla/raft';
import type { KvEngine, LogEngine, RegionMeta } from '@flotilla/storage';
import type { PeerTransport, StoreId } from '@flotilla/transport';

/** What a MultiRaftHost is given, and what it reports (host.ts). */

export interface HostOptions {
  readonly storeId: StoreId;
  readonly log: LogEngine;
  readonly kv: KvEngine;
  readonly transport: PeerTransport;
  /** Seed of the raft nodes' election jitter (tests pass a fixed one). */
  readonly seed?: number;
  readonly tickMs?: number;
  readonly hibernateAfterTicks?: number;
  /**
   * Leaders serve linearizable reads from their read lease, without a heartbeat round
   * (read-lease.ts); default true. Off, or with ticks too short for it, every linearizable read
   * takes a ReadIndex round. All stores of a cluster must run the same tickMs.
   */
  readonly readLease?: boolean;
  /** Applied entries a region's log holds before compaction (limits.compactAfterEntries). */
  readonly compactAfterEntries?: number;
  /** Longest /ready waits for the replicas of the start to catch up (limits.readyCatchUpWaitMaxMs; 0: not at all). */
  readonly readyCatchUpWaitMaxMs?: number;
  /** How long a merge's commit may wait for a source replica before it is rolled back (limits.mergeCommitWaitMs). */
  readonly mergeCommitWaitMs?: number;
  /**
   * Called once if the host stops on a failure (a failed log write, a broken invariant), after
   * it closed itself. A store process logs it and exits: a store must fail-stop, not limp on.
   */
  readonly onFailure?: (err: unknown) => void;
  /** Commands in one KV apply batch; at most (and by default) the engine's kvApplyCommandsMax. Tests lower it. */
  readonly applyBatchCommandsMax?: number;
  /**
   * True while the data disk is critically short of space (disk-guard.ts): raft appends that
   * carry entries and snapshots from other stores are then dropped and refused, so this store's
   * replicas fall behind instead of its disk filling up (Raft retransmits once this is false).
   * Asked once per inbound frame. Without it, nothing is ever refused.
   */
  readonly refusesReplication?: () => boolean;
  /** Where the host reports what operators care about (regions created, moved, split, snapshots). */
  readonly events?: HostEventLog;
  /** Timings of the ready loop, for metrics (metrics.ts wires them to histograms). */
  readonly observer?: HostObserver;
}

/** What the host measures as it works; each call is cheap (once per cycle, or per proposal). */
export interface HostObserver {
  /** One log-engine write (a cycle's entries and hard states: one fsync), in seconds. */
  logWrite(seconds: number): void;
  /** One KV apply batch, in seconds. */
  apply(seconds: number): void;
  /** A ready cycle with work: how many groups it carried. */
  cycle(groups: number): void;
  /** A proposal made here applied: from proposing to applied, in seconds. */
  proposalApplied(seconds: number): void;
}

/** The store's replicas by raft role and state, counted at scrape time. */
export interface ReplicaCounts {
  readonly leaders: number;
  readonly hibernating: number;
  /** Replicas that know no leader of their region (an election, or a region that lost its quorum). */
  readonly withoutLeader: number;
  /** Merge sources frozen here. */
  readonly merging: number;
}

/** The structured log the host writes to (a pino logger fits); fields first, message second. */
export interface HostEventLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

export const SILENT_EVENTS: HostEventLog = { info: () => {}, warn: () => {} };

/** One replica as an operator sees it (the admin API's region status). */
export interface ReplicaStatus {
  readonly region: RegionMeta;
  readonly peerId: number;
  /** Created by a leader's first message: its metadata is a guess until a snapshot arrives. */
  readonly placeholder: boolean;
  /** Highest index applied to the KV engine. */
  readonly applied: number;
  readonly raft: RaftStatus;
}

/** Counters for tests and metrics. */
export interface HostStats {
  readonly peers: number;
  /** Ticker rounds. */
  readonly ticks: number;
  /** Groups ticked, summed over the rounds: a round visits the awake ones (all of them every tickSweepTicks). */
  readonly groupTicks: number;
  readonly readyCycles: number;
  readonly logWrites: number;
  /** fsyncs of the raft log engine (group commit: one covers log writes of several cycles and shards' batches). */
  readonly logSyncs: number;
  readonly applyBatches: number;
  readonly messagesSent: number;
  readonly messagesDropped: number;
  readonly snapshotsSent: number;
  readonly snapshotsReceived: number;
  /** Appends with entries dropped, and snapshots refused, while the disk was critically short (refusesReplication). */
  readonly replicationRefusedForDisk: number;
  /** Appends with entries, and snapshots, not sent to peer stores that said their disk is critically short. */
  readonly replicationWithheldForDisk: number;
  readonly compactions: number;
  /** Times the ticks fell behind real time and every read lease here was voided (read-lease.ts). */
  readonly readLeaseStalls: number;
}
