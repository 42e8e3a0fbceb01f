/**
 * The RocksDB raft log engine: the main-thread half. It keeps, per group, the state the Raft
 * core reads synchronously (hard state, conf state, truncation, last index, a run-length term
 * index and a bounded cache of recent entries), plans and validates writes, and coalesces the
 * writes of all groups of a shard into one append task (group commit) executed by the shard's
 * owner — a worker thread or, inline, this thread.
 */
import { mkdir, open as openFile, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import {
  EMPTY_CONF_STATE,
  EMPTY_HARD_STATE,
  RaftError,
  entryBytes,
  type ConfState,
  type Entry,
  type HardState,
  type Snapshot,
} from '@flotilla/raft';
import {
  LOG_FORMAT_VERSION,
  appendTaskBytesMax,
  appendTaskEntriesMax,
  appendTaskGroupsMax,
  appendTasksInflightPerShardMax,
  appenderShardsDefault,
  appenderShardsMax,
  groupsMax,
  logCacheBytesMax,
  logCacheBytesPerGroupMax,
  logCacheEntriesPerGroupMax,
  logFetchBytesMax,
  logFetchedRangesMax,
  logFetchesInflightMax,
  termRunsPerGroupMax,
} from './constants.ts';
import { StorageError, assert } from './errors.ts';
import { decodeEntryValue } from './log-format.ts';
import { PIECE_DESTROY, PIECE_SNAPSHOT, READ_HEADER_BYTES, READ_OK, encodeChunk, pieceBytes, type TaskPiece } from './log-task.ts';
import {
  planGroupWrite,
  snapshotUnavailable,
  type GroupLog,
  type GroupLogView,
  type GroupWrite,
  type LogEngine,
  type LogEngineHooks,
  type LogEngineStats,
  type LogRecoveryReport,
} from './log-types.ts';
import { openShardClient, type AppenderMode, type ShardClient } from './shard-client.ts';
import { limitEntries } from './util.ts';

export interface RocksLogEngineOptions extends LogEngineHooks {
  /** Directory of the log engine; one RocksDB per shard below it. */
  readonly dir: string;
  /** 'worker' (default): each shard's RocksDB is owned by a worker thread. */
  readonly mode?: AppenderMode;
  /** Shard count; fixed when the directory is created (recorded in its manifest). */
  readonly shards?: number;
  /** Global cache budget in payload bytes (<= logCacheBytesMax). */
  readonly cacheBytesMax?: number;
  /** Bytes of one append task, lowered for tests and small machines (<= appendTaskBytesMax). */
  readonly taskBytesMax?: number;
}

const MANIFEST = 'LOG-MANIFEST.json';

interface Deferred {
  readonly promise: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A rejection is also delivered to the writers awaiting it; never leave it unhandled here.
  promise.catch(() => {});
  return { promise, resolve, reject };
}

/** One shard as seen from the main thread: the open task and the tasks in flight. */
class Lane {
  /** The open task: chunks encoded by the write() calls since the last flush. */
  pending: Uint8Array[] = [];
  pendingPieces = 0;
  pendingBytes = 0;
  pendingEntries = 0;
  pendingDone: Deferred = deferred();
  /** Groups destroyed in the open task: a later write to one of them needs a new task. */
  pendingDestroyed = new Set<number>();
  inflight = 0;
  seq = 0;
  flushScheduled = false;
  tasks = 0;
  entries = 0;
  /** Resolves when everything submitted so far is durable. */
  lastDone: Promise<void> = Promise.resolve();

  constructor(
    readonly index: number,
    readonly client: ShardClient,
    readonly taskBytesMax: number,
  ) {}

  fits(bytes: number, entries: number, pieces: number): boolean {
    return (
      this.pendingBytes + bytes <= this.taskBytesMax &&
      this.pendingEntries + entries <= appendTaskEntriesMax &&
      this.pendingPieces + pieces <= appendTaskGroupsMax
    );
  }
}

interface FetchedRange {
  readonly lo: number;
  readonly entries: Entry[];
  readonly generation: number;
  /** The read reached the end it asked for (not stopped by a fetch bound). */
  readonly complete: boolean;
}

/** One group's log as the core reads it. */
class GroupState implements GroupLog, GroupLogView {
  hard: HardState = EMPTY_HARD_STATE;
  conf: ConfState = EMPTY_CONF_STATE;
  truncIndex = 0;
  truncTerm = 0;
  last = 0;
  /** Runs of equal terms over (truncIndex, last]. */
  runStarts: number[] = [];
  runTerms: number[] = [];
  /** Cached entries: cache[cacheHead..] hold indexes cacheFirst..last (a contiguous suffix). */
  cache: Entry[] = [];
  cacheHead = 0;
  cacheFirst = 1;
  cacheBytes = 0;
  /** Bumped whenever existing entries may change (overwrite, snapshot): stale fetches are dropped. */
  generation = 0;
  fetching = false;
  fetchError: unknown = null;

  constructor(
    readonly groupId: number,
    private readonly engine: RocksLogEngine,
  ) {}

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hard, confState: this.conf };
  }

  hardState(): HardState {
    return this.hard;
  }

  confState(): ConfState {
    return this.conf;
  }

  truncatedIndex(): number {
    return this.truncIndex;
  }

  firstIndex(): number {
    return this.truncIndex + 1;
  }

  lastIndex(): number {
    return this.last;
  }

  term(index: number): number {
    if (index < this.truncIndex) throw new RaftError('FLOTILLA_RAFT_COMPACTED', `term of ${index} is compacted`);
    if (index > this.last) throw new RaftError('FLOTILLA_RAFT_UNAVAILABLE', `term of ${index} is beyond the last index ${this.last}`);
    if (index === this.truncIndex) return this.truncTerm;
    const starts = this.runStarts;
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (starts[mid]! <= index) lo = mid;
      else hi = mid - 1;
    }
    assert(starts.length > 0 && starts[lo]! <= index, `group ${this.groupId}: term index covers ${index}`);
    return this.runTerms[lo]!;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    this.engine.checkUsable();
    if (lo <= this.truncIndex) throw new RaftError('FLOTILLA_RAFT_COMPACTED', `entry ${lo} is compacted (first index ${this.firstIndex()})`);
    if (hi > this.last + 1) throw new RaftError('FLOTILLA_RAFT_UNAVAILABLE', `entries up to ${hi - 1} requested, last index ${this.last}`);
    if (lo >= hi) return [];
    if (this.fetchError !== null) throw this.fetchError;
    if (lo >= this.cacheFirst) {
      this.engine.cacheHits++;
      const start = this.cacheHead + (lo - this.cacheFirst);
      return limitEntries(this.cache, start, start + (hi - lo), maxBytes);
    }
    let fetched = this.engine.fetchedFor(this, lo);
    // A complete read that the log has outgrown (appends, cache eviction): read again.
    if (fetched !== null && fetched.complete && fetched.lo + fetched.entries.length < Math.min(hi, this.cacheFirst)) {
      this.engine.dropFetched(this.groupId);
      fetched = null;
    }
    if (fetched !== null) {
      const start = lo - fetched.lo;
      const fetchedEnd = fetched.lo + fetched.entries.length;
      const head = limitEntries(fetched.entries, start, Math.min(fetched.entries.length, start + (hi - lo)), maxBytes);
      // The read ended where the cache begins: continue into the cache within the byte budget.
      if (head.length === fetchedEnd - lo && fetchedEnd < hi && fetchedEnd >= this.cacheFirst) {
        let size = 0;
        for (const e of head) size += entryBytes(e);
        if (size < maxBytes) {
          const start2 = this.cacheHead + (fetchedEnd - this.cacheFirst);
          const tail = limitEntries(this.cache, start2, start2 + (hi - fetchedEnd), maxBytes - size);
          const total = head.concat(tail);
          return limitEntries(total, 0, total.length, maxBytes);
        }
      }
      return head;
    }
    this.engine.cacheMisses++;
    // Read ahead up to the cache (bounded by logFetchEntriesMax / logFetchBytesMax in the shard).
    this.engine.startFetch(this, lo, this.cacheFirst, logFetchBytesMax);
    throw new RaftError('FLOTILLA_RAFT_LOG_TEMPORARILY_UNAVAILABLE', `group ${this.groupId}: entries from ${lo} are being read from disk`);
  }

  snapshot(): Snapshot {
    return this.engine.snapshotOf(this.groupId);
  }

  // ---- mutation (main thread, after validation) ------------------------------------------------

  cachedCount(): number {
    return this.cache.length - this.cacheHead;
  }

  clearCache(nextFirst: number): number {
    const freed = this.cacheBytes;
    this.cache = [];
    this.cacheHead = 0;
    this.cacheBytes = 0;
    this.cacheFirst = nextFirst;
    return freed;
  }

  /** Drops cached entries below `index`; returns the bytes freed. */
  dropCacheBelow(index: number): number {
    let freed = 0;
    while (this.cacheFirst < index && this.cacheHead < this.cache.length) {
      freed += this.cache[this.cacheHead]!.data.byteLength;
      this.cache[this.cacheHead] = undefined as unknown as Entry;
      this.cacheHead++;
      this.cacheFirst++;
    }
    if (this.cacheHead === this.cache.length) {
      this.cache = [];
      this.cacheHead = 0;
      this.cacheFirst = this.last + 1;
    } else if (this.cacheHead > 1024 && this.cacheHead * 2 > this.cache.length) {
      this.cache = this.cache.slice(this.cacheHead);
      this.cacheHead = 0;
    }
    this.cacheBytes -= freed;
    return freed;
  }

  setTermsFrom(firstNew: number, entries: readonly Entry[]): void {
    while (this.runStarts.length > 0 && this.runStarts[this.runStarts.length - 1]! >= firstNew) {
      this.runStarts.pop();
      this.runTerms.pop();
    }
    for (const e of entries) {
      if (this.runTerms.length === 0 || this.runTerms[this.runTerms.length - 1] !== e.term) {
        assert(this.runStarts.length < termRunsPerGroupMax, `group ${this.groupId}: term runs within termRunsPerGroupMax`);
        this.runStarts.push(e.index);
        this.runTerms.push(e.term);
      }
    }
  }

  dropTermsThrough(index: number): void {
    // Keep the run containing index + 1 (restarted there) and everything after it.
    let k = 0;
    while (k + 1 < this.runStarts.length && this.runStarts[k + 1]! <= index + 1) k++;
    if (index >= this.last) {
      this.runStarts = [];
      this.runTerms = [];
      return;
    }
    this.runStarts = this.runStarts.slice(k);
    this.runTerms = this.runTerms.slice(k);
    if (this.runStarts.length > 0) this.runStarts[0] = index + 1;
  }
}

