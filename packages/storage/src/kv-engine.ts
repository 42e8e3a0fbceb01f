/**
 * The RocksDB KV state machine engine (main thread). One RocksDB with two columns: `data` (the
 * user keys of all regions) and `meta` (per-region apply state, region metadata, snapshot
 * markers). Applies are serialized; each batch of many regions becomes ONE unsynced write
 * batch holding the data AND the apply states it covers, so the applied index on disk always
 * describes exactly the data on disk. Durability comes from the raft log: see README
 * "The two engines after a crash".
 */
import { mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { RocksLevel, type ChainedBatch, type ColumnFamily, type RocksIterator } from '@nxtedition/rocksdb';
import type { ConfState } from '@flotilla/raft';
import {
  KV_FORMAT_VERSION,
  kvApplyQueueMax,
  kvDeleteRangeKeysMax,
  kvGetManyKeysMax,
  kvPointReadsNowDeadlineMs,
  kvPointReadsNowKeysMax,
  kvScanBytesMax,
  kvScanRowsMax,
  regionsMax,
  scanRowsPerStepMax,
} from './constants.ts';
import { StorageError, assert, fail } from './errors.ts';
import { checkKey, clipRange, validateApplyBatch } from './kv-apply.ts';
import { batchEffects, toKey, type BatchEffects } from './kv-apply-effects.ts';
import { ApplyJournal } from './kv-apply-journal.ts';
import {
  KV_TAG_APPLY_JOURNAL,
  KV_TAG_APPLY_STATE,
  KV_TAG_FORMAT,
  KV_TAG_REGION,
  KV_TAG_SNAPSHOT_MARKER,
  KV_TAG_SYNC,
  checkKvValue,
  decodeApplyJournal,
  decodeApplyState,
  decodeRegionRecord,
  decodeSnapshotMarker,
  encodeKvFormatRecord,
  encodeRegionRecord,
  encodeSyncMarker,
  type AppliedState,
  type SnapshotMarker,
} from './kv-format.ts';
import { readU64 } from './log-format.ts';
import { applySnapshot, ingestStaged, openSnapshotSource, type KvSnapshotHost } from './kv-snapshots.ts';
import { PointReadBatcher, type ReadNow } from './point-reads.ts';
import {
  type ApplyResult,
  type KvEngine,
  type KvPair,
  type RegionApply,
  type RegionMeta,
  type RegionSnapshotSource,
  type MergeState,
  type RegionState,
  type ScanOptions,
  type SnapshotAdmission,
  type ScanResult,
} from './kv-types.ts';

export interface RocksKvEngineOptions {
  readonly dir: string;
}

export interface KvRecoveryReport {
  readonly regions: number;
  /** Regions whose interrupted snapshot apply was redone on open. */
  readonly snapshotsRedone: readonly number[];
}

/** Values leave the engine as plain Uint8Array views (no copy), as the twin returns them. */
const plain = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

interface Tracked {
  state: RegionState;
  durableAppliedIndex: number;
}

export class RocksKvEngine implements KvEngine {
  private readonly regionsById = new Map<number, Tracked>();
  /** Regions applied since the last synced write. */
  private readonly dirty = new Set<number>();
  private chain: Promise<unknown> = Promise.resolve();
  private queued = 0;
  private syncCounter = 0;
  private state: 'open' | 'failed' | 'closed' = 'open';
  private failure: unknown = null;
  private readonly openIterators = new Set<RocksIterator>();
  recovery: KvRecoveryReport = { regions: 0, snapshotsRedone: [] };

  /** The engine as the snapshot code (kv-snapshots.ts) sees it. */
  private readonly host: KvSnapshotHost;
  /** How apply states are written (kv-apply-journal.ts); recovery replaces it with what it read. */
  private journal = new ApplyJournal();
  /** get() calls of one turn, read in one MultiGet (point-reads.ts). */
  private readonly pointReads: PointReadBatcher<Buffer>;

  private constructor(
    private readonly db: RocksLevel,
    private readonly snapshotDir: string,
  ) {
    this.pointReads = new PointReadBatcher(
      (keys) => {
        this.check();
        return this.db.getMany(keys, { column: this.data });
      },
      kvGetManyKeysMax,
      this.readNow(db),
    );
    this.host = {
      db,
      snapshotDir,
      openIterators: this.openIterators,
      data: () => this.data,
      meta: () => this.meta,
      check: () => this.check(),
      written: (write) => this.written(write),
      lookup: (regionId) => this.lookup(regionId),
      setState: (regionId, state) => {
        const t = this.regionsById.get(regionId);
        if (t === undefined) this.regionsById.set(regionId, { state, durableAppliedIndex: 0 });
        else t.state = state;
      },
      markDirty: (regionId) => this.dirty.add(regionId),
      markDurable: () => this.markDurable(),
      serialized: (work) => this.serialized(work),
      recordApplied: (states) => this.journal.ops(states, (regionId) => this.appliedState(regionId), this.meta),
    };
  }

  static async open(options: RocksKvEngineOptions): Promise<RocksKvEngine> {
    const snapshotDir = path.join(options.dir, 'snapshots');
    await mkdir(snapshotDir, { recursive: true });
    const db = new RocksLevel(path.join(options.dir, 'kv'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    // No WAL compression: the binding's default (ZSTD over every write) cost the main thread,
    // which writes every apply batch synchronously, CPU for each applied put; the log shards
    // turned it off for the same reason (log-shard.ts).
    await db.open({ createIfMissing: true, columns: { default: {}, meta: {}, data: {} }, walCompression: false, infoLogLevel: 'error' });
    const engine = new RocksKvEngine(db, snapshotDir);
    try {
      await engine.recover();
    } catch (err) {
      await db.close();
      throw err;
    }
    return engine;
  }

  private get meta(): ColumnFamily {
    const c = this.db.columns['meta'];
    assert(c !== undefined, 'meta column');
    return c;
  }

  private get data(): ColumnFamily {
    const c = this.db.columns['data'];
    assert(c !== undefined, 'data column');
    return c;
  }

  /**
   * Small batches of point reads on the main thread first, with a deadline (point-reads.ts);
   * undefined if the binding lacks its private synchronous MultiGet (all reads then take the
   * thread pool).
   */
  private readNow(db: RocksLevel): ReadNow<Buffer> | undefined {
    const readManySync = db._getManySync;
    if (typeof readManySync !== 'function') return undefined;
    return {
      keysMax: kvPointReadsNowKeysMax,
      read: (keys) => {
        this.check();
        return readManySync.call(db, keys, { column: this.data, timeout: kvPointReadsNowDeadlineMs });
      },
    };
  }

  private check(): void {
    if (this.state === 'failed') throw new StorageError('FLOTILLA_STORAGE_FAILED', 'a KV write failed earlier; the engine refuses further work', { cause: this.failure });
    if (this.state !== 'open') throw new StorageError('FLOTILLA_STORAGE_CLOSED', 'the KV engine is closed');
  }

  /** A failed write leaves memory and disk apart: fatal to the engine. */
  private async written(write: Promise<void>): Promise<void> {
    try {
      await write;
    } catch (err) {
      this.state = 'failed';
      this.failure = err;
      throw new StorageError('FLOTILLA_STORAGE_FAILED', 'a KV write failed', { cause: err });
    }
  }

  // ---- recovery ---------------------------------------------------------------------------------

  private async recover(): Promise<void> {
    const regions = new Map<number, { meta?: { region: RegionMeta; confState: ConfState; status: RegionState['status']; merging?: MergeState }; apply?: { appliedIndex: number; appliedTerm: number }; marker?: SnapshotMarker }>();
    let formatVersion = 0;
    let sawOther = false;
    const journal: { seq: number; states: AppliedState[] }[] = [];
    const it = this.db.iterator({ column: this.meta, fillCache: false });
    try {
      for (;;) {
        const rows = await it.nextv(scanRowsPerStepMax);
        if (rows.length === 0) break;
        for (const [key, value] of rows) {
          if (key.byteLength !== 9) throw new StorageError('FLOTILLA_STORAGE_CORRUPTION', `kv meta key of ${key.byteLength} bytes`);
          const tag = key[0]!;
          const id = readU64(key, 1);
          if (tag === KV_TAG_FORMAT) {
            formatVersion = checkKvValue(key, value, 8, 'kv format record');
            continue;
          }
          if (tag === KV_TAG_SYNC) continue;
          sawOther = true;
          if (tag === KV_TAG_APPLY_JOURNAL) {
            // Key order is sequence order; applied over the apply-state records below.
            journal.push({ seq: id, states: decodeApplyJournal(key, value) });
            continue;
          }
          const r = regions.get(id) ?? {};
          regions.set(id, r);
          if (tag === KV_TAG_REGION) r.meta = decodeRegionRecord(key, value);
          else if (tag === KV_TAG_APPLY_STATE) r.apply = decodeApplyState(key, value);
          else if (tag === KV_TAG_SNAPSHOT_MARKER) r.marker = decodeSnapshotMarker(key, value);
          else throw new StorageError('FLOTILLA_STORAGE_CORRUPTION', `kv meta tag ${tag}`);
        }
      }
    } finally {
      await it.close();
    }
    if (formatVersion === 0 && sawOther) throw new StorageError('FLOTILLA_STORAGE_CORRUPTION', 'kv data without a format record');
    if (formatVersion !== KV_FORMAT_VERSION) {
      // A new directory, or one of version 3 (read as is: its records did not change) upgraded.
      const f = encodeKvFormatRecord();
      await this.db.batch([{ type: 'put', key: f.key, value: f.value, column: this.meta }], { sync: true });
    }
    // Each journal record is newer than every apply-state record and than the records before it.
    const named = new Set<number>();
    let journalStates = 0;
    for (const { states } of journal) {
      for (const s of states) {
        const r = regions.get(s.regionId) ?? {};
        regions.set(s.regionId, r);
        r.apply = { appliedIndex: s.appliedIndex, appliedTerm: s.appliedTerm };
        named.add(s.regionId);
      }
      journalStates += states.length;
    }
    this.journal = new ApplyJournal({ seqs: journal.map((j) => j.seq), regions: named, states: journalStates });
    const redo: { id: number; marker: SnapshotMarker }[] = [];
    for (const [id, r] of regions) {
      if (r.meta === undefined) {
        if (r.marker !== undefined || r.apply !== undefined) throw new StorageError('FLOTILLA_STORAGE_CORRUPTION', `region ${id}: state without metadata`);
        continue;
      }
      if (r.meta.region.id !== id) throw new StorageError('FLOTILLA_STORAGE_CORRUPTION', `region record ${id} names region ${r.meta.region.id}`);
      const state: RegionState = {
        region: r.meta.region,
        confState: r.meta.confState,
        appliedIndex: r.apply?.appliedIndex ?? 0,
        appliedTerm: r.apply?.appliedTerm ?? 0,
        status: r.meta.status,
        ...(r.meta.merging ? { merging: r.meta.merging } : {}),
      };
      this.regionsById.set(id, { state, durableAppliedIndex: 0 });
      if (r.marker !== undefined) redo.push({ id, marker: r.marker });
      else if (state.status === 'applyingSnapshot') throw new StorageError('FLOTILLA_STORAGE_CORRUPTION', `region ${id}: applying a snapshot without a marker`);
    }
    for (const { id, marker } of redo) await ingestStaged(this.host, id, marker);
    // Whatever survived the restart is made durable now: durable applied = applied.
    await this.syncNow();
    for (const t of this.regionsById.values()) t.durableAppliedIndex = t.state.appliedIndex;
    await this.removeStaleStagingFiles(new Set(redo.map((r) => r.marker.file)));
    this.recovery = { regions: this.regionsById.size, snapshotsRedone: redo.map((r) => r.id) };
  }

  private async removeStaleStagingFiles(keep: Set<string>): Promise<void> {
    for (const name of await readdir(this.snapshotDir)) {
      if (!keep.has(name)) await rm(path.join(this.snapshotDir, name), { force: true });
    }
  }

  // ---- apply ----------------------------------------------------------------------------------------

  apply(batch: readonly RegionApply[]): Promise<ApplyResult[]> {
    this.check();
    if (this.queued >= kvApplyQueueMax) {
      return Promise.reject(new StorageError('FLOTILLA_STORAGE_QUEUE_FULL', `more than kvApplyQueueMax ${kvApplyQueueMax} apply batches queued`));
    }
    return this.serialized(() => this.applyNow(batch));
  }

  private serialized<T>(work: () => Promise<T>): Promise<T> {
    this.queued++;
    const run = this.chain.then(work);
    this.chain = run.then(
      () => {
        this.queued--;
      },
      () => {
        this.queued--;
      },
    );
    return run;
  }

  private lookup(regionId: number): RegionState | null {
    return this.regionsById.get(regionId)?.state ?? null;
  }

  /** A known region's applied index and term (for the apply journal's checkpoints). */
  private appliedState(regionId: number): AppliedState {
    const state = this.lookup(regionId);
    if (state === null) fail(`region ${regionId} named by the apply journal is known`);
    return { regionId, appliedIndex: state.appliedIndex, appliedTerm: state.appliedTerm };
  }

  private async applyNow(batch: readonly RegionApply[]): Promise<ApplyResult[]> {
    this.check();
    validateApplyBatch(batch, (id) => this.lookup(id));
    let created = 0;
    for (const a of batch) for (const c of a.commands) if (c.op === 'putRegion' && !this.regionsById.has(c.region.id)) created++;
    if (this.regionsById.size + created > regionsMax) throw new StorageError('FLOTILLA_STORAGE_LIMIT_EXCEEDED', `more than regionsMax ${regionsMax} regions`);

    // Reads the batch needs, against the data before it: CAS bases and delete-range keys.
    const casKeys = new Map<string, Uint8Array>();
    const rangeKeys = new Map<object, Uint8Array[] | 'tooMany'>();
    for (const a of batch) {
      const first = a.commands[0];
      const region = this.lookup(a.regionId)?.region ?? (first?.op === 'putRegion' ? first.region : undefined);
      for (const c of a.commands) {
        if (c.op === 'cas') casKeys.set(toKey(c.key), c.key);
        if (c.op === 'deleteRange') {
          const clip = region === undefined ? null : clipRange(c.start, c.end, region.startKey, region.endKey);
          rangeKeys.set(c, clip === null ? [] : await this.keysIn(clip.start, clip.end, kvDeleteRangeKeysMax + 1));
        }
      }
    }
    const base = new Map<string, Uint8Array | null>();
    if (casKeys.size > 0) {
      const keys = [...casKeys.values()];
      const values = await this.db.getMany(keys, { column: this.data });
      let i = 0;
      for (const k of casKeys.keys()) {
        const v = values[i++];
        base.set(k, v === undefined ? null : plain(v));
      }
    }
    this.check();

    const writes = this.db.batch();
    assert(typeof writes._put === 'function' && typeof writes._del === 'function', '@nxtedition/rocksdb chained batch has _put/_del');
    let effects: BatchEffects;
    let write: Promise<void>;
    try {
      effects = batchEffects(batch, base, rangeKeys, (id) => this.lookup(id), writes, { column: this.data });
      this.putRegionsAndStates(effects.regionChanges, writes);
      // The batch is written synchronously by this call; the in-memory states follow in the same
      // turn, so a snapshot taken at any moment sees data and applied index that agree.
      write = writes.length > 0 ? writes.write({ sync: false }) : writes.close();
    } catch (err) {
      void writes.close().catch(() => {});
      throw err;
    }
    const { out, regionChanges } = effects;
    for (const [id, s] of regionChanges) {
      const t = this.regionsById.get(id);
      if (t === undefined) this.regionsById.set(id, { state: s, durableAppliedIndex: 0 });
      else t.state = s;
      this.dirty.add(id);
    }
    await this.written(write);
    return out;
  }

  /** Region records that changed, and the batch's apply states (kv-apply-journal.ts), into `writes`. */
  private putRegionsAndStates(regionChanges: ReadonlyMap<number, RegionState>, writes: ChainedBatch): void {
    const meta = { column: this.meta };
    const applied: AppliedState[] = [];
    for (const [id, s] of regionChanges) {
      const old = this.lookup(id);
      if (old === null || old.region !== s.region || old.confState !== s.confState || old.status !== s.status || old.merging !== s.merging) {
        const r = encodeRegionRecord(s, s.status);
        writes._put(r.key, r.value, meta);
      }
      applied.push({ regionId: id, appliedIndex: s.appliedIndex, appliedTerm: s.appliedTerm });
    }
    // The apply states: one journal record for the whole batch (or a checkpoint).
    const appliedOf = (id: number): AppliedState => {
      const s = regionChanges.get(id);
      return s === undefined ? this.appliedState(id) : { regionId: id, appliedIndex: s.appliedIndex, appliedTerm: s.appliedTerm };
    };
    for (const op of this.journal.ops(applied, appliedOf, meta.column)) {
      if (op.type === 'put') writes._put(op.key, op.value, meta);
      else writes._del(op.key, meta);
    }
  }

  private async keysIn(start: Uint8Array, end: Uint8Array, limit: number): Promise<Uint8Array[] | 'tooMany'> {
    const it = this.db.iterator({ column: this.data, gte: start, ...(end.byteLength > 0 ? { lt: end } : {}), values: false, limit });
    const keys: Uint8Array[] = [];
    try {
      for (;;) {
        const rows = await it.nextv(scanRowsPerStepMax);
        if (rows.length === 0) break;
        for (const [key] of rows) keys.push(key);
      }
    } finally {
      await it.close();
    }
    return keys.length >= limit ? 'tooMany' : keys;
  }

  // ---- reads ------------------------------------------------------------------------------------------

  async get(key: Uint8Array): Promise<Uint8Array | null> {
    this.check();
    checkKey(key, 'get');
    const value = await this.pointReads.get(key);
    return value === undefined ? null : plain(value);
  }

  async getMany(keys: readonly Uint8Array[]): Promise<Array<Uint8Array | null>> {
    this.check();
    if (keys.length > kvGetManyKeysMax) throw new StorageError('FLOTILLA_STORAGE_LIMIT_EXCEEDED', `getMany of ${keys.length} keys > kvGetManyKeysMax ${kvGetManyKeysMax}`);
    for (const k of keys) checkKey(k, 'getMany');
    if (keys.length === 0) return [];
    const values = await this.db.getMany(keys, { column: this.data });
    return values.map((v) => (v === undefined ? null : plain(v)));
  }

  async scan(options: ScanOptions): Promise<ScanResult> {
    this.check();
    const limit = Math.min(Math.max(options.limit, 0), kvScanRowsMax);
    const bytesMax = Math.min(options.bytesMax ?? kvScanBytesMax, kvScanBytesMax);
    if (limit === 0) return { pairs: [], more: false };
    const it = this.db.iterator({
      column: this.data,
      ...(options.start.byteLength > 0 ? { gte: options.start } : {}),
      ...(options.end.byteLength > 0 ? { lt: options.end } : {}),
      reverse: options.reverse === true,
      limit: limit + 1,
    });
    const pairs: KvPair[] = [];
    let bytes = 0;
    let more = false;
    try {
      outer: for (;;) {
        const rows = await it.nextv(Math.min(scanRowsPerStepMax, limit + 1 - pairs.length));
        if (rows.length === 0) break;
        for (const [key, value] of rows) {
          const size = key.byteLength + value.byteLength;
          if (pairs.length >= limit || (pairs.length > 0 && bytes + size > bytesMax)) {
            more = true;
            break outer;
          }
          pairs.push({ key: plain(key), value: plain(value) });
          bytes += size;
        }
      }
    } finally {
      await it.close();
    }
    return { pairs, more };
  }

  region(regionId: number): RegionState | null {
    return this.lookup(regionId);
  }

  regions(): RegionState[] {
    return [...this.regionsById.values()].map((t) => t.state);
  }

  // ---- durability -----------------------------------------------------------------------------------------

  durableAppliedIndex(regionId: number): number {
    return this.regionsById.get(regionId)?.durableAppliedIndex ?? 0;
  }

  /**
   * One synced write: RocksDB's WAL is sequential, so it makes every earlier (unsynced) apply
   * durable. Runs on this thread (one fsync); call it rarely — before compacting raft logs.
   */
  sync(): Promise<void> {
    this.check();
    return this.serialized(() => this.syncNow());
  }

  private async syncNow(): Promise<void> {
    const m = encodeSyncMarker(++this.syncCounter);
    await this.db.batch([{ type: 'put', key: m.key, value: m.value, column: this.meta }], { sync: true });
    this.markDurable();
  }

  private markDurable(): void {
    for (const id of this.dirty) {
      const t = this.regionsById.get(id);
      if (t !== undefined) t.durableAppliedIndex = t.state.appliedIndex;
    }
    this.dirty.clear();
  }

  // ---- snapshots (kv-snapshots.ts) -------------------------------------------------------------------------

  snapshot(regionId: number): RegionSnapshotSource {
    return openSnapshotSource(this.host, regionId);
  }

  /** Snapshot sources still holding an engine view (each pins RocksDB's versions until closed). */
  openSnapshotViews(): number {
    return this.openIterators.size;
  }

  applySnapshot(regionId: number, frames: AsyncIterable<Uint8Array>, admit?: SnapshotAdmission): Promise<RegionState> {
    return applySnapshot(this.host, regionId, frames, admit);
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    await this.chain.catch(() => {});
    this.state = 'closed';
    for (const it of this.openIterators) await it.close().catch(() => {});
    this.openIterators.clear();
    await this.db.close();
  }
}

export function openKvEngine(options: RocksKvEngineOptions): Promise<RocksKvEngine> {
  return RocksKvEngine.open(options);
}
