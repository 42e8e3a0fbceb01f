/**
 * The RocksDB raft log engine: the main-thread half. It keeps, per group, the state the Raft
 * core reads synchronously (log-group.ts), plans and validates writes, and coalesces the writes
 * of all groups of a shard into one append task (group commit, log-lane.ts) executed by the
 * shard's owner — a worker thread or, inline, this thread.
 *
 * write() does all its work synchronously and keeps nothing of the call alive afterwards: the
 * caller's entries are encoded into the task chunk and copied into the byte cache, so the
 * objects of a write die young (see log-cache.ts on why that matters).
 */
import path from 'node:path';
import { EMPTY_CONF_STATE, EMPTY_HARD_STATE, type Entry, type Snapshot } from '@flotilla/raft';
import {
  appendTaskBytesMax,
  appendTaskEntriesMax,
  appendTaskGroupsMax,
  appenderNiceDefault,
  groupsMax,
  logCacheBytesMax,
  logCacheBytesPerGroupMax,
  logCacheEntriesPerGroupMax,
} from './constants.ts';
import { StorageError, assert, fail } from './errors.ts';
import { EMPTY_VIEW, GroupState, type FetchedRange, type GroupOwner } from './log-group.ts';
import { Lane } from './log-lane.ts';
import { resolveManifest, shardOf, type LogManifest } from './log-manifest.ts';
import { LogReader, type ReaderHost } from './log-reads.ts';
import { ChunkWriter, NO_ENTRIES, clearPiece, fillPiece, newPieceRecord, pieceBytes, type PieceRecord, type TaskPiece } from './log-task.ts';
import {
  newPlanRecord,
  planGroupWrite,
  snapshotUnavailable,
  type GroupLog,
  type GroupWrite,
  type LogEngine,
  type LogEngineHooks,
  type LogEngineStats,
  type LogRecoveryReport,
  type LogWriteOptions,
} from './log-types.ts';
import { openShardClient, type AppenderMode, type ShardClient } from './shard-client.ts';

export interface RocksLogEngineOptions extends LogEngineHooks {
  /** Directory of the log engine; one RocksDB per shard below it. */
  readonly dir: string;
  /** 'worker' (default): each shard's RocksDB is owned by a worker thread. */
  readonly mode?: AppenderMode;
  /** Shard count; fixed when the directory is created (recorded in its manifest): an existing directory must have it. */
  readonly shards?: number;
  /** Without `shards`: the count of a directory this open creates (default appenderShardsDefault); an existing one keeps its own. */
  readonly defaultShards?: number;
  /** Global cache budget in payload bytes (<= logCacheBytesMax). */
  readonly cacheBytesMax?: number;
  /** Bytes of one append task, lowered for tests and small machines (<= appendTaskBytesMax). */
  readonly taskBytesMax?: number;
  /**
   * Nice value (0..19) of the appender worker threads and the RocksDB threads they start (Linux
   * only; default appenderNiceDefault, 0: they run as the main thread does). Above 0, when both
   * want the CPU, the event loop wins — and every fsync a commit waits for starts later.
   */
  readonly appenderNice?: number;
}

const RESOLVED = Promise.resolve();

export class RocksLogEngine implements LogEngine, GroupOwner, ReaderHost {
  private readonly groups = new Map<number, GroupState>();
  /** Groups with cached entries, least recently appended first (intrusive list, no allocation). */
  private lruHead: GroupState | null = null;
  private lruTail: GroupState | null = null;
  private cacheBytes = 0;
  private cacheHits = 0;
  private cacheMisses = 0;
  private readonly reader: LogReader;
  private state: 'open' | 'closing' | 'closed' | 'failed' = 'open';
  private failure: unknown = null;
  private writableWaiters: Array<() => void> = [];
  private writeStamp = 0;
  // write()'s validated groups until it changes anything, by position in its `writes`: records
  // reused by every call (write() is synchronous and never re-entered) rather than records per
  // group, which a store's event loop would allocate for every group of every cycle, feeding the
  // young generation's collections (bench:storage's event-loop delay). They keep their capacity
  // (at most a write's bound of groups); write() drops what they reference when it returns.
  private readonly planRecord = newPlanRecord();
  private readonly plannedStates: (GroupState | undefined)[] = [];
  private readonly plannedPieces: PieceRecord[] = [];
  private readonly plannedLanes: (Lane | undefined)[] = [];

