/**
 * The client's map of regions: non-overlapping [startKey, endKey) ranges in key order, each with
 * its epoch, peers and the leader the client believes in. Filled from PD, repaired from what
 * stores answer (EpochNotMatch's current regions, NotLeader's hint), bounded (least recently
 * used regions dropped). Pure: no I/O, no clocks, so it is tested alone.
 */
import type { RegionEpoch, RegionMeta, RegionPeer } from '@flotilla/wire';
import { clientLimits } from './constants.ts';
import { compareKeys, keyInRange } from './keys.ts';

export interface CachedRegion {
  readonly meta: RegionMeta;
  /** The peer believed to lead, or null while unknown. */
  leaderPeerId: number | null;
  /** The store this client's stale reads of the region go to (client.ts, staleReplica); null: not chosen yet. */
  staleStoreId: number | null;
  /** Use counter, for eviction. */
  lastUsed: number;
}

/** Whether epoch a is older than b (either part lower). */
export function isOlderEpoch(a: RegionEpoch, b: RegionEpoch): boolean {
  return a.version < b.version || a.confVer < b.confVer;
}

function sameEpoch(a: RegionEpoch, b: RegionEpoch): boolean {
  return a.version === b.version && a.confVer === b.confVer;
}

export class RegionCache {
  /** Sorted by startKey, non-overlapping. */
  private readonly sorted: CachedRegion[] = [];
  private readonly byId = new Map<number, CachedRegion>();
  private uses = 0;

  constructor(private readonly capacity: number = clientLimits.regionCacheMax) {
    if (!Number.isSafeInteger(capacity) || capacity < 8) throw new Error(`region cache capacity ${capacity}: at least 8`);
  }

  get size(): number {
    return this.sorted.length;
  }

  /** The cached region holding `key`. */
  locate(key: Uint8Array): CachedRegion | undefined {
    const at = this.lastStartingAtOrBefore(key, false);
    const region = at >= 0 ? this.sorted[at] : undefined;
    if (!region || !keyInRange(key, region.meta.startKey, region.meta.endKey)) return undefined;
    region.lastUsed = ++this.uses;
    return region;
  }

  /**
   * The cached region holding the keys just below `end` (exclusive; empty: the end of the
   * keyspace): startKey < end ≤ endKey. What a reverse scan needs next.
   */
  locateBefore(end: Uint8Array): CachedRegion | undefined {
    let region: CachedRegion | undefined;
    if (end.byteLength === 0) {
      region = this.sorted[this.sorted.length - 1];
      if (region && region.meta.endKey.byteLength !== 0) return undefined;
    } else {
      const at = this.lastStartingAtOrBefore(end, true);
      region = at >= 0 ? this.sorted[at] : undefined;
      if (region && region.meta.endKey.byteLength !== 0 && compareKeys(region.meta.endKey, end) < 0) return undefined;
    }
    if (region) region.lastUsed = ++this.uses;
    return region;
  }

  get(regionId: number): CachedRegion | undefined {
    return this.byId.get(regionId);
  }

  /**
   * Caches `meta` unless what is cached is newer: the same region with a newer epoch, or an
   * overlapping region with a higher version (it came from a later split). Replaces every
   * region it overlaps. Returns the cached entry for `meta`'s id afterwards (undefined if none).
   */
  insert(meta: RegionMeta, leaderPeerId: number | null = null): CachedRegion | undefined {
    const known = this.byId.get(meta.id);
    if (known && isOlderEpoch(meta.epoch, known.meta.epoch)) return known;
    if (known && sameEpoch(known.meta.epoch, meta.epoch) && compareKeys(known.meta.startKey, meta.startKey) === 0 && compareKeys(known.meta.endKey, meta.endKey) === 0) {
      if (leaderPeerId !== null && hasPeer(known.meta.peers, leaderPeerId)) known.leaderPeerId = leaderPeerId;
      known.lastUsed = ++this.uses;
      return known;
    }
    const [from, to] = this.overlapping(meta.startKey, meta.endKey);
    for (let i = from; i < to; i++) {
      const other = this.sorted[i]!;
      if (other.meta.id !== meta.id && other.meta.epoch.version > meta.epoch.version) return known;
    }
    if (known) this.removeEntry(known);
    const [start, end] = this.overlapping(meta.startKey, meta.endKey);
    for (const gone of this.sorted.splice(start, end - start)) this.byId.delete(gone.meta.id);
    const entry: CachedRegion = {
      meta,
      leaderPeerId: leaderPeerId !== null && hasPeer(meta.peers, leaderPeerId) ? leaderPeerId : (known?.leaderPeerId ?? null),
      // A new epoch of the same region keeps its stale reads on the same replica while it has one.
      staleStoreId: known?.staleStoreId != null && meta.peers.some((p) => p.storeId === known.staleStoreId) ? known.staleStoreId : null,
      lastUsed: ++this.uses,
    };
    if (entry.leaderPeerId !== null && !hasPeer(meta.peers, entry.leaderPeerId)) entry.leaderPeerId = null;
    this.sorted.splice(start, 0, entry);
    this.byId.set(meta.id, entry);
    if (this.sorted.length > this.capacity) this.evict();
    return entry;
  }

