/**
 * A cluster of real store processes on loopback, for cross-package tests and benchmarks.
 * Every store is `packages/store/src/main.ts` in its own Node process, on RocksDB in a
 * temporary directory, listening on port 0 (raft and HTTP); the harness reads the addresses
 * from the store's "store started" log line, tells every store where the others are and
 * bootstraps regions through the admin API — what the placement driver will do.
 *
 * Every process started is stopped by `close()`, and by an exit hook if a test crashed.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Pool } from 'undici';
import { decodeKvResponse, encodeKvRequest, type KvOp, type KvRequest, type KvResponse, type RegionMeta } from '@flotilla/wire';
import { waitFor as pollUntil } from '../../packages/store/test/harness.ts';
import { REPO, STOP_DEADLINE_MS, deadline, launchProcess } from './process.ts';
import { apiTlsFlags, tlsCredentials, type TlsFiles } from './tls.ts';

export { deadline };

const STORE_MAIN = path.join(REPO, 'packages/store/src/main.ts');
/**
 * Profiling hook: with FLOTILLA_CLUSTER_PROFILE_DIR set, every store runs under `--cpu-prof`
 * and writes its profiles (one per thread: main, loader, workers) to `store-<id>/` there;
 * close() then stops stores with SIGTERM (a SIGKILLed process writes no profile).
 */
const PROFILE_DIR = process.env.FLOTILLA_CLUSTER_PROFILE_DIR;

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export interface StoreHandle {
  readonly id: number;
  readonly dir: string;
  readonly child: ChildProcess;
  readonly raft: HostPort;
  readonly api: HostPort;
  readonly pool: Pool;
  /** Resolves when the process has exited and its output is read. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The last log lines (JSON) the store wrote, newest last. */
  readonly logs: string[];
  /** Set by kill9/terminate: any other exit is a crash the cluster reports. */
  stopping: boolean;
}

export interface ClusterOptions {
  /** Raft tick of every store (short ticks make elections after a kill fast). */
  readonly tickMs?: number;
  /**
   * Stores placed by a placement driver at these URLs: no --store-id (PD assigns it), no
   * introductions (PD tells every store where the others are).
   */
  readonly pd?: () => readonly string[];
  /** More flags for every store. */
  readonly args?: readonly string[];
  /**
   * HTTPS APIs (--api-tls-* with these files, test/support/tls's `peer`): the harness then calls
   * the stores at https:// with the same credentials as its client certificate.
   */
  readonly apiTls?: TlsFiles;
}

export interface AdminAnswer<T = unknown> {
  readonly status: number;
  readonly body: T;
}

export class ProcessCluster {
  readonly stores = new Map<number, StoreHandle>();
  /** Stores that exited on their own (a fail-stop, a crash), with their last logs. */
  readonly crashes: string[] = [];
  private readonly dirs = new Map<number, string>();
  private root: string | undefined;

  constructor(private readonly options: ClusterOptions = {}) {}

  /**
   * Starts (or restarts, on its old data) store `id`, and introduces it to the others.
   * `args` are more flags for this store (later flags win over the harness's).
   */
  async startStore(id: number, args: readonly string[] = []): Promise<StoreHandle> {
    if (this.stores.has(id)) throw new Error(`store ${id} runs already`);
    this.root ??= await mkdtemp(path.join(os.tmpdir(), 'flotilla-cluster-'));
    const dir = this.dirs.get(id) ?? path.join(this.root, `store-${id}`);
    this.dirs.set(id, dir);
    const store = await launch(id, dir, { ...this.options, args: [...(this.options.args ?? []), ...args] });
    this.track(store);
    await this.introduce(store);
    return store;
  }

  /**
   * PD mode: starts a store on a new data directory; PD gives it its id (the handle's id).
   * Restart it later with startStore(handle.id).
   */
  async startNewStore(args: readonly string[] = []): Promise<StoreHandle> {
    if (!this.options.pd) throw new Error('startNewStore needs a cluster with a placement driver');
    this.root ??= await mkdtemp(path.join(os.tmpdir(), 'flotilla-cluster-'));
    const dir = path.join(this.root, `store-new-${this.dirs.size + 1}`);
    const store = await launch(undefined, dir, { ...this.options, args: [...(this.options.args ?? []), ...args] });
    this.dirs.set(store.id, dir);
    this.track(store);
    return store;
  }

