/**
 * The in-memory twin of the KV engine: a sorted array of keys and a map, commands applied one
 * by one in the most direct way (an independent implementation of the semantics the RocksDB
 * engine implements with an overlay and batched reads). Everything is durable at once; a
 * MemoryKvDisk outlives an engine to model restarts.
 */
import { compareBytes, keyInRange as inRange } from '@flotilla/wire';
import { kvDeleteRangeKeysMax, kvGetManyKeysMax, kvScanBytesMax, kvScanRowsMax, regionsMax } from './constants.ts';
import { StorageError } from './errors.ts';
import { readFrames } from './kv-format.ts';
import { checkKey, clipRange, regionAfterPut, snapshotFrames, snapshotRefusal, supersededStates, validateApplyBatch } from './kv-apply.ts';
import {
  type ApplyResult,
  type CommandResult,
  type KvEngine,
  type SnapshotAdmission,
  type KvPair,
  type RegionApply,
  type RegionSnapshotSource,
  type RegionState,
  type ScanOptions,
  type ScanResult,
} from './kv-types.ts';

const toKey = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
const fromKey = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));

export class MemoryKvDisk {
  /** Sorted keys (latin1 strings compare like the bytes they encode). */
  readonly keys: string[] = [];
  readonly values = new Map<string, Uint8Array>();
  readonly regions = new Map<number, RegionState>();
}

