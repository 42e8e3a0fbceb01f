/**
 * How big a region is, for PD's split and merge checkers: RocksDB (this binding) has no
 * approximate-size API, so the store counts the region's rows with bounded scans of the KV
 * engine and stops counting at `sizeScanRowsMax` (a region that big splits anyway; PD sees at
 * least that many). Walking rows is dear here — 3–8 µs a row through the binding's iterator,
 * measured — so a region is counted as seldom as its estimate allows (`RegionSizes`):
 * - between counts its size is the last count plus the keys and bytes put since;
 * - it is counted again only after a split or merge, or once the bytes written since reach
 *   half the last count (a row is walked ~3 times over a region's growth);
 * - that recount runs in the background, one region at a time and paced to
 *   `sizeRecountRowsPerSecondMax`, and the heartbeats go on with the estimate meanwhile.
 * Counting at every heartbeat of a written region took a third of a busy store's CPU; counting
 * again after an eighth, at the heartbeat and at full speed, made a burst of seconds of CPU
 * per region in the minute after every write-heavy stretch (benchmarks/RESULTS.md).
 */
import { limits as storageLimits, type KvEngine, type RegionMeta } from '@flotilla/storage';
import type { RegionWrites } from './region-flow.ts';

/** Rows counted at most per region and estimate; past it the estimate is a lower bound. */
export const sizeScanRowsMax = 1_000_000;
/** Rows per scan page (one engine call). */
const PAGE_ROWS = 4_096;
/**
 * Rows a second a background recount walks at most. A row costs 3–8 µs of CPU through the
 * binding's iterator (measured: 3 µs in a 50k-row memtable, 7 µs over 400k rows in SST files;
 * the threadpool reads, the main thread copies), so this is at most ~8% of a core, and a region
 * of sizeScanRowsMax rows is counted in 100 s.
 */
export const sizeRecountRowsPerSecondMax = 10_000;

export interface RegionSize {
  readonly bytes: number;
  readonly keys: number;
  /** The count stopped at sizeScanRowsMax. */
  readonly capped: boolean;
}

/**
 * A region is counted again once the bytes written since its count reach this share of it...
 * Growing by inserts alone, its rows are walked (1 + share) / share = 3 times over its growth
 * (9 times with an eighth); the estimate between counts overshoots by at most this share (the
 * puts since overwrote rows, or deletes came).
 */
export const sizeRecountShare = 1 / 2;
/**
 * ...and at least this many (a tiny region is not counted again at every write). Small: a
 * cluster configured with small regions (tests, chaos: tens of KB) must still see them grow.
 */
export const sizeRecountBytesMin = 4 * 1024;

/** What a count of a region has to go by; `recount` is set while its recount waits or runs. */
interface KnownSize {
  readonly counted: RegionSize;
  readonly version: number;
  /** Bytes written since the count, a deleted key weighing an average row of the count. */
  written: number;
  putBytes: number;
  putKeys: number;
  recounting: boolean;
}

export type CountRegion = (region: RegionMeta) => Promise<RegionSize>;

export interface RegionSizesOptions {
  /** Counts a region at once (awaited by the heartbeat): no count of its epoch version yet. */
  readonly count: CountRegion;
  /** Counts a region again, in the background (paced); `count` when not given. */
  readonly recount?: CountRegion;
  /** A background recount failed (it is asked for again at the region's next heartbeat). */
  readonly recountFailed?: (regionId: number, err: unknown) => void;
}

/**
 * The size estimate of each led region: its last count plus the keys and bytes put since —
 * exact while a region grows by inserts, an overestimate by less than sizeRecountShare (or
 * sizeRecountBytesMin) when the puts overwrote rows or deletes came. A deleted key weighs an
 * average row of the last count (its value's size is not known): deleting half a region's rows
 * counts it again, so PD sees it shrink toward the merge threshold.
 *
 * `count` runs, and is awaited, for a region with no count of its current epoch version (new
 * here, split or merged); `recount` (paced) runs in the background when the writes since call
 * for it. The recount queue holds each led region at most once (forgetExcept drops the others).
 */
export class RegionSizes {
  private readonly known = new Map<number, KnownSize>();
  private recounts: { region: RegionMeta; known: KnownSize }[] = [];
  /** The loop working through `recounts`, while it runs. */
  private recountRun: Promise<void> | null = null;
  private closed = false;

  constructor(private readonly options: RegionSizesOptions) {}

