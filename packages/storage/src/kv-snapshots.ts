/**
 * Region snapshots of the RocksDB KV engine (see the README's "Region snapshots"): a
 * point-in-time source streamed in checksummed frames, and the crash-safe apply — stage the
 * verified frames in a file, persist a marker, clear the range and ingest, then one synced
 * batch with the region's metadata and apply state that removes the marker. A crash in between
 * leaves the marker, and the next open redoes the ingest from the staged file (ingestStaged).
 */
import { open as openFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { BatchOperation, ColumnFamily, RocksIterator, RocksLevel } from '@nxtedition/rocksdb';
import { scanRowsPerStepMax, snapshotFrameBytesMax } from './constants.ts';
import { StorageError, assert } from './errors.ts';
import { failpoint } from './failpoints.ts';
import { snapshotFrames, snapshotRefusal, supersededStates } from './kv-apply.ts';
import { KV_TAG_SNAPSHOT_MARKER, encodeRegionRecord, encodeSnapshotMarker, kvMetaKey, readFrames, type AppliedState, type SnapshotMarker } from './kv-format.ts';
import { readU32 } from './log-format.ts';
import type { KvPair, RegionSnapshotSource, RegionState, SnapshotAdmission } from './kv-types.ts';

/** What the snapshot code needs of the engine. */
export interface KvSnapshotHost {
  readonly db: RocksLevel;
  readonly snapshotDir: string;
  /** Iterators of snapshot sources still streaming (closed with the engine). */
  readonly openIterators: Set<RocksIterator>;
  data(): ColumnFamily;
  meta(): ColumnFamily;
  /** Throws unless the engine is open. */
  check(): void;
  /** Awaits a write; a failure is fatal to the engine. */
  written(write: Promise<void>): Promise<void>;
  lookup(regionId: number): RegionState | null;
  setState(regionId: number, state: RegionState): void;
  /** The region was applied to since the last synced write. */
  markDirty(regionId: number): void;
  /** A synced write happened: everything applied so far is durable. */
  markDurable(): void;
  /** Runs `work` after every apply queued before it (applies are serialized). */
  serialized<T>(work: () => Promise<T>): Promise<T>;
  /** The batch operations that record these regions' apply states (the apply journal, kv-apply-journal.ts). */
  recordApplied(states: readonly AppliedState[]): BatchOperation[];
}

/** A point-in-time source of a region's snapshot (see the README's "Region snapshots"). */
export function openSnapshotSource(host: KvSnapshotHost, regionId: number): RegionSnapshotSource {
  host.check();
  const current = host.lookup(regionId);
  if (current === null) throw new StorageError('FLOTILLA_STORAGE_REGION_NOT_FOUND', `region ${regionId} does not exist`);
  if (current.status !== 'normal') throw new StorageError('FLOTILLA_STORAGE_REGION_BUSY', `region ${regionId} is ${current.status}`);
  // The iterator is a point-in-time view taken now, with the in-memory state of the same instant
  // (applies write synchronously on this thread, so none can fall in between).
  const state = current;
  const { startKey, endKey } = state.region;
  const it = host.db.iterator({ column: host.data(), ...(startKey.byteLength > 0 ? { gte: startKey } : {}), ...(endKey.byteLength > 0 ? { lt: endKey } : {}), fillCache: false });
  host.openIterators.add(it);
  let used = false;
  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      host.openIterators.delete(it);
      await it.close();
    })();
    return closing;
  };
  async function* batches(): AsyncGenerator<readonly KvPair[]> {
    for (;;) {
      host.check();
      const rows = await it.nextv(scanRowsPerStepMax);
      if (rows.length === 0) return;
      yield rows.map(([key, value]) => ({ key, value }));
    }
  }
  // The view goes once the frames end, fail or their reader stops (even before the data).
  async function* frames(): AsyncGenerator<Uint8Array> {
    try {
      yield* snapshotFrames(state, batches());
    } finally {
      await close();
    }
  }
  return {
    state,
    frames: () => {
      assert(!used, 'a snapshot source is iterated once');
      used = true;
      return frames();
    },
    close,
  };
}

/**
 * 1. stage the verified frames in a file (fsynced), 2. persist a marker (region busy),
 * 3. clear the range and ingest, 4. in one synced batch: region metadata, apply state, marker
 * removed. A crash after 2 is redone from the staged file on open.
 */
