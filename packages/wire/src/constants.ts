/**
 * Every bound of @flotilla/wire, in one place (TigerBeetle style). Units and qualifiers last.
 * A decoder refuses anything past a bound with a typed error; an encoder refuses to produce it.
 * The checks at the bottom run at load time and state how the bounds relate.
 */
import { ENTRY_OVERHEAD_BYTES, LIMITS } from '@flotilla/raft';

// ---- Frame format ----------------------------------------------------------------------------
/** The one version of the frame and payload format this code reads and writes. */
export const WIRE_VERSION = 1;
/** u32 payload length ‖ u8 version ‖ u8 kind ‖ u32 crc32c(version ‖ kind ‖ payload). */
export const FRAME_HEADER_BYTES = 10;
/** Absolute bound on one frame's payload, whatever its kind (the u32 length allows more). */
export const framePayloadBytesMax = 64 * 1024 * 1024;
/** Arrays nested in one payload (the deepest message, an EpochNotMatch with peers, needs 8). */
export const payloadNestingDepthMax = 8;

// ---- Decoded bytes ---------------------------------------------------------------------------------
/**
 * Decoded bins are copied out of the payload (a kept view would pin the whole frame). Copies of
 * at most `decodeSlabItemBytesMax` bytes are carved from shared slabs of `decodeSlabBytes` (one
 * typed-array allocation costs ~0.6 us, a slab slice ~0.1 us; Node's Buffer pool does the same):
 * a kept small bin pins at most one slab. Larger bins get their own buffer.
 */
export const decodeSlabBytes = 16 * 1024;
export const decodeSlabItemBytesMax = 1024;

// ---- msgpack encoding sizes (upper bounds of one encoded item) ----------------------------------
/** A non-negative safe integer: uint64/float64 marker + 8 bytes. */
export const MSGPACK_UINT_BYTES_MAX = 9;
/** Header of a bin or array: marker + u32 length. */
export const MSGPACK_HEADER_BYTES_MAX = 5;

// ---- Raft traffic (store ↔ store) ------------------------------------------------------------------
/** Messages (of any groups) in one RaftBatch frame; the sender splits larger turns into frames. */
export const raftBatchMessagesMax = 16 * 1024;
/** Entries in one raft message (the core's default append fits: see the checks below). */
export const raftMessageEntriesMax = 64 * 1024;
/** Payload of one entry (equal to @flotilla/storage's entryDataBytesMax). */
export const entryDataBytesMax = 8 * 1024 * 1024;
/** Context of a message (ReadIndex request ids echoed by heartbeats). */
export const raftContextBytesMax = 256;
/**
 * `Snapshot.data` carried inline in a snapshot message: the host's descriptor of the snapshot
 * (region metadata, ids), never the state machine image, which streams as SnapshotChunk frames.
 */
export const snapshotDescriptorBytesMax = 64 * 1024;
/** Ids in each list of a ConfState (voters, outgoing voters, learners, next learners). */
export const confStateIdsMax = 256;
/** Payload of one RaftBatch frame. */
export const raftBatchPayloadBytesMax = 16 * 1024 * 1024;

// ---- Coalesced heartbeats (store ↔ store) ---------------------------------------------------------
/** Beats in one HeartbeatBatch or HeartbeatResponseBatch frame. */
export const heartbeatBatchBeatsMax = 16 * 1024;
/** Payload of one heartbeat (response) batch frame. */
export const heartbeatBatchPayloadBytesMax = 8 * 1024 * 1024;
/** Payload of one DiskState frame (five small fields). */
export const diskStatePayloadBytesMax = 64;

// ---- Snapshot streams -----------------------------------------------------------------------------
/**
 * Data of one SnapshotChunk. One chunk carries one frame of @flotilla/storage's region snapshot
 * stream, so this must stay >= storage's snapshotFrameBytesMax (~9.1 MiB; the store checks it).
 */
export const snapshotChunkDataBytesMax = 16 * 1024 * 1024;
/** Payload of one SnapshotChunk frame: the data plus its small header. */
export const snapshotChunkPayloadBytesMax = snapshotChunkDataBytesMax + 1024;
/** Payload of one SnapshotAck frame. */
export const snapshotAckPayloadBytesMax = 256;

