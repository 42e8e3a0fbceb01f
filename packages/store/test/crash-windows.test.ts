/**
 * The host writes two engines, and a crash can fall between their writes. Each test stops a
 * store at one such point (a CrashPoint: the process died right there, the disks keep what was
 * written before it), restarts it from its disks, and checks that it comes back and serves:
 * - a snapshot installed in the KV engine before the log recorded its metadata;
 * - a split child recorded in the KV engine before its founding log write;
 * - a founding region written to the log before the KV engine recorded it.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { RocksKvEngine, RocksLogEngine, type GroupWrite, type MemoryKvDisk, type MemoryLogDisk, type RegionApply } from '@flotilla/storage';
import { MemoryNetwork, MemoryTransport } from '@flotilla/transport';
import type { KvOp, KvOpResult, RegionEpoch } from '@flotilla/wire';
import { KvService, MultiRaftHost } from '../src/index.ts';
import {
  CrashPoint,
  EPOCH,
  REGION,
  bytes,
  connectAll,
  kvCrashPoint,
  leaderOf,
  logCrashPoint,
  memoryStore,
  text,
  waitFor,
  type MemoryStore,
} from './harness.ts';

class Cluster {
  readonly network = new MemoryNetwork();
  readonly stores = new Map<number, MemoryStore>();

  constructor(private readonly compactAfterEntries = 10_000) {}

  async start(id: number, from?: MemoryStore, crash?: { log?: CrashPoint; kv?: CrashPoint }): Promise<MemoryStore> {
    const disks: { logDisk: MemoryLogDisk; kvDisk: MemoryKvDisk } | undefined = from && { logDisk: from.logDisk, kvDisk: from.kvDisk };
    const wrap = { ...(crash?.log ? { log: crash.log.wrap.bind(crash.log) } : {}), ...(crash?.kv ? { kv: crash.kv.wrap.bind(crash.kv) } : {}) };
    const store = memoryStore(this.network, id, { compactAfterEntries: this.compactAfterEntries }, disks, wrap);
    this.stores.set(id, store);
    await store.host.start();
    connectAll(this.stores.values());
    return store;
  }

  /** The crashed process is gone: its host stops (its stuck write never settles), its disks stay. */
  async kill(id: number): Promise<MemoryStore> {
    const store = this.stores.get(id)!;
    this.stores.delete(id);
    await store.host.close({ waitForWork: false });
    return store;
  }

  /** Stores 1, 2 and 3 (store 3 with `crash`), region 1 founded on all, led by store 1 or 2. */
  async foundedWithStore3(crash: { log?: CrashPoint; kv?: CrashPoint }): Promise<void> {
    await this.start(1);
    await this.start(2);
    await this.start(3, undefined, crash);
    for (const store of this.stores.values()) await store.host.bootstrapRegion(REGION);
    await waitFor('a leader on store 1 or 2', () => this.leaderOf(1) !== undefined && this.leaderOf(1)!.id !== 3);
  }

  leaderOf(regionId: number): MemoryStore | undefined {
    return leaderOf(this.stores.values(), regionId);
  }

  async closeAll(): Promise<void> {
    for (const store of this.stores.values()) await store.host.close();
    this.stores.clear();
  }
}

let requestIds = 1;
async function run(store: MemoryStore, ...ops: KvOp[]): Promise<KvOpResult[]> {
  const response = await store.service.handle({ requestId: requestIds++, timeoutMs: 5_000, ops });
  assert.ok('results' in response, `request refused: ${JSON.stringify(response)}`);
  return [...response.results];
}

/** A write through the region's current leader, retried while leadership settles. */
async function mustPut(cluster: Cluster, regionId: number, epoch: RegionEpoch, key: string, value: string): Promise<void> {
  const op: KvOp = { op: 'put', regionId, regionEpoch: epoch, key: bytes(key), value: bytes(value) };
  await waitFor(`put ${key}`, async () => {
    const leader = cluster.leaderOf(regionId);
    if (!leader) return false;
    const response = await leader.service.handle({ requestId: requestIds++, timeoutMs: 1_000, ops: [op] });
    return 'results' in response && response.results[0]?.op === 'put';
  });
}

