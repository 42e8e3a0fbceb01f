/**
 * Snapshot streams: the image of a region snapshot travels as SnapshotChunk frames on its own
 * connection (a large snapshot never delays heartbeats), answered by SnapshotAck frames.
 *
 *   SnapshotChunk = [regionId, snapshotId, seq, last, data, checksum]
 *   SnapshotAck   = [regionId, snapshotId, seq, status]      status: 0 received, 1 applied, 2 rejected
 *
 * `checksum` is crc32c(data), computed where the chunk is read (makeSnapshotChunk) and verified
 * by the decoder: end to end, beyond the frame checksum that only covers the wire.
 */
import { argBytes, argId, argUint, invalid, malformed, readBool, readBytes, readId, readTuple, readU32, readUint } from './check.ts';
import { snapshotChunkDataBytesMax } from './constants.ts';
import { crc32c } from './crc32c.ts';
import { WireError } from './errors.ts';
import type { SnapshotAck, SnapshotAckStatus, SnapshotChunk } from './types.ts';

/** A chunk with its checksum computed now. */
export function makeSnapshotChunk(fields: Omit<SnapshotChunk, 'checksum'>): SnapshotChunk {
  return { ...fields, checksum: crc32c(fields.data) };
}

export function snapshotChunkTuple(chunk: SnapshotChunk): unknown[] {
  if (!Number.isInteger(chunk.checksum) || chunk.checksum < 0 || chunk.checksum > 0xffff_ffff) invalid('snapshot chunk checksum is not a u32');
  return [
    argId(chunk.regionId, 'regionId'),
    argUint(chunk.snapshotId, 'snapshotId'),
    argUint(chunk.seq, 'seq'),
    chunk.last === true,
    argBytes(chunk.data, snapshotChunkDataBytesMax, 'snapshot chunk data'),
    chunk.checksum,
  ];
}

export function readSnapshotChunk(value: unknown): SnapshotChunk {
  const t = readTuple(value, 6, 'SnapshotChunk');
  const chunk: SnapshotChunk = {
    regionId: readId(t[0], 'regionId'),
    snapshotId: readUint(t[1], 'snapshotId'),
    seq: readUint(t[2], 'seq'),
    last: readBool(t[3], 'last'),
    data: readBytes(t[4], snapshotChunkDataBytesMax, 'snapshot chunk data'),
    checksum: readU32(t[5], 'checksum'),
  };
  if (crc32c(chunk.data) !== chunk.checksum) {
    throw new WireError('FLOTILLA_WIRE_CHECKSUM_MISMATCH', `snapshot ${chunk.snapshotId} of region ${chunk.regionId}: chunk ${chunk.seq} fails its checksum`);
  }
  return chunk;
}

const ACK_STATUS: readonly SnapshotAckStatus[] = ['received', 'applied', 'rejected'];

export function snapshotAckTuple(ack: SnapshotAck): unknown[] {
  const status = ACK_STATUS.indexOf(ack.status);
  if (status < 0) invalid(`unknown snapshot ack status '${String(ack.status)}'`);
  return [argId(ack.regionId, 'regionId'), argUint(ack.snapshotId, 'snapshotId'), argUint(ack.seq, 'seq'), status];
}

export function readSnapshotAck(value: unknown): SnapshotAck {
  const t = readTuple(value, 4, 'SnapshotAck');
  const code = t[3];
  const status = typeof code === 'number' ? ACK_STATUS[code] : undefined;
  if (status === undefined) malformed('SnapshotAck: unknown status');
  return { regionId: readId(t[0], 'regionId'), snapshotId: readUint(t[1], 'snapshotId'), seq: readUint(t[2], 'seq'), status };
}
