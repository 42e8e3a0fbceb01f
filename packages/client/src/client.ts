/**
 * The range-partitioned client: every call finds the regions of its keys (region cache, PD on a
 * miss), sends each operation to the right replica through the per-store coalescing channels,
 * and repairs the cache and retries where that is safe, within the call's deadline.
 */
import type { KvOp, KvOpResult, ReadConsistency, RegionPeer } from '@flotilla/wire';
import { limits as wire } from '@flotilla/wire';
import { CallContext, backoffMs } from './backoff.ts';
import { checkClientTls, type ClientTls } from './client-tls.ts';
import { clientLimits } from './constants.ts';
import { ClientError, fromKvError, isClientError } from './errors.ts';
import { asBuffer, boundOf, compareKeys, keyOf, maxStart, minEnd, successor, valueOf, type Bytes } from './keys.ts';
import { PdRouting, type RegionSource } from './pd-client.ts';
import { RegionCache, type CachedRegion } from './region-cache.ts';
import { StaleReplicas } from './stale-replicas.ts';
import { Router } from './router.ts';
import { SentOp } from './sent-op.ts';
import type { ChannelOptions, OpOutcome, StoreChannel } from './store-channel.ts';
import { StoreChannels } from './store-channels.ts';

/**
 * How a read is served.
 * - `'linearizable'` (the default): the read sees every write acknowledged before it began.
 * - `{ maxStalenessMs }`: any replica may serve it (followers included) with data at most that
 *   old — every write acknowledged more than `maxStalenessMs` before the read arrived is seen.
 */
export type Consistency = 'linearizable' | { readonly maxStalenessMs: number };

/** Options of createClient. */
export interface ClientOptions {
  /** URLs of PD members (`http://host:port`, `https://` with `tls`); any member will do, the client follows the leader. */
  readonly pd: readonly string[];
  /** The deadline of every call that gives none, in ms (default 10,000). */
  readonly timeoutMs?: number;
  /** The read consistency of every read that gives none (default `'linearizable'`). */
  readonly consistency?: Consistency;
  /**
   * Tuning of the per-store coalescing (tests): each bound may be lowered, not raised past its
   * default in `clientLimits` (FLOTILLA_INVALID_ARGUMENT when a store's channel opens).
   */
  readonly channel?: Omit<ChannelOptions, 'stats'>;
  /** Replaces PD as the source of regions and stores (tests). */
  readonly regionSource?: RegionSource;
  /**
   * Where this client runs, as location labels like the stores' `--labels` (e.g.
   * `{ zone: 'z1' }`): its stale reads of a region go to a replica on a store that has every one
   * of these labels when the region has one (stale-replicas.ts). At most 16, each name and value
   * 1..64 characters. Default: none (stale reads spread over all replicas).
   */
  readonly labels?: Readonly<Record<string, string>>;
  /**
   * For a cluster whose APIs are HTTPS (`--api-tls-*`): the cluster's CA certificate(s), this
   * client's certificate (signed by that CA) and its key, PEM. Stores are then dialed at
   * `https://`, PD members must be `https://` URLs, and a server that refuses the certificate,
   * or whose own certificate does not verify, fails the call with FLOTILLA_UNAUTHENTICATED.
   */
  readonly tls?: ClientTls;
  /** Random numbers in [0, 1) for backoff jitter and replica choice (tests). */
  readonly random?: () => number;
}

/** Options every call takes. */
export interface CallOptions {
  /** The call's deadline in ms (default: the client's `timeoutMs`). */
  readonly timeoutMs?: number;
  /** Aborts the call: it rejects at once with FLOTILLA_ABORTED. */
  readonly signal?: AbortSignal;
}

/** Options of reads. */
export interface ReadOptions extends CallOptions {
  /** Default: the client's `consistency`. */
  readonly consistency?: Consistency;
}

/** A range scan of [start, end). */
export interface ScanOptions extends ReadOptions {
  /** First key (inclusive); default: the start of the keyspace. */
  readonly start?: Bytes;
  /** End key (exclusive); default: the end of the keyspace. */
  readonly end?: Bytes;
  /** Rows returned at most (scan: default and maximum 1,000,000; scanIterator: default unbounded). */
  readonly limit?: number;
  /** Descending key order. */
  readonly reverse?: boolean;
  /** Rows asked of a region per request (default 1,024). */
  readonly pageSize?: number;
}

