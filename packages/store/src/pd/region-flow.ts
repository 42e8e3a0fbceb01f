/**
 * Per-region traffic for PD's heartbeats: keys and bytes written and read through this
 * store's client API, counted from the answered requests (only operations that succeeded),
 * and averaged per second when a heartbeat takes them. A wrapper around the KV handler, so
 * the request path itself stays untouched.
 */
import type { FlowRatesJson, KvOp, KvOpResult, KvRequest, KvResponse } from '@flotilla/wire';
import { monotonicNowMs } from '../clock.ts';
import type { KvHandler } from '../server.ts';

/** Keys and bytes per second (the PD protocol's shape). */
export type FlowRates = FlowRatesJson;

interface Counters {
  writeBytes: number;
  writeKeys: number;
  readBytes: number;
  readKeys: number;
  sinceMs: number;
  /** RegionWrites since the region's size was last estimated (RegionSizes), field by field. */
  writtenBytes: number;
  putBytes: number;
  putKeys: number;
  deletedKeys: number;
}

/** What was written to a region since its size was last estimated. */
export interface RegionWrites {
  /** Key and value bytes of every put and delete (a range delete: none). */
  readonly bytes: number;
  /** Keys + values put: what the region grew by at most (overwrites grow it less). */
  readonly putBytes: number;
  /** Keys put (each may have existed). */
  readonly putKeys: number;
  /** Keys deleted, one by one or by a range delete: each took a row of unknown size away. */
  readonly deletedKeys: number;
}

/** Regions tracked at most; a store hosts at most this many peers anyway (limits.peersMax). */
export const regionFlowTrackedMax = 100_000;

export class RegionFlow implements KvHandler {
  private readonly regions = new Map<number, Counters>();
  /** The whole store's traffic (store heartbeats). */
  private readonly store: Counters;

  constructor(
    private readonly inner: KvHandler,
    private readonly now: () => number = monotonicNowMs,
  ) {
    this.store = fresh(now());
  }

  async handle(request: KvRequest): Promise<KvResponse> {
    const response = await this.inner.handle(request);
    if ('results' in response) response.results.forEach((result, at) => this.count(request.ops[at]!, result));
    return response;
  }

  /** The region's rates since its last take (per second), and restarts its window. */
  take(regionId: number): FlowRates {
    const c = this.regions.get(regionId);
    return c ? this.drain(c) : { writeBytes: 0, writeKeys: 0, readBytes: 0, readKeys: 0 };
  }

  /** The whole store's rates since the last store take. */
  takeStore(): FlowRates {
    return this.drain(this.store);
  }

  private drain(c: Counters): FlowRates {
    const seconds = Math.max(1, this.now() - c.sinceMs) / 1000;
    const rates = {
      writeBytes: Math.round(c.writeBytes / seconds),
      writeKeys: Math.round(c.writeKeys / seconds),
      readBytes: Math.round(c.readBytes / seconds),
      readKeys: Math.round(c.readKeys / seconds),
    };
    c.writeBytes = c.writeKeys = c.readBytes = c.readKeys = 0;
    c.sinceMs = this.now();
    return rates;
  }

  /** What was written to the region since its size was last estimated (restarts the count). */
  takeWritesSinceEstimate(regionId: number): RegionWrites {
    const c = this.regions.get(regionId);
    if (!c) return { bytes: 0, putBytes: 0, putKeys: 0, deletedKeys: 0 };
    const writes = { bytes: c.writtenBytes, putBytes: c.putBytes, putKeys: c.putKeys, deletedKeys: c.deletedKeys };
    c.writtenBytes = c.putBytes = c.putKeys = c.deletedKeys = 0;
    return writes;
  }

  /** Forgets regions this store no longer leads or holds. */
  forgetExcept(live: ReadonlySet<number>): void {
    for (const id of this.regions.keys()) if (!live.has(id)) this.regions.delete(id);
  }

  private count(op: KvOp, result: KvOpResult): void {
    if (result.op === 'error') return;
    const c = this.counters(op.regionId);
    if (c) this.add(c, op, result);
    this.add(this.store, op, result);
  }

  private add(c: Counters, op: KvOp, result: KvOpResult): void {
    switch (result.op) {
      case 'get':
        c.readKeys++;
        c.readBytes += op.op === 'get' ? op.key.byteLength + (result.value?.byteLength ?? 0) : 0;
        return;
      case 'scan':
        c.readKeys += result.pairs.length;
        for (const pair of result.pairs) c.readBytes += pair.key.byteLength + pair.value.byteLength;
        return;
      case 'put':
      case 'delete':
      case 'cas':
      case 'deleteRange':
        this.countWrite(c, op, result);
        return;
    }
  }

  private countWrite(c: Counters, op: KvOp, result: KvOpResult): void {
    let bytes = 0;
    let keys = 1;
    let put = false;
    if (op.op === 'put') {
      bytes = op.key.byteLength + op.value.byteLength;
      put = true;
    } else if (op.op === 'delete') bytes = op.key.byteLength;
    else if (op.op === 'cas') {
      if (result.op === 'cas' && !result.succeeded) return; // compared, wrote nothing
      bytes = op.key.byteLength + (op.value?.byteLength ?? 0);
      put = op.value !== null;
    } else if (result.op === 'deleteRange') keys = result.deleted;
    c.writeBytes += bytes;
    c.writeKeys += keys;
    c.writtenBytes += bytes;
    if (put) {
      c.putBytes += bytes;
      c.putKeys += keys;
    } else c.deletedKeys += keys;
  }

  private counters(regionId: number): Counters | undefined {
    let c = this.regions.get(regionId);
    if (!c) {
      if (this.regions.size >= regionFlowTrackedMax) return undefined;
      c = fresh(this.now());
      this.regions.set(regionId, c);
    }
    return c;
  }
}

function fresh(nowMs: number): Counters {
  return { writeBytes: 0, writeKeys: 0, readBytes: 0, readKeys: 0, sinceMs: nowMs, writtenBytes: 0, putBytes: 0, putKeys: 0, deletedKeys: 0 };
}