// ---- Client ↔ store -----------------------------------------------------------------------------------
/** Key of one operation (equal to @flotilla/storage's kvKeyBytesMax). */
export const kvKeyBytesMax = 8 * 1024;
/** Value of one operation (equal to @flotilla/storage's kvValueBytesMax). */
export const kvValueBytesMax = 8 * 1024 * 1024;
/** Operations (of any regions) in one KvRequest; each names at most two keys. */
export const kvRequestOpsMax = 16 * 1024;
/** Rows one scan operation may ask for (equal to @flotilla/storage's kvScanRowsMax). */
export const kvScanRowsMax = 64 * 1024;
/** Payload of one KvRequest (an HTTP body or a frame). */
export const kvRequestPayloadBytesMax = 32 * 1024 * 1024;
/** Payload of one KvResponse; the store bounds what it reads so that an answer fits. */
export const kvResponsePayloadBytesMax = 64 * 1024 * 1024;
/** Peers in one region's metadata (equal to @flotilla/storage's regionPeersMax). */
export const regionPeersMax = 64;
/** Regions an EpochNotMatch error may list (the region and what it was split into). */
export const epochNotMatchRegionsMax = 256;
/** A request's timeout (0: the store's default). */
export const kvTimeoutMsMax = 10 * 60 * 1000;
/** The staleness bound of a stale read. */
export const kvStalenessMsMax = 24 * 60 * 60 * 1000;
/** A ServerBusy answer's retry-after hint. */
export const kvRetryAfterMsMax = 60 * 60 * 1000;

// ---- Derived encoded sizes (used by the checks and by senders that pack frames) ---------------------
/** Encoded bytes of an entry tuple [index, term, type, data] beyond its data. */
export const ENTRY_ENCODED_OVERHEAD_BYTES_MAX = 1 + 2 * MSGPACK_UINT_BYTES_MAX + 1 + MSGPACK_HEADER_BYTES_MAX;
/**
 * Encoded bytes of one RaftBatch message beyond its entries (each counted as data +
 * ENTRY_ENCODED_OVERHEAD_BYTES_MAX), its context bytes, its snapshot descriptor bytes and its
 * conf state ids (MSGPACK_UINT_BYTES_MAX each). See raftEnvelopeBytesBound.
 */
export const RAFT_MESSAGE_ENCODED_FIXED_BYTES_MAX =
  MSGPACK_HEADER_BYTES_MAX + // the envelope tuple
  3 * MSGPACK_UINT_BYTES_MAX + // regionId, fromPeer, toPeer
  (MSGPACK_HEADER_BYTES_MAX + 2 * MSGPACK_UINT_BYTES_MAX) + // epoch
  5 * MSGPACK_UINT_BYTES_MAX + // type, term, logTerm, index, commit
  1 + // reject
  2 * MSGPACK_UINT_BYTES_MAX + // rejectHint, leaderTick
  2 * MSGPACK_HEADER_BYTES_MAX + // context, entries
  (MSGPACK_HEADER_BYTES_MAX + 3 * MSGPACK_UINT_BYTES_MAX + 6 * MSGPACK_HEADER_BYTES_MAX + 1); // snapshot: index, term, snapshotId, confState (+4 lists, autoLeave), descriptor
/** Encoded bytes of a RaftBatch beyond its messages: array headers and the two store ids. */
export const RAFT_BATCH_ENCODED_FIXED_BYTES_MAX = 2 * MSGPACK_HEADER_BYTES_MAX + 2 * MSGPACK_UINT_BYTES_MAX;
/** Encoded bytes of one beat [regionId, fromPeer, toPeer, term, commit, leaderTick, context]. */
export const HEARTBEAT_ENCODED_BYTES_MAX = 1 + 6 * MSGPACK_UINT_BYTES_MAX + MSGPACK_HEADER_BYTES_MAX + raftContextBytesMax;