export async function applySnapshot(host: KvSnapshotHost, regionId: number, frames: AsyncIterable<Uint8Array>, admit?: SnapshotAdmission): Promise<RegionState> {
  host.check();
  const before = host.lookup(regionId);
  if (before !== null && before.status === 'applyingSnapshot') throw new StorageError('FLOTILLA_STORAGE_REGION_BUSY', `region ${regionId} is applying a snapshot`);
  const tmp = path.join(host.snapshotDir, `region-${regionId}.receiving`);
  const handle = await openFile(tmp, 'w');
  let state: RegionState;
  try {
    let position = 0;
    async function* tee(): AsyncGenerator<Uint8Array> {
      for await (const frame of frames) {
        const copy = Uint8Array.from(frame);
        await handle.write(copy, 0, copy.byteLength, position);
        position += copy.byteLength;
        yield copy;
      }
    }
    state = await readFrames(
      tee(),
      (s) => {
        if (s.region.id !== regionId) throw new StorageError('FLOTILLA_STORAGE_SNAPSHOT_INVALID', `snapshot of region ${s.region.id}, expected ${regionId}`);
        const now = host.lookup(regionId);
        if (now !== null && now.appliedIndex >= s.appliedIndex) {
          throw new StorageError('FLOTILLA_STORAGE_CONTRACT_VIOLATION', `region ${regionId}: snapshot at ${s.appliedIndex} is not above applied ${now.appliedIndex}`);
        }
      },
      () => {},
    );
    await handle.sync();
  } catch (err) {
    await handle.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await handle.close();
  const file = `region-${regionId}-${state.appliedIndex}.snap`;
  await rename(tmp, path.join(host.snapshotDir, file));
  const dir = await openFile(host.snapshotDir, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
  return host.serialized(async () => {
    host.check();
    const now = host.lookup(regionId);
    const refusal = snapshotRefusal(now, state);
    if (refusal !== null) {
      await rm(path.join(host.snapshotDir, file), { force: true });
      throw new StorageError('FLOTILLA_STORAGE_CONTRACT_VIOLATION', `region ${regionId}: ${refusal}`);
    }
    const verdict = admit?.(state) ?? { tombstones: [] };
    if ('refusal' in verdict) {
      await rm(path.join(host.snapshotDir, file), { force: true });
      throw new StorageError('FLOTILLA_STORAGE_SNAPSHOT_REFUSED', `region ${regionId}: ${verdict.refusal}`);
    }
    const ended = supersededStates(host, regionId, verdict.tombstones);
    const marker: SnapshotMarker = { index: state.appliedIndex, term: state.appliedTerm, file };
    const m = encodeSnapshotMarker(regionId, marker);
    const r = encodeRegionRecord(state, 'applyingSnapshot');
    await host.db.batch(
      [
        { type: 'put', key: m.key, value: m.value, column: host.meta() },
        { type: 'put', key: r.key, value: r.value, column: host.meta() },
        ...ended.map((t): BatchOperation => {
          const record = encodeRegionRecord(t, 'tombstone');
          return { type: 'put', key: record.key, value: record.value, column: host.meta() };
        }),
      ],
      { sync: true },
    );
    for (const t of ended) host.setState(t.region.id, { ...t, status: 'tombstone' });
    const { merging: _replaced, ...kept } = now ?? state;
    const busy: RegionState = { ...kept, region: state.region, confState: state.confState, status: 'applyingSnapshot', ...(state.merging ? { merging: state.merging } : {}) };
    host.setState(regionId, busy);
    return ingestStaged(host, regionId, marker);
  });
}

/** Reads a staged snapshot; any damage of the staged file is corruption (it was verified when staged). */
async function readStaged(
  host: KvSnapshotHost,
  regionId: number,
  marker: SnapshotMarker,
  onHeader: (state: RegionState) => Promise<void>,
  onData: (pairs: { key: Uint8Array; value: Uint8Array }[]) => Promise<void>,
): Promise<RegionState> {
  const file = path.join(host.snapshotDir, marker.file);
  try {
    return await readFrames(
      readFrameFile(file),
      async (s) => {
        if (s.region.id !== regionId || s.appliedIndex !== marker.index) {
          throw new StorageError('FLOTILLA_STORAGE_CORRUPTION', `region ${regionId}: staged snapshot does not match its marker`);
        }
        await onHeader(s);
      },
      (_frame, pairs) => onData(pairs),
    );
  } catch (err) {
    if (err instanceof StorageError && err.code === 'FLOTILLA_STORAGE_SNAPSHOT_INVALID') {
      throw new StorageError('FLOTILLA_STORAGE_CORRUPTION', `region ${regionId}: staged snapshot ${marker.file} is damaged: ${err.message}`, { cause: err });
    }
    throw err;
  }
}

/**
 * Deletes the keys of a region's range (one RocksDB range tombstone), always with a short upper
 * bound. The binding's clear() bounds a range without one by a key of 1,000,000 bytes of 0xFF,
 * and every later iterator seek that meets the tombstone copies that key into a fresh 1 MB
 * buffer (RocksDB's merging iterator reseeks to a tombstone's end): with the store's malloc
 * settings an mmap, page faults and a munmap per seek: ~0.8 ms more CPU per 10-row scan on every
 * store that had installed a snapshot of the last region (benchmarks/RESULTS.md, 2026-11-23).
 * The last region's range (no end key) ends just past its largest key instead; nothing else
 * writes in the range while a snapshot is installed into it.
 */
export async function clearRange(db: RocksLevel, column: ColumnFamily, startKey: Uint8Array, endKey: Uint8Array): Promise<void> {
  const from = startKey.byteLength > 0 ? { gte: startKey } : {};
  if (endKey.byteLength > 0) return db.clear({ column, ...from, lt: endKey });
  const last = await lastKeyFrom(db, column, startKey);
  if (last !== null) await db.clear({ column, ...from, lte: last });
}

/** The largest key at or after `startKey`, or null when there is none. */
async function lastKeyFrom(db: RocksLevel, column: ColumnFamily, startKey: Uint8Array): Promise<Uint8Array | null> {
  const it = db.iterator({ column, ...(startKey.byteLength > 0 ? { gte: startKey } : {}), reverse: true, limit: 1, values: false });
  try {
    const rows = await it.nextv(1);
    return rows.length === 0 ? null : rows[0]![0];
  } finally {
    await it.close();
  }
}

/** Steps 3 and 4 of applySnapshot, also the redo on open. */
export async function ingestStaged(host: KvSnapshotHost, regionId: number, marker: SnapshotMarker): Promise<RegionState> {
  const file = path.join(host.snapshotDir, marker.file);
  try {
    await stat(file);
  } catch (err) {
    throw new StorageError('FLOTILLA_STORAGE_CORRUPTION', `region ${regionId}: staged snapshot ${marker.file} is missing; the replica must be rebuilt`, { cause: err });
  }
  const data = host.data();
  let cleared = false;
  let frames = 0;
  const state = await readStaged(host, regionId, marker, async (s) => {
    failpoint('kv.snapshot.ingest', 0);
    await clearRange(host.db, data, s.region.startKey, s.region.endKey);
    cleared = true;
  }, async (pairs) => {
    assert(cleared, 'range cleared before ingest');
    const ops: BatchOperation[] = pairs.map((p) => ({ type: 'put', key: p.key, value: p.value, column: data }));
    await host.written(host.db.batch(ops, { sync: false }));
    failpoint('kv.snapshot.ingest', ++frames);
  });
  const r = encodeRegionRecord(state, 'normal');
  const write = host.db.batch(
    [
      { type: 'put', key: r.key, value: r.value, column: host.meta() },
      ...host.recordApplied([{ regionId, appliedIndex: state.appliedIndex, appliedTerm: state.appliedTerm }]),
      { type: 'del', key: kvMetaKey(KV_TAG_SNAPSHOT_MARKER, regionId), column: host.meta() },
    ],
    { sync: true },
  );
  const done: RegionState = { ...state, status: 'normal' };
  host.setState(regionId, done);
  host.markDirty(regionId);
  await host.written(write);
  // A synced write: everything applied so far is durable.
  host.markDurable();
  await rm(file, { force: true });
  return done;
}

/** Reads back a staged snapshot file frame by frame (each frame is length-prefixed). */
async function* readFrameFile(file: string): AsyncGenerator<Uint8Array> {
  const handle = await openFile(file, 'r');
  try {
    let position = 0;
    const prefix = new Uint8Array(4);
    for (;;) {
      const { bytesRead } = await handle.read(prefix, 0, 4, position);
      if (bytesRead === 0) return;
      if (bytesRead < 4) throw new StorageError('FLOTILLA_STORAGE_CORRUPTION', `${file}: truncated frame`);
      const size = readU32(prefix, 0);
      if (size < 16 || size > snapshotFrameBytesMax) throw new StorageError('FLOTILLA_STORAGE_CORRUPTION', `${file}: frame of ${size} bytes`);
      const frame = new Uint8Array(size);
      const r = await handle.read(frame, 0, size, position);
      if (r.bytesRead !== size) throw new StorageError('FLOTILLA_STORAGE_CORRUPTION', `${file}: truncated frame`);
      position += size;
      yield frame;
    }
  } finally {
    await handle.close();
  }
}