/** A view of a group that does not exist yet (validation of its first write). */
const EMPTY_VIEW: GroupLogView = {
  truncatedIndex: () => 0,
  lastIndex: () => 0,
  term: (index: number) => {
    if (index === 0) return 0;
    throw new RaftError('FLOTILLA_RAFT_UNAVAILABLE', `term of ${index} is beyond the last index 0`);
  },
  hardState: () => EMPTY_HARD_STATE,
};

export class RocksLogEngine implements LogEngine {
  private readonly groups = new Map<number, GroupState>();
  /** Groups with cached entries, least recently appended first. */
  private readonly cacheLru = new Map<number, GroupState>();
  private readonly fetched = new Map<number, FetchedRange>();
  private fetchesInflight = 0;
  private readonly fetchWaiters = new Set<Promise<void>>();
  private cacheBytes = 0;
  cacheHits = 0;
  cacheMisses = 0;
  private fetches = 0;
  private state: 'open' | 'closing' | 'closed' | 'failed' = 'open';
  private failure: unknown = null;
  private writableWaiters: Array<() => void> = [];
  private readonly cacheBytesMax: number;

  private constructor(
    private readonly lanes: Lane[],
    private readonly hooks: LogEngineHooks,
    readonly recovery: LogRecoveryReport,
    cacheBytesMax: number,
  ) {
    this.cacheBytesMax = cacheBytesMax;
  }