// ---- Load-time checks of how the bounds relate -----------------------------------------------------------
function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`wire constants: ${what}`);
}
const u32Max = 0xffff_ffff;
check(WIRE_VERSION >= 1 && WIRE_VERSION <= 0xff, 'the version fits its byte');
check(framePayloadBytesMax <= u32Max, 'the payload bound fits the u32 length prefix');
check(framePayloadBytesMax <= 1024 * 1024 * 1024, 'one payload stays far below the largest Node buffer');
for (const [name, bound] of [
  ['raftBatchPayloadBytesMax', raftBatchPayloadBytesMax],
  ['heartbeatBatchPayloadBytesMax', heartbeatBatchPayloadBytesMax],
  ['diskStatePayloadBytesMax', diskStatePayloadBytesMax],
  ['snapshotChunkPayloadBytesMax', snapshotChunkPayloadBytesMax],
  ['snapshotAckPayloadBytesMax', snapshotAckPayloadBytesMax],
  ['kvRequestPayloadBytesMax', kvRequestPayloadBytesMax],
  ['kvResponsePayloadBytesMax', kvResponsePayloadBytesMax],
] as const) {
  check(bound > 0 && bound <= framePayloadBytesMax, `${name} within (0, framePayloadBytesMax]`);
}
check(decodeSlabItemBytesMax * 8 <= decodeSlabBytes, 'a slab holds at least 8 pooled copies');
check(payloadNestingDepthMax >= 8, 'the deepest message (KvResponse > error > regions > peers) nests 8 arrays');
// Raft: whatever a default-configured core sends as one message fits one frame.
check(raftMessageEntriesMax >= LIMITS.appendBytesMax / ENTRY_OVERHEAD_BYTES, "the core's default append (appendBytesMax of empty entries) fits the entry count");
const raftMessageWithEntriesBytesMax = (dataBytes: number, entries: number): number =>
  RAFT_BATCH_ENCODED_FIXED_BYTES_MAX + RAFT_MESSAGE_ENCODED_FIXED_BYTES_MAX + MSGPACK_HEADER_BYTES_MAX + raftContextBytesMax + dataBytes + entries * ENTRY_ENCODED_OVERHEAD_BYTES_MAX;
check(raftBatchPayloadBytesMax >= raftMessageWithEntriesBytesMax(entryDataBytesMax, 1), 'one message with one maximal entry fits a RaftBatch frame');
check(raftBatchPayloadBytesMax >= raftMessageWithEntriesBytesMax(0, raftMessageEntriesMax), 'one message with the most empty entries fits a RaftBatch frame');
check(raftBatchPayloadBytesMax >= raftMessageWithEntriesBytesMax(LIMITS.appendBytesMax, raftMessageEntriesMax), "one default-sized append (appendBytesMax) fits a RaftBatch frame");
check(
  raftBatchPayloadBytesMax >= RAFT_BATCH_ENCODED_FIXED_BYTES_MAX + RAFT_MESSAGE_ENCODED_FIXED_BYTES_MAX + 2 * MSGPACK_HEADER_BYTES_MAX + raftContextBytesMax + snapshotDescriptorBytesMax + 4 * confStateIdsMax * MSGPACK_UINT_BYTES_MAX,
  'one snapshot message with a maximal descriptor and conf state fits a RaftBatch frame',
);
// Heartbeats: ANY batch within the count bound fits the byte bound, so senders split by count only.
check(heartbeatBatchPayloadBytesMax >= RAFT_BATCH_ENCODED_FIXED_BYTES_MAX + heartbeatBatchBeatsMax * HEARTBEAT_ENCODED_BYTES_MAX, 'a full heartbeat batch fits its frame');
// Snapshots.
check(snapshotChunkPayloadBytesMax >= snapshotChunkDataBytesMax + MSGPACK_HEADER_BYTES_MAX + 6 * MSGPACK_UINT_BYTES_MAX, 'a full chunk fits its frame');
check(snapshotChunkDataBytesMax >= 1024 * 1024 + kvKeyBytesMax + kvValueBytesMax + 64 * 1024, "one storage snapshot frame (chunk + one maximal pair) fits a chunk");
// Client.
check(kvRequestPayloadBytesMax >= kvKeyBytesMax + kvValueBytesMax + 1024, 'one maximal put fits a request');
check(kvResponsePayloadBytesMax >= kvValueBytesMax + 1024, 'one maximal get result fits a response');
check(kvResponsePayloadBytesMax >= epochNotMatchRegionsMax * (2 * (kvKeyBytesMax + MSGPACK_HEADER_BYTES_MAX) + 64 + regionPeersMax * 32), 'a maximal EpochNotMatch fits a response');
check(kvRequestOpsMax * 2 * MSGPACK_HEADER_BYTES_MAX < kvRequestPayloadBytesMax, 'a request of the most operations fits its payload');
check(Number.isSafeInteger(kvScanRowsMax * (kvKeyBytesMax + kvValueBytesMax)), 'scan size arithmetic stays exact');
check(diskStatePayloadBytesMax >= MSGPACK_HEADER_BYTES_MAX + 4 * MSGPACK_UINT_BYTES_MAX + 1, 'any DiskState fits its frame');
