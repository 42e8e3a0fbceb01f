/**
 * The KV state machine's public contract, shared by the RocksDB engine and its in-memory twin.
 *
 * User data of all regions lives in ONE keyspace (a split changes metadata only). Committed
 * entries of many regions are applied in one batch: every region's commands plus its new
 * applied index (and any region metadata they change) become one atomic write.
 */

/**
 * The region's shape is shared with the wire protocol (clients receive it in EpochNotMatch):
 * one definition, in @flotilla/wire. A region is [startKey, endKey) (an empty endKey means
 * unbounded); `epoch.version` moves on split/merge, `epoch.confVer` on membership changes.
 */
import type { ConfState } from '@flotilla/raft';
import type { RegionEpoch, RegionMeta } from '@flotilla/wire';
export type { PeerRole, RegionEpoch, RegionMeta, RegionPeer } from '@flotilla/wire';

export type RegionStatus = 'normal' | 'applyingSnapshot' | 'tombstone';

/**
 * A region that prepared to merge into its neighbour (TiKV's PrepareMerge): from its prepare
 * entry on it applies no write, no split and no membership change, and serves no read, until
 * the target absorbs it (the region ends as a tombstone whose data the target owns) or it
 * rolls back. Persisted with the region record and carried in snapshots, so a restarted or
 * newly caught-up replica is frozen too.
 */
export interface MergeState {
  readonly targetRegionId: number;
  /** The target's epoch when the merge was prepared: the target takes the source only at it. */
  readonly targetEpoch: RegionEpoch;
  /** Index and term of the prepare entry in the source's log. */
  readonly prepareIndex: number;
  readonly prepareTerm: number;
}

export interface RegionState {
  readonly region: RegionMeta;
  /**
   * The region's raft configuration (voters, learners, joint halves, autoLeave) as of
   * `appliedIndex`: written in the same batch as the applied index it is valid at, so a replica
   * that restarts from the applied index starts its raft group with exactly this configuration
   * and re-applies only the conf changes after it (TiKV keeps it in its region local state too).
   */
  readonly confState: ConfState;
  readonly appliedIndex: number;
  readonly appliedTerm: number;
  readonly status: RegionStatus;
  /** Set while the region is frozen for a merge (see MergeState). */
  readonly merging?: MergeState;
}

export type KvCommand =
  | { readonly op: 'put'; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly op: 'delete'; readonly key: Uint8Array }
  /** Writes `value` (null: deletes) when the current value equals `expected` (null: absent). */
  | { readonly op: 'cas'; readonly key: Uint8Array; readonly expected: Uint8Array | null; readonly value: Uint8Array | null }
  /** Deletes [start, end) (empty end: to the region's end), clipped to the region. */
  | { readonly op: 'deleteRange'; readonly start: Uint8Array; readonly end: Uint8Array }
  /**
   * Admin: creates or updates a region's metadata and raft configuration (split: the parent's
   * new range plus the new region; a conf change: the new peers and configuration). The
   * configuration is the one valid once this command's entry is applied. A created region
   * starts at `appliedIndex` (default 0); for an existing one it is ignored.
   */
  | {
      readonly op: 'putRegion';
      readonly region: RegionMeta;
      readonly confState: ConfState;
      readonly appliedIndex?: number;
      readonly appliedTerm?: number;
      /** The region's merge state from this entry on; absent: none (a rollback clears it). */
      readonly merging?: MergeState;
    }
  /** Admin: marks a region removed from this store (its data stays for whoever owns the range now). */
  | { readonly op: 'tombstoneRegion'; readonly regionId: number }
  /** An entry with no effect on data (empty entry, a conf change applied elsewhere). */
  | { readonly op: 'noop' };

/** Deterministic per-command failures: every replica computes the same one. */
export type CommandError = 'keyNotInRegion' | 'limitExceeded' | 'epochNotMatch';

export type CommandResult =
  | { readonly op: 'put' | 'delete' | 'noop' | 'putRegion' | 'tombstoneRegion'; readonly error?: CommandError }
  | { readonly op: 'cas'; readonly succeeded: boolean; readonly previous: Uint8Array | null; readonly error?: CommandError }
  | { readonly op: 'deleteRange'; readonly deleted: number; readonly error?: CommandError };

/** The committed commands of one region, covering entries up to `appliedIndex`. */
export interface RegionApply {
  readonly regionId: number;
  readonly appliedIndex: number;
  readonly appliedTerm: number;
  readonly commands: readonly KvCommand[];
}

export interface ApplyResult {
  readonly regionId: number;
  readonly results: readonly CommandResult[];
}

export interface KvPair {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

export interface ScanOptions {
  /** Inclusive lower bound (empty: unbounded). */
  readonly start: Uint8Array;
  /** Exclusive upper bound (empty: unbounded). */
  readonly end: Uint8Array;
  /** Rows returned at most (<= kvScanRowsMax). */
  readonly limit: number;
  readonly reverse?: boolean;
  /** Key + value bytes returned at most (<= kvScanBytesMax); at least one row always. */
  readonly bytesMax?: number;
}

export interface ScanResult {
  readonly pairs: KvPair[];
  /** True when the range has more rows than returned (continue after the last key). */
  readonly more: boolean;
}

/**
 * A region snapshot being generated: metadata known up front, data streamed as checked frames.
 * It holds a point-in-time view of the engine (a RocksDB iterator pins every version it sees)
 * until its frames were iterated to the end or close() was called: whoever opens one closes it,
 * also when the frames were never read (a send refused before its first byte).
 */
export interface RegionSnapshotSource {
  readonly state: RegionState;
  /** Frames (header, data chunks, trailer), each bounded and checksummed; iterate once. */
  frames(): AsyncIterable<Uint8Array>;
  /** Releases the view; idempotent, and harmless after the frames ran to the end. */
  close(): Promise<void>;
}

/**
 * The owner's verdict on a received snapshot, asked with its region state right before the
 * first change: a refusal (FLOTILLA_STORAGE_SNAPSHOT_REFUSED, nothing changed), or the regions
 * it supersedes — tombstoned in the SAME synced write that commits the install, so no restart
 * finds both the snapshot's region and a region it absorbed (a merge's source) alive.
 */
export type SnapshotAdmission = (incoming: RegionState) => { readonly refusal: string } | { readonly tombstones: readonly number[] };

export interface KvEngine {
  /** Applies the committed commands of many regions as one atomic batch. */
  apply(batch: readonly RegionApply[]): Promise<ApplyResult[]>;
  get(key: Uint8Array): Promise<Uint8Array | null>;
  getMany(keys: readonly Uint8Array[]): Promise<Array<Uint8Array | null>>;
  scan(options: ScanOptions): Promise<ScanResult>;
  region(regionId: number): RegionState | null;
  regions(): RegionState[];
  /** Applied index whose batch is known durable (see README: the two engines after a crash). */
  durableAppliedIndex(regionId: number): number;
  /** Makes everything applied so far durable (one synced write); advances durableAppliedIndex. */
  sync(): Promise<void>;
  /** Point-in-time snapshot of a region (its data, metadata and applied index). */
  snapshot(regionId: number): RegionSnapshotSource;
  /**
   * Replaces the region's range with a received snapshot; crash-safe (redone on restart).
   * `admit` (see SnapshotAdmission) decides, once the snapshot's region is known and before
   * anything changes, whether it may land and which regions it ends.
   */
  applySnapshot(regionId: number, frames: AsyncIterable<Uint8Array>, admit?: SnapshotAdmission): Promise<RegionState>;
  close(): Promise<void>;
}

