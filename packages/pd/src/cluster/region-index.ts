/**
 * PD's map of the keyspace: every region it knows, by id and by key. Heartbeats arrive from
 * many stores in any order, so a report may be older than what PD already holds; the epoch
 * decides (TiKV's rule): a region's report is stale if its version or confVer is below what is
 * known for that id, or if a region it overlaps has a higher version (that one split or
 * merged later). A fresh report replaces every region it overlaps.
 */
import { compareBytes as compareKeys, keyInRange, type RegionMeta } from '@flotilla/wire';
import type { RegionInfo } from './types.ts';

function overlaps(a: RegionMeta, b: RegionMeta): boolean {
  const aEndsBeforeB = a.endKey.length > 0 && compareKeys(a.endKey, b.startKey) <= 0;
  const bEndsBeforeA = b.endKey.length > 0 && compareKeys(b.endKey, a.startKey) <= 0;
  return !aEndsBeforeB && !bEndsBeforeA;
}

export type PutOutcome =
  /** Stored; `removed` are the regions it replaced (overlapped), `metaChanged` unless only stats moved. */
  | { readonly kind: 'stored'; readonly metaChanged: boolean; readonly removed: readonly RegionInfo[] }
  /** Refused: PD holds something newer (`newer` names it). */
  | { readonly kind: 'stale'; readonly newer: RegionInfo };

export class RegionIndex {
  private readonly byId = new Map<number, RegionInfo>();
  /** Sorted by start key; regions never overlap. */
  private sorted: RegionInfo[] = [];

  get size(): number {
    return this.byId.size;
  }

  get(regionId: number): RegionInfo | undefined {
    return this.byId.get(regionId);
  }

  /** All regions in key order (a copy: callers may hold it while the index changes). */
  all(): readonly RegionInfo[] {
    return this.sorted.slice();
  }

  /** The region holding `key`, if PD knows one. */
  byKey(key: Uint8Array): RegionInfo | undefined {
    const at = this.lastStartingAtOrBefore(key);
    const region = at >= 0 ? this.sorted[at] : undefined;
    return region && keyInRange(key, region.meta.startKey, region.meta.endKey) ? region : undefined;
  }

  /** Up to `limit` regions overlapping [start, end) in key order (empty end: unbounded). */
  inRange(start: Uint8Array, end: Uint8Array, limit: number): RegionInfo[] {
    const found: RegionInfo[] = [];
    let at = Math.max(0, this.lastStartingAtOrBefore(start));
    for (; at < this.sorted.length && found.length < limit; at++) {
      const region = this.sorted[at]!;
      if (end.length > 0 && compareKeys(region.meta.startKey, end) >= 0) break;
      if (region.meta.endKey.length > 0 && compareKeys(region.meta.endKey, start) <= 0) continue;
      found.push(region);
    }
    return found;
  }

  /**
   * Checks a report against what is known and stores it if it is not stale. A report with
   * the same id and epoch only refreshes the statistics (the common, cheap case).
   */
  put(info: RegionInfo): PutOutcome {
    const known = this.byId.get(info.meta.id);
    if (known && sameShape(known.meta, info.meta)) {
      this.replaceInPlace(known, info);
      return { kind: 'stored', metaChanged: false, removed: [] };
    }
    if (known && isOlder(info.meta, known.meta)) return { kind: 'stale', newer: known };
    const overlapped = this.overlapping(info.meta).filter((r) => r.meta.id !== info.meta.id);
    const newer = overlapped.find((r) => r.meta.epoch.version > info.meta.epoch.version);
    if (newer) return { kind: 'stale', newer };
    for (const region of overlapped) this.remove(region.meta.id);
    if (known) this.remove(known.meta.id);
    this.insert(info);
    return { kind: 'stored', metaChanged: true, removed: overlapped };
  }

  /** Forgets a region (merged away, or an operator's explicit cleanup). */
  remove(regionId: number): RegionInfo | undefined {
    const region = this.byId.get(regionId);
    if (!region) return undefined;
    this.byId.delete(regionId);
    const at = this.sorted.indexOf(region);
    if (at >= 0) this.sorted.splice(at, 1);
    return region;
  }

  private replaceInPlace(known: RegionInfo, info: RegionInfo): void {
    this.byId.set(info.meta.id, info);
    const at = this.indexOfStart(known.meta.startKey);
    if (this.sorted[at] === known) this.sorted[at] = info;
    else this.sorted[this.sorted.indexOf(known)] = info;
  }

  private insert(info: RegionInfo): void {
    this.byId.set(info.meta.id, info);
    const at = this.lastStartingAtOrBefore(info.meta.startKey) + 1;
    this.sorted.splice(at, 0, info);
  }

  private overlapping(meta: RegionMeta): RegionInfo[] {
    return this.inRange(meta.startKey, meta.endKey, Number.MAX_SAFE_INTEGER).filter((r) => overlaps(r.meta, meta));
  }

  /** Index of the last region whose start key is <= key (-1 if none). Binary search. */
  private lastStartingAtOrBefore(key: Uint8Array): number {
    let low = 0;
    let high = this.sorted.length - 1;
    let found = -1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      if (compareKeys(this.sorted[mid]!.meta.startKey, key) <= 0) {
        found = mid;
        low = mid + 1;
      } else {
        high = mid - 1;
      }
    }
    return found;
  }

  private indexOfStart(key: Uint8Array): number {
    return Math.max(0, this.lastStartingAtOrBefore(key));
  }
}

/** Same id, range, epoch and peers: only statistics or the leader may differ. */
function sameShape(a: RegionMeta, b: RegionMeta): boolean {
  return (
    a.epoch.version === b.epoch.version &&
    a.epoch.confVer === b.epoch.confVer &&
    compareKeys(a.startKey, b.startKey) === 0 &&
    compareKeys(a.endKey, b.endKey) === 0 &&
    a.peers.length === b.peers.length &&
    a.peers.every((p, i) => p.id === b.peers[i]!.id && p.storeId === b.peers[i]!.storeId && p.role === b.peers[i]!.role)
  );
}

/** Whether `report` is behind `known` in either half of the epoch. */
function isOlder(report: RegionMeta, known: RegionMeta): boolean {
  return report.epoch.version < known.epoch.version || report.epoch.confVer < known.epoch.confVer;
}
