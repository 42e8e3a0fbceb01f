/**
 * What both KV engines share: validation of an apply batch (run before anything changes) and
 * the chunking of a region snapshot into bounded frames.
 */
import {
  kvApplyCommandsMax,
  kvApplyRegionsMax,
  kvKeyBytesMax,
  kvValueBytesMax,
  regionPeersMax,
  snapshotChunkBytesMax,
  snapshotChunkPairsMax,
} from './constants.ts';
import { StorageError } from './errors.ts';
import { confStateProblem, encodeDataFrame, encodeHeaderFrame, encodeTrailerFrame } from './kv-format.ts';
import { compareBytes } from '@flotilla/wire';
import type { KvCommand, KvPair, MergeState, RegionApply, RegionMeta, RegionState } from './kv-types.ts';

function contract(what: string): StorageError {
  return new StorageError('FLOTILLA_STORAGE_CONTRACT_VIOLATION', what);
}

function limit(what: string): StorageError {
  return new StorageError('FLOTILLA_STORAGE_LIMIT_EXCEEDED', what);
}

function isIndex(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

export function checkKey(key: Uint8Array, what: string): void {
  if (key.byteLength === 0) throw contract(`${what}: empty key`);
  if (key.byteLength > kvKeyBytesMax) throw limit(`${what}: key of ${key.byteLength} bytes > kvKeyBytesMax ${kvKeyBytesMax}`);
}

export function checkRegionMeta(r: RegionMeta, what: string): void {
  if (!isIndex(r.id) || r.id === 0) throw contract(`${what}: region id must be a positive safe integer`);
  if (!isIndex(r.epoch.version) || !isIndex(r.epoch.confVer)) throw contract(`${what}: epoch must be safe integers`);
  if (r.peers.length > regionPeersMax) throw limit(`${what}: ${r.peers.length} peers > regionPeersMax ${regionPeersMax}`);
  if (r.startKey.byteLength > kvKeyBytesMax || r.endKey.byteLength > kvKeyBytesMax) throw limit(`${what}: range key too long`);
  if (r.endKey.byteLength > 0 && compareBytes(r.startKey, r.endKey) >= 0) throw contract(`${what}: empty range`);
}

/**
 * Checks a batch against the current region states; throws (and nothing is applied) on a
 * broken contract: one entry per region, the region exists (or is created by its own first
 * command) and is not busy, applied indexes only move forward, sizes within bounds.
 */
export function validateApplyBatch(batch: readonly RegionApply[], lookup: (regionId: number) => RegionState | null): void {
  if (batch.length > kvApplyRegionsMax) throw limit(`${batch.length} regions in one apply > kvApplyRegionsMax ${kvApplyRegionsMax}`);
  let commands = 0;
  const seen = new Set<number>();
  for (const a of batch) {
    const what = `region ${a.regionId}`;
    if (seen.has(a.regionId)) throw contract(`${what} appears twice in one apply batch`);
    seen.add(a.regionId);
    commands += a.commands.length;
    if (commands > kvApplyCommandsMax) throw limit(`more than kvApplyCommandsMax ${kvApplyCommandsMax} commands in one apply`);
    if (!isIndex(a.appliedIndex) || !isIndex(a.appliedTerm)) throw contract(`${what}: applied index/term must be safe integers`);
    const state = lookup(a.regionId);
    let applied: number;
    let term: number;
    if (state === null) {
      const first = a.commands[0];
      if (first === undefined || first.op !== 'putRegion' || first.region.id !== a.regionId) {
        throw new StorageError('FLOTILLA_STORAGE_REGION_NOT_FOUND', `${what} does not exist (create it with putRegion as its first command)`);
      }
      applied = first.appliedIndex ?? 0;
      term = first.appliedTerm ?? 0;
    } else {
      if (state.status === 'applyingSnapshot') throw new StorageError('FLOTILLA_STORAGE_REGION_BUSY', `${what} is applying a snapshot`);
      if (state.status === 'tombstone') throw contract(`${what} is a tombstone`);
      applied = state.appliedIndex;
      term = state.appliedTerm;
    }
    if (a.appliedIndex <= applied) throw contract(`${what}: applied index ${a.appliedIndex} is not above ${applied} (applied twice?)`);
    if (a.appliedTerm < term) throw contract(`${what}: applied term ${a.appliedTerm} below ${term}`);
    for (const c of a.commands) {
      switch (c.op) {
        case 'put':
          checkKey(c.key, what);
          if (c.value.byteLength > kvValueBytesMax) throw limit(`${what}: value of ${c.value.byteLength} bytes > kvValueBytesMax`);
          break;
        case 'delete':
          checkKey(c.key, what);
          break;
        case 'cas':
          checkKey(c.key, what);
          if (c.value !== null && c.value.byteLength > kvValueBytesMax) throw limit(`${what}: value too large`);
          break;
        case 'deleteRange':
          if (c.start.byteLength > kvKeyBytesMax || c.end.byteLength > kvKeyBytesMax) throw limit(`${what}: range key too long`);
          break;
        case 'putRegion': {
          checkRegionMeta(c.region, what);
          const problem = confStateProblem(c.confState);
          if (problem !== null) throw contract(`${what}: putRegion configuration: ${problem}`);
          if (c.appliedIndex !== undefined && !isIndex(c.appliedIndex)) throw contract(`${what}: putRegion applied index`);
          if (c.merging !== undefined) checkMergeState(c.merging, what);
          break;
        }
        case 'tombstoneRegion':
        case 'noop':
          break;
      }
    }
  }
}

function checkMergeState(m: MergeState, what: string): void {
  const ids = [m.targetRegionId, m.targetEpoch.version, m.targetEpoch.confVer, m.prepareIndex, m.prepareTerm];
  if (!ids.every(isIndex) || m.targetRegionId === 0 || m.prepareIndex === 0) throw contract(`${what}: putRegion merge state must be positive safe integers`);
}

/** [start, end) ∩ [rs, re) with empty ends unbounded; null when empty. */
export function clipRange(start: Uint8Array, end: Uint8Array, rs: Uint8Array, re: Uint8Array): { start: Uint8Array; end: Uint8Array } | null {
  const s = compareBytes(start, rs) >= 0 ? start : rs;
  let e: Uint8Array;
  if (end.byteLength === 0) e = re;
  else if (re.byteLength === 0) e = end;
  else e = compareBytes(end, re) <= 0 ? end : re;
  if (e.byteLength > 0 && compareBytes(s, e) >= 0) return null;
  return { start: s, end: e };
}

/**
 * Turns a region's pairs (in key order, in batches) into frames: header, data chunks of at most
 * snapshotChunkPairsMax pairs and snapshotChunkBytesMax bytes (one larger pair travels alone),
 * trailer with totals.
 */
export async function* snapshotFrames(state: RegionState, batches: AsyncIterable<readonly KvPair[]>): AsyncGenerator<Uint8Array> {
  yield encodeHeaderFrame(state);
  let seq = 1;
  let pairs = 0;
  let bytes = 0;
  let dataFrames = 0;
  let chunk: KvPair[] = [];
  let chunkBytes = 0;
  const flush = (): Uint8Array => {
    const frame = encodeDataFrame(seq++, chunk, chunkBytes);
    pairs += chunk.length;
    bytes += chunkBytes;
    dataFrames++;
    chunk = [];
    chunkBytes = 0;
    return frame;
  };
  for await (const batch of batches) {
    for (const pair of batch) {
      const size = pair.key.byteLength + pair.value.byteLength;
      if (chunk.length > 0 && (chunk.length >= snapshotChunkPairsMax || chunkBytes + size > snapshotChunkBytesMax)) yield flush();
      chunk.push(pair);
      chunkBytes += size;
    }
  }
  if (chunk.length > 0) yield flush();
  yield encodeTrailerFrame(seq, pairs, bytes, dataFrames);
}

/**
 * The region metadata and configuration a putRegion leaves, or 'epochNotMatch' when it would
 * move the epoch back. An existing region keeps its applied index; a new one starts at the
 * command's. One rule for the RocksDB engine and its twin.
 */
export function regionAfterPut(old: RegionState | null, c: Extract<KvCommand, { op: 'putRegion' }>): RegionState | 'epochNotMatch' {
  if (old !== null && (c.region.epoch.version < old.region.epoch.version || c.region.epoch.confVer < old.region.epoch.confVer)) {
    return 'epochNotMatch';
  }
  return {
    region: c.region,
    confState: c.confState,
    appliedIndex: old?.appliedIndex ?? c.appliedIndex ?? 0,
    appliedTerm: old?.appliedTerm ?? c.appliedTerm ?? 0,
    status: 'normal',
    ...(c.merging ? { merging: c.merging } : {}),
  };
}

/**
 * Why a received snapshot must not replace what this engine holds for the region, or null.
 * Both engines apply this one rule. A snapshot never goes below what is applied, nor over a
 * snapshot still being installed. A tombstone (this store's replica was removed) gives way to
 * a snapshot of a newer membership — the region added a replica on this store again — and
 * blocks one of the membership it was removed from or an older one.
 */
export function snapshotRefusal(now: RegionState | null, incoming: Pick<RegionState, 'appliedIndex' | 'region'>): string | null {
  if (now === null) return null;
  if (now.status === 'applyingSnapshot') return 'another snapshot of it is being installed';
  if (now.appliedIndex >= incoming.appliedIndex) return `snapshot at ${incoming.appliedIndex} is not above applied ${now.appliedIndex}`;
  if (now.status === 'tombstone' && incoming.region.epoch.confVer <= now.region.epoch.confVer) {
    return `its replica here was removed at confVer ${now.region.epoch.confVer}; the snapshot is of confVer ${incoming.region.epoch.confVer}`;
  }
  return null;
}

/** The states of the regions a snapshot of `regionId` supersedes (see SnapshotAdmission); each must exist and be normal. */
export function supersededStates(host: { lookup(regionId: number): RegionState | null }, regionId: number, ids: readonly number[]): RegionState[] {
  return ids.map((id) => {
    const t = host.lookup(id);
    if (id === regionId || t === null || t.status !== 'normal') {
      throw new StorageError('FLOTILLA_STORAGE_CONTRACT_VIOLATION', `region ${regionId}: a snapshot can only end another normal region (region ${id} is ${t?.status ?? 'unknown'})`);
    }
    return t;
  });
}
