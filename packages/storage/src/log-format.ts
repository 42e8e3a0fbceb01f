/**
 * On-disk layout of one log shard's RocksDB (version LOG_FORMAT_VERSION), shared by the main
 * thread (which encodes append tasks) and the shard owner (which checksums and writes them).
 *
 * Column `log`:  key = u64 groupId ‖ u64 firstIndex (big endian, so a group's packs are
 *                adjacent and ordered); value = a pack: entries firstIndex, firstIndex+1, … of
 *                the group. Entry i of a group is in the pack with the greatest firstIndex ≤ i:
 *                a pack written at f replaces every entry ≥ f, and the batch that writes it
 *                deletes the group's other packs at or above f (log-batch.ts).
 * Column `meta`: key = u8 tag ‖ u64 groupId; value = state record. Tag 0 with group 0 holds the
 *                format record.
 *
 * Every value starts with `u32 crc32c ‖ u8 version`; the checksum covers the key followed by
 * value[4..], so a value stored under the wrong key fails it too.
 *
 * A group's raft state is split between its raft state record and its last pack, so that an
 * append costs one key per group and batch, not two (log-batch.ts): the record is written when
 * term or vote change, when the group is new, when a batch replaces entries or installs a
 * snapshot, and when a batch has no pack of the group; otherwise only the packs are written,
 * each with the group's commit. Recovery takes term and vote from the record, the commit as the
 * larger of the record's and the last pack's, and the last index as the larger of the record's
 * and the last pack's end. The pack with the greatest start is always the last one written (a
 * pack at f deletes the group's packs at or above f), so it carries the newest commit, and it
 * ends where the log ends.
 *
 *   pack:      crc u32 | ver u8 | 0 u8 ×3 | count u32 | 0 u32 | commit u64 | packed entry × count
 *   packed entry:  term u64 | type u8 | 0 u8 ×3 | dataBytes u32 | data…
 *   raftState: crc u32 | ver u8 | 0 u8 ×3 | term u64 | vote u64 | commit u64 | lastIndex u64
 *   truncated: crc u32 | ver u8 | 0 u8 ×3 | index u64 | term u64
 *   confState: crc u32 | ver u8 | autoLeave u8 | 0 u16 | 4 × u32 counts | ids u64…
 *   format:    crc u32 | ver u8 | 0 u8 ×3
 *
 * Version 1 had one key per entry, (groupId, index) → `crc u32 | ver u8 | type u8 | 0 u16 |
 * term u64 | data…`; such a value reads as a pack of one entry, and the state records did not
 * change, so a version 1 shard opens and is upgraded in place (its format record rewritten).
 */
import type { ConfState, Entry, EntryType, HardState } from '@flotilla/raft';
import { LOG_FORMAT_VERSION, LOG_FORMAT_VERSION_OLDEST } from './constants.ts';
import { crc32c, crc32cUpdate } from './crc32c.ts';
import { StorageError } from './errors.ts';

export const LOG_KEY_BYTES = 16;
export const META_KEY_BYTES = 9;
export const PACK_HEADER_BYTES = 24;
/** Offset of a pack's commit field: the group's commit index when the pack was written. */
export const PACK_COMMIT_AT = 16;
export const PACKED_ENTRY_HEADER_BYTES = 16;
/** Header of a version 1 entry value (one entry per key). */
export const V1_ENTRY_HEADER_BYTES = 16;
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

/**
 * Verifies checksum and version (oldest..newest, by default the log's) of a stored value and
 * returns the version; throws CORRUPTION / FORMAT_VERSION.
 */
export function checkValue(key: Uint8Array, value: Uint8Array, minBytes: number, what: string, oldest = LOG_FORMAT_VERSION_OLDEST, newest = LOG_FORMAT_VERSION): number {
  if (value.byteLength < Math.max(minBytes, 5)) throw corruption(`${what}: value of ${value.byteLength} bytes is too short`);
  if (readU32(value, 0) !== valueChecksum(key, value)) throw corruption(`${what}: checksum mismatch`);
  const version = value[4]!;
  if (version < oldest || version > newest) {
    const reads = oldest === newest ? `${newest}` : `${oldest}..${newest}`;
    throw new StorageError('FLOTILLA_STORAGE_FORMAT_VERSION', `${what}: format version ${version}, this build reads ${reads}`);
  }
  return version;
}

// ---- entries and packs ----------------------------------------------------------------------------

const ENTRY_TYPES: readonly EntryType[] = ['normal', 'confChange'];

export function entryTypeCode(type: EntryType): number {
  return type === 'normal' ? 0 : 1;
}

function entryType(code: number, index: number): EntryType {
  const type = ENTRY_TYPES[code];
  if (type === undefined) throw corruption(`entry ${index}: unknown type ${code}`);
  return type;
}