  /** Opens (creating if missing) and recovers every shard. */
  static async open(options: RocksLogEngineOptions): Promise<RocksLogEngine> {
    const mode = options.mode ?? 'worker';
    const shards = await resolveManifest(options.dir, options.shards);
    const cacheBytesMax = options.cacheBytesMax ?? logCacheBytesMax;
    const taskBytesMax = options.taskBytesMax ?? appendTaskBytesMax;
    if (!(taskBytesMax >= 4096 && taskBytesMax <= appendTaskBytesMax)) {
      throw new StorageError('FLOTILLA_STORAGE_LIMIT_EXCEEDED', `taskBytesMax ${taskBytesMax} outside 4096..${appendTaskBytesMax}`);
    }
    if (!(cacheBytesMax >= 0 && cacheBytesMax <= logCacheBytesMax)) {
      throw new StorageError('FLOTILLA_STORAGE_LIMIT_EXCEEDED', `cacheBytesMax ${cacheBytesMax} outside 0..${logCacheBytesMax}`);
    }
    const clients: ShardClient[] = [];
    try {
      for (let i = 0; i < shards; i++) clients.push(await openShardClient(mode, path.join(options.dir, `log-${i}`)));
      const recoveries = await Promise.all(clients.map((c) => c.recover()));
      const lanes = clients.map((c, i) => new Lane(i, c, taskBytesMax));
      const report: LogRecoveryReport = {
        groups: recoveries.reduce((n, r) => n + r.groups.length, 0),
        entries: recoveries.reduce((n, r) => n + r.entries, 0),
        cut: recoveries.flatMap((r) => r.cut),
        staleEntries: recoveries.reduce((n, r) => n + r.staleEntries, 0),
      };
      const engine = new RocksLogEngine(lanes, options, report, cacheBytesMax);
      for (let i = 0; i < shards; i++) {
        for (const g of recoveries[i]!.groups) {
          assert(g.groupId % shards === i, `group ${g.groupId} found in shard ${i}`);
          const s = new GroupState(g.groupId, engine);
          s.hard = g.hardState;
          s.conf = g.confState ?? EMPTY_CONF_STATE;
          s.truncIndex = g.truncated.index;
          s.truncTerm = g.truncated.term;
          s.last = g.lastIndex;
          s.cacheFirst = g.lastIndex + 1;
          for (let k = 0; k < g.runs.length; k += 2) {
            s.runStarts.push(g.runs[k]!);
            s.runTerms.push(g.runs[k + 1]!);
          }
          engine.groups.set(g.groupId, s);
        }
      }
      return engine;
    } catch (err) {
      await Promise.allSettled(clients.map((c) => c.close()));
      throw err;
    }
  }

