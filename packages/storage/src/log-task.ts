/**
 * Append tasks: the writes of many groups for one shard, turned by the shard owner into ONE
 * RocksDB write batch with ONE sync. A task is a sequence number plus a list of chunks; each
 * write() call encodes its pieces for a shard into one chunk right away (spreading the encoding
 * work over the calls instead of one long stall when the task is sealed), and chunks move to
 * the worker as transferred buffers (no copy).
 *
 * The main thread lays out keys and values in their final on-disk form (log-format.ts) except
 * the checksums, which the shard owner computes (keeping CPU work off the main thread) right
 * before handing zero-copy views of the buffer to the batch. A piece's entries are encoded as
 * packs of at most logPackEntriesMax entries and logPackBytesMax payload bytes (packEnd); the
 * owner merges consecutive packs of a group within one batch (log-batch.ts).
 *
 *   chunk := u32 CHUNK_MAGIC | u32 pieceCount | piece*
 *   piece := f64 groupId | f64 prevLast | f64 newLast | f64 truncatedIndex | f64 firstNew
 *            | u32 flags | u32 putCount | put*
 *   put   := u8 column | u8 0 | u16 keyBytes | u32 valueBytes | key | value
 *
 * `prevLast` is the group's last index as the main thread saw it before the piece: the owner
 * asserts it equals its own, which proves tasks and pieces are applied in submission order.
 */
import type { ConfState, Entry } from '@flotilla/raft';
import { LOG_FORMAT_VERSION, logPackBytesMax, logPackEntriesMax } from './constants.ts';
import {
  LOG_KEY_BYTES,
  META_KEY_BYTES,
  PACKED_ENTRY_HEADER_BYTES,
  PACK_HEADER_BYTES,
  RAFT_STATE_BYTES,
  TAG_CONF_STATE,
  TAG_RAFT_STATE,
  TAG_TRUNCATED,
  TRUNCATED_BYTES,
  confStateBytes,
  entryTypeCode,
  writeConfStateValue,
  writeMetaKey,
  writeTruncatedValue,
  type TruncatedState,
} from './log-format.ts';
import type { HardState } from '@flotilla/raft';
import type { GroupWrite, GroupWritePlan } from './log-types.ts';

export const CHUNK_MAGIC = 0x464c4331; // "FLC1"
export const CHUNK_HEADER_BYTES = 8;
export const PIECE_HEADER_BYTES = 48;
export const PUT_HEADER_BYTES = 8;

export const COLUMN_META = 0;
export const COLUMN_LOG = 1;

const TWO_32 = 2 ** 32;

export const PIECE_SNAPSHOT = 1;
export const PIECE_DESTROY = 2;

/** One group's share of a task, as planned on the main thread. */
export interface TaskPiece {
  readonly groupId: number;
  readonly prevLast: number;
  readonly newLast: number;
  readonly truncatedIndex: number;
  readonly firstNew: number;
  readonly flags: number;
  /** Written when the piece installs a snapshot (before entries) or compacts (after). */
  readonly truncatedBefore: TruncatedState | null;
  readonly entries: readonly Entry[];
  readonly hardState: HardState | null;
  readonly confState: ConfState | null;
  readonly truncatedAfter: TruncatedState | null;
}

/**
 * A TaskPiece filled in place: the engine keeps one per position of a write and reuses them, so
 * planning a write allocates no object per group (log-engine.ts, plannedPieces).
 */
export type PieceRecord = { -readonly [K in keyof TaskPiece]: TaskPiece[K] };

export function newPieceRecord(): PieceRecord {
  return {
    groupId: 0,
    prevLast: 0,
    newLast: 0,
    truncatedIndex: 0,
    firstNew: 0,
    flags: 0,
    truncatedBefore: null,
    entries: NO_ENTRIES,
    hardState: null,
    confState: null,
    truncatedAfter: null,
  };
}

/** The entries of a piece record that holds none (shared, never written to). */
export const NO_ENTRIES: readonly Entry[] = [];

/** Fills `piece` with what the shard writes for one validated group write (`prevLast`: the group's last index before it). */
export function fillPiece(piece: PieceRecord, w: GroupWrite, prevLast: number, plan: GroupWritePlan): PieceRecord {
  const destroy = w.destroy === true;
  piece.groupId = w.groupId;
  piece.prevLast = prevLast;
  piece.newLast = destroy ? 0 : plan.lastIndex;
  piece.truncatedIndex = destroy ? 0 : plan.truncatedIndex;
  piece.firstNew = plan.firstNew;
  piece.flags = (w.snapshot !== undefined ? PIECE_SNAPSHOT : 0) | (destroy ? PIECE_DESTROY : 0);
  piece.truncatedBefore = w.snapshot !== undefined ? { index: w.snapshot.index, term: w.snapshot.term } : null;
  piece.entries = plan.entries;
  piece.hardState = destroy ? null : plan.hardState;
  piece.confState = w.confState ?? w.snapshot?.confState ?? null;
  piece.truncatedAfter = w.compactTo !== undefined ? { index: plan.truncatedIndex, term: plan.truncatedTerm } : null;
  return piece;
}