/** One key and its value. */
export interface KvEntry {
  readonly key: Buffer;
  readonly value: Buffer;
}

/** What compareAndSwap found. */
export interface CasResult {
  /** Whether the value was swapped. */
  readonly succeeded: boolean;
  /** The value before the call (null: the key was absent). */
  readonly previous: Buffer | null;
}

/** Counters of a client (diagnostics). */
export interface ClientStats {
  /** KvRequests sent to stores. */
  readonly requests: number;
  /** Operations in them (requests < ops: coalescing worked). */
  readonly ops: number;
  /** Routing requests asked of PD. */
  readonly pdLookups: number;
  /** Regions in the cache. */
  readonly regionsCached: number;
  /** Stores with open channels. */
  readonly stores: number;
  /** Operations retried, by the error that caused it (NotLeader, EpochNotMatch, connection failures, …). */
  readonly retries: Readonly<Record<string, number>>;
}

type Success = Exclude<KvOpResult, { op: 'error' }>;

interface OpSpec {
  readonly write: boolean;
  readonly consistency: ReadConsistency | null;
  /**
   * A point op's key (its region is the router's), or how a range op finds its next region. A
   * key rather than a closure for the common case: tsx compiles with esbuild's keepNames, which
   * names each closure kept in a const or property with an Object.defineProperty call, and the
   * point ops' closures cost ~5% of the SDK's CPU at 20,000 ops/s (benchmarks/RESULTS.md).
   */
  readonly locate: Uint8Array | ((ctx: CallContext) => Promise<CachedRegion>);
  readonly build: (region: CachedRegion) => KvOp;
}

/** Where execute()'s retries stand (an object, not a closure: see OpSpec.locate). */
interface RetryState {
  lastError: ClientError | undefined;
  /** Retries in a row made at once, without backoff. */
  immediate: number;
  attempt: number;
}

/** A NotLeader hint or EpochNotMatch is retried at once this many times in a row, then with backoff. */
const IMMEDIATE_RETRIES_MAX = 2;

/**
 * The Flotilla client. Create one per process with {@link createClient} and share it: concurrent
 * calls to the same store are coalesced into one request.
 */
export class FlotillaClient {
  private readonly source: RegionSource;
  private readonly router: Router;
  private readonly channels: StoreChannels;
  private readonly timeoutMs: number;
  private readonly consistency: ReadConsistency;
  private readonly random: () => number;
  /** Which replica serves the stale reads of each region. */
  private readonly staleReplicas: StaleReplicas;
  private readonly retries = new Map<string, number>();
  private closed = false;

  /** Use {@link createClient}. */
  constructor(private readonly options: ClientOptions) {
    if (options.regionSource === undefined && (!Array.isArray(options.pd) || options.pd.length === 0)) {
      throw new ClientError('FLOTILLA_INVALID_ARGUMENT', 'pd: at least one PD URL');
    }
    this.timeoutMs = checkTimeout(options.timeoutMs ?? clientLimits.callTimeoutMsDefault);
    this.consistency = readConsistency(options.consistency ?? 'linearizable');
    this.random = options.random ?? Math.random;
    const tls = options.tls === undefined ? undefined : checkClientTls(options.tls);
    this.source = options.regionSource ?? new PdRouting(options.pd, tls);
    this.router = new Router(new RegionCache(), this.source, this.random);
    this.channels = new StoreChannels(this.source, options.channel, () => void this.router.pdLookups++, tls);
    this.staleReplicas = new StaleReplicas(this.channels, Math.floor(this.random() * 1_000_000), options.labels);
  }

  // ------------------------------------------------------------------ point calls

  /** The value of `key`, or null when it is absent. */
  async get(key: Bytes, options: ReadOptions = {}): Promise<Buffer | null> {
    const k = keyOf(key);
    const ctx = this.context('get', options);
    const consistency = this.readLevel(options);
    const { result } = await this.execute(ctx, this.pointSpec(k, null, consistency, (region) => ({ op: 'get', ...at(region), key: k, consistency })));
    return result.op === 'get' && result.value !== null ? asBuffer(result.value) : null;
  }

