/**
 * How a shard owner turns one append task into ONE RocksDB write batch, cheaply: the task's
 * chunks are checked and sealed in place (log-shard.ts), this file remembers WHERE each piece's
 * entries and state records sit, and then puts zero-copy views of the chunk bytes into a native
 * write batch — entries sorted by (group, index), only the last state record per key.
 *
 * No object per entry: positions live in reused typed arrays, and the puts go straight to the
 * binding's chained batch (`_put`, the method abstract-level's `put` ends in) instead of an
 * array of operation objects that abstract-level would copy, re-encode and wrap once more.
 * Measured in benchmarks/storage/RESULTS.md.
 */
import type { ChainedBatch, ColumnFamily, RocksLevel } from '@nxtedition/rocksdb';
import { appendTaskEntriesMax, appendTaskGroupsMax } from './constants.ts';
import { assert, fail } from './errors.ts';
import { PUT_HEADER_BYTES } from './log-task.ts';
import { TAG_CONF_STATE, TAG_RAFT_STATE, TAG_TRUNCATED, metaKey } from './log-format.ts';

/** A local copy: worker threads read imported bindings through getters (see log-shard.ts). */
const PUT_HEADER = PUT_HEADER_BYTES;
const TASK_GROUPS_MAX = appendTaskGroupsMax;
const TASK_ENTRIES_MAX = appendTaskEntriesMax;
const STATE_TAGS = [TAG_RAFT_STATE, TAG_TRUNCATED, TAG_CONF_STATE] as const;
/** Pieces per task < PACKED_PIECES (2^17 > appendTaskGroupsMax), group ids < PACKED_GROUP_LIMIT. */
const PACKED_PIECES = 2 ** 17;
const PACKED_GROUP_LIMIT = 2 ** 36;
/** A state record slot that deletes the key (the group was destroyed). */
const DELETE = -1;

/** Where the puts of one task are, and which state record of each key is the last. */
export class BatchPlan {
  private chunks: readonly Uint8Array[] = [];
  /** Pieces with entries: group, chunk, offset of the first entry put, entry count. */
  private pieceGroup = new Float64Array(256);
  private pieceChunk = new Int32Array(256);
  private pieceAt = new Int32Array(256);
  private pieceCount = new Int32Array(256);
  private pieces = 0;
  /** Per state tag: group → slot in stateChunk/stateAt (DELETE: delete the key). */
  private readonly lastState = new Map<number, Map<number, number>>(STATE_TAGS.map((t) => [t, new Map()]));
  private stateChunk = new Int32Array(256);
  private stateAt = new Int32Array(256);
  private states = 0;
  entryCount = 0;
  readonly touched: number[] = [];
  readonly destroyed: number[] = [];

  reset(chunks: readonly Uint8Array[]): void {
    this.chunks = chunks;
    this.pieces = 0;
    this.states = 0;
    this.entryCount = 0;
    for (const m of this.lastState.values()) m.clear();
    this.touched.length = 0;
    this.destroyed.length = 0;
  }

  /** Drops the references to the task's buffers. */
  release(): void {
    this.chunks = [];
  }

  entries(groupId: number, chunk: number, at: number, count: number): void {
    if (this.pieces >= TASK_GROUPS_MAX) fail('pieces with entries per task');
    if (this.pieces === this.pieceGroup.length) this.growPieces();
    const k = this.pieces++;
    this.pieceGroup[k] = groupId;
    this.pieceChunk[k] = chunk;
    this.pieceAt[k] = at;
    this.pieceCount[k] = count;
    this.entryCount += count;
    if (this.entryCount > TASK_ENTRIES_MAX) fail('entries per task');
  }

  stateRecord(tag: number, groupId: number, chunk: number, at: number): void {
    const last = this.lastState.get(tag);
    if (last === undefined) fail(`unknown state record tag ${tag}`);
    if (this.states === this.stateChunk.length) {
      this.stateChunk = grow(this.stateChunk);
      this.stateAt = grow(this.stateAt);
    }
    const k = this.states++;
    this.stateChunk[k] = chunk;
    this.stateAt[k] = at;
    // Only the last record per key matters in one atomic batch (the order of puts of distinct
    // keys does not).
    last.set(groupId, k);
  }

  destroy(groupId: number): void {
    for (const last of this.lastState.values()) last.set(groupId, DELETE);
    this.destroyed.push(groupId);
  }

  putStateRecords(batch: LogBatch): void {
    for (const [tag, last] of this.lastState) {
      for (const [groupId, k] of last) {
        if (k === DELETE) {
          batch.delMeta(metaKey(tag, groupId));
          continue;
        }
        const task = this.chunks[this.stateChunk[k]!]!;
        batch.putMeta(...putAt(task, this.stateAt[k]!));
      }
    }
  }

  /** Every entry put, grouped by group id (ascending), each group's pieces in submission order. */
  putEntries(batch: LogBatch): void {
    const n = this.pieces;
    const group = this.pieceGroup;
    // A stable sort by group id: ties keep submission order. Packed into one number per piece
    // (group · 2^17 + piece, exact below 2^53) the native numeric sort needs no comparator calls.
    let packed = true;
    const keys = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const g = group[i]!;
      if (g >= PACKED_GROUP_LIMIT) packed = false;
      keys[i] = g * PACKED_PIECES + i;
    }
    let order: Int32Array | null = null;
    if (packed) keys.sort();
    else {
      order = new Int32Array(n);
      for (let i = 0; i < n; i++) order[i] = i;
      order.sort((a, b) => group[a]! - group[b]! || a - b);
    }
    for (let i = 0; i < n; i++) {
      const k = order === null ? keys[i]! % PACKED_PIECES : order[i]!;
      const task = this.chunks[this.pieceChunk[k]!]!;
      const base = task.byteOffset;
      const buffer = task.buffer;
      let at = this.pieceAt[k]!;
      for (let e = this.pieceCount[k]!; e > 0; e--) {
        const keyBytes = (task[at + 2]! << 8) | task[at + 3]!;
        const valueBytes = ((task[at + 4]! << 24) | (task[at + 5]! << 16) | (task[at + 6]! << 8) | task[at + 7]!) >>> 0;
        const keyAt = at + PUT_HEADER;
        batch.putLog(new Uint8Array(buffer, base + keyAt, keyBytes), new Uint8Array(buffer, base + keyAt + keyBytes, valueBytes));
        at = keyAt + keyBytes + valueBytes;
      }
    }
  }

  private growPieces(): void {
    this.pieceGroup = grow(this.pieceGroup);
    this.pieceChunk = grow(this.pieceChunk);
    this.pieceAt = grow(this.pieceAt);
    this.pieceCount = grow(this.pieceCount);
  }
}

function grow<T extends Int32Array | Float64Array>(a: T): T {
  const next = new (a.constructor as new (n: number) => T)(a.length * 2);
  next.set(a);
  return next;
}

/** Key and value views of the put whose header is at `at`. */
function putAt(task: Uint8Array, at: number): [Uint8Array, Uint8Array] {
  const keyBytes = (task[at + 2]! << 8) | task[at + 3]!;
  const valueBytes = ((task[at + 4]! << 24) | (task[at + 5]! << 16) | (task[at + 6]! << 8) | task[at + 7]!) >>> 0;
  const keyAt = task.byteOffset + at + PUT_HEADER;
  return [new Uint8Array(task.buffer, keyAt, keyBytes), new Uint8Array(task.buffer, keyAt + keyBytes, valueBytes)];
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