/** Drops a filled piece's references to the caller's objects (the record itself is kept). */
export function clearPiece(piece: PieceRecord): void {
  piece.truncatedBefore = null;
  piece.entries = NO_ENTRIES;
  piece.hardState = null;
  piece.confState = null;
  piece.truncatedAfter = null;
}

/** Bytes of a pack put besides its entries: put header, key, pack header. */
const PACK_PUT_OVERHEAD_BYTES = PUT_HEADER_BYTES + LOG_KEY_BYTES + PACK_HEADER_BYTES;

/** End (exclusive) of the pack that starts at entries[from]: the bounds of one pack, greedily. */
function packEnd(entries: readonly Entry[], from: number): number {
  let bytes = 0;
  let end = from;
  const max = Math.min(entries.length, from + logPackEntriesMax);
  while (end < max) {
    const size = entries[end]!.data.byteLength;
    if (end > from && bytes + size > logPackBytesMax) break;
    bytes += size;
    end++;
  }
  return end;
}

/** Packs of a piece's entries. */
function packCount(entries: readonly Entry[]): number {
  let n = 0;
  for (let from = 0; from < entries.length; from = packEnd(entries, from)) n++;
  return n;
}

export function pieceBytes(p: TaskPiece): number {
  let n = PIECE_HEADER_BYTES;
  if (p.truncatedBefore !== null) n += PUT_HEADER_BYTES + META_KEY_BYTES + TRUNCATED_BYTES;
  if (p.entries.length > 0) n += packCount(p.entries) * PACK_PUT_OVERHEAD_BYTES;
  for (const e of p.entries) n += PACKED_ENTRY_HEADER_BYTES + e.data.byteLength;
  if (p.hardState !== null) n += PUT_HEADER_BYTES + META_KEY_BYTES + RAFT_STATE_BYTES;
  if (p.confState !== null) n += PUT_HEADER_BYTES + META_KEY_BYTES + confStateBytes(p.confState);
  if (p.truncatedAfter !== null) n += PUT_HEADER_BYTES + META_KEY_BYTES + TRUNCATED_BYTES;
  return n;
}

function putCount(p: TaskPiece, packs: number): number {
  return (p.truncatedBefore !== null ? 1 : 0) + packs + (p.hardState !== null ? 1 : 0) + (p.confState !== null ? 1 : 0) + (p.truncatedAfter !== null ? 1 : 0);
}

function putHeader(bytes: Uint8Array, view: DataView, at: number, column: number, keyBytes: number, valueBytes: number): number {
  bytes[at] = column;
  bytes[at + 1] = 0;
  view.setUint16(at + 2, keyBytes);
  view.setUint32(at + 4, valueBytes);
  return at + PUT_HEADER_BYTES;
}

/** Encodes pieces (whose sizes sum to `bodyBytes`) into a fresh transferable chunk. */
export function encodeChunk(pieces: readonly TaskPiece[], bodyBytes: number): Uint8Array {
  const w = new ChunkWriter(bodyBytes);
  for (const p of pieces) w.add(p);
  return w.finish();
}

/** Encodes pieces one by one into a chunk of a size known in advance (pieceBytes summed). */
export class ChunkWriter {
  private readonly bytes: Uint8Array;
  private readonly view: DataView;
  private at = CHUNK_HEADER_BYTES;
  private pieces = 0;

  constructor(bodyBytes: number) {
    this.bytes = new Uint8Array(new ArrayBuffer(CHUNK_HEADER_BYTES + bodyBytes));
    this.view = new DataView(this.bytes.buffer);
    this.view.setUint32(0, CHUNK_MAGIC);
  }

