/**
 * Where a key lives: the region cache, filled from PD on a miss. PD may briefly know no region
 * for a key (a split's child not reported yet) or still show a region older than one the cache
 * holds; both are waited out with backoff within the call's deadline.
 */
import type { RegionMeta } from '@flotilla/wire';
import { backoffMs, type CallContext } from './backoff.ts';
import { clientLimits } from './constants.ts';
import { isClientError } from './errors.ts';

import type { RegionSource, RoutedRegion } from './pd-client.ts';
import { RegionCache, type CachedRegion } from './region-cache.ts';

const EMPTY = new Uint8Array(0);

export class Router {
  /** PD look-ups made (tests, diagnostics). */
  pdLookups = 0;
  /** The PD load in flight that misses wait for. */
  private loading: Promise<void> | undefined;

  constructor(
    readonly cache: RegionCache,
    private readonly pd: RegionSource,
    private readonly random: () => number = Math.random,
  ) {}

  /** The region holding `key`; a miss loads a page of regions from PD, starting at the key. */
  locate(key: Uint8Array, ctx: CallContext): Promise<CachedRegion> {
    return this.locateLoading(key, EMPTY, clientLimits.pdRegionsPerMissMax, ctx);
  }

  /**
   * The region holding `key`, loading the regions of [key, end) a page at a time on a miss
   * (a scan or deleteRange walks them next).
   */
  locateForRange(key: Uint8Array, end: Uint8Array, ctx: CallContext): Promise<CachedRegion> {
    return this.locateLoading(key, end, clientLimits.pdRegionsPageMax, ctx);
  }

  /**
   * Misses share one PD load at a time: a cold client's thousand concurrent calls make one
   * request, not a thousand. A caller whose key the shared load did not cover loads next.
   */
  private async locateLoading(key: Uint8Array, end: Uint8Array, pageSize: number, ctx: CallContext): Promise<CachedRegion> {
    for (let attempt = 0; ; ) {
      const cached = this.cache.locate(key);
      if (cached) return cached;
      if (this.loading) {
        await ctx.race(this.loading, 'the placement driver (a region lookup of another call)');
        continue;
      }
      const load = this.ask(ctx, attempt, () => this.pd.regions(key, end, pageSize, ctx));
      this.loading = load.then(
        () => undefined,
        () => undefined,
      );
      const page = await load.finally(() => (this.loading = undefined));
      if (page === undefined) {
        attempt++;
        continue;
      }
      for (const r of page.regions) this.learn(r);
      const found = this.cache.locate(key);
      if (found) return found;
      // PD knows no current region for the key yet (a split's child not reported).
      await ctx.sleep(backoffMs(attempt++, this.random), new Error('PD knows no current region for the key'));
    }
  }

  /**
   * The region holding the keys just below `end` (exclusive; empty: the end of the keyspace),
   * for reverse scans of [start, end): regions of [start, end) are loaded from PD on a miss.
   */
  async locateBefore(start: Uint8Array, end: Uint8Array, ctx: CallContext): Promise<CachedRegion> {
    for (let attempt = 0; ; attempt++) {
      const cached = this.cache.locateBefore(end);
      if (cached) return cached;
      // PD pages ascend: walk to the last page of [start, end).
      let from = start;
      for (let pages = 0; pages < clientLimits.regionCacheMax / clientLimits.pdRegionsPageMax; pages++) {
        const page = await this.ask(ctx, attempt, () => this.pd.regions(from, end, clientLimits.pdRegionsPageMax, ctx));
        if (!page || page.regions.length === 0) break;
        for (const r of page.regions) this.learn(r);
        const last = page.regions[page.regions.length - 1]!.meta;
        if (!page.more || last.endKey.byteLength === 0) break;
        from = last.endKey;
      }
      const found = this.cache.locateBefore(end);
      if (found) return found;
      await ctx.sleep(backoffMs(attempt, this.random), new Error('PD knows no current region before the key'));
    }
  }

  /** Caches what a store said is current (EpochNotMatch). */
  learnMeta(meta: RegionMeta): void {
    this.cache.insert(meta);
  }

  private learn(routed: RoutedRegion): CachedRegion | undefined {
    return this.cache.insert(routed.meta, routed.leader?.peerId ?? null);
  }

  /** A PD request; PD_UNAVAILABLE is waited out (undefined: try again), other errors thrown. */
  private async ask<T>(ctx: CallContext, attempt: number, request: () => Promise<T>): Promise<T | undefined> {
    this.pdLookups++;
    try {
      return await request();
    } catch (err) {
      if (isClientError(err, 'FLOTILLA_PD_UNAVAILABLE')) {
        await ctx.sleep(backoffMs(attempt, this.random), err);
        return undefined;
      }
      throw err;
    }
  }
}
