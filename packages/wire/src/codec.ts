/**
 * One entry point per direction: a WireMessage (kind + body) to a frame and back, and for each
 * kind a payload codec without a frame (HTTP bodies, tests).
 */
import { FRAME_HEADER_BYTES } from './constants.ts';
import { WireError } from './errors.ts';
import { diskStateTuple, readDiskState } from './disk-state-codec.ts';
import { FRAME_KINDS, FRAME_PAYLOAD_BYTES_MAX, frameKindName, writeFrameHeader, type Frame, type FrameKindName } from './frame.ts';
import { heartbeatBatchTuple, heartbeatResponseBatchTuple, readHeartbeatBatch, readHeartbeatResponseBatch } from './heartbeat-codec.ts';
import { kvRequestTuple, kvResponseTuple, readKvRequest, readKvResponse } from './kv-codec.ts';
import { packValue, unpackPayload } from './msgpack.ts';
import { raftBatchTuple, readRaftBatch } from './raft-codec.ts';
import { readSnapshotAck, readSnapshotChunk, snapshotAckTuple, snapshotChunkTuple } from './snapshot-codec.ts';
import type {
  DiskState,
  HeartbeatBatch,
  HeartbeatResponseBatch,
  KvRequest,
  KvResponse,
  RaftBatch,
  SnapshotAck,
  SnapshotChunk,
} from './types.ts';

/** The body type of each frame kind. */
export interface WireBodies {
  raftBatch: RaftBatch;
  heartbeatBatch: HeartbeatBatch;
  heartbeatResponseBatch: HeartbeatResponseBatch;
  snapshotChunk: SnapshotChunk;
  snapshotAck: SnapshotAck;
  diskState: DiskState;
  kvRequest: KvRequest;
  kvResponse: KvResponse;
}

/** Any message of either protocol, tagged with its kind. */
export type WireMessage = { [K in FrameKindName]: { readonly kind: K; readonly body: WireBodies[K] } }[FrameKindName];

interface KindCodec<K extends FrameKindName> {
  toTuple(body: WireBodies[K]): unknown;
  read(value: unknown): WireBodies[K];
}

const CODECS: { readonly [K in FrameKindName]: KindCodec<K> } = {
  raftBatch: { toTuple: raftBatchTuple, read: readRaftBatch },
  heartbeatBatch: { toTuple: heartbeatBatchTuple, read: readHeartbeatBatch },
  heartbeatResponseBatch: { toTuple: heartbeatResponseBatchTuple, read: readHeartbeatResponseBatch },
  snapshotChunk: { toTuple: snapshotChunkTuple, read: readSnapshotChunk },
  snapshotAck: { toTuple: snapshotAckTuple, read: readSnapshotAck },
  diskState: { toTuple: diskStateTuple, read: readDiskState },
  kvRequest: { toTuple: kvRequestTuple, read: readKvRequest },
  kvResponse: { toTuple: kvResponseTuple, read: readKvResponse },
};

function encodePayloadOf<K extends FrameKindName>(kind: K, body: WireBodies[K]): Uint8Array {
  const codec: KindCodec<K> = CODECS[kind];
  const payload = packValue(codec.toTuple(body));
  const max = FRAME_PAYLOAD_BYTES_MAX[kind];
  if (payload.length > max) throw new WireError('FLOTILLA_WIRE_LIMIT_EXCEEDED', `${kind} payload of ${payload.length} bytes, at most ${max}`);
  return payload;
}

function decodePayloadOf<K extends FrameKindName>(kind: K, payload: Uint8Array): WireBodies[K] {
  if (!(payload instanceof Uint8Array)) throw new WireError('FLOTILLA_WIRE_INVALID_ARGUMENT', `${kind} payload is not bytes`);
  const max = FRAME_PAYLOAD_BYTES_MAX[kind];
  if (payload.length > max) throw new WireError('FLOTILLA_WIRE_LIMIT_EXCEEDED', `${kind} payload of ${payload.length} bytes, at most ${max}`);
  const codec: KindCodec<K> = CODECS[kind];
  return codec.read(unpackPayload(payload));
}

/**
 * The frame of a message: header and payload in one buffer, encoded in place (no copy). The
 * result views msgpackr's shared scratch memory: send it or keep it, but copy it before
 * transferring its ArrayBuffer to a worker.
 */
export function encodeFrame(message: WireMessage): Uint8Array {
  const kind = message.kind;
  const codec = CODECS[kind] as KindCodec<FrameKindName>;
  const frame = packValue(codec.toTuple(message.body), FRAME_HEADER_BYTES);
  const payloadBytes = frame.length - FRAME_HEADER_BYTES;
  const max = FRAME_PAYLOAD_BYTES_MAX[kind];
  if (payloadBytes > max) throw new WireError('FLOTILLA_WIRE_FRAME_TOO_LARGE', `${kind} payload of ${payloadBytes} bytes, at most ${max}`);
  writeFrameHeader(frame, FRAME_KINDS[kind]);
  return frame;
}

/** The message in a frame from a FrameDecoder; every field checked (MALFORMED, LIMIT_EXCEEDED, CHECKSUM_MISMATCH). */
export function decodeFrame(frame: Frame): WireMessage {
  const kind = frameKindName(frame.kind);
  if (kind === undefined) throw new WireError('FLOTILLA_WIRE_UNKNOWN_KIND', `unknown frame kind ${frame.kind}`);
  return { kind, body: decodePayloadOf(kind, frame.payload) } as WireMessage;
}

export const encodeRaftBatch = (body: RaftBatch): Uint8Array => encodePayloadOf('raftBatch', body);
export const decodeRaftBatch = (payload: Uint8Array): RaftBatch => decodePayloadOf('raftBatch', payload);
export const encodeHeartbeatBatch = (body: HeartbeatBatch): Uint8Array => encodePayloadOf('heartbeatBatch', body);
export const decodeHeartbeatBatch = (payload: Uint8Array): HeartbeatBatch => decodePayloadOf('heartbeatBatch', payload);
export const encodeHeartbeatResponseBatch = (body: HeartbeatResponseBatch): Uint8Array => encodePayloadOf('heartbeatResponseBatch', body);
export const decodeHeartbeatResponseBatch = (payload: Uint8Array): HeartbeatResponseBatch => decodePayloadOf('heartbeatResponseBatch', payload);
export const encodeSnapshotChunk = (body: SnapshotChunk): Uint8Array => encodePayloadOf('snapshotChunk', body);
export const decodeSnapshotChunk = (payload: Uint8Array): SnapshotChunk => decodePayloadOf('snapshotChunk', payload);
export const encodeSnapshotAck = (body: SnapshotAck): Uint8Array => encodePayloadOf('snapshotAck', body);
export const decodeSnapshotAck = (payload: Uint8Array): SnapshotAck => decodePayloadOf('snapshotAck', payload);
export const encodeDiskState = (body: DiskState): Uint8Array => encodePayloadOf('diskState', body);
export const decodeDiskState = (payload: Uint8Array): DiskState => decodePayloadOf('diskState', payload);
export const encodeKvRequest = (body: KvRequest): Uint8Array => encodePayloadOf('kvRequest', body);
export const decodeKvRequest = (payload: Uint8Array): KvRequest => decodePayloadOf('kvRequest', payload);
export const encodeKvResponse = (body: KvResponse): Uint8Array => encodePayloadOf('kvResponse', body);
export const decodeKvResponse = (payload: Uint8Array): KvResponse => decodePayloadOf('kvResponse', payload);