  add(p: TaskPiece): void {
    const bytes = this.bytes;
    const view = this.view;
    let at = this.at;
    this.pieces++;
    const entries = p.entries;
    const packs = entries.length > 0 ? packCount(entries) : 0;
    view.setFloat64(at, p.groupId);
    view.setFloat64(at + 8, p.prevLast);
    view.setFloat64(at + 16, p.newLast);
    view.setFloat64(at + 24, p.truncatedIndex);
    view.setFloat64(at + 32, p.firstNew);
    view.setUint32(at + 40, p.flags);
    view.setUint32(at + 44, putCount(p, packs));
    at += PIECE_HEADER_BYTES;
    if (p.truncatedBefore !== null) {
      at = putHeader(bytes, view, at, COLUMN_META, META_KEY_BYTES, TRUNCATED_BYTES);
      writeMetaKey(bytes, at, TAG_TRUNCATED, p.groupId);
      writeTruncatedValue(bytes, at + META_KEY_BYTES, p.truncatedBefore);
      at += META_KEY_BYTES + TRUNCATED_BYTES;
    }
    // Packs of entries and the raft state record: the per-write hot path, written through the
    // DataView (same layout as writePackHeader / decodePackedEntry / writeRaftStateValue in
    // log-format.ts).
    const groupHi = Math.floor(p.groupId / TWO_32);
    const groupLo = p.groupId >>> 0;
    for (let from = 0; from < entries.length; ) {
      const end = packEnd(entries, from);
      const putAt = at;
      bytes[at] = COLUMN_LOG;
      view.setUint16(at + 2, LOG_KEY_BYTES);
      at += PUT_HEADER_BYTES;
      const first = entries[from]!.index;
      view.setUint32(at, groupHi);
      view.setUint32(at + 4, groupLo);
      view.setUint32(at + 8, Math.floor(first / TWO_32));
      view.setUint32(at + 12, first >>> 0);
      at += LOG_KEY_BYTES;
      const valueAt = at;
      // pack: crc (0: sealed by the owner) | version | 0 0 0 | count | 0
      bytes[at + 4] = LOG_FORMAT_VERSION;
      view.setUint32(at + 8, end - from);
      at += PACK_HEADER_BYTES;
      for (let i = from; i < end; i++) {
        const e = entries[i]!;
        const data = e.data;
        view.setUint32(at, Math.floor(e.term / TWO_32));
        view.setUint32(at + 4, e.term >>> 0);
        bytes[at + 8] = entryTypeCode(e.type);
        view.setUint32(at + 12, data.byteLength);
        bytes.set(data, at + PACKED_ENTRY_HEADER_BYTES);
        at += PACKED_ENTRY_HEADER_BYTES + data.byteLength;
      }
      view.setUint32(putAt + 4, at - valueAt);
      from = end;
    }
    if (p.hardState !== null) {
      const hs = p.hardState;
      bytes[at] = COLUMN_META;
      view.setUint16(at + 2, META_KEY_BYTES);
      view.setUint32(at + 4, RAFT_STATE_BYTES);
      at += PUT_HEADER_BYTES;
      bytes[at] = TAG_RAFT_STATE;
      view.setUint32(at + 1, groupHi);
      view.setUint32(at + 5, groupLo);
      at += META_KEY_BYTES;
      bytes[at + 4] = LOG_FORMAT_VERSION;
      view.setUint32(at + 8, Math.floor(hs.term / TWO_32));
      view.setUint32(at + 12, hs.term >>> 0);
      view.setUint32(at + 16, Math.floor(hs.vote / TWO_32));
      view.setUint32(at + 20, hs.vote >>> 0);
      view.setUint32(at + 24, Math.floor(hs.commit / TWO_32));
      view.setUint32(at + 28, hs.commit >>> 0);
      view.setUint32(at + 32, Math.floor(p.newLast / TWO_32));
      view.setUint32(at + 36, p.newLast >>> 0);
      at += RAFT_STATE_BYTES;
    }
    if (p.confState !== null) {
      const valueBytes = confStateBytes(p.confState);
      at = putHeader(bytes, view, at, COLUMN_META, META_KEY_BYTES, valueBytes);
      writeMetaKey(bytes, at, TAG_CONF_STATE, p.groupId);
      writeConfStateValue(bytes, at + META_KEY_BYTES, p.confState);
      at += META_KEY_BYTES + valueBytes;
    }
    if (p.truncatedAfter !== null) {
      at = putHeader(bytes, view, at, COLUMN_META, META_KEY_BYTES, TRUNCATED_BYTES);
      writeMetaKey(bytes, at, TAG_TRUNCATED, p.groupId);
      writeTruncatedValue(bytes, at + META_KEY_BYTES, p.truncatedAfter);
      at += META_KEY_BYTES + TRUNCATED_BYTES;
    }
    this.at = at;
  }

  finish(): Uint8Array {
    if (this.at !== this.bytes.byteLength) throw new Error(`storage assertion failed: chunk encoded ${this.at} of ${this.bytes.byteLength} bytes`);
    this.view.setUint32(4, this.pieces);
    return this.bytes;
  }
}

// ---- read results (owner -> main thread) ---------------------------------------------------------

/**
 * A disk read's answer: u32 status | u32 count | f64 firstIndex | packed entry* (log-format.ts)
 * from packs verified by the owner; the main thread decodes them with decodePackedEntry.
 */
export const READ_OK = 0;
export const READ_COMPACTED = 1;
export const READ_HEADER_BYTES = 16;