  // ---- reads ----------------------------------------------------------------------------------

  groupIds(): number[] {
    return [...this.groups.keys()];
  }

  hasGroup(groupId: number): boolean {
    return this.groups.has(groupId);
  }

  group(groupId: number): GroupLog {
    this.checkUsable();
    let s = this.groups.get(groupId);
    if (s === undefined) {
      // Views of unknown groups read as empty logs; they are registered on their first write.
      s = new GroupState(groupId, this);
    }
    return s;
  }

  private live(groupId: number): GroupState | undefined {
    return this.groups.get(groupId);
  }

  snapshotOf(groupId: number): Snapshot {
    if (this.hooks.snapshotProvider === undefined) return snapshotUnavailable(groupId);
    return this.hooks.snapshotProvider(groupId);
  }

  fetchedFor(s: GroupState, lo: number): FetchedRange | null {
    const f = this.fetched.get(s.groupId);
    if (f === undefined) return null;
    if (f.generation !== s.generation || this.live(s.groupId) !== s) {
      this.fetched.delete(s.groupId);
      return null;
    }
    if (lo < f.lo || lo >= f.lo + f.entries.length) return null;
    return f;
  }

  dropFetched(groupId: number): void {
    this.fetched.delete(groupId);
  }

  startFetch(s: GroupState, lo: number, hi: number, maxBytes: number): void {
    if (s.fetching || this.fetchesInflight >= logFetchesInflightMax) return;
    if (this.live(s.groupId) !== s) return;
    s.fetching = true;
    this.fetchesInflight++;
    this.fetches++;
    const generation = s.generation;
    const lane = this.laneOf(s.groupId);
    const done = lane.client
      .read(s.groupId, lo, hi, maxBytes)
      .then(
        (bytes) => {
          if (generation !== s.generation || this.live(s.groupId) !== s) return;
          const entries = decodeRead(bytes);
          if (entries === null || entries.length === 0) return;
          this.fetched.delete(s.groupId);
          this.fetched.set(s.groupId, { lo, entries, generation, complete: lo + entries.length >= hi });
          while (this.fetched.size > logFetchedRangesMax) {
            const oldest = this.fetched.keys().next();
            if (oldest.done === true) break;
            this.fetched.delete(oldest.value);
          }
        },
        (err: unknown) => {
          // Never hand out damaged data: the group's next read raises the error.
          if (generation === s.generation) s.fetchError = err;
        },
      )
      .finally(() => {
        s.fetching = false;
        this.fetchesInflight--;
        this.fetchWaiters.delete(done);
        if (this.state === 'open') this.hooks.onFetched?.(s.groupId);
      });
    this.fetchWaiters.add(done);
  }

