/** Shared test harness (not a test file): stores on the in-memory twins, and small helpers. */
import { MemoryKvDisk, MemoryKvEngine, MemoryLogDisk, MemoryLogEngine, type GroupWrite, type KvEngine, type LogEngine, type RegionApply, type RegionMeta } from '@flotilla/storage';
import assert from 'node:assert/strict';
import { MemoryNetwork, MemoryTransport } from '@flotilla/transport';
import type { KvOp, KvOpResult, KvRequest, RegionEpoch } from '@flotilla/wire';
import { KvService, MultiRaftHost, type HostOptions } from '../src/index.ts';
import { waitFor as waitUntil } from '../../../test/support/wait.ts';

export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
export const text = (b: Uint8Array | null): string | null => (b === null ? null : new TextDecoder().decode(b));

/**
 * The shared wait (test/support/wait.ts), polling every 5 ms by default: the store tests wait
 * on timer-driven work (ticks, elections), which spinning on every turn would only slow down.
 */
export function waitFor(what: string, condition: () => boolean | Promise<boolean>, deadlineMs = 10_000, intervalMs = 5): Promise<void> {
  return waitUntil(what, condition, deadlineMs, intervalMs);
}

export const EPOCH: RegionEpoch = { version: 1, confVer: 1 };

/** Region 1 = [a, n) on stores 1, 2, 3 (peers 11, 12, 13). Test keys must sort inside it. */
export const REGION: RegionMeta = {
  id: 1,
  startKey: bytes('a'),
  endKey: bytes('n'),
  epoch: EPOCH,
  peers: [
    { id: 11, storeId: 1, role: 'voter' },
    { id: 12, storeId: 2, role: 'voter' },
    { id: 13, storeId: 3, role: 'voter' },
  ],
};

export interface MemoryStore {
  readonly id: number;
  readonly host: MultiRaftHost;
  readonly service: KvService;
  readonly kv: MemoryKvEngine;
  readonly transport: MemoryTransport;
  readonly logDisk: MemoryLogDisk;
  readonly kvDisk: MemoryKvDisk;
}

export type MemoryStoreOptions = Partial<Omit<HostOptions, 'storeId' | 'log' | 'kv' | 'transport'>>;

/** Wraps the engines the host writes through (crash points: `crashPoint`). The service reads the twin itself. */
export interface EngineWrappers {
  readonly log?: (log: MemoryLogEngine) => LogEngine;
  readonly kv?: (kv: MemoryKvEngine) => KvEngine;
}

/** One store on the in-memory twins (not started). Pass disks to restart a stopped store. */
export function memoryStore(
  network: MemoryNetwork,
  id: number,
  options: MemoryStoreOptions = {},
  disks?: { logDisk: MemoryLogDisk; kvDisk: MemoryKvDisk },
  wrap: EngineWrappers = {},
): MemoryStore {
  const logDisk = disks?.logDisk ?? new MemoryLogDisk();
  const kvDisk = disks?.kvDisk ?? new MemoryKvDisk();
  const kv = new MemoryKvEngine(kvDisk);
  const log = new MemoryLogEngine(logDisk);
  const transport = new MemoryTransport(network, { localStore: id });
  const host = new MultiRaftHost({
    tickMs: 5,
    hibernateAfterTicks: 0,
    seed: id,
    ...options,
    storeId: id,
    log: wrap.log ? wrap.log(log) : log,
    kv: wrap.kv ? wrap.kv(kv) : kv,
    transport,
  });
  return { id, host, service: new KvService(host, kv), kv, transport, logDisk, kvDisk };
}

/** Tells every started store where every other one listens. */
export function connectAll(stores: Iterable<{ readonly id: number; readonly transport: MemoryTransport }>): void {
  const all = [...stores];
  for (const a of all) for (const b of all) if (a !== b) a.transport.setPeer(b.id, b.transport.address());
}

export function leaderOf<S extends { readonly host: MultiRaftHost }>(stores: Iterable<S>, regionId: number): S | undefined {
  return [...stores].find((s) => s.host.peer(regionId)?.isLeader() === true);
}

/**
 * A process crash at a chosen write, on the in-memory twins (whose disks keep every write made,
 * as the page cache does for a killed process). `wrap` gives the engine to the host: the first
 * call of a writing method for which `at(method, args)` holds, and every writing call after
 * it, never reaches the engine and never settles — the process died there. Then stop the
 * host and start a new store from the same disks: the disks hold exactly what was written
 * before the crash.
 */