  /**
   * The values of `keys`, in their order (null: absent). The keys may be in any regions; each
   * store gets one request for all of its keys. Not a snapshot: each key is read on its own.
   */
  async getMany(keys: readonly Bytes[], options: ReadOptions = {}): Promise<(Buffer | null)[]> {
    const list = checkCount(keys, 'keys').map((k, i) => keyOf(k, `keys[${i}]`));
    const ctx = this.context('getMany', options);
    const consistency = this.readLevel(options);
    return this.many(ctx, list, async (k) => {
      const { result } = await this.execute(ctx, this.pointSpec(k, null, consistency, (region) => ({ op: 'get', ...at(region), key: k, consistency })));
      return result.op === 'get' && result.value !== null ? asBuffer(result.value) : null;
    });
  }

  /** Writes `value` at `key`. */
  async put(key: Bytes, value: Bytes, options: CallOptions = {}): Promise<void> {
    const k = keyOf(key);
    const v = valueOf(value);
    const ctx = this.context('put', options);
    await this.execute(ctx, this.pointSpec(k, 'write', null, (region) => ({ op: 'put', ...at(region), key: k, value: v })));
  }

  /**
   * Writes every pair. NOT atomic across regions: if the call fails, some pairs may have been
   * written (the error's `unknownOutcome` is then true).
   */
  async putMany(entries: readonly (readonly [Bytes, Bytes] | { readonly key: Bytes; readonly value: Bytes })[], options: CallOptions = {}): Promise<void> {
    const pairs = checkCount(entries, 'entries').map((e, i) => {
      const [key, value] = Array.isArray(e) ? (e as readonly [Bytes, Bytes]) : [(e as { key: Bytes }).key, (e as { value: Bytes }).value];
      return { key: keyOf(key, `entries[${i}].key`), value: valueOf(value, `entries[${i}].value`) };
    });
    const ctx = this.context('putMany', options);
    await this.many(ctx, pairs, async ({ key, value }) => {
      await this.execute(ctx, this.pointSpec(key, 'write', null, (region) => ({ op: 'put', ...at(region), key, value })));
    });
  }

  /** Deletes `key` (absent keys are fine). */
  async delete(key: Bytes, options: CallOptions = {}): Promise<void> {
    const k = keyOf(key);
    const ctx = this.context('delete', options);
    await this.execute(ctx, this.pointSpec(k, 'write', null, (region) => ({ op: 'delete', ...at(region), key: k })));
  }

  /** Deletes every key; not atomic across regions (see putMany). */
  async deleteMany(keys: readonly Bytes[], options: CallOptions = {}): Promise<void> {
    const list = checkCount(keys, 'keys').map((k, i) => keyOf(k, `keys[${i}]`));
    const ctx = this.context('deleteMany', options);
    await this.many(ctx, list, async (k) => {
      await this.execute(ctx, this.pointSpec(k, 'write', null, (region) => ({ op: 'delete', ...at(region), key: k })));
    });
  }

  /**
   * Atomically: if the value of `key` equals `expected` (null: the key is absent), sets it to
   * `value` (null: deletes it). Answers whether it swapped and the value it found.
   */
  async compareAndSwap(key: Bytes, expected: Bytes | null, value: Bytes | null, options: CallOptions = {}): Promise<CasResult> {
    const k = keyOf(key);
    const e = expected === null ? null : valueOf(expected, 'expected');
    const v = value === null ? null : valueOf(value, 'value');
    const ctx = this.context('compareAndSwap', options);
    const { result } = await this.execute(ctx, this.pointSpec(k, 'write', null, (region) => ({ op: 'cas', ...at(region), key: k, expected: e, value: v })));
    if (result.op !== 'cas') throw new ClientError('FLOTILLA_STORE_PROTOCOL', `a cas answered with ${result.op}`);
    return { succeeded: result.succeeded, previous: result.previous === null ? null : asBuffer(result.previous) };
  }

