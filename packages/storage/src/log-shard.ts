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
import { LOG_FORMAT_VERSION, appendTaskGroupsMax, groupsMax, logFetchBytesMax, logFetchEntriesMax, scanRowsPerStepMax } from './constants.ts';
import { StorageError, assert, fail } from './errors.ts';
import { BatchPlan, LogBatch, newGroupRecords, packSlotOf, type GroupRecords } from './log-batch.ts';
import { finishScan, newGroupScan, packEntryCount, scanPack, type GroupScan } from './log-recovery-scan.ts';
import {
  LOG_KEY_BYTES,
  META_KEY_BYTES,
  PACKED_ENTRY_HEADER_BYTES,
  PACK_HEADER_BYTES,
  PackCursor,
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
  readU32,
  readU64,
  sealValue,
  writePackHeader,
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
const u64At = readU64;
const PUT_HEADER = PUT_HEADER_BYTES;
const LOG_KEY = LOG_KEY_BYTES;
const META_KEY = META_KEY_BYTES;
const PACK_HEADER = PACK_HEADER_BYTES;
const PACKED_ENTRY_HEADER = PACKED_ENTRY_HEADER_BYTES;
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

/** What the owner tracks per group to assert order and to place packs. */
interface OwnedGroup {
  last: number;
  truncated: number;
  readonly records: GroupRecords;
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
    // Pass 1: check order, seal state records in place, place each group's packs (log-batch.ts).
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
    // Pass 2: ONE batch — pack deletes, the last state record per key, the packs in key order.
    const batch = new LogBatch(this.db, this.metaColumn, this.logColumn);
    try {
      plan.putAll(batch);
      await batch.write(sync);
    } finally {
      batch.close();
    }
    this.tasks++;
    if (sync) this.syncs++;
    this.entries += plan.entryCount;
    // A destroyed group's packs: one range delete, ordered after the batch in the WAL (a task
    // that destroys a group ends its batch, so no later put of the group meets it).
    for (const groupId of plan.destroyed) await this.clearLog(groupId, 0, Number.MAX_SAFE_INTEGER);
    plan.release();
  }

  /** Checks one piece starting at `at` of chunk `c` and plans its writes; returns the offset after it. */
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
      // The range delete after the batch would remove the new incarnation's packs.
      if (plan.destroyed.length > 0 && plan.destroyed.includes(groupId)) fail(`group ${groupId}: written after its destroy in one batch`);
      owned = { last: 0, truncated: 0, records: newGroupRecords() };
      this.groups.set(groupId, owned);
      // A group's first batch writes its raft state record: recovery knows groups by it.
      plan.forceMeta(owned.records);
    }
    if (prevLast !== owned.last) fail(`group ${groupId}: order broken, piece continues ${prevLast} but the log ends at ${owned.last}`);
    const snapshot = (flags & FLAG_SNAPSHOT) !== 0;
    if (!snapshot && firstNew !== 0) {
      if (firstNew > owned.last + 1) fail(`group ${groupId}: gap, first new ${firstNew} after ${owned.last}`);
      if (firstNew <= owned.truncated) fail(`group ${groupId}: append ${firstNew} at or below truncation ${owned.truncated}`);
    }
    // What this piece replaces: a snapshot the whole log, an append at or below the last index
    // everything from its first entry on.
    if (snapshot) plan.truncateFrom(groupId, owned.records, 0);
    else if (firstNew !== 0 && firstNew <= owned.last) plan.truncateFrom(groupId, owned.records, firstNew);
    else if (firstNew === 0 && (flags & FLAG_DESTROY) === 0 && newLast !== owned.last) fail(`group ${groupId}: last index moves from ${owned.last} to ${newLast} without entries`);
    let expectIndex = firstNew;
    let prevTerm = -1;
    for (let i = 0; i < puts; i++) {
      const column = task[at]!;
      const keyBytes = view.getUint16(at + 2);
      const valueBytes = view.getUint32(at + 4);
      const keyAt = at + PUT_HEADER;
      const valueAt = keyAt + keyBytes;
      const end = valueAt + valueBytes;
      if (valueBytes < 5 || end > task.byteLength) fail(`group ${groupId}: put of ${valueBytes} value bytes beyond its chunk`);
      if (column === COLUMN_ENTRY) {
        if (keyBytes !== LOG_KEY || valueBytes < PACK_HEADER + PACKED_ENTRY_HEADER) fail('pack put shape');
        // u64s read as two u32s through the DataView (one load each, vs eight byte loads).
        if (view.getUint32(keyAt) * TWO_32 + view.getUint32(keyAt + 4) !== groupId) fail(`group ${groupId}: pack key of another group`);
        const first = view.getUint32(keyAt + 8) * TWO_32 + view.getUint32(keyAt + 12);
        if (first !== expectIndex) fail(`group ${groupId}: pack at ${first} where ${expectIndex} was expected`);
        const count = view.getUint32(valueAt + 8);
        // Walk the packed entries: terms never go back, sizes fill the value exactly.
        let e = valueAt + PACK_HEADER;
        for (let n = 0; n < count; n++) {
          if (e + PACKED_ENTRY_HEADER > end) fail(`group ${groupId}: pack at ${first} ends inside entry ${first + n}`);
          const term = view.getUint32(e) * TWO_32 + view.getUint32(e + 4);
          if (term < prevTerm) fail(`group ${groupId}: term goes back at ${first + n}`);
          prevTerm = term;
          e += PACKED_ENTRY_HEADER + view.getUint32(e + 12);
        }
        if (count === 0 || e !== end) fail(`group ${groupId}: pack at ${first} of ${count} entries spans ${e - valueAt} of ${valueBytes} bytes`);
        plan.pack(groupId, owned.records, c, at, valueAt + PACK_HEADER, end - valueAt - PACK_HEADER, first, count);
        expectIndex += count;
      } else {
        if (column !== COLUMN_STATE) fail(`group ${groupId}: put to unknown column ${column}`);
        if (keyBytes !== META_KEY) fail('meta put shape');
        if (u64At(task, keyAt + 1) !== groupId) fail(`group ${groupId}: state record of another group`);
        // Sealed when written: only the batch's last record per key is.
        plan.stateRecord(task[keyAt]!, groupId, owned.records, c, at);
      }
      at = end;
    }
    if (firstNew !== 0) {
      if (expectIndex - 1 !== newLast) fail(`group ${groupId}: entries end at ${expectIndex - 1}, piece says ${newLast}`);
      plan.piece(expectIndex - firstNew);
    }
    if ((flags & FLAG_DESTROY) !== 0) {
      plan.destroy(groupId, owned.records);
      this.groups.delete(groupId);
      return at;
    }
    owned.last = newLast;
    if (truncatedIndex > owned.truncated) plan.dropBelow(groupId, owned.records, truncatedIndex + 1, newLast);
    owned.truncated = truncatedIndex;
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
    if (owned === undefined || lo <= owned.truncated) {
      const header = new Uint8Array(new ArrayBuffer(READ_HEADER_BYTES));
      new DataView(header.buffer).setUint32(0, READ_COMPACTED);
      return header;
    }
    const end = Math.min(hi, owned.last + 1, lo + logFetchEntriesMax);
    const budget = Math.min(maxBytes, logFetchBytesMax);
    const found: { cursor: PackCursor; from: number; to: number }[] = [];
    let expect = lo;
    let bytes = 0;
    let payload = 0;
    if (lo < end) {
      // The packs to read: from the one holding `lo` (the greatest start ≤ lo) to the last start
      // below `end`. Entry i is read from the pack holding it, never from an earlier pack that
      // still carries a replaced copy. The starts are copied in the same turn as the iterator
      // (a snapshot) is made: appends that run while this read waits change the owner's list.
      const all = owned.records.starts;
      const first = packSlotOf(all, lo);
      if (first < 0) throw new StorageError('FLOTILLA_STORAGE_CORRUPTION', `group ${groupId}: no pack holds entry ${lo}`);
      const it = this.db.iterator({ column: this.logColumn, gte: logKey(groupId, all[first]!), lt: logKey(groupId, end), fillCache: false });
      const starts = all.slice(first, packSlotOf(all, end - 1) + 1);
      try {
        let slot = 0;
        outer: while (expect < end) {
          const rows = await it.nextv(Math.min(scanRowsPerStepMax, end - expect));
          if (rows.length === 0) break;
          for (const [key, value] of rows) {
            const start = readU64(key, 8);
            if (start !== starts[slot]) throw new StorageError('FLOTILLA_STORAGE_CORRUPTION', `group ${groupId}: pack at ${start} found where ${starts[slot]} was expected`);
            const cursor = new PackCursor();
            cursor.open(key, value, `group ${groupId} pack at ${start}`);
            // This pack holds entries up to the next pack's start.
            const to = Math.min(end, slot + 1 < starts.length ? starts[slot + 1]! : end);
            const from = expect;
            while (expect < to && cursor.next()) {
              if (cursor.index < expect) continue;
              cursor.checkType();
              const size = cursor.dataEnd - cursor.dataAt;
              // The budget counts payload bytes, as the cache's reads do.
              if (expect > lo && payload + size > budget) {
                found.push({ cursor, from, to: expect });
                break outer;
              }
              payload += size;
              bytes += PACKED_ENTRY_HEADER_BYTES + size;
              expect++;
            }
            if (expect < to) throw new StorageError('FLOTILLA_STORAGE_CORRUPTION', `group ${groupId}: entry ${expect} missing on disk (pack at ${start} holds ${cursor.count})`);
            found.push({ cursor, from, to });
            slot++;
          }
        }
        if (expect < Math.min(end, lo + 1)) {
          throw new StorageError('FLOTILLA_STORAGE_CORRUPTION', `group ${groupId}: entry ${expect} missing on disk (log ends at ${owned.last})`);
        }
      } finally {
        await it.close();
      }
    }
    const out = new Uint8Array(new ArrayBuffer(READ_HEADER_BYTES + bytes));
    const oview = new DataView(out.buffer);
    oview.setUint32(0, READ_OK);
    oview.setUint32(4, expect - lo);
    oview.setFloat64(8, lo);
    let at = READ_HEADER_BYTES;
    for (const { cursor, from, to } of found) {
      cursor.rewind();
      while (cursor.next()) {
        if (cursor.index < from) continue;
        if (cursor.index >= to) break;
        at = cursor.copyTo(out, at);
      }
    }
    assert(at === out.byteLength, 'a read answer fills its buffer');
    return out;
  }

  // ---- recovery ----------------------------------------------------------------------------------

  async recover(): Promise<ShardRecovery> {
    assert(!this.recovered, 'recover once');
    const scans = new Map<number, GroupScan>();
    // 1. Format record and state records.
    const formatVersion = await this.scanStateRecords(scans);
    for (const s of scans.values()) {
      s.expect = s.truncated.index + 1;
      s.prevTerm = s.truncated.term;
      if (!s.hasRaftState) s.lastIndex = s.truncated.index;
      // The record's last index; the group's last pack may end later (log-format.ts).
      s.metaLast = s.lastIndex;
    }

    // 2. Every pack, in key order (group, then start): contiguity, checksums, terms. A group's
    //    packs arrive together, so one pending pack per shard is held at a time.
    const stats = { entries: 0, stale: 0 };
    const orphanGroups = new Set<number>();
    let current: GroupScan | null = null;
    await this.scanColumn(this.logColumn, (key, value) => {
      if (key.byteLength !== LOG_KEY_BYTES) throw new StorageError('FLOTILLA_STORAGE_CORRUPTION', `${this.path}: log key of ${key.byteLength} bytes`);
      const groupId = readU64(key, 0);
      const s = scans.get(groupId);
      if (s === undefined || !s.hasRaftState) {
        orphanGroups.add(groupId);
        stats.stale += packEntryCount(value);
        return;
      }
      if (current !== s) {
        if (current !== null) finishScan(current, stats);
        current = s;
      }
      scanPack(s, key, value, stats);
    });
    if (current !== null) finishScan(current, stats);
    for (const s of scans.values()) if (s.hasRaftState && !s.finished) finishScan(s, stats);
    for (const s of scans.values()) {
      if (s.hasRaftState && s.lastIndex < s.truncated.index) {
        throw new StorageError('FLOTILLA_STORAGE_CORRUPTION', `group ${s.groupId}: last index ${s.lastIndex} below truncation ${s.truncated.index}`);
      }
    }
    if (formatVersion === 0 && (scans.size > 0 || orphanGroups.size > 0)) throw new StorageError('FLOTILLA_STORAGE_CORRUPTION', `${this.path}: data without a format record`);

    // 3. Cut repairable tails; refuse what cannot be repaired; write the format record of a fresh
    //    shard or upgrade an older one.
    const cut: ShardRecovery['cut'] = [];
    const repairs: BatchOperation[] = [];
    const meta = this.metaColumn;
    if (formatVersion < LOG_FORMAT_VERSION) {
      const f = formatRecord();
      repairs.push({ type: 'put', key: f.key, value: f.value, column: meta });
    }
    for (const s of scans.values()) {
      if (!s.hasRaftState || s.cutAt === 0) continue;
      if (s.cutAt <= s.hardState.commit) {
        throw new StorageError(
          'FLOTILLA_STORAGE_CORRUPTION',
          `group ${s.groupId}: committed entry ${s.cutAt} (commit ${s.hardState.commit}) is damaged: ${s.cutReason}; the replica must be rebuilt from a snapshot`,
        );
      }
      cut.push({ groupId: s.groupId, fromIndex: s.cutAt, lastIndexBefore: s.lastIndex, reason: s.cutReason });
      s.lastIndex = s.cutAt - 1;
      // The last pack left must end at the new last index: its tail was damaged, or replaced by
      // a pack the cut deletes (the greatest start's end is the last index: log-format.ts).
      const trimmed = await this.trimmedPack(s);
      if (trimmed !== null) repairs.push({ type: 'put', key: trimmed.key, value: trimmed.value, column: this.logColumn });
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
      // Packs nobody reads any more: below the pack holding the first entry, above the last index.
      const starts = s.starts;
      while (starts.length > 0 && starts[starts.length - 1]! > s.lastIndex) starts.pop();
      if (starts.length === 0) {
        if (s.maxKey >= 0) await this.clearLog(s.groupId, 0, Number.MAX_SAFE_INTEGER);
      } else {
        if (s.minKey < starts[0]!) await this.clearLog(s.groupId, 0, starts[0]!);
        if (s.maxKey > s.lastIndex) await this.clearLog(s.groupId, s.lastIndex + 1, Number.MAX_SAFE_INTEGER);
      }
      this.groups.set(s.groupId, { last: s.lastIndex, truncated: s.truncated.index, records: newGroupRecords(starts, s.hardState.term, s.hardState.vote) });
      groups.push({ groupId: s.groupId, hardState: s.hardState, confState: s.confState, truncated: s.truncated, lastIndex: s.lastIndex, runs: s.runs });
    }
    this.recovered = true;
    return { groups, entries: stats.entries, staleEntries: stats.stale, cut };
  }

  /** The group's last kept pack cut to end at its last index, or null when it does already. */
  private async trimmedPack(s: GroupScan): Promise<{ key: Buffer; value: Buffer } | null> {
    while (s.starts.length > 0 && s.starts[s.starts.length - 1]! > s.lastIndex) s.starts.pop();
    const start = s.starts[s.starts.length - 1];
    if (start === undefined) return null;
    const key = logKey(s.groupId, start);
    const [value] = await this.db.getMany([key], { column: this.logColumn });
    if (value === undefined) throw new StorageError('FLOTILLA_STORAGE_CORRUPTION', `group ${s.groupId}: pack at ${start} vanished during recovery`);
    const cursor = new PackCursor();
    cursor.open(key, value, `group ${s.groupId} pack at ${start}`);
    const keep = s.lastIndex - start + 1;
    if (cursor.count <= keep) return null;
    let end = PACK_HEADER_BYTES;
    for (let i = 0; i < keep; i++) end += PACKED_ENTRY_HEADER_BYTES + readU32(value, end + 12);
    const out = Buffer.from(value.subarray(0, end));
    writePackHeader(out, 0, keep, cursor.commit);
    sealValue(key, out);
    return { key, value: out };
  }

  /** Reads the meta column into `scans`; returns the format record's version (0: none, a fresh shard). */
  private async scanStateRecords(scans: Map<number, GroupScan>): Promise<number> {
    let formatVersion = 0;
    await this.scanColumn(this.metaColumn, (key, value) => {
      if (key.byteLength !== META_KEY_BYTES) throw new StorageError('FLOTILLA_STORAGE_CORRUPTION', `${this.path}: meta key of ${key.byteLength} bytes`);
      const tag = key[0]!;
      const groupId = readU64(key, 1);
      if (tag === TAG_FORMAT) {
        formatVersion = checkValue(key, value, 5, `${this.path}: format record`);
        return;
      }
      let s = scans.get(groupId);
      if (s === undefined) {
        if (scans.size >= groupsMax) throw new StorageError('FLOTILLA_STORAGE_LIMIT_EXCEEDED', `${this.path}: more than groupsMax ${groupsMax} groups`);
        s = newGroupScan(groupId);
        scans.set(groupId, s);
      }
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
    return formatVersion;
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

  /** One stored value as is (no checks): tools and corruption tests only. */
  async rawGet(column: 'meta' | 'log', key: Uint8Array): Promise<Buffer> {
    const [value] = await this.db.getMany([key], { column: column === 'meta' ? this.metaColumn : this.logColumn });
    if (value === undefined) throw new StorageError('FLOTILLA_STORAGE_CORRUPTION', 'rawGet: no such key');
    return value;
  }

  /** Overwrites one stored value as is (no checksum): tools and corruption tests only. */
  async rawPut(column: 'meta' | 'log', key: Uint8Array, value: Uint8Array): Promise<void> {
    await this.db.batch([{ type: 'put', key, value, column: column === 'meta' ? this.metaColumn : this.logColumn }], { sync: true });
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}
