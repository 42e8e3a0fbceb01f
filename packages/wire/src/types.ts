/**
 * The messages of Flotilla's two protocols, as the code sees them (plain readonly objects).
 * The encoded shapes (msgpack tuples) are in README.md; the codecs are in *-codec.ts.
 */
import type { Message } from '@flotilla/raft';

/** A region's epoch: `version` moves on split/merge, `confVer` on membership changes. */
export interface RegionEpoch {
  readonly version: number;
  readonly confVer: number;
}

// ---- Store ↔ store: raft traffic ---------------------------------------------------------------

/** One raft message of one group, addressed within the store pair of its batch. */
export interface RaftEnvelope {
  readonly regionId: number;
  /** Equal to `message.from`. */
  readonly fromPeer: number;
  /** Equal to `message.to`. */
  readonly toPeer: number;
  /** The sender's epoch of the region, when it knows one (lets the receiver drop stale traffic). */
  readonly regionEpoch?: RegionEpoch;
  /**
   * Present exactly on 'snapshot' messages: names the stream of SnapshotChunk frames that
   * carries the image. The message itself carries only metadata and a small descriptor.
   */
  readonly snapshotId?: number;
  readonly message: Message;
}

/** Every message one store sends another in one event-loop turn, of any number of groups. */
export interface RaftBatch {
  readonly fromStore: number;
  readonly toStore: number;
  readonly messages: readonly RaftEnvelope[];
}

// ---- Store ↔ store: coalesced heartbeats --------------------------------------------------------

/** A raft 'heartbeat' message, compact (CockroachDB's coalesced heartbeats). */
export interface Heartbeat {
  readonly regionId: number;
  readonly fromPeer: number;
  readonly toPeer: number;
  readonly term: number;
  readonly commit: number;
  readonly leaderTick: number;
  /** The ReadIndex context; absent when empty. */
  readonly context?: Uint8Array;
}

/** A raft 'heartbeatResponse' message, compact. */
export interface HeartbeatResponse {
  readonly regionId: number;
  readonly fromPeer: number;
  readonly toPeer: number;
  readonly term: number;
  readonly leaderTick: number;
  /** The echoed ReadIndex context; absent when empty. */
  readonly context?: Uint8Array;
}

/** The heartbeats of every group led from `fromStore` with a follower on `toStore`, one tick. */
export interface HeartbeatBatch {
  readonly fromStore: number;
  readonly toStore: number;
  readonly beats: readonly Heartbeat[];
}

export interface HeartbeatResponseBatch {
  readonly fromStore: number;
  readonly toStore: number;
  readonly beats: readonly HeartbeatResponse[];
}

// ---- Store ↔ store: the sender's disk ----------------------------------------------------------------

/**
 * The sending store's data disk, store-wide (TiKV puts the same in every raft message): sent on
 * the raft stream when it changes, and again on every new connection once it has been sent. A
 * leader whose region has too few voters on stores that take entries fails the region's writes
 * at once (FLOTILLA_DISK_FULL) instead of letting them wait out their timeout.
 */
export interface DiskState {
  readonly fromStore: number;
  readonly toStore: number;
  /** The store is critically short of space: it drops raft appends that carry entries, and snapshots. */
  readonly refusesReplication: boolean;
  /** Its last reading of the bytes still available to it. */
  readonly availableBytes: number;
  /** Its reserve (`--disk-reserve-bytes`). */
  readonly reserveBytes: number;
}

// ---- Store ↔ store: snapshot streams ---------------------------------------------------------------

/** One piece of a region snapshot's image, on the snapshot stream (never on the raft stream). */
export interface SnapshotChunk {
  readonly regionId: number;
  readonly snapshotId: number;
  /** 0, 1, 2, … within the snapshot. */
  readonly seq: number;
  /** True on the final chunk. */
  readonly last: boolean;
  readonly data: Uint8Array;
  /** crc32c(data), computed where the chunk was read; decoders verify it. */
  readonly checksum: number;
}

/**
 * The receiver's answer on a snapshot stream: 'received' acknowledges chunks up to `seq` (flow
 * control), 'applied' reports the snapshot installed, 'rejected' that it was refused (the sender
 * reports the failure to its raft group, which retries later).
 */
export type SnapshotAckStatus = 'received' | 'applied' | 'rejected';

export interface SnapshotAck {
  readonly regionId: number;
  readonly snapshotId: number;
  readonly seq: number;
  readonly status: SnapshotAckStatus;
}

// ---- Client ↔ store ------------------------------------------------------------------------------------

/**
 * How a read is served. 'linearizable': by ReadIndex or the leader's lease (the store's choice).
 * 'stale': by any replica whose data is at most `maxStalenessMs` old.
 */
export type ReadConsistency =
  | { readonly level: 'linearizable' }
  | { readonly level: 'stale'; readonly maxStalenessMs: number };

interface OpBase {
  readonly regionId: number;
  /** The epoch the client believes in; a store with another answers EpochNotMatch. */
  readonly regionEpoch: RegionEpoch;
}

