/**
 * How a shard owner turns one batch of append tasks into ONE RocksDB write batch, cheaply.
 *
 * - Packs: the owner merges a group's consecutive packs of the whole batch (several write()
 *   calls, several tasks) into as few packs as logPackEntriesMax / logPackBytesMax allow. One
 *   key per pack instead of one per entry: the memtable insert, the largest cost of an append,
 *   is paid per key (benchmarks/storage/RESULTS.md, "The next step toward 80%").
 * - Replacing: a pack at index f replaces a group's entries ≥ f, so the batch deletes the
 *   group's packs that start at or above f (point deletes, atomic with the new pack: a reader
 *   picks the pack with the greatest start ≤ i, which must never be a replaced one).
 * - Compaction: packs wholly below a group's truncation are deleted in the same batch.
 * - Raft state: a group's raft state record is written only when its term or vote change, when
 *   the group is new to the shard, when the batch replaces entries (a suffix, a snapshot), or
 *   when the batch writes no pack of the group; otherwise each pack carries the batch's commit
 *   and the last pack's end is the last index (log-format.ts). One key per group and batch
 *   instead of two (appenders 1.73–1.76 → 1.53 µs per entry at 256 groups, storage RESULTS.md).
 * - Sealing: a pack that comes out of the batch as the main thread encoded it is checksummed in
 *   place and put as a zero-copy view of the task's chunk; a merged or trimmed pack is copied
 *   into one new buffer first.
 *
 * No object per entry or per pack: positions live in reused typed arrays, and the puts go
 * straight to the binding's chained batch (`_put`, the method abstract-level's `put` ends in)
 * instead of an array of operation objects that abstract-level would copy, re-encode and wrap
 * once more. Measured in benchmarks/storage/RESULTS.md.
 */
import type { ChainedBatch, ColumnFamily, RocksLevel } from '@nxtedition/rocksdb';
import { appendTaskEntriesMax, appendTaskGroupsMax, logPackBytesMax, logPackEntriesMax } from './constants.ts';
import { crc32c, crc32cUpdate } from './crc32c.ts';
import { assert, fail } from './errors.ts';
import {
  LOG_KEY_BYTES,
  META_KEY_BYTES,
  PACKED_ENTRY_HEADER_BYTES,
  PACK_COMMIT_AT,
  PACK_HEADER_BYTES,
  TAG_CONF_STATE,
  TAG_RAFT_STATE,
  TAG_TRUNCATED,
  logKey,
  metaKey,
  writePackHeader,
} from './log-format.ts';
import { PUT_HEADER_BYTES } from './log-task.ts';

/* Local copies: worker threads read imported bindings through getters (see log-shard.ts). */
const PUT_HEADER = PUT_HEADER_BYTES;
const PACK_HEADER = PACK_HEADER_BYTES;
const LOG_KEY = LOG_KEY_BYTES;
const META_KEY = META_KEY_BYTES;
const COMMIT_AT = PACK_COMMIT_AT;
const TWO_32 = 2 ** 32;
const PACKED_ENTRY_HEADER = PACKED_ENTRY_HEADER_BYTES;
const PACK_ENTRIES_MAX = logPackEntriesMax;
const PACK_BYTES_MAX = logPackBytesMax;
const TASK_GROUPS_MAX = appendTaskGroupsMax;
const TASK_ENTRIES_MAX = appendTaskEntriesMax;
const crcUpdate = crc32cUpdate;
const crcOf = crc32c;
/** State record tags are 1..STATE_TAGS (log-format.ts). */
const STATE_TAGS = 3;
const TAG_ORDER = [TAG_RAFT_STATE, TAG_TRUNCATED, TAG_CONF_STATE];
/** Packs per batch < SORT_PACKS (2^17 > appendTaskEntriesMax), group ids < SORT_GROUP_LIMIT. */
const SORT_PACKS = 2 ** 17;
const SORT_GROUP_LIMIT = 2 ** 36;
/** A state record slot that deletes the key (the group was destroyed), or that has no record. */
const DELETE = -1;
const NONE = -2;
/** A pack that was replaced within the batch: it is not written. */
const VOID = -1;