  private constructor(
    private readonly lanes: Lane[],
    /** The directory's shard count and group placement (LOG-MANIFEST.json). */
    readonly manifest: LogManifest,
    private readonly hooks: LogEngineHooks,
    readonly recovery: LogRecoveryReport,
    private readonly cacheBytesMax: number,
  ) {
    this.reader = new LogReader(this);
  }

  /** Opens (creating if missing) and recovers every shard. */
  static async open(options: RocksLogEngineOptions): Promise<RocksLogEngine> {
    const mode = options.mode ?? 'worker';
    const manifest = await resolveManifest(options.dir, options.shards, options.defaultShards);
    const shards = manifest.shards;
    const cacheBytesMax = options.cacheBytesMax ?? logCacheBytesMax;
    const taskBytesMax = options.taskBytesMax ?? appendTaskBytesMax;
    const nice = options.appenderNice ?? appenderNiceDefault;
    if (!(Number.isInteger(nice) && nice >= 0 && nice <= 19)) throw new StorageError('FLOTILLA_STORAGE_LIMIT_EXCEEDED', `appenderNice ${nice} outside 0..19`);
    if (!(taskBytesMax >= 4096 && taskBytesMax <= appendTaskBytesMax)) {
      throw new StorageError('FLOTILLA_STORAGE_LIMIT_EXCEEDED', `taskBytesMax ${taskBytesMax} outside 4096..${appendTaskBytesMax}`);
    }
    if (!(cacheBytesMax >= 0 && cacheBytesMax <= logCacheBytesMax)) {
      throw new StorageError('FLOTILLA_STORAGE_LIMIT_EXCEEDED', `cacheBytesMax ${cacheBytesMax} outside 0..${logCacheBytesMax}`);
    }
    const clients: ShardClient[] = [];
    try {
      for (let i = 0; i < shards; i++) clients.push(await openShardClient(mode, path.join(options.dir, `log-${i}`), nice));
      const recoveries = await Promise.all(clients.map((c) => c.recover()));
      const lanes = clients.map((c, i) => new Lane(i, c, taskBytesMax));
      const report: LogRecoveryReport = {
        groups: recoveries.reduce((n, r) => n + r.groups.length, 0),
        entries: recoveries.reduce((n, r) => n + r.entries, 0),
        cut: recoveries.flatMap((r) => r.cut),
        staleEntries: recoveries.reduce((n, r) => n + r.staleEntries, 0),
      };
      const engine = new RocksLogEngine(lanes, manifest, options, report, cacheBytesMax);
      for (let i = 0; i < shards; i++) {
        for (const g of recoveries[i]!.groups) {
          assert(shardOf(g.groupId, manifest) === i, `group ${g.groupId} found in shard ${i} (${manifest.placement} placement over ${shards})`);
          const s = new GroupState(g.groupId, engine);
          s.hard = g.hardState;
          s.conf = g.confState ?? EMPTY_CONF_STATE;
          s.truncIndex = g.truncated.index;
          s.truncTerm = g.truncated.term;
          s.last = g.lastIndex;
          s.cache.first = g.lastIndex + 1;
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
    // Views of unknown groups read as empty logs; they are registered on their first write.
    return this.groups.get(groupId) ?? new GroupState(groupId, this);
  }

  loadEntries(groupId: number, lo: number, hi: number, maxBytes: number): Promise<Entry[]> {
    try {
      this.checkUsable();
      return this.reader.load(this.groups.get(groupId) ?? new GroupState(groupId, this), lo, hi, maxBytes);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  // GroupOwner and ReaderHost: what group views and the reader ask of the engine.

  checkUsable(): void {
    if (this.state === 'failed') throw new StorageError('FLOTILLA_STORAGE_FAILED', 'the log engine failed earlier', { cause: this.failure });
    if (this.state !== 'open') throw new StorageError('FLOTILLA_STORAGE_CLOSED', 'the log engine is closed');
  }

  snapshotOf(groupId: number): Snapshot {
    if (this.hooks.snapshotProvider === undefined) return snapshotUnavailable(groupId);
    return this.hooks.snapshotProvider(groupId);
  }

  fetchedFor(s: GroupState, lo: number): FetchedRange | null {
    return this.reader.fetchedFor(s, lo);
  }

  dropFetched(groupId: number): void {
    this.reader.drop(groupId);
  }

  startFetch(s: GroupState, lo: number, hi: number, maxBytes: number): void {
    this.reader.start(s, lo, hi, maxBytes);
  }

  countCacheRead(hit: boolean): void {
    if (hit) this.cacheHits++;
    else this.cacheMisses++;
  }

  isOpen(): boolean {
    return this.state === 'open';
  }

  isLive(s: GroupState): boolean {
    return this.groups.get(s.groupId) === s;
  }

  clientOf(groupId: number): ShardClient {
    return this.laneOf(groupId).client;
  }

  async drained(groupId: number): Promise<void> {
    await this.laneOf(groupId).lastDone;
  }

  onFetched(groupId: number): void {
    this.hooks.onFetched?.(groupId);
  }

  // ---- writes ---------------------------------------------------------------------------------

  private laneOf(groupId: number): Lane {
    return this.lanes[shardOf(groupId, this.manifest)]!;
  }

  compact(requests: readonly { readonly groupId: number; readonly compactTo: number }[]): Promise<void> {
    return this.write(requests.map((r) => ({ groupId: r.groupId, compactTo: r.compactTo })));
  }

  write(writes: readonly GroupWrite[], options?: LogWriteOptions): Promise<void> {
    try {
      return this.writeNow(writes, options?.sync ?? true, options?.now ?? false);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private writeNow(writes: readonly GroupWrite[], sync: boolean, now: boolean): Promise<void> {
    this.checkUsable();
    if (writes.length === 0) return RESOLVED;
    const states = this.plannedStates;
    const pieces = this.plannedPieces;
    const pieceLanes = this.plannedLanes;
    try {
      this.planWrites(writes);
      // 3. Apply to the in-memory views, encode one chunk per shard, queue it in the open task.
      const lanes = this.lanes;
      const writers: (ChunkWriter | null)[] = [];
      for (const lane of lanes) {
        if (lane.needSeal) this.flush(lane);
        writers.push(lane.needPieces === 0 ? null : new ChunkWriter(lane.needBytes));
      }
      for (let i = 0; i < writes.length; i++) {
        const w = writes[i]!;
        const piece = pieces[i]!;
        this.applyPiece(w, states[i], piece);
        writers[pieceLanes[i]!.index]!.add(piece);
        if (w.destroy === true) pieceLanes[i]!.pendingDestroyed.add(w.groupId);
      }
      let done: Promise<void> | null = null;
      let more: Promise<void>[] | null = null;
      for (const lane of lanes) {
        const writer = writers[lane.index];
        if (writer === null || writer === undefined) continue;
        const p = lane.add(writer.finish(), lane.needBytes, lane.needEntries, lane.needPieces, sync);
        if (now && lane.canSeal()) this.flush(lane);
        else this.scheduleFlush(lane);
        if (done === null) done = p;
        else (more ??= [done]).push(p);
      }
      this.evictCache();
      assert(done !== null, 'a write queues at least one chunk');
      return more === null ? done : Promise.all(more).then(() => undefined);
    } finally {
      // Keep nothing of the call alive (see the file's header).
      this.planRecord.entries = NO_ENTRIES;
      this.planRecord.hardState = EMPTY_HARD_STATE;
      const used = Math.min(writes.length, pieces.length);
      for (let i = 0; i < used; i++) clearPiece(pieces[i]!);
      states.fill(undefined, 0, writes.length);
      pieceLanes.fill(undefined, 0, writes.length);
    }
  }

  /**
   * Steps 1 and 2 of a write, which change nothing: validates every group's write, fills
   * plannedStates / plannedPieces / plannedLanes by position and each lane's needs, and checks
   * every shard touched has room. Throws (typed) when any of it fails.
   */
  private planWrites(writes: readonly GroupWrite[]): void {
    // 1. Validate everything before changing anything.
    const lanes = this.lanes;
    // Each shard's part must fit one task: a larger write fails below anyway, and fails here
    // before the planned arrays grow to it.
    if (writes.length > appendTaskGroupsMax * lanes.length) {
      throw new StorageError('FLOTILLA_STORAGE_LIMIT_EXCEEDED', `one write of ${writes.length} groups carries more than ${lanes.length} tasks' worth (appendTaskGroupsMax ${appendTaskGroupsMax} each)`);
    }
    const stamp = ++this.writeStamp;
    for (const lane of lanes) lane.resetNeed();
    let fresh: Set<number> | null = null;
    for (let i = 0; i < writes.length; i++) {
      const w = writes[i]!;
      const s = this.groups.get(w.groupId);
      if (s !== undefined) {
        if (s.writeStamp === stamp) throw new StorageError('FLOTILLA_STORAGE_CONTRACT_VIOLATION', `group ${w.groupId} appears twice in one write`);
        s.writeStamp = stamp;
      } else {
        fresh ??= new Set();
        if (fresh.has(w.groupId)) throw new StorageError('FLOTILLA_STORAGE_CONTRACT_VIOLATION', `group ${w.groupId} appears twice in one write`);
        fresh.add(w.groupId);
      }
      const plan = planGroupWrite(s ?? EMPTY_VIEW, w, this.hooks, this.planRecord);
      if (i === this.plannedPieces.length) this.plannedPieces.push(newPieceRecord());
      const piece = fillPiece(this.plannedPieces[i]!, w, s?.last ?? 0, plan);
      const bytes = pieceBytes(piece);
      const lane = this.laneOf(w.groupId);
      if (bytes > lane.taskBytesMax || piece.entries.length > appendTaskEntriesMax) {
        throw new StorageError('FLOTILLA_STORAGE_LIMIT_EXCEEDED', `group ${w.groupId}: one write of ${bytes} bytes / ${piece.entries.length} entries exceeds a task`);
      }
      lane.needBytes += bytes;
      lane.needEntries += piece.entries.length;
      lane.needPieces++;
      // The post-commit range delete of a destroyed group must not hit its new entries.
      if (lane.pendingDestroyed.size > 0 && lane.pendingDestroyed.has(w.groupId)) lane.needSeal = true;
      this.plannedStates[i] = s;
      this.plannedLanes[i] = lane;
    }
    if (fresh !== null && this.groups.size + fresh.size > groupsMax) throw new StorageError('FLOTILLA_STORAGE_LIMIT_EXCEEDED', `more than groupsMax ${groupsMax} groups`);
    // 2. Room in every shard touched (the open task, or a free in-flight slot to seal it).
    for (const lane of lanes) {
      if (lane.needPieces === 0) continue;
      if (lane.needBytes > lane.taskBytesMax || lane.needEntries > appendTaskEntriesMax || lane.needPieces > appendTaskGroupsMax) {
        throw new StorageError('FLOTILLA_STORAGE_LIMIT_EXCEEDED', `one write carries more than one task's worth for shard ${lane.index}`);
      }
      if (lane.needSeal || !lane.fits(lane.needBytes, lane.needEntries, lane.needPieces)) {
        lane.needSeal = true;
        if (!lane.canSeal()) throw new StorageError('FLOTILLA_STORAGE_QUEUE_FULL', `log shard ${lane.index} is full; await writable()`);
      }
    }
  }

  /**
   * Changes a group's in-memory view as its validated piece says (the piece is both what the
   * shard writes and the plan: newLast, truncatedIndex, hardState and, when compacting,
   * truncatedAfter are the plan's).
   */
  private applyPiece(w: GroupWrite, existing: GroupState | undefined, piece: TaskPiece): void {
    if (w.destroy === true) {
      if (existing !== undefined) {
        this.cacheBytes -= existing.cache.clear(0);
        existing.generation++;
        this.groups.delete(w.groupId);
        this.lruRemove(existing);
        this.reader.drop(w.groupId);
      }
      return;
    }
    let s = existing;
    if (s === undefined) {
      s = new GroupState(w.groupId, this);
      this.groups.set(w.groupId, s);
    }
    const cache = s.cache;
    if (w.snapshot !== undefined) {
      s.generation++;
      s.truncIndex = w.snapshot.index;
      s.truncTerm = w.snapshot.term;
      s.last = w.snapshot.index;
      s.runStarts = [];
      s.runTerms = [];
      this.cacheBytes -= cache.clear(s.last + 1);
      s.conf = w.snapshot.confState;
      s.fetchError = null;
    }
    const entries = piece.entries;
    if (entries.length > 0) {
      const firstNew = piece.firstNew;
      if (firstNew <= s.last) {
        s.generation++;
        s.fetchError = null;
      }
      // Drop the overwritten cached suffix (or all of it when the new entries start before it).
      this.cacheBytes -= firstNew < cache.first ? cache.clear(firstNew) : cache.truncateFrom(firstNew);
      s.setTermsFrom(firstNew, entries);
      const before = cache.bytes;
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i]!;
        // An entry that cannot stay cached is not copied at all.
        if (this.cacheBytesMax === 0 || e.data.byteLength > logCacheBytesPerGroupMax) cache.clear(e.index + 1);
        else cache.push(e);
      }
      this.cacheBytes += cache.bytes - before;
      s.last = piece.newLast;
      // Per-group bounds.
      const over = cache.count - logCacheEntriesPerGroupMax;
      if (over > 0) this.cacheBytes -= cache.dropBelow(cache.first + over);
      while (cache.bytes > logCacheBytesPerGroupMax && cache.count > 0) this.cacheBytes -= cache.dropBelow(cache.first + 1);
      this.lruRemove(s);
      if (cache.count > 0) this.lruAppend(s);
    }
    if (s.last !== piece.newLast) fail(`group ${s.groupId}: last index ${s.last} does not follow the plan's ${piece.newLast}`);
    s.hard = piece.hardState!;
    if (w.confState !== undefined) s.conf = w.confState;
    const compacted = piece.truncatedAfter;
    if (compacted !== null) {
      s.dropTermsThrough(compacted.index);
      s.truncIndex = compacted.index;
      s.truncTerm = compacted.term;
      this.cacheBytes -= cache.dropBelow(compacted.index + 1);
      if (cache.count === 0) this.lruRemove(s);
    }
    if (cache.count === 0) cache.first = s.last + 1;
  }

  private lruRemove(s: GroupState): void {
    if (!s.inLru) return;
    if (s.lruPrev === null) this.lruHead = s.lruNext;
    else s.lruPrev.lruNext = s.lruNext;
    if (s.lruNext === null) this.lruTail = s.lruPrev;
    else s.lruNext.lruPrev = s.lruPrev;
    s.lruPrev = null;
    s.lruNext = null;
    s.inLru = false;
  }

  private lruAppend(s: GroupState): void {
    s.lruPrev = this.lruTail;
    s.lruNext = null;
    if (this.lruTail === null) this.lruHead = s;
    else this.lruTail.lruNext = s;
    this.lruTail = s;
    s.inLru = true;
  }

  /** Keeps the global cache within budget by emptying the least recently appended groups. */
  private evictCache(): void {
    while (this.cacheBytes > this.cacheBytesMax && this.lruHead !== null) {
      const s = this.lruHead;
      this.lruRemove(s);
      this.cacheBytes -= s.cache.clear(s.last + 1);
    }
  }

  private scheduleFlush(lane: Lane): void {
    if (lane.flushScheduled) return;
    lane.flushScheduled = true;
    // After the current turn's microtasks: writes of every group continuing in this turn coalesce.
    setImmediate(() => {
      lane.flushScheduled = false;
      if (lane.canSeal()) this.flush(lane);
    });
  }

  /** Seals the open task of a lane and submits it (the caller checked canSeal()). */
  private flush(lane: Lane): void {
    if (lane.pending.length === 0 || this.state === 'failed') return;
    assert(lane.canSeal(), 'room to submit the open task');
    const task = lane.seal();
    lane.client.append(task.seq, task.chunks, task.alone, task.sync).then(
      () => {
        lane.settled(task);
        lane.tasks++;
        lane.entries += task.entries;
        task.done.resolve();
        if (lane.pending.length > 0) this.scheduleFlush(lane);
        this.notifyWritable();
      },
      (err: unknown) => {
        lane.settled(task);
        this.fail(err);
        task.done.reject(this.failedError());
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
    if (this.state === 'open' && !this.hasRoom()) return;
    const waiters = this.writableWaiters;
    this.writableWaiters = [];
    for (const w of waiters) w();
  }

  hasRoom(): boolean {
    return this.state === 'open' && this.lanes.every((l) => l.hasRoom());
  }

  writable(): Promise<void> {
    if (this.state !== 'open' || this.hasRoom()) return Promise.resolve();
    return new Promise((resolve) => this.writableWaiters.push(resolve));
  }

  stats(): LogEngineStats {
    let tasks = 0;
    let syncs = 0;
    let entries = 0;
    for (const l of this.lanes) {
      tasks += l.tasks;
      syncs += l.client.syncs;
      entries += l.entries;
    }
    return {
      groups: this.groups.size,
      tasks,
      syncs,
      entriesWritten: entries,
      cacheBytes: this.cacheBytes,
      cacheHits: this.cacheHits,
      cacheMisses: this.cacheMisses,
      fetches: this.reader.fetches,
    };
  }

  async close(): Promise<void> {
    if (this.state === 'closed' || this.state === 'closing') return;
    const wasFailed = this.state === 'failed';
    // Let everything submitted become durable first.
    if (!wasFailed) {
      for (const lane of this.lanes) {
        if (lane.pending.length > 0 && lane.canSeal()) this.flush(lane);
      }
      await Promise.allSettled(this.lanes.map((l) => l.lastDone));
    }
    this.state = 'closing';
    await this.reader.settle();
    await Promise.allSettled(this.lanes.map((l) => l.client.close()));
    this.state = 'closed';
    this.notifyWritable();
  }
}

export function openLogEngine(options: RocksLogEngineOptions): Promise<RocksLogEngine> {
  return RocksLogEngine.open(options);
}
