/** @flotilla/wire — the public API. Internals stay internal. */
export { WireError, isWireError } from './errors.ts';
export type { WireErrorCode } from './errors.ts';
import * as limits from './constants.ts';
/** Every bound of the package (constants.ts), read-only. */
export { limits };
export { compareBytes, keyInRange } from './bytes.ts';
export { crc32c, crc32cImplementation, crc32cUpdate } from './crc32c.ts';
export { FRAME_KINDS, FRAME_PAYLOAD_BYTES_MAX, FrameDecoder, frameKindName, frameOf } from './frame.ts';
export type { Frame, FrameDecoderOptions, FrameKind, FrameKindName } from './frame.ts';
export {
  decodeDiskState,
  decodeFrame,
  decodeHeartbeatBatch,
  decodeHeartbeatResponseBatch,
  decodeKvRequest,
  decodeKvResponse,
  decodeRaftBatch,
  decodeSnapshotAck,
  decodeSnapshotChunk,
  encodeDiskState,
  encodeFrame,
  encodeHeartbeatBatch,
  encodeHeartbeatResponseBatch,
  encodeKvRequest,
  encodeKvResponse,
  encodeRaftBatch,
  encodeSnapshotAck,
  encodeSnapshotChunk,
} from './codec.ts';
export type { WireBodies, WireMessage } from './codec.ts';
export { RAFT_MESSAGE_TYPE_CODES, raftEnvelopeBytesBound } from './raft-codec.ts';
export { coalesceHeartbeat, coalesceHeartbeatResponse, expandHeartbeat, expandHeartbeatResponse } from './heartbeat-codec.ts';
export { makeSnapshotChunk } from './snapshot-codec.ts';
export { KV_ERROR_CODES, isRetryableKvError } from './kv-codec.ts';
export type {
  DiskState,
  Heartbeat,
  HeartbeatBatch,
  HeartbeatResponse,
  HeartbeatResponseBatch,
  KvError,
  KvErrorCode,
  KvOp,
  KvOpName,
  KvOpResult,
  KvPair,
  KvRequest,
  KvResponse,
  PeerRole,
  RaftBatch,
  RaftEnvelope,
  ReadConsistency,
  RegionEpoch,
  RegionMeta,
  RegionPeer,
  SnapshotAck,
  SnapshotAckStatus,
  SnapshotChunk,
} from './types.ts';
export {
  hexOf,
  pdJson,
  pdLimits,
  readJoinRequest,
  readJoinResponse,
  readLocationLabels,
  readOperatorWatch,
  readOperatorWatchResponse,
  readRegionHeartbeatRequest,
  readRegionHeartbeatResponse,
  readRegionJson,
  readStep,
  readStoreHeartbeat,
  readStoreHeartbeatResponse,
} from './pd-protocol.ts';
export type {
  FlowRatesJson,
  JoinRequest,
  JoinResponse,
  OperatorWatch,
  OperatorWatchResponse,
  PdOperatorStep,
  RegionCommand,
  RegionHeartbeat,
  RegionHeartbeatRequest,
  RegionHeartbeatResponse,
  StoreAddress,
  StoreHeartbeat,
  StoreHeartbeatResponse,
} from './pd-protocol.ts';