export class CrashPoint {
  crashed = false;

  constructor(
    private readonly writing: readonly string[],
    private readonly at: (method: string, args: readonly unknown[]) => boolean,
  ) {}

  wrap<E extends object>(engine: E): E {
    return intercept(engine, this.writing, (method, args, call) => {
      if (!this.crashed && this.at(method, args)) this.crashed = true;
      if (this.crashed) return new Promise(() => {});
      return call();
    });
  }
}

/**
 * The engine, with the methods named in `intercepted` going through `around` (which calls the
 * engine's own with `call()`, or not); every other method is the engine's own. The crash
 * points above and the tests' gates (held fsyncs, held applies) wrap engines with it.
 */
export function intercept<E extends object>(engine: E, intercepted: readonly string[], around: (method: string, args: readonly unknown[], call: () => unknown) => unknown): E {
  return new Proxy(engine, {
    get: (target, prop, receiver) => {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      const method = value as (...args: unknown[]) => unknown;
      if (typeof prop !== 'string' || !intercepted.includes(prop)) return method.bind(target);
      return (...args: unknown[]) => around(prop, args, () => method.apply(target, args));
    },
  });
}

/** Calls held until release(): what a test's gate keeps from returning. */
export class HeldCalls {
  armed = false;
  private readonly held: (() => void)[] = [];

  /** Resolves at release(). */
  hold(): Promise<void> {
    return new Promise((resolve) => this.held.push(resolve));
  }

  get count(): number {
    return this.held.length;
  }

  release(): void {
    this.armed = false;
    for (const resolve of this.held.splice(0)) resolve();
  }
}

/** A crash at the log engine's first write (or compaction) for which `at` holds. */
export function logCrashPoint(at: (writes: readonly GroupWrite[]) => boolean): CrashPoint {
  return new CrashPoint(['write', 'compact'], (method, args) => method === 'write' && at(args[0] as readonly GroupWrite[]));
}

/** A crash at the KV engine's first batch for which `at` holds. */
export function kvCrashPoint(at: (batch: readonly RegionApply[]) => boolean): CrashPoint {
  return new CrashPoint(['apply', 'sync', 'applySnapshot'], (method, args) => method === 'apply' && at(args[0] as readonly RegionApply[]));
}

/** Stores on the in-memory transport, with in-memory log and KV engines (their twins). */
export class TestCluster {
  readonly network = new MemoryNetwork();
  readonly stores = new Map<number, MemoryStore>();

  constructor(
    private readonly compactAfterEntries = 10_000,
    private readonly tickMs = 5,
    private readonly hibernateAfterTicks = 0,
    /** More host options for every store (they win over the three above). */
    private readonly extra: MemoryStoreOptions = {},
  ) {}

  /** `more`: host options of this store alone (they win over the cluster's). */
  async startStore(id: number, disks?: { logDisk: MemoryLogDisk; kvDisk: MemoryKvDisk }, wrap: EngineWrappers = {}, more: MemoryStoreOptions = {}): Promise<MemoryStore> {
    const options = { compactAfterEntries: this.compactAfterEntries, tickMs: this.tickMs, hibernateAfterTicks: this.hibernateAfterTicks, ...this.extra, ...more };
    const store = memoryStore(this.network, id, options, disks, wrap);
    await store.host.start();
    this.stores.set(id, store);
    connectAll(this.stores.values());
    return store;
  }

  async stop(id: number): Promise<void> {
    await this.stores.get(id)?.host.close();
    this.stores.delete(id);
  }

  leaderOf(regionId: number): MemoryStore | undefined {
    return leaderOf(this.stores.values(), regionId);
  }

  async closeAll(): Promise<void> {
    for (const id of [...this.stores.keys()]) await this.stop(id);
  }
}

let requestIds = 1;
export async function run(store: MemoryStore, ...ops: KvOp[]): Promise<KvOpResult[]> {
  const request: KvRequest = { requestId: requestIds++, timeoutMs: 5_000, ops };
  const response = await store.service.handle(request);
  assert.ok('results' in response, `request refused: ${JSON.stringify(response)}`);
  return [...response.results];
}

export const put = (key: string, value: string, epoch = EPOCH, regionId = 1): KvOp => ({ op: 'put', regionId, regionEpoch: epoch, key: bytes(key), value: bytes(value) });
export const get = (key: string, epoch = EPOCH, regionId = 1): KvOp => ({ op: 'get', regionId, regionEpoch: epoch, key: bytes(key), consistency: { level: 'linearizable' } });