/**
 * What the owner knows of one group's records, kept between batches: the start of every pack on
 * disk from the one holding the first entry on, ascending (the last ones may be this batch's);
 * and the group's share of the batch being planned.
 */
export interface GroupRecords {
  readonly starts: number[];
  /** The batch (BatchPlan.stamp) that `batchPacks` belongs to. */
  batchStamp: number;
  /** This batch's packs of the group (plan slots), in the order of their starts. */
  readonly batchPacks: number[];
  /** The batch that `stateSlots` belongs to. */
  stateStamp: number;
  /** Per state record tag (1..3): the slot of the batch's last record, DELETE, or NONE. */
  readonly stateSlots: Int32Array;
  /** Term and vote of the group's raft state record on disk (-1: none yet). */
  metaTerm: number;
  metaVote: number;
  /** The batch that must write the raft state record (new group, entries replaced). */
  forceMetaStamp: number;
}

export function newGroupRecords(starts: number[] = [], metaTerm = -1, metaVote = -1): GroupRecords {
  return { starts, batchStamp: 0, batchPacks: [], stateStamp: 0, stateSlots: new Int32Array(STATE_TAGS), metaTerm, metaVote, forceMetaStamp: 0 };
}

/** Slot of the last pack in `starts` with a start ≤ index, or -1. */
export function packSlotOf(starts: readonly number[], index: number): number {
  let lo = 0;
  let hi = starts.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (starts[mid]! <= index) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/** The packs and state records of one batch, and which state record of each key is the last. */
export class BatchPlan {
  private chunks: readonly Uint8Array[] = [];
  private stamp = 0;
  /** Packs to write: group, first index, entry count, entry bytes, segment list. */
  private packGroup = new Float64Array(256);
  private packStart = new Float64Array(256);
  private packCount = new Int32Array(256);
  private packBytes = new Int32Array(256);
  private packSegHead = new Int32Array(256);
  private packSegTail = new Int32Array(256);
  /** Each pack's group records (for the commit it carries). */
  private packOwner: GroupRecords[] = [];
  private packs = 0;
  /**
   * Segments: runs of packed entries inside one chunk (a whole encoded pack, or its head when
   * the batch replaced its tail): chunk, offset of the first entry, bytes, count, first index,
   * offset of the source put (-1 once trimmed: then it cannot be sealed in place), next.
   */
  private segChunk = new Int32Array(256);
  private segAt = new Int32Array(256);
  private segBytes = new Int32Array(256);
  private segCount = new Int32Array(256);
  private segFirst = new Float64Array(256);
  private segPut = new Int32Array(256);
  private segNext = new Int32Array(256);
  private segs = 0;
  /** Pack keys to delete: group, start pairs. */
  private readonly deletes: number[] = [];
  /** Groups with state records in this batch (their GroupRecords.stateSlots say which). */
  private readonly stateGroupIds: number[] = [];
  private readonly stateGroups: GroupRecords[] = [];
  private stateChunk = new Int32Array(256);
  private stateAt = new Int32Array(256);
  private states = 0;
  pieces = 0;
  entryCount = 0;
  readonly destroyed: number[] = [];

  reset(chunks: readonly Uint8Array[]): void {
    this.chunks = chunks;
    this.stamp++;
    this.packs = 0;
    this.segs = 0;
    this.deletes.length = 0;
    this.states = 0;
    this.pieces = 0;
    this.entryCount = 0;
    this.stateGroupIds.length = 0;
    this.stateGroups.length = 0;
    this.destroyed.length = 0;
  }

  /** Drops the references to the task's buffers. */
  release(): void {
    this.chunks = [];
    this.packOwner.length = 0;
  }

  /** The batch must write the group's raft state record (see the header). */
  forceMeta(g: GroupRecords): void {
    g.forceMetaStamp = this.stamp;
  }

  /** A piece with entries: counts it against the bounds of one task. */
  piece(count: number): void {
    if (++this.pieces > TASK_GROUPS_MAX) fail('pieces with entries per task');
    this.entryCount += count;
    if (this.entryCount > TASK_ENTRIES_MAX) fail('entries per task');
  }

  private batchPacksOf(g: GroupRecords): number[] {
    if (g.batchStamp !== this.stamp) {
      g.batchStamp = this.stamp;
      g.batchPacks.length = 0;
    }
    return g.batchPacks;
  }

  /**
   * Removes the group's entries ≥ `index`: deletes every pack that starts there or above (this
   * batch's packs are voided as well, their keys may be on disk from an earlier batch) and
   * trims this batch's pack that reaches over `index`. Packs on disk that start below `index`
   * stay: the reader's rule (the greatest start ≤ i) never reads their entries ≥ index again.
   */
  truncateFrom(groupId: number, g: GroupRecords, index: number): void {
    // The log's end may move back: the record says where it is.
    this.forceMeta(g);
    const starts = g.starts;
    const mine = this.batchPacksOf(g);
    while (starts.length > 0 && starts[starts.length - 1]! >= index) {
      const start = starts.pop()!;
      this.deletes.push(groupId, start);
      if (mine.length > 0 && this.packStart[mine[mine.length - 1]!] === start) this.packCount[mine.pop()!] = VOID;
    }
    if (mine.length > 0) {
      const k = mine[mine.length - 1]!;
      if (this.packStart[k]! + this.packCount[k]! > index) this.trimPack(k, index);
    }
  }

  /**
   * Deletes the group's packs that lie wholly below `keepFrom`, the first index still needed
   * (every pack when the log ends before it: `last` < keepFrom).
   */
  dropBelow(groupId: number, g: GroupRecords, keepFrom: number, last: number): void {
    const starts = g.starts;
    // The pack holding keepFrom (the last start ≤ keepFrom) stays; everything before it goes.
    const keep = last < keepFrom ? starts.length : Math.max(0, packSlotOf(starts, keepFrom));
    if (keep === 0) return;
    const mine = this.batchPacksOf(g);
    for (let i = 0; i < keep; i++) {
      const start = starts[i]!;
      this.deletes.push(groupId, start);
      if (mine.length > 0 && this.packStart[mine[0]!] === start) this.packCount[mine.shift()!] = VOID;
    }
    starts.splice(0, keep);
  }

  /**
   * Adds an encoded pack put (checked by the caller: its entries continue the group's log at
   * `first`, after truncateFrom removed what they replace). Merged into the group's last pack of
   * this batch when it continues it and the bounds allow.
   */
  pack(groupId: number, g: GroupRecords, chunk: number, putAt: number, entriesAt: number, bytes: number, first: number, count: number): void {
    const mine = this.batchPacksOf(g);
    const seg = this.newSegment(chunk, putAt, entriesAt, bytes, first, count);
    if (mine.length > 0) {
      const k = mine[mine.length - 1]!;
      const end = this.packStart[k]! + this.packCount[k]!;
      if (end !== first) fail(`group ${groupId}: pack at ${first} after this batch's pack ending at ${end}`);
      if (this.packCount[k]! + count <= PACK_ENTRIES_MAX && this.packBytes[k]! + bytes <= PACK_BYTES_MAX) {
        this.packCount[k] = this.packCount[k]! + count;
        this.packBytes[k] = this.packBytes[k]! + bytes;
        this.segNext[this.packSegTail[k]!] = seg;
        this.packSegTail[k] = seg;
        return;
      }
    }
    if (this.packs === this.packGroup.length) this.growPacks();
    const k = this.packs++;
    this.packGroup[k] = groupId;
    this.packStart[k] = first;
    this.packCount[k] = count;
    this.packBytes[k] = bytes;
    this.packSegHead[k] = seg;
    this.packSegTail[k] = seg;
    this.packOwner[k] = g;
    mine.push(k);
    if (g.starts.length === 0 || g.starts[g.starts.length - 1]! < first) g.starts.push(first);
  }

  /** A state record put at `at` of chunk `chunk`; only the batch's last one per key is written. */
  stateRecord(tag: number, groupId: number, g: GroupRecords, chunk: number, at: number): void {
    if (!(tag >= 1 && tag <= STATE_TAGS)) fail(`unknown state record tag ${tag}`);
    if (this.states === this.stateChunk.length) {
      this.stateChunk = grow(this.stateChunk);
      this.stateAt = grow(this.stateAt);
    }
    const k = this.states++;
    this.stateChunk[k] = chunk;
    this.stateAt[k] = at;
    this.stateSlotsOf(groupId, g)[tag - 1] = k;
  }

  destroy(groupId: number, g: GroupRecords): void {
    this.stateSlotsOf(groupId, g).fill(DELETE);
    this.destroyed.push(groupId);
  }

  private stateSlotsOf(groupId: number, g: GroupRecords): Int32Array {
    if (g.stateStamp !== this.stamp) {
      g.stateStamp = this.stamp;
      g.stateSlots.fill(NONE);
      this.stateGroupIds.push(groupId);
      this.stateGroups.push(g);
    }
    return g.stateSlots;
  }

  /**
   * Puts everything into `batch`: pack deletes first (a later put of the same key wins), the
   * last state record per key, then the packs in key order (group, then start: the memtable
   * inserts neighbouring keys, much cheaper than interleaved ones).
   */
  putAll(batch: LogBatch): void {
    const deletes = this.deletes;
    for (let i = 0; i < deletes.length; i += 2) batch.delLog(logKey(deletes[i]!, deletes[i + 1]!));
    this.putStateRecords(batch);
    this.putPacks(batch);
  }

  /** Seals the last state record per key in place (the checksum covers key ‖ value[4..]) and puts it. */
  private putStateRecords(batch: LogBatch): void {
    const groups = this.stateGroups;
    for (let i = 0; i < groups.length; i++) {
      const groupId = this.stateGroupIds[i]!;
      const g = groups[i]!;
      const slots = g.stateSlots;
      for (const tag of TAG_ORDER) {
        const k = slots[tag - 1]!;
        if (k === NONE) continue;
        if (k === DELETE) {
          batch.delMeta(metaKey(tag, groupId));
          continue;
        }
        const task = this.chunks[this.stateChunk[k]!]!;
        const at = this.stateAt[k]!;
        const keyBytes = (task[at + 2]! << 8) | task[at + 3]!;
        const valueBytes = ((task[at + 4]! << 24) | (task[at + 5]! << 16) | (task[at + 6]! << 8) | task[at + 7]!) >>> 0;
        const keyAt = at + PUT_HEADER;
        const valueAt = keyAt + keyBytes;
        if (tag === TAG_RAFT_STATE && !this.writesRaftState(g, task, valueAt)) continue;
        writeU32(task, valueAt, crcUpdate(crcUpdate(0, task, keyAt, valueAt), task, valueAt + 4, valueAt + valueBytes));
        const base = task.byteOffset;
        batch.putMeta(new Uint8Array(task.buffer, base + keyAt, keyBytes), new Uint8Array(task.buffer, base + valueAt, valueBytes));
      }
    }
  }

  /**
   * Whether the batch writes the group's raft state record (at `valueAt` of `task`), or leaves
   * it to the group's packs: only its commit and last index would change, and the packs say both.
   */
  private writesRaftState(g: GroupRecords, task: Uint8Array, valueAt: number): boolean {
    const term = readU32(task, valueAt + 8) * TWO_32 + readU32(task, valueAt + 12);
    const vote = readU32(task, valueAt + 16) * TWO_32 + readU32(task, valueAt + 20);
    const packs = g.batchStamp === this.stamp ? g.batchPacks.length : 0;
    if (packs > 0 && g.forceMetaStamp !== this.stamp && term === g.metaTerm && vote === g.metaVote) return false;
    g.metaTerm = term;
    g.metaVote = vote;
    return true;
  }

  /** Copies the commit of the group's last raft state record of this batch into a pack header at `at`. */
  private stampCommit(g: GroupRecords, out: Uint8Array, at: number): void {
    if (g.stateStamp !== this.stamp) return;
    const k = g.stateSlots[TAG_RAFT_STATE - 1]!;
    if (k < 0) return;
    const task = this.chunks[this.stateChunk[k]!]!;
    const from = this.stateAt[k]! + PUT_HEADER + META_KEY + 24;
    for (let i = 0; i < 8; i++) out[at + COMMIT_AT + i] = task[from + i]!;
  }

  private putPacks(batch: LogBatch): void {
    const n = this.packs;
    const group = this.packGroup;
    // A stable sort by group id: a group's packs are created in the order of their starts. Packed
    // into one number per pack (group · 2^17 + pack, exact below 2^53) the native numeric sort
    // needs no comparator calls.
    let packed = true;
    const keys = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const g = group[i]!;
      if (g >= SORT_GROUP_LIMIT) packed = false;
      keys[i] = g * SORT_PACKS + i;
    }
    let order: Int32Array | null = null;
    if (packed) keys.sort();
    else {
      order = new Int32Array(n);
      for (let i = 0; i < n; i++) order[i] = i;
      order.sort((a, b) => group[a]! - group[b]! || a - b);
    }
    for (let i = 0; i < n; i++) {
      const k = order === null ? keys[i]! % SORT_PACKS : order[i]!;
      if (this.packCount[k] === VOID) continue;
      const seg = this.packSegHead[k]!;
      if (seg === this.packSegTail[k] && this.segPut[seg]! >= 0) this.putInPlace(batch, k, seg);
      else this.putMerged(batch, k);
    }
  }

  /** Seals an encoded pack in its chunk and puts views of it (no copy here; the binding copies). */
  private putInPlace(batch: LogBatch, k: number, seg: number): void {
    const task = this.chunks[this.segChunk[seg]!]!;
    const at = this.segPut[seg]!;
    const keyAt = at + PUT_HEADER;
    const valueAt = keyAt + LOG_KEY;
    const valueEnd = this.segAt[seg]! + this.segBytes[seg]!;
    this.stampCommit(this.packOwner[k]!, task, valueAt);
    // The checksum covers key ‖ value[4..] and is stored in value[0..4] (log-format.ts).
    const crc = crcUpdate(crcUpdate(0, task, keyAt, valueAt), task, valueAt + 4, valueEnd);
    writeU32(task, valueAt, crc);
    const base = task.byteOffset;
    batch.putLog(new Uint8Array(task.buffer, base + keyAt, LOG_KEY), new Uint8Array(task.buffer, base + valueAt, valueEnd - valueAt));
  }

  /** Copies a merged or trimmed pack's segments into one new value, seals and puts it. */
  private putMerged(batch: LogBatch, k: number): void {
    const key = logKey(this.packGroup[k]!, this.packStart[k]!);
    const value = new Uint8Array(PACK_HEADER + this.packBytes[k]!);
    writePackHeader(value, 0, this.packCount[k]!, 0);
    this.stampCommit(this.packOwner[k]!, value, 0);
    let at = PACK_HEADER;
    for (let seg = this.packSegHead[k]!; seg >= 0; seg = this.segNext[seg]!) {
      const task = this.chunks[this.segChunk[seg]!]!;
      const from = this.segAt[seg]!;
      value.set(task.subarray(from, from + this.segBytes[seg]!), at);
      at += this.segBytes[seg]!;
    }
    assert(at === value.byteLength, 'a merged pack fills its value');
    writeU32(value, 0, crcUpdate(crcOf(key), value, 4));
    batch.putLog(key, value);
  }

  /** Cuts pack k of this batch to its entries below `index` (start < index < its end). */
  private trimPack(k: number, index: number): void {
    let seg = this.packSegHead[k]!;
    let count = 0;
    let bytes = 0;
    for (;;) {
      const segEnd = this.segFirst[seg]! + this.segCount[seg]!;
      if (segEnd >= index) break;
      count += this.segCount[seg]!;
      bytes += this.segBytes[seg]!;
      seg = this.segNext[seg]!;
    }
    // Entries of `seg` below index stay: walk them to find where the first replaced one starts.
    const task = this.chunks[this.segChunk[seg]!]!;
    const keepCount = index - this.segFirst[seg]!;
    let at = this.segAt[seg]!;
    for (let i = 0; i < keepCount; i++) at += PACKED_ENTRY_HEADER + readU32(task, at + 12);
    const keepBytes = at - this.segAt[seg]!;
    if (keepCount < this.segCount[seg]!) this.segPut[seg] = -1;
    this.segCount[seg] = keepCount;
    this.segBytes[seg] = keepBytes;
    this.segNext[seg] = -1;
    this.packSegTail[k] = seg;
    this.packCount[k] = count + keepCount;
    this.packBytes[k] = bytes + keepBytes;
    assert(this.packStart[k]! + this.packCount[k]! === index, 'a trimmed pack ends where the replacement starts');
  }

  private newSegment(chunk: number, putAt: number, entriesAt: number, bytes: number, first: number, count: number): number {
    if (this.segs === this.segChunk.length) this.growSegments();
    const s = this.segs++;
    this.segChunk[s] = chunk;
    this.segAt[s] = entriesAt;
    this.segBytes[s] = bytes;
    this.segCount[s] = count;
    this.segFirst[s] = first;
    this.segPut[s] = putAt;
    this.segNext[s] = -1;
    return s;
  }

  private growPacks(): void {
    this.packGroup = grow(this.packGroup);
    this.packStart = grow(this.packStart);
    this.packCount = grow(this.packCount);
    this.packBytes = grow(this.packBytes);
    this.packSegHead = grow(this.packSegHead);
    this.packSegTail = grow(this.packSegTail);
  }

  private growSegments(): void {
    this.segChunk = grow(this.segChunk);
    this.segAt = grow(this.segAt);
    this.segBytes = grow(this.segBytes);
    this.segCount = grow(this.segCount);
    this.segFirst = grow(this.segFirst);
    this.segPut = grow(this.segPut);
    this.segNext = grow(this.segNext);
  }
}