/** Decodes the packed entry at `at` of `bytes` (whose bounds were checked); `data` is a view. */
export function decodePackedEntry(index: number, bytes: Uint8Array, at: number): Entry {
  const dataAt = at + PACKED_ENTRY_HEADER_BYTES;
  return { index, term: readU64(bytes, at), type: entryType(bytes[at + 8]!, index), data: bytes.subarray(dataAt, dataAt + readU32(bytes, at + 12)) };
}

/** Writes a pack's header (checksum left zero: the shard owner seals the pack). */
export function writePackHeader(bytes: Uint8Array, at: number, count: number, commit: number): void {
  writeU32(bytes, at, 0);
  bytes[at + 4] = LOG_FORMAT_VERSION;
  bytes[at + 5] = 0;
  bytes[at + 6] = 0;
  bytes[at + 7] = 0;
  writeU32(bytes, at + 8, count);
  writeU32(bytes, at + 12, 0);
  writeU64(bytes, at + PACK_COMMIT_AT, commit);
}

/**
 * Walks the entries of a stored pack (or a version 1 entry value, a pack of one) after
 * `open()` verified it: checksum, version, and that the entries fill the value exactly.
 */
export class PackCursor {
  first = 0;
  count = 0;
  /** The group's commit index when the pack was written (0 in a version 1 value). */
  commit = 0;
  /** The current entry (after next() returned true). */
  index = 0;
  term = 0;
  typeCode = 0;
  dataAt = 0;
  dataEnd = 0;
  /** The value's format version (1: one entry per key). */
  version = 0;
  private value: Uint8Array = new Uint8Array(0);
  private at = 0;
  private left = 0;

  /** Verifies `value` stored under `key`; throws CORRUPTION / FORMAT_VERSION naming `what`. */
  open(key: Uint8Array, value: Uint8Array, what: string): void {
    const version = checkValue(key, value, 5, what);
    this.first = readU64(key, 8);
    this.value = value;
    this.version = version;
    if (version === 1) {
      if (value.byteLength < V1_ENTRY_HEADER_BYTES) throw corruption(`${what}: entry value of ${value.byteLength} bytes`);
      this.count = 1;
      this.commit = 0;
    } else {
      if (value.byteLength < PACK_HEADER_BYTES) throw corruption(`${what}: pack of ${value.byteLength} bytes`);
      this.count = readU32(value, 8);
      this.commit = readU64(value, PACK_COMMIT_AT);
      let at = PACK_HEADER_BYTES;
      for (let i = 0; i < this.count; i++) {
        if (at + PACKED_ENTRY_HEADER_BYTES > value.byteLength) throw corruption(`${what}: pack of ${this.count} entries ends at entry ${i}`);
        at += PACKED_ENTRY_HEADER_BYTES + readU32(value, at + 12);
      }
      if (at !== value.byteLength || this.count === 0) throw corruption(`${what}: pack of ${this.count} entries spans ${at} of ${value.byteLength} bytes`);
    }
    this.rewind();
  }

  /** Back before the first entry. */
  rewind(): void {
    this.at = this.version === 1 ? 0 : PACK_HEADER_BYTES;
    this.left = this.count;
    this.index = this.first - 1;
  }

  /** Advances to the next entry; false after the last. */
  next(): boolean {
    if (this.left === 0) return false;
    this.left--;
    this.index++;
    const v = this.value;
    if (this.version === 1) {
      this.typeCode = v[5]!;
      this.term = readU64(v, 8);
      this.dataAt = V1_ENTRY_HEADER_BYTES;
      this.dataEnd = v.byteLength;
      return true;
    }
    const at = this.at;
    this.term = readU64(v, at);
    this.typeCode = v[at + 8]!;
    this.dataAt = at + PACKED_ENTRY_HEADER_BYTES;
    this.dataEnd = this.dataAt + readU32(v, at + 12);
    this.at = this.dataEnd;
    return true;
  }

  /** The current entry's payload (a view into the value). */
  data(): Uint8Array {
    return this.value.subarray(this.dataAt, this.dataEnd);
  }

  /** Writes the current entry as a packed entry at `at` of `out`; returns the offset after it. */
  copyTo(out: Uint8Array, at: number): number {
    writeU64(out, at, this.term);
    out[at + 8] = this.typeCode;
    out[at + 9] = 0;
    out[at + 10] = 0;
    out[at + 11] = 0;
    writeU32(out, at + 12, this.dataEnd - this.dataAt);
    out.set(this.value.subarray(this.dataAt, this.dataEnd), at + PACKED_ENTRY_HEADER_BYTES);
    return at + PACKED_ENTRY_HEADER_BYTES + this.dataEnd - this.dataAt;
  }

  checkType(): void {
    entryType(this.typeCode, this.index);
  }
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