  async loadEntries(groupId: number, lo: number, hi: number, maxBytes: number): Promise<Entry[]> {
    this.checkUsable();
    const s = this.group(groupId) as GroupState;
    if (lo <= s.truncIndex) throw new RaftError('FLOTILLA_RAFT_COMPACTED', `entry ${lo} is compacted (first index ${s.firstIndex()})`);
    if (hi > s.last + 1) throw new RaftError('FLOTILLA_RAFT_UNAVAILABLE', `entries up to ${hi - 1} requested, last index ${s.last}`);
    if (lo >= hi) return [];
    for (;;) {
      const generation = s.generation;
      if (lo >= s.cacheFirst) return s.entries(lo, hi, maxBytes);
      // Everything submitted before this read must have reached the shard.
      const lane = this.laneOf(groupId);
      await this.drainLane(lane);
      this.checkUsable();
      const bytes = await lane.client.read(groupId, lo, Math.min(hi, s.cacheFirst), maxBytes);
      if (generation !== s.generation) continue;
      const read = decodeRead(bytes);
      if (read === null) throw new RaftError('FLOTILLA_RAFT_COMPACTED', `entry ${lo} is compacted`);
      assert(read.length > 0, `group ${groupId}: a read of ${lo} returned entries`);
      const end = lo + read.length;
      if (end >= hi || end < s.cacheFirst) return limitEntries(read, 0, Math.min(read.length, hi - lo), maxBytes);
      let size = 0;
      for (const e of read) size += e.data.byteLength;
      const rest = size < maxBytes ? s.entries(end, hi, maxBytes - size) : [];
      return limitEntries(read.concat(rest), 0, hi - lo, maxBytes);
    }
  }

  // ---- writes ---------------------------------------------------------------------------------

  checkUsable(): void {
    if (this.state === 'failed') throw new StorageError('FLOTILLA_STORAGE_FAILED', 'the log engine failed earlier', { cause: this.failure });
    if (this.state !== 'open') throw new StorageError('FLOTILLA_STORAGE_CLOSED', 'the log engine is closed');
  }

  private laneOf(groupId: number): Lane {
    return this.lanes[groupId % this.lanes.length]!;
  }

  compact(requests: readonly { readonly groupId: number; readonly compactTo: number }[]): Promise<void> {
    return this.write(requests.map((r) => ({ groupId: r.groupId, compactTo: r.compactTo })));
  }

