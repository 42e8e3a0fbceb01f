/**
 * On-disk layout of one log shard's RocksDB (version LOG_FORMAT_VERSION), shared by the main
 * thread (which encodes append tasks) and the shard owner (which checksums and writes them).
 *
 * Column `log`:  key = u64 groupId ‖ u64 index (big endian, so a group's entries are adjacent
 *                and ordered); value = entry record.
 * Column `meta`: key = u8 tag ‖ u64 groupId; value = state record. Tag 0 with group 0 holds the
 *                format record.
 *
 * Every value starts with `u32 crc32c ‖ u8 version`; the checksum covers the key followed by
 * value[4..], so a value stored under the wrong key fails it too.
 *
 *   entry:     crc u32 | ver u8 | type u8 | 0 u16 | term u64 | data…
 *   raftState: crc u32 | ver u8 | 0 u8 ×3 | term u64 | vote u64 | commit u64 | lastIndex u64
 *   truncated: crc u32 | ver u8 | 0 u8 ×3 | index u64 | term u64
 *   confState: crc u32 | ver u8 | autoLeave u8 | 0 u16 | 4 × u32 counts | ids u64…
 *   format:    crc u32 | ver u8 | 0 u8 ×3
 */
import type { ConfState, Entry, EntryType, HardState } from '@flotilla/raft';
import { LOG_FORMAT_VERSION } from './constants.ts';
import { crc32c, crc32cUpdate } from './crc32c.ts';
import { StorageError } from './errors.ts';

export const LOG_KEY_BYTES = 16;
export const META_KEY_BYTES = 9;
export const ENTRY_HEADER_BYTES = 16;
export const RAFT_STATE_BYTES = 40;
export const TRUNCATED_BYTES = 24;
export const FORMAT_RECORD_BYTES = 8;

export const TAG_FORMAT = 0;
export const TAG_RAFT_STATE = 1;
export const TAG_TRUNCATED = 2;
export const TAG_CONF_STATE = 3;

const TWO_32 = 2 ** 32;

export function writeU64(bytes: Uint8Array, at: number, value: number): void {
  const hi = Math.floor(value / TWO_32);
  const lo = value >>> 0;
  bytes[at] = hi >>> 24;
  bytes[at + 1] = hi >>> 16;
  bytes[at + 2] = hi >>> 8;
  bytes[at + 3] = hi;
  bytes[at + 4] = lo >>> 24;
  bytes[at + 5] = lo >>> 16;
  bytes[at + 6] = lo >>> 8;
  bytes[at + 7] = lo;
}

export function readU64(bytes: Uint8Array, at: number): number {
  const hi = ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
  const lo = ((bytes[at + 4]! << 24) | (bytes[at + 5]! << 16) | (bytes[at + 6]! << 8) | bytes[at + 7]!) >>> 0;
  return hi * TWO_32 + lo;
}

export function writeU32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value >>> 24;
  bytes[at + 1] = value >>> 16;
  bytes[at + 2] = value >>> 8;
  bytes[at + 3] = value;
}

export function readU32(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}

// ---- keys ------------------------------------------------------------------------------------

export function writeLogKey(bytes: Uint8Array, at: number, groupId: number, index: number): void {
  writeU64(bytes, at, groupId);
  writeU64(bytes, at + 8, index);
}

export function logKey(groupId: number, index: number): Buffer {
  const key = Buffer.allocUnsafe(LOG_KEY_BYTES);
  writeLogKey(key, 0, groupId, index);
  return key;
}

/** First key after every entry of `groupId`. */
export function logKeyGroupEnd(groupId: number): Buffer {
  return logKey(groupId + 1, 0);
}

export function writeMetaKey(bytes: Uint8Array, at: number, tag: number, groupId: number): void {
  bytes[at] = tag;
  writeU64(bytes, at + 1, groupId);
}

export function metaKey(tag: number, groupId: number): Buffer {
  const key = Buffer.allocUnsafe(META_KEY_BYTES);
  writeMetaKey(key, 0, tag, groupId);
  return key;
}

// ---- checksums ----------------------------------------------------------------------------------

export function valueChecksum(key: Uint8Array, value: Uint8Array): number {
  return crc32cUpdate(crc32c(key), value, 4);
}

/** Fills the checksum of a value whose body is written (value[0..4) is overwritten). */
export function sealValue(key: Uint8Array, value: Uint8Array): void {
  writeU32(value, 0, valueChecksum(key, value));
}

function corruption(what: string): StorageError {
  return new StorageError('FLOTILLA_STORAGE_CORRUPTION', what);
}

/** Verifies checksum and version of a stored value; throws CORRUPTION / FORMAT_VERSION. */
export function checkValue(key: Uint8Array, value: Uint8Array, minBytes: number, what: string, formatVersion = LOG_FORMAT_VERSION): void {
  if (value.byteLength < Math.max(minBytes, 5)) throw corruption(`${what}: value of ${value.byteLength} bytes is too short`);
  if (readU32(value, 0) !== valueChecksum(key, value)) throw corruption(`${what}: checksum mismatch`);
  const version = value[4]!;
  if (version !== formatVersion) {
    throw new StorageError('FLOTILLA_STORAGE_FORMAT_VERSION', `${what}: format version ${version}, this build reads ${formatVersion}`);
  }
}