export type KvOp =
  | (OpBase & { readonly op: 'get'; readonly key: Uint8Array; readonly consistency: ReadConsistency })
  | (OpBase & { readonly op: 'put'; readonly key: Uint8Array; readonly value: Uint8Array })
  | (OpBase & { readonly op: 'delete'; readonly key: Uint8Array })
  /** Writes `value` (null: deletes) when the current value equals `expected` (null: absent). */
  | (OpBase & { readonly op: 'cas'; readonly key: Uint8Array; readonly expected: Uint8Array | null; readonly value: Uint8Array | null })
  /** Deletes [start, end) clipped to the region (empty end: to the region's end). */
  | (OpBase & { readonly op: 'deleteRange'; readonly start: Uint8Array; readonly end: Uint8Array })
  /** At most `limit` rows of [start, end) clipped to the region (empty end: to its end). */
  | (OpBase & {
      readonly op: 'scan';
      readonly start: Uint8Array;
      readonly end: Uint8Array;
      readonly limit: number;
      readonly reverse: boolean;
      readonly consistency: ReadConsistency;
    });

export type KvOpName = KvOp['op'];

/** A batch of operations of any regions; answered by one KvResponse with one result per op. */
export interface KvRequest {
  /** Chosen by the client; echoed by the response (pipelined connections). */
  readonly requestId: number;
  /** How long the store may work on it; 0 or absent: the store's default. */
  readonly timeoutMs?: number;
  readonly ops: readonly KvOp[];
}

export type PeerRole = 'voter' | 'learner';

export interface RegionPeer {
  readonly id: number;
  readonly storeId: number;
  readonly role: PeerRole;
}

/** A region as a client needs it: [startKey, endKey) (empty endKey: unbounded), epoch, peers. */
export interface RegionMeta {
  readonly id: number;
  readonly startKey: Uint8Array;
  readonly endKey: Uint8Array;
  readonly epoch: RegionEpoch;
  readonly peers: readonly RegionPeer[];
}

/** The stable codes of the errors a store answers clients with. */
export type KvErrorCode =
  | 'FLOTILLA_NOT_LEADER'
  | 'FLOTILLA_EPOCH_NOT_MATCH'
  | 'FLOTILLA_REGION_NOT_FOUND'
  | 'FLOTILLA_KEY_NOT_IN_REGION'
  | 'FLOTILLA_SERVER_BUSY'
  | 'FLOTILLA_REQUEST_TOO_LARGE'
  | 'FLOTILLA_TIMEOUT'
  | 'FLOTILLA_DISK_FULL';

export type KvError =
  /** This peer does not lead the region; `leader` is the one it knows of, if any. */
  | { readonly code: 'FLOTILLA_NOT_LEADER'; readonly regionId: number; readonly leader: { readonly peerId: number; readonly storeId: number } | null }
  /** The request's epoch is not the region's: refresh the cache from `currentRegions`. */
  | { readonly code: 'FLOTILLA_EPOCH_NOT_MATCH'; readonly regionId: number; readonly currentRegions: readonly RegionMeta[] }
  | { readonly code: 'FLOTILLA_REGION_NOT_FOUND'; readonly regionId: number }
  | { readonly code: 'FLOTILLA_KEY_NOT_IN_REGION'; readonly regionId: number; readonly key: Uint8Array; readonly startKey: Uint8Array; readonly endKey: Uint8Array }
  /** Backpressure: retry after the hint (0: no hint). */
  | { readonly code: 'FLOTILLA_SERVER_BUSY'; readonly retryAfterMs: number }
  /** The request exceeds the store's bounds; split it below them. */
  | { readonly code: 'FLOTILLA_REQUEST_TOO_LARGE'; readonly requestBytesMax: number; readonly opsMax: number }
  /** Not finished within the request's timeout: a write's outcome is UNKNOWN (it may still commit). */
  | { readonly code: 'FLOTILLA_TIMEOUT' }
  /**
   * The leader's store has less free disk than its reserve (`--disk-reserve-bytes`): it refuses
   * writes that add data (put, cas) until space is freed; reads, deletes and delete-ranges go on.
   * Or too few of the region's voters are on stores that take replicated entries (the others are
   * critically short of space): every write of the region is refused, and `storeId` names one of
   * those stores. Nothing was written.
   */
  | { readonly code: 'FLOTILLA_DISK_FULL'; readonly storeId: number; readonly availableBytes: number; readonly reserveBytes: number };

export interface KvPair {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

export type KvOpResult =
  | { readonly op: 'get'; readonly value: Uint8Array | null }
  | { readonly op: 'put' }
  | { readonly op: 'delete' }
  | { readonly op: 'cas'; readonly succeeded: boolean; readonly previous: Uint8Array | null }
  | { readonly op: 'deleteRange'; readonly deleted: number }
  /** `more`: the range has rows past the last one returned (continue after its key). */
  | { readonly op: 'scan'; readonly pairs: readonly KvPair[]; readonly more: boolean }
  | { readonly op: 'error'; readonly error: KvError };

export type KvResponse =
  /** One result per operation of the request, in its order. */
  | { readonly requestId: number; readonly results: readonly KvOpResult[] }
  /** The whole request was refused (ServerBusy, RequestTooLarge, …); no operation ran. */
  | { readonly requestId: number; readonly error: KvError };
