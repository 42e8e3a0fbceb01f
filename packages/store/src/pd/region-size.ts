/**
 * How big a region is, for PD's split and merge checkers: RocksDB (this binding) has no
 * approximate-size API, so the store counts the region's rows with bounded scans of the KV
 * engine and stops counting at `sizeScanRowsMax` (a region that big splits anyway; PD sees at
 * least that many). A count is redone only once the region was split or merged, or the bytes
 * written to it since reach a share of its size (`RegionSizes`): counting at every heartbeat
 * of a written region walked every row of it again and again — with one-second heartbeats,
 * a third of a busy store's CPU (benchmarks/RESULTS.md).
 */
import { limits as storageLimits, type KvEngine, type RegionMeta } from '@flotilla/storage';

/** Rows counted at most per region and estimate; past it the estimate is a lower bound. */
export const sizeScanRowsMax = 1_000_000;
/** Rows per scan page (one engine call). */
const PAGE_ROWS = 4_096;

export interface RegionSize {
  readonly bytes: number;
  readonly keys: number;
  /** The count stopped at sizeScanRowsMax. */
  readonly capped: boolean;
}

/** A region is counted again once the bytes written since its count reach this share of it... */
export const sizeRecountShare = 1 / 8;
/**
 * ...and at least this many (a tiny region is not counted again at every write). Small: a
 * cluster configured with small regions (tests, chaos: tens of KB) must still see them grow.
 */
export const sizeRecountBytesMin = 4 * 1024;

/**
 * The last count of each region, and when to count again: after a split or merge (another
 * epoch version), or once the bytes written since reach sizeRecountShare of the counted size
 * (at least sizeRecountBytesMin). Until then a region's size is its last count: short of the
 * truth by less than that share (or that minimum) — writes that overwrite rows do not grow it.
 */
export class RegionSizes {
  private readonly known = new Map<number, { size: RegionSize; version: number; writtenSince: number }>();

  constructor(
    private readonly count: (region: RegionMeta) => Promise<RegionSize>,
  ) {}

  /** The size of `region`, to which `written` bytes went since the previous call. */
  async of(region: RegionMeta, written: number): Promise<RegionSize> {
    const known = this.known.get(region.id);
    if (known && known.version === region.epoch.version) {
      known.writtenSince += written;
      if (known.writtenSince < Math.max(sizeRecountBytesMin, known.size.bytes * sizeRecountShare)) return known.size;
    }
    const size = await this.count(region);
    this.known.set(region.id, { size, version: region.epoch.version, writtenSince: 0 });
    return size;
  }

  /** Forgets the regions not in `live` (no longer led here). */
  forgetExcept(live: ReadonlySet<number>): void {
    for (const id of this.known.keys()) if (!live.has(id)) this.known.delete(id);
  }
}

/** Counts the rows and bytes of `region` (keys + values), at most sizeScanRowsMax rows. */
export async function measureRegion(kv: KvEngine, region: RegionMeta): Promise<RegionSize> {
  let bytes = 0;
  let keys = 0;
  let capped = false;
  await walkRegion(kv, region, (key, value) => {
    bytes += key.byteLength + value.byteLength;
    keys++;
    capped = keys >= sizeScanRowsMax;
    return !capped;
  });
  return { bytes, keys, capped };
}

/**
 * The key splitting the region's rows in two halves (by count), or null for a region too small
 * to split (fewer than two rows). Two bounded passes: count, then walk to the middle.
 */
export async function middleKey(kv: KvEngine, region: RegionMeta): Promise<Uint8Array | null> {
  const { keys } = await measureRegion(kv, region);
  if (keys < 2) return null;
  const half = Math.floor(keys / 2);
  let seen = 0;
  let middle: Uint8Array | null = null;
  await walkRegion(kv, region, (key) => {
    if (seen++ === half) {
      middle = Uint8Array.from(key);
      return false;
    }
    return true;
  });
  return middle;
}

/** Visits the region's rows in key order until `visit` answers false. */
async function walkRegion(kv: KvEngine, region: RegionMeta, visit: (key: Uint8Array, value: Uint8Array) => boolean): Promise<void> {
  let start = region.startKey;
  for (;;) {
    const page = await kv.scan({ start, end: region.endKey, limit: PAGE_ROWS, bytesMax: storageLimits.kvScanBytesMax });
    for (const pair of page.pairs) if (!visit(pair.key, pair.value)) return;
    const last = page.pairs.at(-1);
    if (!page.more || !last) return;
    start = keyAfter(last.key);
  }
}

function keyAfter(key: Uint8Array): Uint8Array {
  const next = new Uint8Array(key.byteLength + 1);
  next.set(key);
  return next;
}