// ---- entries --------------------------------------------------------------------------------------

const ENTRY_TYPES: readonly EntryType[] = ['normal', 'confChange'];

export function entryTypeCode(type: EntryType): number {
  return type === 'normal' ? 0 : 1;
}

/** Writes an entry value (checksum left zero: the shard owner seals it) at `at`. */
export function writeEntryValue(bytes: Uint8Array, at: number, entry: Entry): void {
  writeU32(bytes, at, 0);
  bytes[at + 4] = LOG_FORMAT_VERSION;
  bytes[at + 5] = entryTypeCode(entry.type);
  bytes[at + 6] = 0;
  bytes[at + 7] = 0;
  writeU64(bytes, at + 8, entry.term);
  bytes.set(entry.data, at + ENTRY_HEADER_BYTES);
}

/** Decodes a verified entry value; `data` is a view into `value`. */
export function decodeEntryValue(index: number, value: Uint8Array): Entry {
  const type = ENTRY_TYPES[value[5]!];
  if (type === undefined) throw corruption(`entry ${index}: unknown type ${value[5]}`);
  return { index, term: readU64(value, 8), type, data: value.subarray(ENTRY_HEADER_BYTES) };
}

// ---- state records ----------------------------------------------------------------------------------

export interface RaftStateRecord {
  readonly hardState: HardState;
  readonly lastIndex: number;
}

export function writeRaftStateValue(bytes: Uint8Array, at: number, hardState: HardState, lastIndex: number): void {
  writeU32(bytes, at, 0);
  bytes[at + 4] = LOG_FORMAT_VERSION;
  bytes[at + 5] = 0;
  bytes[at + 6] = 0;
  bytes[at + 7] = 0;
  writeU64(bytes, at + 8, hardState.term);
  writeU64(bytes, at + 16, hardState.vote);
  writeU64(bytes, at + 24, hardState.commit);
  writeU64(bytes, at + 32, lastIndex);
}

export function decodeRaftStateValue(value: Uint8Array): RaftStateRecord {
  return {
    hardState: { term: readU64(value, 8), vote: readU64(value, 16), commit: readU64(value, 24) },
    lastIndex: readU64(value, 32),
  };
}

export interface TruncatedState {
  readonly index: number;
  readonly term: number;
}

export function writeTruncatedValue(bytes: Uint8Array, at: number, truncated: TruncatedState): void {
  writeU32(bytes, at, 0);
  bytes[at + 4] = LOG_FORMAT_VERSION;
  bytes[at + 5] = 0;
  bytes[at + 6] = 0;
  bytes[at + 7] = 0;
  writeU64(bytes, at + 8, truncated.index);
  writeU64(bytes, at + 16, truncated.term);
}

export function decodeTruncatedValue(value: Uint8Array): TruncatedState {
  return { index: readU64(value, 8), term: readU64(value, 16) };
}

export function confStateBytes(conf: ConfState): number {
  return 8 + 16 + 8 * (conf.voters.length + conf.votersOutgoing.length + conf.learners.length + conf.learnersNext.length);
}

export function writeConfStateValue(bytes: Uint8Array, at: number, conf: ConfState): void {
  writeU32(bytes, at, 0);
  bytes[at + 4] = LOG_FORMAT_VERSION;
  bytes[at + 5] = conf.autoLeave ? 1 : 0;
  bytes[at + 6] = 0;
  bytes[at + 7] = 0;
  const lists = [conf.voters, conf.votersOutgoing, conf.learners, conf.learnersNext];
  let p = at + 8;
  for (const list of lists) {
    writeU32(bytes, p, list.length);
    p += 4;
  }
  for (const list of lists) {
    for (const id of list) {
      writeU64(bytes, p, id);
      p += 8;
    }
  }
}

export function decodeConfStateValue(value: Uint8Array): ConfState {
  const counts = [readU32(value, 8), readU32(value, 12), readU32(value, 16), readU32(value, 20)];
  let total = 0;
  for (const c of counts) total += c;
  if (value.byteLength !== 24 + 8 * total) throw corruption(`conf state: ${value.byteLength} bytes for ${total} ids`);
  let p = 24;
  const lists: number[][] = [];
  for (const c of counts) {
    const list: number[] = [];
    for (let i = 0; i < c; i++) {
      list.push(readU64(value, p));
      p += 8;
    }
    lists.push(list);
  }
  return {
    voters: lists[0]!,
    votersOutgoing: lists[1]!,
    learners: lists[2]!,
    learnersNext: lists[3]!,
    autoLeave: value[5] === 1,
  };
}

export function formatRecord(): { key: Buffer; value: Buffer } {
  const key = metaKey(TAG_FORMAT, 0);
  const value = Buffer.alloc(FORMAT_RECORD_BYTES);
  value[4] = LOG_FORMAT_VERSION;
  sealValue(key, value);
  return { key, value };
}