  /**
   * Deletes every key in [start, end) (undefined start: the start of the keyspace; undefined
   * end: its end) and answers how many were deleted. Region by region, in key order; NOT atomic
   * across regions.
   */
  async deleteRange(start: Bytes | undefined, end: Bytes | undefined, options: CallOptions = {}): Promise<number> {
    const from = boundOf(start, 'start');
    const to = boundOf(end, 'end');
    const ctx = this.context('deleteRange', options);
    if (to.byteLength > 0 && compareKeys(from, to) >= 0) return 0;
    let deleted = 0;
    let cursor = from;
    for (;;) {
      const c = cursor;
      const { result, region } = await this.execute(ctx, {
        write: true,
        consistency: null,
        locate: (x) => this.router.locateForRange(c, to, x),
        build: (r) => ({ op: 'deleteRange', ...at(r), start: c, end: minEnd(to, r.meta.endKey) }),
      });
      if (result.op === 'deleteRange') deleted += result.deleted;
      const regionEnd = region.meta.endKey;
      if (regionEnd.byteLength === 0 || (to.byteLength > 0 && compareKeys(regionEnd, to) >= 0)) return deleted;
      cursor = regionEnd;
    }
  }

  // ------------------------------------------------------------------ scans

  /**
   * The rows of [start, end) in key order (descending with `reverse`), at most `limit`, across
   * any number of regions. Each region's part is read at the requested consistency; the whole
   * is not one snapshot. The deadline covers the whole call; for large ranges use scanIterator.
   */
  async scan(options: ScanOptions = {}): Promise<KvEntry[]> {
    const limit = checkLimit(options.limit ?? clientLimits.scanRowsMax, clientLimits.scanRowsMax);
    const ctx = this.context('scan', options);
    const rows: KvEntry[] = [];
    for await (const page of this.pages(options, limit, () => ctx)) rows.push(...page);
    return rows;
  }