const put = (key: string, value: string, epoch = EPOCH, regionId = 1): KvOp => ({ op: 'put', regionId, regionEpoch: epoch, key: bytes(key), value: bytes(value) });

describe('a crash between the KV engine and the log engine', () => {
  test('snapshot installed in the KV engine, its metadata not yet in the log: the replica restarts and catches up', async () => {
    const cluster = new Cluster(20);
    after(() => cluster.closeAll());
    const crash = logCrashPoint((writes) => writes.some((w) => w.groupId === 1 && (w.snapshot?.index ?? 0) > 5));
    await cluster.foundedWithStore3({ log: crash });
    const leader = cluster.leaderOf(1)!;
    // Store 3 hears nothing while the leader writes and compacts past it.
    cluster.network.drop(leader.id, 3, 1);
    cluster.network.drop(3, leader.id, 1);
    for (let i = 0; i < 60; i++) assert.deepEqual(await run(leader, put(`c${i}`, `${i}`)), [{ op: 'put' }]);
    assert.ok(leader.host.peer(1)!.node.status().firstIndex > 20, 'the leader compacted past store 3');
    cluster.network.reset();

    await waitFor('store 3 crashes writing the snapshot metadata', () => crash.crashed);
    const crashed = await cluster.kill(3);
    const kvState = crashed.kvDisk.regions.get(1)!;
    const logState = crashed.logDisk.groups.get(1)!;
    assert.ok(kvState.appliedIndex > logState.hardState.commit, `KV applied ${kvState.appliedIndex} ahead of the log's commit ${logState.hardState.commit}`);
    assert.ok(kvState.appliedIndex > logState.storage.lastIndex(), 'and of its last index');

    const back = await cluster.start(3, crashed);
    assert.equal(back.host.peer(1)!.applied, kvState.appliedIndex, 'it resumes from the snapshot it installed');
    const group = back.logDisk.groups.get(1)!;
    assert.equal(group.storage.firstIndex(), kvState.appliedIndex + 1, 'the log starts at the snapshot');
    assert.equal(group.hardState.commit, kvState.appliedIndex);
    await mustPut(cluster, 1, EPOCH, 'after-crash', 'yes');
    await waitFor('store 3 replicates after the restart', async () => text(await back.kv.get(bytes('after-crash'))) === 'yes');
    assert.equal(text(await back.kv.get(bytes('c59'))), '59');
    // Store 3 is needed for a quorum now: its replica votes and acknowledges.
    await cluster.kill(leader.id);
    await mustPut(cluster, 1, EPOCH, 'd-without-old-leader', 'yes');
    await waitFor('store 3 applies it', async () => text(await back.kv.get(bytes('d-without-old-leader'))) === 'yes');
  });

  test('a new replica (a learner, first message a snapshot after a compaction) crashes the same way and restarts', async () => {
    const cluster = new Cluster(20);
    after(() => cluster.closeAll());
    const crash = logCrashPoint((writes) => writes.some((w) => w.groupId === 1 && (w.snapshot?.index ?? 0) > 5));
    for (const id of [1, 2, 3]) await cluster.start(id);
    for (const store of cluster.stores.values()) await store.host.bootstrapRegion(REGION);
    await waitFor('a leader', () => cluster.leaderOf(1) !== undefined);
    for (let i = 0; i < 40; i++) assert.deepEqual(await run(cluster.leaderOf(1)!, put(`c${i}`, `${i}`)), [{ op: 'put' }]);
    await cluster.leaderOf(1)!.host.compactRegionLog(1);
    await cluster.start(4, undefined, { log: crash });
    const outcome = await cluster.leaderOf(1)!.host.changeMembership(1, [{ type: 'addLearner', peerId: 14, storeId: 4 }]);
    assert.equal(outcome.kind, 'applied');

    await waitFor('store 4 crashes writing the snapshot metadata', () => crash.crashed);
    const crashed = await cluster.kill(4);
    const kvState = crashed.kvDisk.regions.get(1)!;
    assert.ok(kvState.appliedIndex > (crashed.logDisk.groups.get(1)?.hardState.commit ?? 0), 'KV ahead of the log');

    const back = await cluster.start(4, crashed);
    assert.equal(back.host.peer(1)!.placeholder, false);
    const epoch = cluster.leaderOf(1)?.host.peer(1)!.region.epoch ?? kvState.region.epoch;
    await mustPut(cluster, 1, epoch, 'after-crash', 'yes');
    await waitFor('store 4 replicates after the restart', async () => text(await back.kv.get(bytes('after-crash'))) === 'yes');
    assert.equal(text(await back.kv.get(bytes('c39'))), '39');
  });

  test('split child recorded in the KV engine, its founding log write lost: the child replica restarts and serves', async () => {
    const cluster = new Cluster();
    after(() => cluster.closeAll());
    const crash = logCrashPoint((writes) => writes.some((w) => w.groupId === 2));
    await cluster.foundedWithStore3({ log: crash });
    assert.deepEqual(await run(cluster.leaderOf(1)!, put('k-right', 'R')), [{ op: 'put' }]);
    const outcome = await cluster.leaderOf(1)!.host.split(1, bytes('h'), 2, [21, 22, 23]);
    assert.equal(outcome.kind, 'applied');

    await waitFor('store 3 crashes founding the child', () => crash.crashed);
    const crashed = await cluster.kill(3);
    assert.equal(crashed.kvDisk.regions.get(2)?.appliedIndex, 5, 'the child is in the KV engine');
    assert.equal(crashed.logDisk.groups.has(2), false, 'and not in the log');

    const back = await cluster.start(3, crashed);
    assert.equal(back.host.peer(2)?.applied, 5);
    assert.equal(back.logDisk.groups.get(2)?.storage.firstIndex(), 6, 'founded at the bootstrap snapshot');
    const childEpoch = { version: EPOCH.version + 1, confVer: EPOCH.confVer };
    await mustPut(cluster, 2, childEpoch, 'm-one', '1');
    await waitFor('store 3 applies to the child', async () => text(await back.kv.get(bytes('m-one'))) === '1');
    // Without store 1 the child needs store 3's replica for every quorum.
    await cluster.kill(1);
    await mustPut(cluster, 2, childEpoch, 'm-two', '2');
    await waitFor('store 3 applies it', async () => text(await back.kv.get(bytes('m-two'))) === '2');
    assert.equal(text(await back.kv.get(bytes('k-right'))), 'R');
  });

  test('founding region in the log, not yet in the KV engine: bootstrapping it again after the restart works', async () => {
    const cluster = new Cluster();
    after(() => cluster.closeAll());
    const crash = kvCrashPoint((batch) => batch.some((a) => a.regionId === 1));
    await cluster.start(1);
    await cluster.start(2);
    await cluster.start(3, undefined, { kv: crash });
    for (const store of cluster.stores.values()) void store.host.bootstrapRegion(REGION).catch(() => {});
    await waitFor('store 3 crashes recording the founding region', () => crash.crashed);
    const crashed = await cluster.kill(3);
    assert.equal(crashed.logDisk.groups.has(1), true, 'the log has the founding write');
    assert.equal(crashed.kvDisk.regions.has(1), false, 'the KV engine has no region');

    const back = await cluster.start(3, crashed);
    assert.equal(back.host.peer(1), undefined, 'no region to load');
    await back.host.bootstrapRegion(REGION); // what a static cluster's first start does again
    await mustPut(cluster, 1, EPOCH, 'b-one', '1');
    await waitFor('store 3 applies it', async () => text(await back.kv.get(bytes('b-one'))) === '1');
  });
});