  async write(writes: readonly GroupWrite[]): Promise<void> {
    this.checkUsable();
    if (writes.length === 0) return;
    // 1. Validate everything before changing anything.
    const seen = new Set<number>();
    let newGroups = 0;
    const planned: { w: GroupWrite; plan: ReturnType<typeof planGroupWrite>; piece: TaskPiece; bytes: number; lane: Lane }[] = [];
    for (const w of writes) {
      if (seen.has(w.groupId)) throw new StorageError('FLOTILLA_STORAGE_CONTRACT_VIOLATION', `group ${w.groupId} appears twice in one write`);
      seen.add(w.groupId);
      const s = this.live(w.groupId);
      if (s === undefined) newGroups++;
      const limit = this.hooks.compactLimit?.(w.groupId) ?? Number.MAX_SAFE_INTEGER;
      const plan = planGroupWrite(s ?? EMPTY_VIEW, w, limit);
      const prevLast = s?.last ?? 0;
      const destroy = w.destroy === true;
      const piece: TaskPiece = {
        groupId: w.groupId,
        prevLast,
        newLast: destroy ? 0 : plan.lastIndex,
        truncatedIndex: destroy ? 0 : plan.truncatedIndex,
        firstNew: plan.firstNew,
        flags: (w.snapshot !== undefined ? PIECE_SNAPSHOT : 0) | (destroy ? PIECE_DESTROY : 0),
        truncatedBefore: w.snapshot !== undefined ? { index: w.snapshot.index, term: w.snapshot.term } : null,
        entries: plan.entries,
        hardState: destroy ? null : plan.hardState,
        confState: w.confState ?? w.snapshot?.confState ?? null,
        truncatedAfter: w.compactTo !== undefined ? { index: plan.truncatedIndex, term: plan.truncatedTerm } : null,
      };
      const bytes = pieceBytes(piece);
      if (bytes > this.lanes[0]!.taskBytesMax || plan.entries.length > appendTaskEntriesMax) {
        throw new StorageError('FLOTILLA_STORAGE_LIMIT_EXCEEDED', `group ${w.groupId}: one write of ${bytes} bytes / ${plan.entries.length} entries exceeds a task`);
      }
      planned.push({ w, plan, piece, bytes, lane: this.laneOf(w.groupId) });
    }
    if (this.groups.size + newGroups > groupsMax) throw new StorageError('FLOTILLA_STORAGE_LIMIT_EXCEEDED', `more than groupsMax ${groupsMax} groups`);
    // 2. Room in every shard touched (the open task, or a free in-flight slot to seal it).
    const need = new Map<Lane, { bytes: number; entries: number; pieces: number; seal: boolean }>();
    for (const p of planned) {
      const n = need.get(p.lane) ?? { bytes: 0, entries: 0, pieces: 0, seal: false };
      n.bytes += p.bytes;
      n.entries += p.plan.entries.length;
      n.pieces += 1;
      // The post-commit range delete of a destroyed group must not hit its new entries.
      if (p.lane.pendingDestroyed.has(p.w.groupId)) n.seal = true;
      need.set(p.lane, n);
    }
    for (const [lane, n] of need) {
      if (n.bytes > lane.taskBytesMax || n.entries > appendTaskEntriesMax || n.pieces > appendTaskGroupsMax) {
        throw new StorageError('FLOTILLA_STORAGE_LIMIT_EXCEEDED', `one write carries more than one task's worth for shard ${lane.index}`);
      }
      if (n.seal || !lane.fits(n.bytes, n.entries, n.pieces)) {
        n.seal = true;
        if (lane.inflight >= appendTasksInflightPerShardMax) throw new StorageError('FLOTILLA_STORAGE_QUEUE_FULL', `log shard ${lane.index} is full; await writable()`);
      }
    }
    // 3. Apply to the in-memory views and queue the pieces.
    for (const [lane, n] of need) if (n.seal) this.flush(lane);
    const waits = new Set<Promise<void>>();
    const pieces = new Map<Lane, TaskPiece[]>();
    for (const p of planned) {
      const lane = p.lane;
      this.applyPlan(p.w, p.plan);
      let list = pieces.get(lane);
      if (list === undefined) {
        list = [];
        pieces.set(lane, list);
      }
      list.push(p.piece);
      if (p.w.destroy === true) lane.pendingDestroyed.add(p.w.groupId);
    }
    // Encode now, one chunk per shard: the cost is spread over the calls.
    for (const [lane, list] of pieces) {
      const n = need.get(lane)!;
      lane.pending.push(encodeChunk(list, n.bytes));
      lane.pendingPieces += n.pieces;
      lane.pendingBytes += n.bytes;
      lane.pendingEntries += n.entries;
      waits.add(lane.pendingDone.promise);
      lane.lastDone = lane.pendingDone.promise;
      this.scheduleFlush(lane);
    }
    this.evictCache();
    await Promise.all(waits);
  }