function grow<T extends Int32Array | Float64Array>(a: T): T {
  const next = new (a.constructor as new (n: number) => T)(a.length * 2);
  next.set(a);
  return next;
}

function readU32(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}

function writeU32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value >>> 24;
  bytes[at + 1] = value >>> 16;
  bytes[at + 2] = value >>> 8;
  bytes[at + 3] = value;
}

/**
 * One native write batch of a log shard. The binding copies key and value bytes at each put, so
 * views into a task's chunks may be reused right after.
 */
export class LogBatch {
  private readonly batch: ChainedBatch;
  private readonly meta: { readonly column: ColumnFamily };
  private readonly log: { readonly column: ColumnFamily };
  private closed = false;

  constructor(db: RocksLevel, meta: ColumnFamily, log: ColumnFamily) {
    this.batch = db.batch();
    assert(typeof this.batch._put === 'function' && typeof this.batch._del === 'function', '@nxtedition/rocksdb chained batch has _put/_del');
    this.meta = { column: meta };
    this.log = { column: log };
  }

  putLog(key: Uint8Array, value: Uint8Array): void {
    this.batch._put(key, value, this.log);
  }

  delLog(key: Uint8Array): void {
    this.batch._del(key, this.log);
  }

  putMeta(key: Uint8Array, value: Uint8Array): void {
    this.batch._put(key, value, this.meta);
  }

  delMeta(key: Uint8Array): void {
    this.batch._del(key, this.meta);
  }

  /** Writes the batch with ONE fsync, or none (only batch writes honour `sync`). */
  async write(sync: boolean): Promise<void> {
    // An empty chained batch "writes" without syncing: a task always carries a record.
    assert(this.batch.length > 0, 'a task writes at least one record');
    this.closed = true;
    await this.batch.write({ sync });
  }

  close(): void {
    if (!this.closed) {
      this.closed = true;
      void this.batch.close().catch(() => {});
    }
  }
}
