/**
 * The owner of one log shard's RocksDB. Runs inside a piscina worker (worker mode) or on the
 * main thread (inline mode); the code is the same. It is the only code that touches the DB.
 *
 * - append(task): checksums every value, asserts order (task sequence, each group's last
 *   index, consecutive entry indexes, non-decreasing terms), writes ONE batch with ONE sync,
 *   then garbage-collects discarded entries with range deletes (never needed for correctness:
 *   recovery ignores entries below the truncation and above the recorded last index).
 * - read(group, lo, hi): verified entries for a cache miss.
 * - recover(): the open-time scan (see README "Recovery").
 */
import { RocksLevel, type BatchOperation, type ColumnFamily } from '@nxtedition/rocksdb';
import type { ConfState, HardState } from '@flotilla/raft';
import { appendTaskGroupsMax, groupsMax, logFetchBytesMax, logFetchEntriesMax, scanRowsPerStepMax } from './constants.ts';
import { crc32cUpdate } from './crc32c.ts';
import { StorageError, assert, fail } from './errors.ts';
import { BatchPlan, LogBatch } from './log-batch.ts';
import {
  ENTRY_HEADER_BYTES,
  LOG_KEY_BYTES,
  META_KEY_BYTES,
  RAFT_STATE_BYTES,
  TAG_CONF_STATE,
  TAG_FORMAT,
  TAG_RAFT_STATE,
  TAG_TRUNCATED,
  TRUNCATED_BYTES,
  checkValue,
  decodeConfStateValue,
  decodeRaftStateValue,
  decodeTruncatedValue,
  formatRecord,
  logKey,
  logKeyGroupEnd,
  metaKey,
  readU64,
  sealValue,
  writeRaftStateValue,
  type TruncatedState,
} from './log-format.ts';
import {
  COLUMN_LOG,
  COLUMN_META,
  PIECE_DESTROY,
  PIECE_HEADER_BYTES,
  PIECE_SNAPSHOT,
  PUT_HEADER_BYTES,
  READ_COMPACTED,
  READ_HEADER_BYTES,
  READ_OK,
  CHUNK_HEADER_BYTES,
  CHUNK_MAGIC,
} from './log-task.ts';

/*
 * Worker threads load this module through tsx's CommonJS transform (on Node 20 its ESM hooks do
 * not reach worker threads), where each read of an imported binding is a getter call: ~5% of a
 * shard owner's time when the per-entry loop read them. That loop reads these copies instead.
 */
const crcUpdate = crc32cUpdate;
const u64At = readU64;
const PUT_HEADER = PUT_HEADER_BYTES;
const LOG_KEY = LOG_KEY_BYTES;
const META_KEY = META_KEY_BYTES;
const ENTRY_HEADER = ENTRY_HEADER_BYTES;
const PIECE_HEADER = PIECE_HEADER_BYTES;
const COLUMN_ENTRY = COLUMN_LOG;
const COLUMN_STATE = COLUMN_META;
const FLAG_SNAPSHOT = PIECE_SNAPSHOT;
const FLAG_DESTROY = PIECE_DESTROY;
const GROUPS_MAX = groupsMax;
const TWO_32 = 2 ** 32;

export interface GroupRecovery {
  readonly groupId: number;
  readonly hardState: HardState;
  readonly confState: ConfState | null;
  readonly truncated: TruncatedState;
  readonly lastIndex: number;
  /** Runs of equal terms over (truncated.index, lastIndex]: start0, term0, start1, term1, … */
  readonly runs: number[];
}

export interface ShardRecovery {
  readonly groups: GroupRecovery[];
  readonly entries: number;
  readonly staleEntries: number;
  readonly cut: { groupId: number; fromIndex: number; lastIndexBefore: number; reason: string }[];
}

export interface ShardStats {
  readonly tasks: number;
  readonly syncs: number;
  readonly entries: number;
}

/** What the owner tracks per group to assert order and to collect garbage. */
interface OwnedGroup {
  last: number;
  truncated: number;
  /** Highest index that may still have a key on disk. */
  maxKey: number;
  /** Keys at or below this index have been range-deleted. */
  clearedBelow: number;
}