  /** The size of `region`, to which `writes` went since the previous call. */
  async of(region: RegionMeta, writes: RegionWrites): Promise<RegionSize> {
    const known = this.known.get(region.id);
    if (!known || known.version !== region.epoch.version) {
      const counted = await this.options.count(region);
      this.known.set(region.id, { counted, version: region.epoch.version, written: 0, putBytes: 0, putKeys: 0, recounting: false });
      return counted;
    }
    known.written += writes.bytes + writes.deletedKeys * averageRowBytes(known.counted);
    known.putBytes += writes.putBytes;
    known.putKeys += writes.putKeys;
    if (!known.recounting && known.written >= Math.max(sizeRecountBytesMin, known.counted.bytes * sizeRecountShare)) {
      known.recounting = true;
      this.recounts.push({ region, known });
      this.recountRun ??= this.runRecounts().finally(() => (this.recountRun = null));
    }
    return { bytes: known.counted.bytes + known.putBytes, keys: known.counted.keys + known.putKeys, capped: known.counted.capped };
  }

  /** Forgets the regions not in `live` (no longer led here). */
  forgetExcept(live: ReadonlySet<number>): void {
    for (const id of this.known.keys()) if (!live.has(id)) this.known.delete(id);
    this.recounts = this.recounts.filter((r) => live.has(r.region.id));
  }

  /** Recounts queued, not yet running. */
  get recountsWaiting(): number {
    return this.recounts.length;
  }

  /** Settles when no recount waits or runs (close(), tests). */
  async idle(): Promise<void> {
    while (this.recountRun) await this.recountRun;
  }

  /** Drops the waiting recounts and waits for the running one (the store stops). */
  async close(): Promise<void> {
    this.closed = true;
    this.recounts.length = 0;
    await this.idle();
  }

  private async runRecounts(): Promise<void> {
    for (let next = this.recounts.shift(); next && !this.closed; next = this.recounts.shift()) {
      const { region, known } = next;
      if (this.known.get(region.id) !== known) continue; // forgotten, split or merged meanwhile
      const before = { written: known.written, putBytes: known.putBytes, putKeys: known.putKeys };
      let counted: RegionSize;
      try {
        counted = await (this.options.recount ?? this.options.count)(region);
      } catch (err) {
        known.recounting = false; // the next heartbeat asks again
        if (!this.closed) this.options.recountFailed?.(region.id, err);
        continue;
      }
      if (this.closed || this.known.get(region.id) !== known) continue;
      // What was written while the count ran may or may not be in it: kept as written since.
      this.known.set(region.id, {
        counted,
        version: known.version,
        written: known.written - before.written,
        putBytes: known.putBytes - before.putBytes,
        putKeys: known.putKeys - before.putKeys,
        recounting: false,
      });
    }
  }
}

/** How a background count walks: at most this many rows a second, until `stopped`. */
export interface WalkPace {
  readonly rowsPerSecondMax: number;
  readonly stopped: () => boolean;
  /** Waits `ms` (a timer; tests record the waits instead). */
  readonly wait?: (ms: number) => Promise<void>;
  readonly now?: () => number;
  /** Rows per engine call (tests). */
  readonly pageRows?: number;
}

function averageRowBytes(size: RegionSize): number {
  return size.keys > 0 ? size.bytes / size.keys : 0;
}

/**
 * Counts the rows and bytes of `region` (keys + values), at most sizeScanRowsMax rows; paced
 * when `pace` is given (a count cut short by `pace.stopped` is a lower bound).
 */
export async function measureRegion(kv: KvEngine, region: RegionMeta, pace?: WalkPace): Promise<RegionSize> {
  let bytes = 0;
  let keys = 0;
  let capped = false;
  await walkRegion(kv, region, (key, value) => {
    bytes += key.byteLength + value.byteLength;
    keys++;
    capped = keys >= sizeScanRowsMax;
    return !capped;
  }, pace);
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

/** Visits the region's rows in key order until `visit` answers false (or a paced walk is stopped). */
async function walkRegion(kv: KvEngine, region: RegionMeta, visit: (key: Uint8Array, value: Uint8Array) => boolean, pace?: WalkPace): Promise<void> {
  const now = pace?.now ?? (() => performance.now());
  const wait = pace?.wait ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  let start = region.startKey;
  for (;;) {
    const pageStartedMs = now();
    const page = await kv.scan({ start, end: region.endKey, limit: pace?.pageRows ?? PAGE_ROWS, bytesMax: storageLimits.kvScanBytesMax });
    for (const pair of page.pairs) if (!visit(pair.key, pair.value)) return;
    const last = page.pairs.at(-1);
    if (!page.more || !last) return;
    start = keyAfter(last.key);
    if (pace) {
      // The page's share of a second at the allowed rate, less what reading it took.
      const waitMs = (page.pairs.length * 1000) / pace.rowsPerSecondMax - (now() - pageStartedMs);
      if (waitMs > 0) await wait(waitMs);
      if (pace.stopped()) return;
    }
  }
}

function keyAfter(key: Uint8Array): Uint8Array {
  const next = new Uint8Array(key.byteLength + 1);
  next.set(key);
  return next;
}
