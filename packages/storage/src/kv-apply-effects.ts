/**
 * What an apply batch's commands do, computed against the regions' states and the values the
 * batch read first (CAS bases, delete-range keys): each command's result, the region states
 * after the batch, and the data writes, put into the RocksDB batch. Every replica computes the
 * same (the per-command errors are deterministic). The engine (kv-engine.ts) then adds the
 * region records and apply states and writes the batch.
 */
import type { ChainedBatch, ColumnFamily } from '@nxtedition/rocksdb';
import { assert, fail } from './errors.ts';
import { clipRange, regionAfterPut } from './kv-apply.ts';
import { compareBytes, keyInRange as inRange } from '@flotilla/wire';
import type { ApplyResult, CommandResult, RegionApply, RegionState } from './kv-types.ts';

/** A key as a map key (the overlay's and the CAS bases'). */
export const toKey = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

/** The result of every put or delete that applied: one frozen object each, not one per command. */
const PUT_DONE: CommandResult = Object.freeze({ op: 'put' });
const DELETE_DONE: CommandResult = Object.freeze({ op: 'delete' });

/** What a batch's commands did: their results, and the region states after them. */
export interface BatchEffects {
  readonly out: ApplyResult[];
  readonly regionChanges: Map<number, RegionState>;
}

/** Whether a batch needs its own writes in an overlay: a CAS reads them, a delete-range counts them. */
function needsOverlay(batch: readonly RegionApply[]): boolean {
  for (const a of batch) for (const c of a.commands) if (c.op === 'cas' || c.op === 'deleteRange') return true;
  return false;
}

/**
 * The results of a batch's commands and the region states after them; the data writes go into
 * `writes`. A batch with a CAS or a delete-range keeps its own writes in an overlay (a CAS
 * reads them, a delete-range counts and clears them), written at the end; plain puts and
 * deletes go straight into the batch in command order, where the last write of a key wins as
 * the overlay's would (no key string, map entry or object per write: the common case).
 */
export function batchEffects(
  batch: readonly RegionApply[],
  base: ReadonlyMap<string, Uint8Array | null>,
  rangeKeys: ReadonlyMap<object, Uint8Array[] | 'tooMany'>,
  lookup: (regionId: number) => RegionState | null,
  writes: ChainedBatch,
  data: { readonly column: ColumnFamily },
): BatchEffects {
  const overlay = needsOverlay(batch) ? new Map<string, { key: Uint8Array; value: Uint8Array | null }>() : null;
  const current = (k: string): Uint8Array | null => {
    const o = overlay?.get(k);
    if (o !== undefined) return o.value;
    return base.get(k) ?? null;
  };
  const regionChanges = new Map<number, RegionState>();
  const stateOf = (id: number): RegionState | null => regionChanges.get(id) ?? lookup(id);
  const out: ApplyResult[] = [];
  for (const a of batch) {
    const results: CommandResult[] = [];
    for (const c of a.commands) {
      const region = stateOf(a.regionId)?.region;
      switch (c.op) {
        case 'put':
        case 'delete':
          if (region === undefined || !inRange(c.key, region.startKey, region.endKey)) {
            results.push({ op: c.op, error: 'keyNotInRegion' });
            break;
          }
          if (overlay !== null) overlay.set(toKey(c.key), { key: c.key, value: c.op === 'put' ? c.value : null });
          else if (c.op === 'put') writes._put(c.key, c.value, data);
          else writes._del(c.key, data);
          results.push(c.op === 'put' ? PUT_DONE : DELETE_DONE);
          break;
        case 'cas': {
          if (region === undefined || !inRange(c.key, region.startKey, region.endKey)) {
            results.push({ op: 'cas', succeeded: false, previous: null, error: 'keyNotInRegion' });
            break;
          }
          const k = toKey(c.key);
          const previous = current(k);
          const succeeded = c.expected === null ? previous === null : previous !== null && compareBytes(previous, c.expected) === 0;
          if (succeeded) overlay!.set(k, { key: c.key, value: c.value });
          results.push({ op: 'cas', succeeded, previous });
          break;
        }
        case 'deleteRange': {
          const keys = rangeKeys.get(c);
          assert(keys !== undefined, 'delete-range keys were read');
          if (keys === 'tooMany') {
            results.push({ op: 'deleteRange', deleted: 0, error: 'limitExceeded' });
            break;
          }
          const clip = region === undefined ? null : clipRange(c.start, c.end, region.startKey, region.endKey);
          let deleted = 0;
          if (clip !== null) {
            const doomed = new Map<string, Uint8Array>();
            for (const key of keys) if (inRange(key, clip.start, clip.end)) doomed.set(toKey(key), key);
            for (const [k, o] of overlay!) if (inRange(o.key, clip.start, clip.end)) doomed.set(k, o.key);
            for (const [k, key] of doomed) {
              const o = overlay!.get(k);
              const exists = o !== undefined ? o.value !== null : true;
              if (exists) deleted++;
              overlay!.set(k, { key, value: null });
            }
          }
          results.push({ op: 'deleteRange', deleted });
          break;
        }
        case 'putRegion': {
          const next = regionAfterPut(stateOf(c.region.id), c);
          if (next === 'epochNotMatch') {
            results.push({ op: 'putRegion', error: 'epochNotMatch' });
            break;
          }
          regionChanges.set(c.region.id, next);
          results.push({ op: 'putRegion' });
          break;
        }
        case 'tombstoneRegion': {
          const old = stateOf(c.regionId);
          if (old !== null) regionChanges.set(c.regionId, { ...old, status: 'tombstone' });
          results.push({ op: 'tombstoneRegion' });
          break;
        }
        case 'noop':
          results.push({ op: 'noop' });
          break;
      }
    }
    const state = stateOf(a.regionId);
    if (state === null) fail(`region ${a.regionId} exists after its commands`);
    regionChanges.set(a.regionId, { ...state, appliedIndex: a.appliedIndex, appliedTerm: a.appliedTerm });
    out.push({ regionId: a.regionId, results });
  }

  if (overlay !== null) {
    for (const o of overlay.values()) {
      if (o.value === null) writes._del(o.key, data);
      else writes._put(o.key, o.value, data);
    }
  }
  return { out, regionChanges };
}