function lowerBound(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class MemoryKvEngine implements KvEngine {
  private closed = false;

  constructor(private readonly disk: MemoryKvDisk = new MemoryKvDisk()) {}

  private check(): void {
    if (this.closed) throw new StorageError('FLOTILLA_STORAGE_CLOSED', 'the KV engine is closed');
  }

  private set(key: Uint8Array, value: Uint8Array | null): boolean {
    const k = toKey(key);
    const had = this.disk.values.has(k);
    if (value === null) {
      if (had) {
        this.disk.values.delete(k);
        this.disk.keys.splice(lowerBound(this.disk.keys, k), 1);
      }
      return had;
    }
    if (!had) this.disk.keys.splice(lowerBound(this.disk.keys, k), 0, k);
    this.disk.values.set(k, Uint8Array.from(value));
    return had;
  }

  /** Keys in [start, end) (empty end: unbounded), in order. */
  private keysIn(start: Uint8Array, end: Uint8Array): string[] {
    const keys = this.disk.keys;
    const out: string[] = [];
    const e = end.byteLength === 0 ? null : toKey(end);
    for (let i = lowerBound(keys, toKey(start)); i < keys.length && (e === null || keys[i]! < e); i++) out.push(keys[i]!);
    return out;
  }

  async apply(batch: readonly RegionApply[]): Promise<ApplyResult[]> {
    this.check();
    validateApplyBatch(batch, (id) => this.disk.regions.get(id) ?? null);
    let created = 0;
    for (const a of batch) for (const c of a.commands) if (c.op === 'putRegion' && !this.disk.regions.has(c.region.id)) created++;
    if (this.disk.regions.size + created > regionsMax) throw new StorageError('FLOTILLA_STORAGE_LIMIT_EXCEEDED', `more than regionsMax ${regionsMax} regions`);
    // Delete-range sizes are judged on the data before the batch, clipped to the region then
    // (or as created by the batch's first command).
    const rangeSizes = new Map<object, number>();
    for (const a of batch) {
      const first = a.commands[0];
      const region = this.disk.regions.get(a.regionId)?.region ?? (first?.op === 'putRegion' ? first.region : undefined);
      for (const c of a.commands) {
        if (c.op !== 'deleteRange') continue;
        const clip = region === undefined ? null : clipRange(c.start, c.end, region.startKey, region.endKey);
        rangeSizes.set(c, clip === null ? 0 : this.keysIn(clip.start, clip.end).length);
      }
    }
    const out: ApplyResult[] = [];
    for (const a of batch) {
      const results: CommandResult[] = [];
      for (const c of a.commands) {
        const state = this.disk.regions.get(a.regionId);
        const region = state?.region;
        switch (c.op) {
          case 'put':
          case 'delete': {
            if (region === undefined || !inRange(c.key, region.startKey, region.endKey)) {
              results.push({ op: c.op, error: 'keyNotInRegion' });
              break;
            }
            this.set(c.key, c.op === 'put' ? c.value : null);
            results.push({ op: c.op });
            break;
          }
          case 'cas': {
            if (region === undefined || !inRange(c.key, region.startKey, region.endKey)) {
              results.push({ op: 'cas', succeeded: false, previous: null, error: 'keyNotInRegion' });
              break;
            }
            const previous = this.disk.values.get(toKey(c.key)) ?? null;
            const succeeded = c.expected === null ? previous === null : previous !== null && compareBytes(previous, c.expected) === 0;
            if (succeeded) this.set(c.key, c.value);
            results.push({ op: 'cas', succeeded, previous: previous === null ? null : Uint8Array.from(previous) });
            break;
          }
          case 'deleteRange': {
            if ((rangeSizes.get(c) ?? 0) > kvDeleteRangeKeysMax) {
              results.push({ op: 'deleteRange', deleted: 0, error: 'limitExceeded' });
              break;
            }
            const clip = region === undefined ? null : clipRange(c.start, c.end, region.startKey, region.endKey);
            let deleted = 0;
            if (clip !== null) for (const k of this.keysIn(clip.start, clip.end)) if (this.set(fromKey(k), null)) deleted++;
            results.push({ op: 'deleteRange', deleted });
            break;
          }
          case 'putRegion': {
            const next = regionAfterPut(this.disk.regions.get(c.region.id) ?? null, c);
            if (next === 'epochNotMatch') {
              results.push({ op: 'putRegion', error: 'epochNotMatch' });
              break;
            }
            this.disk.regions.set(c.region.id, next);
            results.push({ op: 'putRegion' });
            break;
          }
          case 'tombstoneRegion': {
            const old = this.disk.regions.get(c.regionId);
            if (old !== undefined) this.disk.regions.set(c.regionId, { ...old, status: 'tombstone' });
            results.push({ op: 'tombstoneRegion' });
            break;
          }
          case 'noop':
            results.push({ op: 'noop' });
            break;
        }
      }
      const state = this.disk.regions.get(a.regionId)!;
      this.disk.regions.set(a.regionId, { ...state, appliedIndex: a.appliedIndex, appliedTerm: a.appliedTerm });
      out.push({ regionId: a.regionId, results });
    }
    return out;
  }

  async get(key: Uint8Array): Promise<Uint8Array | null> {
    this.check();
    checkKey(key, 'get');
    const v = this.disk.values.get(toKey(key));
    return v === undefined ? null : Uint8Array.from(v);
  }

  async getMany(keys: readonly Uint8Array[]): Promise<Array<Uint8Array | null>> {
    this.check();
    if (keys.length > kvGetManyKeysMax) throw new StorageError('FLOTILLA_STORAGE_LIMIT_EXCEEDED', `getMany of ${keys.length} keys > kvGetManyKeysMax`);
    return Promise.all(keys.map((k) => this.get(k)));
  }

  async scan(options: ScanOptions): Promise<ScanResult> {
    this.check();
    const limit = Math.min(options.limit, kvScanRowsMax);
    const bytesMax = Math.min(options.bytesMax ?? kvScanBytesMax, kvScanBytesMax);
    const keys = this.keysIn(options.start, options.end);
    if (options.reverse === true) keys.reverse();
    const pairs: KvPair[] = [];
    let bytes = 0;
    for (const k of keys) {
      if (pairs.length >= limit) break;
      const value = this.disk.values.get(k)!;
      const size = k.length + value.byteLength;
      if (pairs.length > 0 && bytes + size > bytesMax) break;
      pairs.push({ key: fromKey(k), value: Uint8Array.from(value) });
      bytes += size;
    }
    return { pairs, more: pairs.length < keys.length };
  }

  region(regionId: number): RegionState | null {
    return this.disk.regions.get(regionId) ?? null;
  }

  regions(): RegionState[] {
    return [...this.disk.regions.values()];
  }

  durableAppliedIndex(regionId: number): number {
    return this.disk.regions.get(regionId)?.appliedIndex ?? 0;
  }

  async sync(): Promise<void> {
    this.check();
  }

  snapshot(regionId: number): RegionSnapshotSource {
    this.check();
    const state = this.disk.regions.get(regionId);
    if (state === undefined) throw new StorageError('FLOTILLA_STORAGE_REGION_NOT_FOUND', `region ${regionId} does not exist`);
    // Point in time: copy the pairs now.
    const pairs: KvPair[] = this.keysIn(state.region.startKey, state.region.endKey).map((k) => ({ key: fromKey(k), value: Uint8Array.from(this.disk.values.get(k)!) }));
    async function* one(): AsyncGenerator<readonly KvPair[]> {
      yield pairs;
    }
    return { state, frames: () => snapshotFrames(state, one()), close: async () => {} };
  }

  async applySnapshot(regionId: number, frames: AsyncIterable<Uint8Array>, admit?: SnapshotAdmission): Promise<RegionState> {
    this.check();
    const pairs: KvPair[] = [];
    const state = await readFrames(
      frames,
      (s) => {
        if (s.region.id !== regionId) throw new StorageError('FLOTILLA_STORAGE_SNAPSHOT_INVALID', `snapshot of region ${s.region.id}, expected ${regionId}`);
      },
      (_frame, chunk) => {
        for (const p of chunk) pairs.push({ key: Uint8Array.from(p.key), value: Uint8Array.from(p.value) });
      },
    );
    const refusal = snapshotRefusal(this.disk.regions.get(regionId) ?? null, state);
    if (refusal !== null) throw new StorageError('FLOTILLA_STORAGE_CONTRACT_VIOLATION', `region ${regionId}: ${refusal}`);
    const verdict = admit?.(state) ?? { tombstones: [] };
    if ('refusal' in verdict) throw new StorageError('FLOTILLA_STORAGE_SNAPSHOT_REFUSED', `region ${regionId}: ${verdict.refusal}`);
    for (const t of supersededStates({ lookup: (id) => this.disk.regions.get(id) ?? null }, regionId, verdict.tombstones)) {
      this.disk.regions.set(t.region.id, { ...t, status: 'tombstone' });
    }
    for (const k of this.keysIn(state.region.startKey, state.region.endKey)) this.set(fromKey(k), null);
    for (const p of pairs) this.set(p.key, p.value);
    this.disk.regions.set(regionId, state);
    return state;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