/**
 * A power loss can also undo the KV engine's unsynced writes while keeping the log's (synced).
 * So where a log write depends on a KV write before it, the KV engine is synced in between.
 */
describe('a KV write that a log write depends on is durable first', () => {
  /** Every write of the host's engines, in order: `kv.apply`, `kv.sync`, `log.write`. */
  function recorder(calls: { what: string; args: unknown }[]): CrashPoint {
    return new CrashPoint(['apply', 'sync', 'write'], (method, args) => {
      calls.push({ what: method, args: args[0] });
      return false;
    });
  }
  const isPutRegion = (regionId: number) => (c: { what: string; args: unknown }) =>
    c.what === 'apply' && (c.args as readonly RegionApply[]).some((a) => a.commands.some((k) => (k.op === 'putRegion' && k.region.id === regionId) || (k.op === 'tombstoneRegion' && k.regionId === regionId)));
  const isLogWrite = (groupId: number, which: (w: GroupWrite) => boolean) => (c: { what: string; args: unknown }) =>
    c.what === 'write' && (c.args as readonly GroupWrite[]).some((w) => w.groupId === groupId && which(w));

  function assertSyncedBetween(calls: readonly { what: string; args: unknown }[], kvWrite: number, logWrite: number): void {
    assert.ok(kvWrite >= 0 && logWrite > kvWrite, `the KV write (${kvWrite}) comes before the log write (${logWrite})`);
    assert.ok(calls.slice(kvWrite + 1, logWrite).some((c) => c.what === 'sync'), 'the KV engine is synced in between');
  }

  test('a bootstrap: the founding KV record is synced before any node runs', async () => {
    const cluster = new Cluster();
    after(() => cluster.closeAll());
    const calls: { what: string; args: unknown }[] = [];
    const record = recorder(calls);
    await cluster.start(1, undefined, { log: record, kv: record });
    await cluster.stores.get(1)!.host.bootstrapRegion({ ...REGION, peers: [REGION.peers[0]!] });
    const founding = calls.findIndex(isPutRegion(1));
    assert.ok(founding > calls.findIndex(isLogWrite(1, (w) => w.snapshot !== undefined)), 'log first');
    assert.equal(calls[founding + 1]?.what, 'sync');
  });

  test('a split: the child is founded in the log after the KV batch that recorded it is synced', async () => {
    const cluster = new Cluster();
    after(() => cluster.closeAll());
    const calls: { what: string; args: unknown }[] = [];
    const record = recorder(calls);
    await cluster.start(1);
    await cluster.start(2);
    await cluster.start(3, undefined, { log: record, kv: record });
    for (const store of cluster.stores.values()) await store.host.bootstrapRegion(REGION);
    await waitFor('a leader', () => cluster.leaderOf(1) !== undefined);
    const outcome = await cluster.leaderOf(1)!.host.split(1, bytes('h'), 2, [21, 22, 23]);
    assert.equal(outcome.kind, 'applied');
    await waitFor('store 3 founds the child', () => cluster.stores.get(3)!.host.peer(2) !== undefined);
    assertSyncedBetween(calls, calls.findIndex(isPutRegion(2)), calls.findIndex(isLogWrite(2, (w) => w.snapshot !== undefined)));
  });

  test('a removed replica whose log destroy a crash cut off: the log is destroyed when the store opens again', async () => {
    const cluster = new Cluster();
    after(() => cluster.closeAll());
    const crash = logCrashPoint((writes) => writes.some((w) => w.groupId === 1 && w.destroy === true));
    await cluster.foundedWithStore3({ log: crash });
    await waitFor('the removal applies', async () => (await cluster.leaderOf(1)?.host.changeMembership(1, [{ type: 'remove', peerId: 13 }]))?.kind === 'applied');
    await waitFor('store 3 crashes destroying its log', () => crash.crashed);
    const crashed = await cluster.kill(3);
    assert.equal(crashed.kvDisk.regions.get(1)?.status, 'tombstone');
    assert.ok(crashed.logDisk.groups.has(1), 'the log is left behind');
    const back = await cluster.start(3, crashed);
    assert.equal(back.logDisk.groups.has(1), false, 'destroyed on open');
    assert.equal(back.host.peer(1), undefined);
  });

  test('a removed replica: its log is destroyed after the tombstone is synced', async () => {
    const cluster = new Cluster();
    after(() => cluster.closeAll());
    const calls: { what: string; args: unknown }[] = [];
    const record = recorder(calls);
    await cluster.foundedWithStore3({ log: record, kv: record });
    // A new leader takes a conf change once it applied an entry of its term: retried until then.
    await waitFor('the removal applies', async () => (await cluster.leaderOf(1)?.host.changeMembership(1, [{ type: 'remove', peerId: 13 }]))?.kind === 'applied');
    await waitFor('store 3 drops its replica', () => cluster.stores.get(3)!.host.peer(1) === undefined);
    const tombstone = calls.findIndex((c) => c.what === 'apply' && (c.args as readonly RegionApply[]).some((a) => a.commands.some((k) => k.op === 'tombstoneRegion')));
    assertSyncedBetween(calls, tombstone, calls.findIndex(isLogWrite(1, (w) => w.destroy === true)));
  });
});

