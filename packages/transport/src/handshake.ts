/**
 * The handshake: the first bytes each side writes on a connection, before any frame. Wire's frame
 * kinds have no handshake, and a handshake is not a message of either protocol, so it is its own
 * small fixed-size record, versioned, with a magic number and a checksum:
 *
 *   0        4   5        6     7       8            16           24           32       36
 *   +--------+---+--------+-----+-------+------------+------------+------------+--------+
 *   | 'FLTP' | v | purpose| role| status| clusterId  | fromStore  | toStore    | crc32c |
 *   | u32    |u8 | u8     | u8  | u8    | u64        | u64        | u64        | u32    |
 *   +--------+---+--------+-----+-------+------------+------------+------------+--------+
 *   big-endian; crc32c covers bytes 0..32; ids are positive safe integers (< 2^53)
 *
 * The dialer writes a `hello` naming the store it means to reach; the acceptor checks it (magic,
 * version, checksum, cluster, addressed to itself) and answers with a `reply` carrying a status.
 * The dialer checks the reply in turn (it reached the store it dialed, in its cluster) and only
 * then sends frames. A refusal is answered (so the dialer can log why) and the connection closed.
 *
 * purpose: 1 raft (frames of the dialer's raft traffic and heartbeats; the acceptor never writes
 * after its reply), 2 snapshot (one snapshot stream: chunks one way, acks the other).
 */
import { crc32c } from '@flotilla/wire';
import { HANDSHAKE_BYTES, HANDSHAKE_MAGIC, HANDSHAKE_VERSION } from './constants.ts';
import { TransportError, assert, invalidArgument } from './errors.ts';
import type { StoreId } from './types.ts';

export type ConnectionPurpose = 'raft' | 'snapshot';
export type HandshakeRole = 'hello' | 'reply';
/** A reply's verdict on the hello; a hello always carries 'ok'. */
export type HandshakeStatus = 'ok' | 'clusterMismatch' | 'storeMismatch' | 'busy';

export interface Handshake {
  readonly purpose: ConnectionPurpose;
  readonly role: HandshakeRole;
  readonly status: HandshakeStatus;
  readonly clusterId: number;
  /** The store that writes this handshake. */
  readonly fromStore: StoreId;
  /** The store it is meant for. */
  readonly toStore: StoreId;
}

const PURPOSES: readonly (ConnectionPurpose | undefined)[] = [undefined, 'raft', 'snapshot'];
const ROLES: readonly (HandshakeRole | undefined)[] = [undefined, 'hello', 'reply'];
const STATUSES: readonly HandshakeStatus[] = ['ok', 'clusterMismatch', 'storeMismatch', 'busy'];
const U32 = 0x1_0000_0000;

function isId(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 1;
}

export function encodeHandshake(h: Handshake): Uint8Array {
  if (!isId(h.clusterId)) invalidArgument(`clusterId must be a positive safe integer, got ${h.clusterId}`);
  if (!isId(h.fromStore)) invalidArgument(`fromStore must be a positive safe integer, got ${h.fromStore}`);
  if (!isId(h.toStore)) invalidArgument(`toStore must be a positive safe integer, got ${h.toStore}`);
  if (h.role === 'hello' && h.status !== 'ok') invalidArgument('a hello carries status ok');
  const bytes = new Uint8Array(HANDSHAKE_BYTES);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, HANDSHAKE_MAGIC);
  view.setUint8(4, HANDSHAKE_VERSION);
  view.setUint8(5, PURPOSES.indexOf(h.purpose));
  view.setUint8(6, ROLES.indexOf(h.role));
  view.setUint8(7, STATUSES.indexOf(h.status));
  writeU64(view, 8, h.clusterId);
  writeU64(view, 16, h.fromStore);
  writeU64(view, 24, h.toStore);
  view.setUint32(32, crc32c(bytes, 0, 32));
  return bytes;
}

/** Checks every byte of a handshake; anything off is FLOTILLA_TRANSPORT_BAD_HANDSHAKE. */
export function decodeHandshake(bytes: Uint8Array): Handshake {
  assert(bytes.length === HANDSHAKE_BYTES, 'a handshake is decoded from exactly its bytes');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0);
  if (magic !== HANDSHAKE_MAGIC) bad(`magic 0x${magic.toString(16)}, expected 0x${HANDSHAKE_MAGIC.toString(16)}`);
  const version = view.getUint8(4);
  if (version !== HANDSHAKE_VERSION) bad(`version ${version}, this side speaks ${HANDSHAKE_VERSION}`);
  const crc = view.getUint32(32);
  if (crc !== crc32c(bytes, 0, 32)) bad('checksum mismatch');
  const purpose = PURPOSES[view.getUint8(5)];
  if (purpose === undefined) bad(`unknown purpose ${view.getUint8(5)}`);
  const role = ROLES[view.getUint8(6)];
  if (role === undefined) bad(`unknown role ${view.getUint8(6)}`);
  const status = STATUSES[view.getUint8(7)];
  if (status === undefined) bad(`unknown status ${view.getUint8(7)}`);
  if (role === 'hello' && status !== 'ok') bad('a hello with a status');
  const clusterId = readId(view, 8, 'clusterId');
  const fromStore = readId(view, 16, 'fromStore');
  const toStore = readId(view, 24, 'toStore');
  return { purpose, role, status, clusterId, fromStore, toStore };
}

/**
 * Accumulates the first HANDSHAKE_BYTES of a stream (chunks may split anywhere). Refuses a wrong
 * magic as soon as its 4 bytes are in. Returns the handshake and the bytes that followed it in
 * the same chunk (the first frames), or null while incomplete.
 */
export class HandshakeReader {
  private readonly buffer = new Uint8Array(HANDSHAKE_BYTES);
  private fill = 0;

  push(chunk: Uint8Array): { readonly handshake: Handshake; readonly rest: Uint8Array } | null {
    const take = Math.min(HANDSHAKE_BYTES - this.fill, chunk.length);
    this.buffer.set(chunk.subarray(0, take), this.fill);
    const before = this.fill;
    this.fill += take;
    if (before < 4 && this.fill >= 4) {
      const magic = new DataView(this.buffer.buffer).getUint32(0);
      if (magic !== HANDSHAKE_MAGIC) bad(`magic 0x${magic.toString(16)}, expected 0x${HANDSHAKE_MAGIC.toString(16)}`);
    }
    if (this.fill < HANDSHAKE_BYTES) return null;
    return { handshake: decodeHandshake(this.buffer), rest: chunk.subarray(take) };
  }
}

function bad(what: string): never {
  throw new TransportError('FLOTILLA_TRANSPORT_BAD_HANDSHAKE', `bad handshake: ${what}`);
}

function writeU64(view: DataView, at: number, value: number): void {
  view.setUint32(at, Math.floor(value / U32));
  view.setUint32(at + 4, value >>> 0);
}

function readId(view: DataView, at: number, what: string): number {
  const high = view.getUint32(at);
  const low = view.getUint32(at + 4);
  if (high > 0x1f_ffff) bad(`${what} beyond 2^53`);
  const value = high * U32 + low;
  if (value < 1) bad(`${what} is 0`);
  return value;
}