  private applyPlan(w: GroupWrite, plan: ReturnType<typeof planGroupWrite>): void {
    if (w.destroy === true) {
      const s = this.live(w.groupId);
      if (s !== undefined) {
        this.cacheBytes -= s.clearCache(0);
        s.generation++;
        this.groups.delete(w.groupId);
        this.cacheLru.delete(w.groupId);
        this.fetched.delete(w.groupId);
      }
      return;
    }
    let s = this.live(w.groupId);
    if (s === undefined) {
      s = new GroupState(w.groupId, this);
      this.groups.set(w.groupId, s);
    }
    if (w.snapshot !== undefined) {
      s.generation++;
      s.truncIndex = w.snapshot.index;
      s.truncTerm = w.snapshot.term;
      s.last = w.snapshot.index;
      s.runStarts = [];
      s.runTerms = [];
      this.cacheBytes -= s.clearCache(s.last + 1);
      s.conf = w.snapshot.confState;
      s.fetchError = null;
    }
    if (plan.entries.length > 0) {
      const firstNew = plan.firstNew;
      if (firstNew <= s.last) {
        s.generation++;
        s.fetchError = null;
      }
      if (firstNew < s.cacheFirst) {
        this.cacheBytes -= s.clearCache(firstNew);
      } else {
        // Drop the overwritten cached suffix.
        const keep = s.cacheHead + (firstNew - s.cacheFirst);
        let freed = 0;
        for (let i = keep; i < s.cache.length; i++) freed += s.cache[i]!.data.byteLength;
        s.cache.length = keep;
        s.cacheBytes -= freed;
        this.cacheBytes -= freed;
      }
      s.setTermsFrom(firstNew, plan.entries);
      let added = 0;
      for (const e of plan.entries) {
        s.cache.push(e);
        added += e.data.byteLength;
      }
      s.cacheBytes += added;
      this.cacheBytes += added;
      s.last = plan.lastIndex;
      // Per-group bounds.
      const over = s.cachedCount() - logCacheEntriesPerGroupMax;
      if (over > 0) this.cacheBytes -= s.dropCacheBelow(s.cacheFirst + over);
      while (s.cacheBytes > logCacheBytesPerGroupMax && s.cachedCount() > 0) this.cacheBytes -= s.dropCacheBelow(s.cacheFirst + 1);
      this.cacheLru.delete(s.groupId);
      if (s.cachedCount() > 0) this.cacheLru.set(s.groupId, s);
    }
    assert(s.last === plan.lastIndex, `group ${s.groupId}: last index follows the plan`);
    s.hard = plan.hardState;
    if (w.confState !== undefined) s.conf = w.confState;
    if (w.compactTo !== undefined) {
      s.dropTermsThrough(plan.truncatedIndex);
      s.truncIndex = plan.truncatedIndex;
      s.truncTerm = plan.truncatedTerm;
      this.cacheBytes -= s.dropCacheBelow(plan.truncatedIndex + 1);
      if (s.cachedCount() === 0) this.cacheLru.delete(s.groupId);
    }
    if (s.cachedCount() === 0) s.cacheFirst = s.last + 1;
  }

  /** Keeps the global cache within budget by emptying the least recently appended groups. */
  private evictCache(): void {
    while (this.cacheBytes > this.cacheBytesMax) {
      const oldest = this.cacheLru.entries().next();
      if (oldest.done === true) break;
      const [groupId, s] = oldest.value;
      this.cacheLru.delete(groupId);
      this.cacheBytes -= s.clearCache(s.last + 1);
    }
  }

  private scheduleFlush(lane: Lane): void {
    if (lane.flushScheduled) return;
    lane.flushScheduled = true;
    // After the current turn's microtasks: writes of every group continuing in this turn coalesce.
    setImmediate(() => {
      lane.flushScheduled = false;
      if (lane.inflight < appendTasksInflightPerShardMax) this.flush(lane);
    });
  }

  /** Seals the open task of a lane and submits it (the caller ensured a free slot). */
  private flush(lane: Lane): void {
    if (lane.pending.length === 0 || this.state === 'failed') return;
    assert(lane.inflight < appendTasksInflightPerShardMax, 'a free in-flight slot');
    const chunks = lane.pending;
    const entries = lane.pendingEntries;
    const done = lane.pendingDone;
    lane.pending = [];
    lane.pendingPieces = 0;
    lane.pendingBytes = 0;
    lane.pendingEntries = 0;
    lane.pendingDone = deferred();
    lane.pendingDestroyed.clear();
    lane.seq++;
    lane.inflight++;
    lane.client.append(lane.seq, chunks).then(
      () => {
        lane.inflight--;
        lane.tasks++;
        lane.entries += entries;
        done.resolve();
        if (lane.pending.length > 0) this.scheduleFlush(lane);
        this.notifyWritable();
      },
      (err: unknown) => {
        lane.inflight--;
        this.fail(err);
        done.reject(this.failedError());
      },
    );
  }

  private failedError(): StorageError {
    return new StorageError('FLOTILLA_STORAGE_FAILED', 'a log write failed; the log engine refuses further work', { cause: this.failure });
  }

  private fail(err: unknown): void {
    if (this.state === 'failed') return;
    this.state = 'failed';
    this.failure = err;
    for (const lane of this.lanes) {
      lane.pendingDone.reject(this.failedError());
      lane.pending = [];
    }
    this.notifyWritable();
  }