export class LogShard {
  private readonly groups = new Map<number, OwnedGroup>();
  private seq = 0;
  private tasks = 0;
  private syncs = 0;
  private entries = 0;
  private recovered = false;
  /** Scratch of append(): positions of the task's puts (reused, no object per entry). */
  private readonly plan = new BatchPlan();

  private constructor(
    private readonly db: RocksLevel,
    readonly path: string,
  ) {}

  static async open(path: string): Promise<LogShard> {
    const db = new RocksLevel(path, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    // Options measured on the 2-core reference machine (benchmarks/storage/RESULTS.md):
    // - columns uncompressed: entries live briefly (compaction follows the applied index), and
    //   ZSTD with dictionary training on every flush costs CPU a 2-core machine cannot spare;
    // - no WAL compression: the binding's default (ZSTD over every synced batch) cost the owner
    //   ~0.3 µs per entry even on the benchmark's constant payloads, ~1.4 µs on random ones;
    // - no bloom filters: both columns are only ever read by range (entries of a group, the
    //   recovery scan), never by point lookup, so building filters on flush is wasted work;
    // - universal compaction for the log (least rewriting of short-lived data).
    await db.open({
      createIfMissing: true,
      columns: {
        default: {},
        meta: { compression: false, filterPolicy: 'nullptr' },
        log: { compression: false, compaction: 'universal', filterPolicy: 'nullptr' },
      },
      walCompression: false,
      infoLogLevel: 'error',
    });
    return new LogShard(db, path);
  }

  private get metaColumn(): ColumnFamily {
    const c = this.db.columns['meta'];
    assert(c !== undefined, 'meta column open');
    return c;
  }

  private get logColumn(): ColumnFamily {
    const c = this.db.columns['log'];
    assert(c !== undefined, 'log column open');
    return c;
  }

  stats(): ShardStats {
    return { tasks: this.tasks, syncs: this.syncs, entries: this.entries };
  }

  // ---- append -------------------------------------------------------------------------------

  /**
   * Writes tasks `seq`..`lastSeq` (consecutive; their chunks in order) as ONE batch with ONE
   * sync (none when `sync` is false: LogWriteOptions). A worker passes every task that arrived
   * while the previous batch was written.
   */
  async append(seq: number, chunks: readonly Uint8Array[], lastSeq = seq, sync = true): Promise<void> {
    assert(this.recovered, 'append after recovery');
    if (seq !== this.seq + 1) fail(`task sequence: expected ${this.seq + 1}, got ${seq}`);
    if (!(lastSeq >= seq)) fail(`task sequence: batch of tasks ${seq}..${lastSeq}`);
    this.seq = lastSeq;
    const plan = this.plan;
    plan.reset(chunks);
    // Pass 1: check order, checksum every value in place, note where each piece's entries are.
    let pieceTotal = 0;
    for (let c = 0; c < chunks.length; c++) {
      const task = chunks[c]!;
      const view = new DataView(task.buffer, task.byteOffset, task.byteLength);
      assert(view.getUint32(0) === CHUNK_MAGIC, 'chunk magic');
      const pieceCount = view.getUint32(4);
      pieceTotal += pieceCount;
      assert(pieceTotal <= appendTaskGroupsMax, 'pieces per task');
      let at = CHUNK_HEADER_BYTES;
      for (let p = 0; p < pieceCount; p++) at = this.checkPiece(plan, c, task, view, at);
      if (at !== task.byteLength) fail(`chunk parsed ${at} of ${task.byteLength} bytes`);
    }
    // Pass 2: ONE batch — the last state record per key, then the entries in key order (group,
    // then index: the memtable inserts neighbouring keys, much cheaper than interleaved ones; a
    // group's pieces keep their submission order, so a later put of the same key still wins).
    const batch = new LogBatch(this.db, this.metaColumn, this.logColumn);
    try {
      plan.putStateRecords(batch);
      plan.putEntries(batch);
      await batch.write(sync);
    } finally {
      batch.close();
    }
    this.tasks++;
    if (sync) this.syncs++;
    this.entries += plan.entryCount;
    // Garbage collection of discarded entries: ordered after the batch in the WAL.
    for (const groupId of plan.destroyed) await this.clearLog(groupId, 0, Number.MAX_SAFE_INTEGER);
    for (const groupId of plan.touched) {
      const owned = this.groups.get(groupId);
      if (owned === undefined) continue;
      if (owned.maxKey > owned.last) {
        await this.clearLog(groupId, owned.last + 1, Number.MAX_SAFE_INTEGER);
        owned.maxKey = owned.last;
      }
      if (owned.truncated > owned.clearedBelow) {
        await this.clearLog(groupId, 0, owned.truncated + 1);
        owned.clearedBelow = owned.truncated;
      }
    }
    plan.release();
  }

  /** Checks and seals one piece starting at `at` of chunk `c`; returns the offset after it. */
  private checkPiece(plan: BatchPlan, c: number, task: Uint8Array, view: DataView, at: number): number {
    const groupId = view.getFloat64(at);
    const prevLast = view.getFloat64(at + 8);
    const newLast = view.getFloat64(at + 16);
    const truncatedIndex = view.getFloat64(at + 24);
    const firstNew = view.getFloat64(at + 32);
    const flags = view.getUint32(at + 40);
    const puts = view.getUint32(at + 44);
    at += PIECE_HEADER;
    let owned = this.groups.get(groupId);
    if (owned === undefined) {
      assert(this.groups.size < GROUPS_MAX, 'groups per shard');
      // The range delete after the batch would remove the new incarnation's entries.
      if (plan.destroyed.length > 0 && plan.destroyed.includes(groupId)) fail(`group ${groupId}: written after its destroy in one batch`);
      owned = { last: 0, truncated: 0, maxKey: 0, clearedBelow: 0 };
      this.groups.set(groupId, owned);
    }
    if (prevLast !== owned.last) fail(`group ${groupId}: order broken, piece continues ${prevLast} but the log ends at ${owned.last}`);
    if ((flags & FLAG_SNAPSHOT) === 0 && firstNew !== 0) {
      if (firstNew > owned.last + 1) fail(`group ${groupId}: gap, first new ${firstNew} after ${owned.last}`);
      if (firstNew <= owned.truncated) fail(`group ${groupId}: append ${firstNew} at or below truncation ${owned.truncated}`);
    }
    let expectIndex = firstNew;
    let prevTerm = -1;
    let entriesAt = -1;
    let entriesEnd = -1;
    for (let i = 0; i < puts; i++) {
      const column = task[at]!;
      const keyBytes = view.getUint16(at + 2);
      const valueBytes = view.getUint32(at + 4);
      const keyAt = at + PUT_HEADER;
      const valueAt = keyAt + keyBytes;
      if (valueBytes < 5 || valueAt + valueBytes > task.byteLength) fail(`group ${groupId}: put of ${valueBytes} value bytes beyond its chunk`);
      // The checksum covers key ‖ value[4..] and is stored in value[0..4] (log-format.ts).
      const crc = crcUpdate(crcUpdate(0, task, keyAt, valueAt), task, valueAt + 4, valueAt + valueBytes);
      view.setUint32(valueAt, crc);
      if (column === COLUMN_ENTRY) {
        if (keyBytes !== LOG_KEY || valueBytes < ENTRY_HEADER) fail('entry put shape');
        // u64s read as two u32s through the DataView (one load each, vs eight byte loads).
        if (view.getUint32(keyAt) * TWO_32 + view.getUint32(keyAt + 4) !== groupId) fail(`group ${groupId}: entry key of another group`);
        const index = view.getUint32(keyAt + 8) * TWO_32 + view.getUint32(keyAt + 12);
        if (index !== expectIndex) fail(`group ${groupId}: entry ${index} where ${expectIndex} was expected`);
        const term = view.getUint32(valueAt + 8) * TWO_32 + view.getUint32(valueAt + 12);
        if (term < prevTerm) fail(`group ${groupId}: term goes back at ${index}`);
        prevTerm = term;
        expectIndex++;
        // A piece's entry puts are adjacent: putEntries() walks them from the first one.
        if (entriesAt < 0) entriesAt = at;
        else if (at !== entriesEnd) fail(`group ${groupId}: entry puts of a piece are not adjacent`);
        entriesEnd = valueAt + valueBytes;
      } else {
        if (column !== COLUMN_STATE) fail(`group ${groupId}: put to unknown column ${column}`);
        if (keyBytes !== META_KEY) fail('meta put shape');
        if (u64At(task, keyAt + 1) !== groupId) fail(`group ${groupId}: state record of another group`);
        plan.stateRecord(task[keyAt]!, groupId, c, at);
      }
      at = valueAt + valueBytes;
    }
    const entryCount = firstNew === 0 ? 0 : expectIndex - firstNew;
    if (firstNew !== 0) {
      if (expectIndex - 1 !== newLast) fail(`group ${groupId}: entries end at ${expectIndex - 1}, piece says ${newLast}`);
      plan.entries(groupId, c, entriesAt, entryCount);
    }
    if ((flags & FLAG_DESTROY) !== 0) {
      plan.destroy(groupId);
      this.groups.delete(groupId);
      return at;
    }
    owned.last = newLast;
    owned.truncated = truncatedIndex;
    owned.maxKey = Math.max(owned.maxKey, newLast);
    plan.touched.push(groupId);
    return at;
  }

  /** Range-deletes entries [lo, hi) of a group (hi = MAX_SAFE_INTEGER: to the group's end). */
  private async clearLog(groupId: number, lo: number, hi: number): Promise<void> {
    const lt = hi === Number.MAX_SAFE_INTEGER ? logKeyGroupEnd(groupId) : logKey(groupId, hi);
    await this.db.clear({ column: this.logColumn, gte: logKey(groupId, lo), lt });
  }

  // ---- read -----------------------------------------------------------------------------------

  /** Entries [lo, min(hi, last+1)) of a group, at most maxBytes (at least one), verified. */
  async read(groupId: number, lo: number, hi: number, maxBytes: number): Promise<Uint8Array> {
    const owned = this.groups.get(groupId);
    const header = new Uint8Array(new ArrayBuffer(READ_HEADER_BYTES));
    const hview = new DataView(header.buffer);
    if (owned === undefined || lo <= owned.truncated) {
      hview.setUint32(0, READ_COMPACTED);
      return header;
    }
    const end = Math.min(hi, owned.last + 1, lo + logFetchEntriesMax);
    const budget = Math.min(maxBytes, logFetchBytesMax);
    const values: Buffer[] = [];
    let bytes = 0;
    if (lo < end) {
      const it = this.db.iterator({ column: this.logColumn, gte: logKey(groupId, lo), lt: logKey(groupId, end), fillCache: false });
      try {
        let expect = lo;
        outer: while (expect < end) {
          const rows = await it.nextv(Math.min(scanRowsPerStepMax, end - expect));
          if (rows.length === 0) break;
          for (const [key, value] of rows) {
            const index = readU64(key, 8);
            if (index !== expect) {
              throw new StorageError('FLOTILLA_STORAGE_CORRUPTION', `group ${groupId}: entry ${expect} missing on disk (found ${index})`);
            }
            checkValue(key, value, ENTRY_HEADER_BYTES, `group ${groupId} entry ${index}`);
            const size = value.byteLength - ENTRY_HEADER_BYTES;
            if (values.length > 0 && bytes + size > budget) break outer;
            values.push(value);
            bytes += size;
            expect++;
          }
        }
        if (values.length === 0 || expect < Math.min(end, lo + 1)) {
          throw new StorageError('FLOTILLA_STORAGE_CORRUPTION', `group ${groupId}: entry ${expect} missing on disk (log ends at ${owned.last})`);
        }
      } finally {
        await it.close();
      }
    }
    let total = READ_HEADER_BYTES;
    for (const v of values) total += 4 + v.byteLength;
    const out = new Uint8Array(new ArrayBuffer(total));
    const oview = new DataView(out.buffer);
    oview.setUint32(0, READ_OK);
    oview.setUint32(4, values.length);
    oview.setFloat64(8, lo);
    let at = READ_HEADER_BYTES;
    for (const v of values) {
      oview.setUint32(at, v.byteLength);
      out.set(v, at + 4);
      at += 4 + v.byteLength;
    }
    return out;
  }

  // ---- recovery ----------------------------------------------------------------------------------

  async recover(): Promise<ShardRecovery> {
    assert(!this.recovered, 'recover once');
    const meta = this.metaColumn;
    const log = this.logColumn;
    interface Scan {
      groupId: number;
      hardState: HardState;
      lastIndex: number;
      hasRaftState: boolean;
      confState: ConfState | null;
      truncated: TruncatedState;
      runs: number[];
      expect: number;
      prevTerm: number;
      cutAt: number;
      cutReason: string;
      maxKey: number;
      staleBelow: boolean;
    }
    const scans = new Map<number, Scan>();
    const scanOf = (groupId: number): Scan => {
      let s = scans.get(groupId);
      if (s === undefined) {
        if (scans.size >= groupsMax) throw new StorageError('FLOTILLA_STORAGE_LIMIT_EXCEEDED', `${this.path}: more than groupsMax ${groupsMax} groups`);
        s = {
          groupId,
          hardState: { term: 0, vote: 0, commit: 0 },
          lastIndex: 0,
          hasRaftState: false,
          confState: null,
          truncated: { index: 0, term: 0 },
          runs: [],
          expect: 0,
          prevTerm: 0,
          cutAt: 0,
          cutReason: '',
          maxKey: 0,
          staleBelow: false,
        };
        scans.set(groupId, s);
      }
      return s;
    };

    // 1. Format record and state records.
    let sawFormat = false;
    let sawOther = false;
    await this.scanColumn(meta, (key, value) => {
      if (key.byteLength !== META_KEY_BYTES) throw new StorageError('FLOTILLA_STORAGE_CORRUPTION', `${this.path}: meta key of ${key.byteLength} bytes`);
      const tag = key[0]!;
      const groupId = readU64(key, 1);
      if (tag === TAG_FORMAT) {
        checkValue(key, value, 5, `${this.path}: format record`);
        sawFormat = true;
        return;
      }
      sawOther = true;
      const s = scanOf(groupId);
      if (tag === TAG_RAFT_STATE) {
        checkValue(key, value, RAFT_STATE_BYTES, `group ${groupId} raft state`);
        const r = decodeRaftStateValue(value);
        s.hardState = r.hardState;
        s.lastIndex = r.lastIndex;
        s.hasRaftState = true;
      } else if (tag === TAG_TRUNCATED) {
        checkValue(key, value, TRUNCATED_BYTES, `group ${groupId} truncated state`);
        s.truncated = decodeTruncatedValue(value);
      } else if (tag === TAG_CONF_STATE) {
        checkValue(key, value, 24, `group ${groupId} conf state`);
        s.confState = decodeConfStateValue(value);
      } else {
        throw new StorageError('FLOTILLA_STORAGE_CORRUPTION', `${this.path}: unknown meta tag ${tag}`);
      }
    });
    for (const s of scans.values()) {
      s.expect = s.truncated.index + 1;
      s.prevTerm = s.truncated.term;
      if (!s.hasRaftState) s.lastIndex = s.truncated.index;
      if (s.lastIndex < s.truncated.index) throw new StorageError('FLOTILLA_STORAGE_CORRUPTION', `group ${s.groupId}: last index ${s.lastIndex} below truncation ${s.truncated.index}`);
    }

    // 2. Every entry, in key order: contiguity, checksums, terms.
    let entries = 0;
    let staleEntries = 0;
    const orphanGroups = new Set<number>();
    await this.scanColumn(log, (key, value) => {
      if (key.byteLength !== LOG_KEY_BYTES) throw new StorageError('FLOTILLA_STORAGE_CORRUPTION', `${this.path}: log key of ${key.byteLength} bytes`);
      sawOther = true;
      const groupId = readU64(key, 0);
      const index = readU64(key, 8);
      const s = scans.get(groupId);
      if (s === undefined || !s.hasRaftState) {
        orphanGroups.add(groupId);
        staleEntries++;
        return;
      }
      s.maxKey = Math.max(s.maxKey, index);
      if (index <= s.truncated.index) {
        s.staleBelow = true;
        staleEntries++;
        return;
      }
      if (index > s.lastIndex) {
        staleEntries++;
        return;
      }
      if (s.cutAt !== 0) {
        staleEntries++;
        return;
      }
      if (index !== s.expect) {
        staleEntries++;
        s.cutAt = s.expect;
        s.cutReason = `entry ${s.expect} missing`;
        return;
      }
      try {
        checkValue(key, value, ENTRY_HEADER_BYTES, `group ${groupId} entry ${index}`);
      } catch (err) {
        if (err instanceof StorageError && err.code === 'FLOTILLA_STORAGE_CORRUPTION') {
          staleEntries++;
          s.cutAt = index;
          s.cutReason = err.message;
          return;
        }
        throw err;
      }
      const term = readU64(value, 8);
      if (term < s.prevTerm) {
        staleEntries++;
        s.cutAt = index;
        s.cutReason = `entry ${index}: term ${term} below the preceding ${s.prevTerm}`;
        return;
      }
      if (s.runs.length === 0 || s.runs[s.runs.length - 1] !== term) s.runs.push(index, term);
      s.prevTerm = term;
      s.expect++;
      entries++;
    });
    if (!sawFormat) {
      if (sawOther) throw new StorageError('FLOTILLA_STORAGE_CORRUPTION', `${this.path}: data without a format record`);
      const f = formatRecord();
      await this.db.batch([{ type: 'put', key: f.key, value: f.value, column: meta }], { sync: true });
    }

    // 3. Cut repairable tails; refuse what cannot be repaired.
    const cut: ShardRecovery['cut'] = [];
    const repairs: BatchOperation[] = [];
    for (const s of scans.values()) {
      if (!s.hasRaftState) continue;
      if (s.cutAt === 0 && s.expect <= s.lastIndex) {
        s.cutAt = s.expect;
        s.cutReason = `entries from ${s.expect} missing`;
      }
      if (s.cutAt === 0) continue;
      if (s.cutAt <= s.hardState.commit) {
        throw new StorageError(
          'FLOTILLA_STORAGE_CORRUPTION',
          `group ${s.groupId}: committed entry ${s.cutAt} (commit ${s.hardState.commit}) is damaged: ${s.cutReason}; the replica must be rebuilt from a snapshot`,
        );
      }
      cut.push({ groupId: s.groupId, fromIndex: s.cutAt, lastIndexBefore: s.lastIndex, reason: s.cutReason });
      s.lastIndex = s.cutAt - 1;
      const key = metaKey(TAG_RAFT_STATE, s.groupId);
      const value = Buffer.alloc(RAFT_STATE_BYTES);
      writeRaftStateValue(value, 0, s.hardState, s.lastIndex);
      sealValue(key, value);
      repairs.push({ type: 'put', key, value, column: meta });
      while (s.runs.length > 0 && s.runs[s.runs.length - 2]! > s.lastIndex) s.runs.length -= 2;
    }
    if (repairs.length > 0) await this.db.batch(repairs, { sync: true });
    for (const groupId of orphanGroups) await this.clearLog(groupId, 0, Number.MAX_SAFE_INTEGER);

    const groups: GroupRecovery[] = [];
    for (const s of scans.values()) {
      if (!s.hasRaftState) continue;
      if (s.hardState.commit > s.lastIndex) {
        throw new StorageError('FLOTILLA_STORAGE_CORRUPTION', `group ${s.groupId}: commit ${s.hardState.commit} beyond last index ${s.lastIndex}`);
      }
      if (s.maxKey > s.lastIndex) await this.clearLog(s.groupId, s.lastIndex + 1, Number.MAX_SAFE_INTEGER);
      if (s.staleBelow) await this.clearLog(s.groupId, 0, s.truncated.index + 1);
      this.groups.set(s.groupId, { last: s.lastIndex, truncated: s.truncated.index, maxKey: s.lastIndex, clearedBelow: s.truncated.index });
      groups.push({ groupId: s.groupId, hardState: s.hardState, confState: s.confState, truncated: s.truncated, lastIndex: s.lastIndex, runs: s.runs });
    }
    this.recovered = true;
    return { groups, entries, staleEntries, cut };
  }

  private async scanColumn(column: ColumnFamily, visit: (key: Buffer, value: Buffer) => void): Promise<void> {
    const it = this.db.iterator({ column, fillCache: false });
    try {
      for (;;) {
        const rows = await it.nextv(scanRowsPerStepMax);
        if (rows.length === 0) return;
        for (const [key, value] of rows) visit(key, value);
      }
    } finally {
      await it.close();
    }
  }

  /** Overwrites one stored value as is (no checksum): tools and corruption tests only. */
  async rawPut(column: 'meta' | 'log', key: Uint8Array, value: Uint8Array): Promise<void> {
    await this.db.batch([{ type: 'put', key, value, column: column === 'meta' ? this.metaColumn : this.logColumn }], { sync: true });
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}