/** The split window again on the real engines: RocksDB log (appender worker) and RocksDB KV. */
describe('a crash between the engines, on RocksDB', () => {
  test('a split child recorded in the KV engine and missing from the log is founded when the store opens again', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'flotilla-crash-window-'));
    const network = new MemoryNetwork();
    const region = { ...REGION, peers: [REGION.peers[0]!] }; // one voter, on store 1
    // A cycle still running when the test closes the engines fails on them: not a failure of the test.
    const failures: unknown[] = [];
    let closing = false;
    const open = async (crash?: CrashPoint) => {
      closing = false;
      let host: MultiRaftHost | undefined;
      const log = await RocksLogEngine.open({ dir: path.join(dir, 'log'), mode: 'worker', shards: 1, onFetched: (groupId) => host?.onLogFetched(groupId) });
      const kv = await RocksKvEngine.open({ dir: path.join(dir, 'kv') });
      host = new MultiRaftHost({ storeId: 1, log: crash ? crash.wrap(log) : log, kv, transport: new MemoryTransport(network, { localStore: 1 }), tickMs: 5, hibernateAfterTicks: 0, onFailure: (err) => {
        if (!closing) failures.push(err);
      } });
      await host.start();
      return { host, log, kv, service: new KvService(host, kv) };
    };
    const close = async (store: Awaited<ReturnType<typeof open>>, crashed = false) => {
      closing = true;
      await store.host.close({ waitForWork: !crashed });
      await store.log.close();
      await store.kv.close();
    };
    after(() => rm(dir, { recursive: true, force: true }));

    const crash = logCrashPoint((writes) => writes.some((w) => w.groupId === 2));
    const first = await open(crash);
    await first.host.bootstrapRegion(region);
    await waitFor('a leader', () => first.host.peer(1)?.isLeader() === true);
    const outcome = await first.host.split(1, bytes('h'), 2, [21]);
    assert.equal(outcome.kind, 'applied');
    await waitFor('the crash founding the child', () => crash.crashed);
    // The process dies here: nothing more reaches either engine (closing writes nothing new).
    await close(first, true);

    const second = await open();
    try {
      assert.equal(second.host.peer(2)?.applied, 5);
      await waitFor('the child elects itself', () => second.host.peer(2)?.isLeader() === true);
      const childEpoch = { version: EPOCH.version + 1, confVer: EPOCH.confVer };
      const response = await second.service.handle({ requestId: requestIds++, timeoutMs: 5_000, ops: [put('m-child', 'C', childEpoch, 2)] });
      assert.deepEqual('results' in response ? response.results : response, [{ op: 'put' }]);
      assert.equal(text(await second.kv.get(bytes('m-child'))), 'C');
      assert.deepEqual(failures, []);
    } finally {
      await close(second);
    }
  });
});