  private notifyWritable(): void {
    if (this.writableWaiters.length === 0) return;
    if (this.state === 'open' && !this.lanes.every((l) => l.inflight < appendTasksInflightPerShardMax)) return;
    const waiters = this.writableWaiters;
    this.writableWaiters = [];
    for (const w of waiters) w();
  }

  writable(): Promise<void> {
    if (this.state !== 'open' || this.lanes.every((l) => l.inflight < appendTasksInflightPerShardMax)) return Promise.resolve();
    return new Promise((resolve) => this.writableWaiters.push(resolve));
  }

  /** Waits until everything submitted to a lane so far is durable. */
  private async drainLane(lane: Lane): Promise<void> {
    await lane.lastDone;
  }

  stats(): LogEngineStats {
    let tasks = 0;
    let entries = 0;
    for (const l of this.lanes) {
      tasks += l.tasks;
      entries += l.entries;
    }
    return {
      groups: this.groups.size,
      tasks,
      syncs: tasks,
      entriesWritten: entries,
      cacheBytes: this.cacheBytes,
      cacheHits: this.cacheHits,
      cacheMisses: this.cacheMisses,
      fetches: this.fetches,
    };
  }

  async close(): Promise<void> {
    if (this.state === 'closed' || this.state === 'closing') return;
    const wasFailed = this.state === 'failed';
    // Let everything submitted become durable first.
    if (!wasFailed) {
      for (const lane of this.lanes) {
        if (lane.pending.length > 0 && lane.inflight < appendTasksInflightPerShardMax) this.flush(lane);
      }
      await Promise.allSettled(this.lanes.map((l) => l.lastDone));
    }
    this.state = 'closing';
    await Promise.allSettled([...this.fetchWaiters]);
    await Promise.allSettled(this.lanes.map((l) => l.client.close()));
    this.state = 'closed';
    this.notifyWritable();
  }
}

/** Decodes a read answer (null: the range was compacted meanwhile). */
function decodeRead(bytes: Uint8Array): Entry[] | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0) !== READ_OK) return null;
  const count = view.getUint32(4);
  const first = view.getFloat64(8);
  const out: Entry[] = [];
  let at = READ_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    const n = view.getUint32(at);
    out.push(decodeEntryValue(first + i, bytes.subarray(at + 4, at + 4 + n)));
    at += 4 + n;
  }
  return out;
}

/** Reads or creates the manifest that fixes the shard count of a log directory. */
async function resolveManifest(dir: string, requested: number | undefined): Promise<number> {
  if (requested !== undefined && !(Number.isInteger(requested) && requested >= 1 && requested <= appenderShardsMax)) {
    throw new StorageError('FLOTILLA_STORAGE_LIMIT_EXCEEDED', `shards ${requested} outside 1..${appenderShardsMax}`);
  }
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, MANIFEST);
  let text: string | null = null;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (text !== null) {
    let manifest: { formatVersion?: unknown; shards?: unknown };
    try {
      manifest = JSON.parse(text) as typeof manifest;
    } catch (err) {
      throw new StorageError('FLOTILLA_STORAGE_CORRUPTION', `${file}: not JSON`, { cause: err });
    }
    if (manifest.formatVersion !== LOG_FORMAT_VERSION) {
      throw new StorageError('FLOTILLA_STORAGE_FORMAT_VERSION', `${file}: format version ${String(manifest.formatVersion)}, this build reads ${LOG_FORMAT_VERSION}`);
    }
    const shards = manifest.shards;
    if (typeof shards !== 'number' || !Number.isInteger(shards) || shards < 1 || shards > appenderShardsMax) {
      throw new StorageError('FLOTILLA_STORAGE_CORRUPTION', `${file}: bad shard count`);
    }
    if (requested !== undefined && requested !== shards) {
      throw new StorageError('FLOTILLA_STORAGE_CONTRACT_VIOLATION', `${dir} was created with ${shards} shards, ${requested} requested`);
    }
    return shards;
  }
  const shards = requested ?? appenderShardsDefault;
  const tmp = `${file}.tmp`;
  const handle = await openFile(tmp, 'w');
  try {
    await handle.writeFile(JSON.stringify({ formatVersion: LOG_FORMAT_VERSION, shards }) + '\n');
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, file);
  const dirHandle = await openFile(dir, 'r');
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
  return shards;
}

export function openLogEngine(options: RocksLogEngineOptions): Promise<RocksLogEngine> {
  return RocksLogEngine.open(options);
}