  private track(store: StoreHandle): void {
    void store.exited.then(({ code, signal }) => {
      if (!store.stopping) this.crashes.push(`store ${store.id} exited on its own (${code ?? signal}):\n${store.logs.join('\n')}`);
    });
    this.stores.set(store.id, store);
  }

  /** Tells `store` where every other running store listens, and them where it does. */
  private async introduce(store: StoreHandle): Promise<void> {
    if (this.options.pd) return;
    for (const other of this.stores.values()) {
      if (other === store) continue;
      await this.expectAdmin(store.id, 'PUT', `/v1/admin/stores/${other.id}`, other.raft);
      await this.expectAdmin(other.id, 'PUT', `/v1/admin/stores/${store.id}`, store.raft);
    }
  }

  /** Creates a region on every store that has one of its founding peers. */
  async bootstrap(region: RegionMeta): Promise<void> {
    for (const peer of region.peers) {
      await this.expectAdmin(peer.storeId, 'POST', '/v1/admin/bootstrap', { region: regionJson(region) });
    }
  }

  /** An admin API call; the answer whatever its status. */
  async admin<T = unknown>(storeId: number, method: string, pathname: string, body?: unknown): Promise<AdminAnswer<T>> {
    const store = this.running(storeId);
    const res = await store.pool.request({
      method: method as 'GET',
      path: pathname,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.body.text();
    return { status: res.statusCode, body: (text === '' ? null : JSON.parse(text)) as T };
  }

  /** An admin call that must succeed (2xx). */
  async expectAdmin<T = unknown>(storeId: number, method: string, pathname: string, body?: unknown): Promise<T> {
    const answer = await this.admin<T>(storeId, method, pathname, body);
    if (answer.status < 200 || answer.status > 299) {
      throw new Error(`store ${storeId}: ${method} ${pathname} answered ${answer.status} ${JSON.stringify(answer.body)}`);
    }
    return answer.body;
  }

  /** A client API request to one store. */
  async kv(storeId: number, request: KvRequest): Promise<{ status: number; response: KvResponse }> {
    const res = await this.running(storeId).pool.request({
      method: 'POST',
      path: '/v1/kv',
      headers: { 'content-type': 'application/x-msgpack' },
      body: encodeKvRequest(request),
    });
    const payload = new Uint8Array(await res.body.arrayBuffer());
    return { status: res.statusCode, response: decodeKvResponse(payload) };
  }

  /** The running store whose replica leads the region, by asking each one. */
  async leaderOf(regionId: number): Promise<StoreHandle | undefined> {
    for (const store of this.stores.values()) {
      const answer = await this.admin<{ role?: string }>(store.id, 'GET', `/v1/admin/regions/${regionId}`).catch(() => undefined);
      if (answer?.status === 200 && answer.body.role === 'leader') return store;
    }
    return undefined;
  }

  /** kill -9: no shutdown at all; what it had not fsynced is gone. */
  async kill9(id: number): Promise<void> {
    const store = this.running(id);
    this.stores.delete(id);
    store.stopping = true;
    store.child.kill('SIGKILL');
    await store.exited;
    await store.pool.destroy();
  }

  /** SIGTERM: the store's graceful shutdown; resolves with its exit code. */
  async terminate(id: number): Promise<number | null> {
    const store = this.running(id);
    this.stores.delete(id);
    store.stopping = true;
    store.child.kill('SIGTERM');
    const exit = await deadline(store.exited, STOP_DEADLINE_MS, `store ${id} to stop after SIGTERM`);
    await store.pool.destroy();
    return exit.code;
  }

  /**
   * Stops every store (SIGKILL: tests that want a graceful stop call terminate), deletes the
   * data, and fails if a store had exited on its own meanwhile (with its last log lines).
   */
  async close(): Promise<void> {
    for (const id of [...this.stores.keys()]) {
      if (PROFILE_DIR) await this.terminate(id);
      else await this.kill9(id);
    }
    if (this.root) await rm(this.root, { recursive: true, force: true });
    if (this.crashes.length > 0) throw new Error(this.crashes.join('\n\n'));
  }

  running(id: number): StoreHandle {
    const store = this.stores.get(id);
    if (!store) throw new Error(`store ${id} is not running`);
    return store;
  }

  /** A series' value on a running store's /metrics page (`name` with its labels, if any); NaN when absent. */
  async metric(storeId: number, name: string): Promise<number> {
    const res = await this.running(storeId).pool.request({ method: 'GET', path: '/metrics' });
    const page = await res.body.text();
    const line = page.split('\n').find((l) => l.startsWith(`${name} `));
    return line === undefined ? NaN : Number(line.slice(name.length + 1));
  }
}

/** Starts a store process; `id` undefined: PD assigns it (the cluster has a placement driver). */
async function launch(id: number | undefined, dir: string, options: ClusterOptions): Promise<StoreHandle> {
  const label = id === undefined ? path.basename(dir) : String(id);
  const profile = PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${path.join(PROFILE_DIR, `store-${label}`)}`] : [];
  const identity = options.pd ? ['--pd', options.pd().join(',')] : ['--store-id', String(id)];
  const args = [
    ...identity,
    '--data-dir', dir,
    '--raft-listen', '127.0.0.1:0',
    '--api-listen', '127.0.0.1:0',
    '--tick-ms', String(options.tickMs ?? 50),
    '--log-shards', '1',
    ...(options.args ?? []),
    ...(options.apiTls ? apiTlsFlags(options.apiTls) : []),
  ];
  const { child, exited, logs, started } = await launchProcess(`store ${label}`, STORE_MAIN, args, 'store started', profile);
  const raft = started.raftAddress as HostPort;
  const api = started.apiAddress as HostPort;
  const pool = options.apiTls
    ? new Pool(`https://${api.host}:${api.port}`, { connections: 8, pipelining: 1, connect: tlsCredentials('peer') })
    : new Pool(`http://${api.host}:${api.port}`, { connections: 8, pipelining: 1 });
  return { id: started.storeId as number, dir, child, raft, api, pool, exited, logs, stopping: false };
}

/** The admin API's JSON form of a region: keys in hex. */
export function regionJson(region: RegionMeta): unknown {
  return { ...region, startKey: Buffer.from(region.startKey).toString('hex'), endKey: Buffer.from(region.endKey).toString('hex') };
}

/** The store tests' condition wait, with a deadline fit for processes (elections, restarts). */
export function waitFor(what: string, condition: () => boolean | Promise<boolean>, deadlineMs = 30_000): Promise<void> {
  return pollUntil(what, condition, deadlineMs);
}

/**
 * Bootstraps region 1 (all keys) with one voter on store 1, waits for its leader and writes
 * `puts` 128-byte values through the API: a store that has served writes (threads started on
 * demand exist by then).
 */
export async function serveWrites(cluster: ProcessCluster, puts: number): Promise<void> {
  const epoch = { version: 1, confVer: 1 };
  await cluster.bootstrap({ id: 1, startKey: new Uint8Array(0), endKey: new Uint8Array(0), epoch, peers: [{ id: 1, storeId: 1, role: 'voter' }] });
  await waitFor('a leader on store 1', async () => (await cluster.leaderOf(1))?.id === 1);
  for (let i = 0; i < puts; i++) {
    const op: KvOp = { op: 'put', regionId: 1, regionEpoch: epoch, key: new TextEncoder().encode(`k${i}`), value: new Uint8Array(128) };
    const { response } = await cluster.kv(1, { requestId: i + 1, timeoutMs: 5_000, ops: [op] });
    assert.ok('results' in response && response.results[0]?.op === 'put', `put ${i}: ${JSON.stringify(response)}`);
  }
}