  /** Records the leader a store named; false when the peer is not among the cached peers. */
  setLeader(regionId: number, peerId: number | null): boolean {
    const region = this.byId.get(regionId);
    if (!region) return false;
    if (peerId === null) {
      region.leaderPeerId = null;
      return true;
    }
    if (!hasPeer(region.meta.peers, peerId)) return false;
    region.leaderPeerId = peerId;
    return true;
  }

  /** Forgets a region (it moved, or the cache is wrong about it). */
  remove(regionId: number): void {
    const region = this.byId.get(regionId);
    if (region) this.removeEntry(region);
  }

  /** Forgets every region led, as far as the cache knows, from this store. */
  forgetLeadersOn(storeId: number): void {
    for (const region of this.sorted) {
      const leader = region.meta.peers.find((p) => p.id === region.leaderPeerId);
      if (leader?.storeId === storeId) region.leaderPeerId = null;
    }
  }

  /** Every cached region, in key order (tests, diagnostics). */
  regions(): readonly CachedRegion[] {
    return this.sorted;
  }

  private removeEntry(region: CachedRegion): void {
    const at = this.sorted.indexOf(region);
    if (at >= 0) this.sorted.splice(at, 1);
    this.byId.delete(region.meta.id);
  }

  /** Drops the least recently used eighth. */
  private evict(): void {
    const drop = Math.max(1, Math.floor(this.sorted.length / 8));
    const threshold = [...this.sorted].map((r) => r.lastUsed).sort((a, b) => a - b)[drop - 1]!;
    let dropped = 0;
    for (let i = this.sorted.length - 1; i >= 0; i--) {
      const r = this.sorted[i]!;
      if (r.lastUsed <= threshold && dropped < drop) {
        this.sorted.splice(i, 1);
        this.byId.delete(r.meta.id);
        dropped++;
      }
    }
  }

  /** [from, to) of the sorted regions overlapping [start, end). */
  private overlapping(start: Uint8Array, end: Uint8Array): [number, number] {
    let from = Math.max(0, this.lastStartingAtOrBefore(start, false));
    const first = this.sorted[from];
    if (first && first.meta.endKey.byteLength !== 0 && compareKeys(first.meta.endKey, start) <= 0) from++;
    let to = from;
    while (to < this.sorted.length && (end.byteLength === 0 || compareKeys(this.sorted[to]!.meta.startKey, end) < 0)) to++;
    return [from, to];
  }

  /** Index of the last region whose startKey <= key (< key when strict), -1 if none. */
  private lastStartingAtOrBefore(key: Uint8Array, strict: boolean): number {
    let low = 0;
    let high = this.sorted.length - 1;
    let found = -1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      const c = compareKeys(this.sorted[mid]!.meta.startKey, key);
      if (c < 0 || (c === 0 && !strict)) {
        found = mid;
        low = mid + 1;
      } else {
        high = mid - 1;
      }
    }
    return found;
  }
}

function hasPeer(peers: readonly RegionPeer[], peerId: number): boolean {
  return peers.some((p) => p.id === peerId);
}