  /**
   * The rows of [start, end) one at a time, paging through any number of regions (`pageSize`
   * rows per request). `timeoutMs` bounds each page; `signal` the whole iteration. Breaking out
   * of the loop stops it.
   */
  async *scanIterator(options: ScanOptions = {}): AsyncGenerator<KvEntry, void, undefined> {
    const limit = checkLimit(options.limit ?? Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
    for await (const page of this.pages(options, limit, () => this.context('scanIterator', options))) yield* page;
  }

  private async *pages(options: ScanOptions, limit: number, contextFor: () => CallContext): AsyncGenerator<KvEntry[], void, undefined> {
    const start = boundOf(options.start, 'start');
    const end = boundOf(options.end, 'end');
    const pageSize = checkLimit(options.pageSize ?? clientLimits.scanPageRowsDefault, clientLimits.scanPageRowsMax);
    const consistency = this.readLevel(options);
    const reverse = options.reverse === true;
    this.checkOpen();
    if (end.byteLength > 0 && compareKeys(start, end) >= 0) return;
    let remaining = limit;
    // Forward: the next key to read. Reverse: the exclusive upper bound still to read.
    let cursor = reverse ? end : start;
    while (remaining > 0) {
      const ctx = contextFor();
      const c = cursor;
      const rows = Math.min(remaining, pageSize);
      const { result, region } = await this.execute(ctx, {
        write: false,
        consistency,
        locate: reverse ? (x) => this.router.locateBefore(start, c, x) : (x) => this.router.locateForRange(c, end, x),
        build: (r) =>
          reverse
            ? { op: 'scan', ...at(r), start: maxStart(start, r.meta.startKey), end: c.byteLength === 0 ? r.meta.endKey : c, limit: rows, reverse: true, consistency }
            : { op: 'scan', ...at(r), start: c, end: minEnd(end, r.meta.endKey), limit: rows, reverse: false, consistency },
      });
      if (result.op !== 'scan') throw new ClientError('FLOTILLA_STORE_PROTOCOL', `a scan answered with ${result.op}`);
      const page = result.pairs.map((p) => ({ key: asBuffer(p.key), value: asBuffer(p.value) }));
      remaining -= page.length;
      if (page.length > 0) yield page;
      if (remaining <= 0) return;
      if (result.more) {
        const last = page[page.length - 1];
        if (!last) throw new ClientError('FLOTILLA_STORE_PROTOCOL', 'a scan answered more rows but none');
        cursor = reverse ? last.key : successor(last.key);
        continue;
      }
      if (reverse) {
        if (compareKeys(region.meta.startKey, start) <= 0) return;
        cursor = region.meta.startKey;
      } else {
        const regionEnd = region.meta.endKey;
        if (regionEnd.byteLength === 0 || (end.byteLength > 0 && compareKeys(regionEnd, end) >= 0)) return;
        cursor = regionEnd;
      }
    }
  }

  // ------------------------------------------------------------------ life cycle

  /** Counters (diagnostics, tests). */
  stats(): ClientStats {
    return {
      requests: this.channels.stats.requests,
      ops: this.channels.stats.ops,
      pdLookups: this.router.pdLookups,
      regionsCached: this.router.cache.size,
      stores: this.channels.size,
      retries: Object.fromEntries(this.retries),
    };
  }

  /** Closes every connection; calls in flight and later fail with FLOTILLA_CLIENT_CLOSED. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([this.channels.close(), this.source.close()]);
  }

  // ------------------------------------------------------------------ the retry loop

  private pointSpec(key: Uint8Array, write: 'write' | null, consistency: ReadConsistency | null, build: (region: CachedRegion) => KvOp): OpSpec {
    return { write: write === 'write', consistency, locate: key, build };
  }

  /**
   * Runs one operation to a definite answer: locate its region, send it to the right replica,
   * and on an error that proves it did not happen repair the cache and try again (at once after
   * a leader hint or a fresh epoch, else after a jittered backoff). A write whose outcome is
   * unknown is never retried.
   */
  private async execute(ctx: CallContext, spec: OpSpec): Promise<{ result: Success; region: CachedRegion }> {
    const tries: RetryState = { lastError: undefined, immediate: 0, attempt: 0 };
    for (; tries.attempt < clientLimits.attemptsMax; tries.attempt++) {
      this.checkOpen();
      ctx.check(tries.lastError, 'the first attempt');
      // A cached region and an open channel are taken without an await (most calls).
      const region = spec.locate instanceof Uint8Array ? (this.router.cache.locate(spec.locate) ?? (await this.router.locate(spec.locate, ctx))) : await spec.locate(ctx);
      if (spec.consistency?.level === 'stale' && this.staleReplicas.needsLabels(region)) await this.channels.learnLabels(region.meta.peers.map((p) => p.storeId), ctx);
      const peer = this.target(region, spec, tries.attempt);
      if (!peer) {
        this.router.cache.remove(region.meta.id);
        await this.retry(ctx, tries, new ClientError('FLOTILLA_REGION_NOT_FOUND', `region ${region.meta.id} has no peers`), 0);
        continue;
      }
      let channel: StoreChannel;
      try {
        channel = this.channels.opened(peer.storeId) ?? (await this.channels.get(peer.storeId, ctx));
      } catch (err) {
        if (!isClientError(err) || (err.code !== 'FLOTILLA_STORE_UNAVAILABLE' && err.code !== 'FLOTILLA_PD_UNAVAILABLE')) throw err;
        // PD does not know the store (any more): the region's peers are stale.
        this.router.cache.remove(region.meta.id);
        await this.retry(ctx, tries, err, 0);
        continue;
      }
      const outcome = await this.send(ctx, channel, spec.build(region), spec.write);
      if (outcome.kind === 'failed') {
        const error = outcome.error;
        if (spec.write && outcome.maybeApplied) throw new ClientError(error.code, `${ctx.what}: ${error.message}; the write may or may not have taken effect`, { cause: error, unknownOutcome: true });
        if (!outcome.connection && error.code !== 'FLOTILLA_STORE_UNAVAILABLE') throw withOutcome(error, ctx);
        this.router.cache.forgetLeadersOn(peer.storeId);
        if (outcome.connection) this.channels.suspect(peer.storeId);
        await this.retry(ctx, tries, error, 0);
        continue;
      }
      const result = outcome.result;
      if (result.op !== 'error') return { result, region };
      const e = result.error;
      switch (e.code) {
        case 'FLOTILLA_NOT_LEADER': {
          const hint = e.leader;
          // A hint naming a store that just failed is stale (its followers name it until they elect).
          if (hint && hint.storeId !== peer.storeId && !this.channels.isSuspect(hint.storeId) && this.router.cache.setLeader(region.meta.id, hint.peerId)) {
            await this.retry(ctx, tries, fromKvError(e, false));
          } else {
            if (hint && !region.meta.peers.some((p) => p.id === hint.peerId)) this.router.cache.remove(region.meta.id);
            else this.router.cache.setLeader(region.meta.id, null);
            await this.retry(ctx, tries, fromKvError(e, false), 0);
          }
          continue;
        }
        case 'FLOTILLA_EPOCH_NOT_MATCH': {
          for (const meta of e.currentRegions) this.router.learnMeta(meta);
          const now = this.router.cache.get(region.meta.id);
          if (now === region) this.router.cache.remove(region.meta.id);
          await this.retry(ctx, tries, fromKvError(e, false));
          continue;
        }
        case 'FLOTILLA_REGION_NOT_FOUND':
        case 'FLOTILLA_KEY_NOT_IN_REGION':
          this.router.cache.remove(region.meta.id);
          await this.retry(ctx, tries, fromKvError(e, false), 0);
          continue;
        case 'FLOTILLA_SERVER_BUSY':
          await this.retry(ctx, tries, fromKvError(e, false), e.retryAfterMs);
          continue;
        case 'FLOTILLA_TIMEOUT':
          if (spec.write) throw new ClientError(e.code, `${ctx.what}: the store timed out; the write may or may not have taken effect`, { kvError: e, unknownOutcome: true });
          // A read: ask another replica.
          this.router.cache.setLeader(region.meta.id, null);
          await this.retry(ctx, tries, fromKvError(e, false), 0);
          continue;
        case 'FLOTILLA_REQUEST_TOO_LARGE':
        case 'FLOTILLA_DISK_FULL':
          throw withOutcome(fromKvError(e, false), ctx);
      }
    }
    const last = tries.lastError ?? new ClientError('FLOTILLA_DEADLINE_EXCEEDED', `${ctx.what}: no attempt made`);
    throw new ClientError(last.code, `${ctx.what}: gave up after ${tries.attempt} attempts: ${last.message}`, { cause: last, unknownOutcome: ctx.unknownOutcome, ...(last.kvError ? { kvError: last.kvError } : {}) });
  }

  /**
   * Before execute()'s next attempt: counts the error, then goes on at once (a leader hint or a
   * fresh epoch, IMMEDIATE_RETRIES_MAX times in a row) or after a jittered backoff of at least
   * `waitMs`.
   */
  private async retry(ctx: CallContext, tries: RetryState, error: ClientError, waitMs?: number): Promise<void> {
    tries.lastError = error;
    this.retries.set(error.code, (this.retries.get(error.code) ?? 0) + 1);
    if (waitMs === undefined && tries.immediate < IMMEDIATE_RETRIES_MAX) {
      tries.immediate++;
      return;
    }
    tries.immediate = 0;
    await ctx.sleep(Math.max(waitMs ?? 0, backoffMs(tries.attempt, this.random)), error);
  }

  /** Sends one op through a store's channel; the call's deadline and signal still apply. */
  private send(ctx: CallContext, channel: StoreChannel, op: KvOp, write: boolean): Promise<OpOutcome> {
    ctx.check(undefined, channel.label);
    return new Promise<OpOutcome>((resolve, reject) => void new SentOp(op, ctx, channel, write, resolve, reject));
  }

  /** The replica to ask: the leader for writes and linearizable reads (any peer while unknown), any replica for stale reads. */
  private target(region: CachedRegion, spec: OpSpec, attempt: number): RegionPeer | undefined {
    const peers = region.meta.peers;
    if (peers.length === 0) return undefined;
    if (spec.consistency?.level === 'stale') return this.staleReplicas.pick(region, attempt);
    const leader = peers.find((p) => p.id === region.leaderPeerId);
    if (leader && !this.channels.isSuspect(leader.storeId)) return leader;
    const voters = peers.filter((p) => p.role === 'voter');
    const healthy = voters.filter((p) => !this.channels.isSuspect(p.storeId));
    const list = healthy.length > 0 ? healthy : voters.length > 0 ? voters : peers;
    return list[(attempt + region.meta.id) % list.length];
  }

  /** Runs `run` for every item, a window at a time; fails with the first error once its window is done. */
  private async many<T, R>(ctx: CallContext, items: readonly T[], run: (item: T) => Promise<R>): Promise<R[]> {
    const out: R[] = new Array(items.length);
    for (let from = 0; from < items.length; from += clientLimits.batchOpsMax) {
      const window = items.slice(from, from + clientLimits.batchOpsMax);
      const settled = await Promise.allSettled(window.map(run));
      const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (failed) throw withOutcome(failed.reason, ctx);
      settled.forEach((s, i) => (out[from + i] = (s as PromiseFulfilledResult<R>).value));
    }
    return out;
  }

  private context(what: string, options: CallOptions): CallContext {
    this.checkOpen();
    const timeoutMs = options.timeoutMs === undefined ? this.timeoutMs : checkTimeout(options.timeoutMs);
    const ctx = new CallContext(timeoutMs, options.signal, what);
    return ctx;
  }

  private readLevel(options: ReadOptions): ReadConsistency {
    return options.consistency === undefined ? this.consistency : readConsistency(options.consistency);
  }

  private checkOpen(): void {
    if (this.closed) throw new ClientError('FLOTILLA_CLIENT_CLOSED', 'the client is closed');
  }
}

/** Creates a client of the cluster whose PD members are `options.pd`. */
export function createClient(options: ClientOptions): FlotillaClient {
  return new FlotillaClient(options);
}

function at(region: CachedRegion): { regionId: number; regionEpoch: { version: number; confVer: number } } {
  return { regionId: region.meta.id, regionEpoch: region.meta.epoch };
}

/** The error, marked unknown-outcome when a write of the call may have taken effect. */
function withOutcome(err: unknown, ctx: CallContext): unknown {
  if (!isClientError(err) || err.unknownOutcome || !ctx.unknownOutcome) return err;
  return new ClientError(err.code, `${err.message} (some writes of the call may have taken effect)`, { cause: err, unknownOutcome: true, ...(err.kvError ? { kvError: err.kvError } : {}) });
}

function checkTimeout(ms: number): number {
  if (!Number.isSafeInteger(ms) || ms < 1 || ms > clientLimits.callTimeoutMsMax) {
    throw new ClientError('FLOTILLA_INVALID_ARGUMENT', `timeoutMs: an integer in 1..${clientLimits.callTimeoutMsMax}, got ${ms}`);
  }
  return ms;
}

function checkLimit(n: number, max: number): number {
  if (!Number.isSafeInteger(n) || n < 1 || n > max) throw new ClientError('FLOTILLA_INVALID_ARGUMENT', `limit/pageSize: an integer in 1..${max}, got ${n}`);
  return n;
}

function checkCount<T>(items: readonly T[], what: string): readonly T[] {
  if (!Array.isArray(items)) throw new ClientError('FLOTILLA_INVALID_ARGUMENT', `${what}: expected an array`);
  if (items.length > clientLimits.keysPerCallMax) throw new ClientError('FLOTILLA_INVALID_ARGUMENT', `${what}: ${items.length}, at most ${clientLimits.keysPerCallMax}`);
  return items;
}

function readConsistency(c: Consistency): ReadConsistency {
  if (c === 'linearizable') return { level: 'linearizable' };
  const ms = typeof c === 'object' && c !== null ? c.maxStalenessMs : undefined;
  if (typeof ms !== 'number' || !Number.isSafeInteger(ms) || ms < 0 || ms > wire.kvStalenessMsMax) {
    throw new ClientError('FLOTILLA_INVALID_ARGUMENT', `consistency: 'linearizable' or { maxStalenessMs: 0..${wire.kvStalenessMsMax} }`);
  }
  return { level: 'stale', maxStalenessMs: ms };
}
