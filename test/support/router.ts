/**
 * A minimal range router for cluster tests (the SDK in packages/client is the real one): it
 * reads the region table from the stores' admin API, sends each write to the leader of the
 * region that holds its key, follows NotLeader hints and refreshes the table on
 * EpochNotMatch, KeyNotInRegion and RegionNotFound.
 */
import type { KvError, KvOp, KvOpResult, RegionEpoch } from '@flotilla/wire';
import type { ProcessCluster } from './cluster.ts';

export interface RoutedRegion {
  readonly id: number;
  readonly startKey: string;
  readonly endKey: string;
  readonly epoch: RegionEpoch;
  leaderStore: number | undefined;
}

interface RegionStatusJson {
  readonly id: number;
  readonly startKey: string;
  readonly endKey: string;
  readonly epoch: RegionEpoch;
  readonly leader: { readonly peerId: number; readonly storeId: number } | null;
}

const PAGE = 10_000;
const ATTEMPTS_MAX = 100;
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const hex = (s: string): string => Buffer.from(s).toString('hex');

export class RangeRouter {
  private regions: RoutedRegion[] = [];
  private requestId = 1;
  refreshes = 0;
  /** Operations whose outcome stayed unknown, and why (for failure reports). */
  readonly unknowns: string[] = [];

  constructor(private readonly cluster: ProcessCluster) {}

  /**
   * Reloads the table: every running store's view merged, the newest epoch of each region
   * winning (a store may lag a split, or no longer host a region that moved away). Regions a
   * newer split or merge overlaps are dropped.
   */
  async refresh(): Promise<void> {
    this.refreshes++;
    const newest = new Map<number, RoutedRegion>();
    for (const store of this.cluster.stores.values()) {
      let after = 0;
      for (;;) {
        const page = await this.cluster.expectAdmin<{ regions: RegionStatusJson[]; next: number | null }>(store.id, 'GET', `/v1/admin/regions?after=${after}&limit=${PAGE}`);
        for (const r of page.regions) {
          const known = newest.get(r.id);
          if (known && !newer(r.epoch, known.epoch)) continue;
          newest.set(r.id, { id: r.id, startKey: r.startKey, endKey: r.endKey, epoch: r.epoch, leaderStore: r.leader?.storeId });
        }
        if (page.next === null) break;
        after = page.next;
      }
    }
    const sorted = [...newest.values()].sort((a, b) => (a.startKey < b.startKey ? -1 : a.startKey > b.startKey ? 1 : 0));
    // Of two overlapping regions, the one with the newer version is the truth.
    const table: RoutedRegion[] = [];
    for (const region of sorted) {
      const previous = table[table.length - 1];
      if (previous && (previous.endKey === '' || region.startKey < previous.endKey)) {
        if (region.epoch.version > previous.epoch.version) table[table.length - 1] = region;
        continue;
      }
      table.push(region);
    }
    this.regions = table;
  }

  get size(): number {
    return this.regions.length;
  }

  /** The region whose [start, end) holds the key (hex order is byte order). */
  locate(key: string): RoutedRegion | undefined {
    const k = hex(key);
    let lo = 0;
    let hi = this.regions.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = this.regions[mid]!;
      if (k < r.startKey) hi = mid - 1;
      else if (r.endKey !== '' && k >= r.endKey) lo = mid + 1;
      else return r;
    }
    return undefined;
  }

  /**
   * Puts until acknowledged ('ok') or the outcome is unknown ('unknown': a timeout or a
   * connection that failed after sending). Errors that prove nothing happened are retried.
   */
  async put(key: string, value: string): Promise<'ok' | 'unknown'> {
    const result = await this.route(key, (region) => ({ op: 'put', regionId: region.id, regionEpoch: region.epoch, key: encoder.encode(key), value: encoder.encode(value) }));
    return result === 'unknown' ? 'unknown' : 'ok';
  }

  /** Deletes until acknowledged ('ok') or the outcome is unknown, as put does. */
  async delete(key: string): Promise<'ok' | 'unknown'> {
    const result = await this.route(key, (region) => ({ op: 'delete', regionId: region.id, regionEpoch: region.epoch, key: encoder.encode(key) }));
    return result === 'unknown' ? 'unknown' : 'ok';
  }

  /** A linearizable read through the region's leader. */
  async get(key: string): Promise<string | null> {
    const result = await this.route(key, (region) => ({ op: 'get', regionId: region.id, regionEpoch: region.epoch, key: encoder.encode(key), consistency: { level: 'linearizable' } }));
    if (result === 'unknown' || result.op !== 'get') throw new Error(`get ${key}: ${JSON.stringify(result)} (${this.unknowns.slice(-3).join('; ')})`);
    return result.value === null ? null : decoder.decode(result.value);
  }

  private async route(key: string, build: (region: RoutedRegion) => KvOp): Promise<KvOpResult | 'unknown'> {
    let lastError: KvError | undefined;
    let lastTried = '';
    for (let attempt = 0; attempt < ATTEMPTS_MAX; attempt++) {
      const region = this.locate(key);
      if (!region) {
        // A store's table may show a split's parent already shrunk, its child not yet started.
        await backoff(attempt);
        await this.refresh();
        continue;
      }
      const storeIds = [...this.cluster.stores.keys()];
      const storeId = region.leaderStore !== undefined && this.cluster.stores.has(region.leaderStore) ? region.leaderStore : storeIds[attempt % storeIds.length]!;
      let result: KvOpResult | undefined;
      try {
        const { response } = await this.cluster.kv(storeId, { requestId: this.requestId++, timeoutMs: 5_000, ops: [build(region)] });
        result = 'results' in response ? response.results[0] : { op: 'error', error: response.error };
      } catch (err) {
        this.unknowns.push(`${key} at store ${storeId}: ${(err as Error).message}`);
        return 'unknown';
      }
      if (result === undefined) return 'unknown';
      if (result.op !== 'error') return result;
      if (result.error.code === 'FLOTILLA_TIMEOUT') {
        this.unknowns.push(`${key} at store ${storeId}: timeout`);
        return 'unknown';
      }
      lastError = result.error;
      lastTried = `region ${region.id} epoch ${JSON.stringify(region.epoch)} at store ${storeId}`;
      await this.recover(region, storeId, result.error, attempt);
    }
    throw new Error(`${key}: no answer after ${ATTEMPTS_MAX} attempts; the last try: ${lastTried}; the last error: ${JSON.stringify(lastError)}`);
  }

  private async recover(region: RoutedRegion, triedStore: number, error: KvError, attempt: number): Promise<void> {
    switch (error.code) {
      case 'FLOTILLA_NOT_LEADER': {
        // Follow a hint to another running store at once; a hint to a dead store (its
        // followers still name it until they elect a new leader) or none: wait, then retry.
        const hint = error.leader?.storeId;
        const live = hint !== undefined && hint !== triedStore && this.cluster.stores.has(hint);
        region.leaderStore = live ? hint : undefined;
        if (!live) await backoff(attempt);
        return;
      }
      case 'FLOTILLA_SERVER_BUSY':
        await backoff(attempt);
        return;
      default:
        // The region split or moved: the table is stale.
        await this.refresh();
    }
  }
}

function backoff(attempt: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.min(5 * (attempt + 1), 100)));
}

function newer(a: RegionEpoch, b: RegionEpoch): boolean {
  return a.version > b.version || (a.version === b.version && a.confVer > b.confVer);
}
