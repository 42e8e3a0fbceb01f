/**
 * How big a region is, for PD's split and merge checkers: RocksDB (this binding) has no
 * approximate-size API, so the store counts the region's rows with bounded scans of the KV
 * engine — only when the region was written since the last count — and stops counting at
 * `sizeScanRowsMax` (a region that big splits anyway; PD sees at least that many).
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
