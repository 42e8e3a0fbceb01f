import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { RocksKvEngine, RocksLogEngine, type RegionMeta } from '@flotilla/storage';
import { TcpTransport } from '@flotilla/transport';
import type { KvOp, KvOpResult } from '@flotilla/wire';
import { KvService, MultiRaftHost } from '../src/index.ts';
import { bytes, text, waitFor } from './harness.ts';

interface RealStore {
  readonly id: number;
  readonly dir: string;
  host: MultiRaftHost;
  service: KvService;
  log: RocksLogEngine;
  kv: RocksKvEngine;
  transport: TcpTransport;
}

const CLUSTER_ID = 7;
const REGION: RegionMeta = {
  id: 1,
  startKey: new Uint8Array(0),
  endKey: new Uint8Array(0),
  epoch: { version: 1, confVer: 1 },
  peers: [1, 2, 3].map((storeId) => ({ id: 10 + storeId, storeId, role: 'voter' as const })),
};

/**
 * The same host over the real components: RocksDB log engine on appender worker threads,
 * RocksDB KV engine, TCP on loopback (port 0). Three stores in this process.
 */
describe('multi-raft host on RocksDB and TCP', () => {
  const stores = new Map<number, RealStore>();
  const dirs: string[] = [];

  async function open(id: number, dir: string): Promise<RealStore> {
    let host: MultiRaftHost | undefined;
    const log = await RocksLogEngine.open({ dir: path.join(dir, 'log'), mode: 'worker', shards: 1, onFetched: (groupId) => host?.onLogFetched(groupId) });
    const kv = await RocksKvEngine.open({ dir: path.join(dir, 'kv') });
    const transport = new TcpTransport({ localStore: id, clusterId: CLUSTER_ID });
    host = new MultiRaftHost({ storeId: id, log, kv, transport, tickMs: 20, hibernateAfterTicks: 0, compactAfterEntries: 40 });
    await host.start();
    const store: RealStore = { id, dir, host, service: new KvService(host, kv), log, kv, transport };
    stores.set(id, store);
    for (const a of stores.values()) for (const b of stores.values()) if (a !== b) a.transport.setPeer(b.id, b.transport.address());
    return store;
  }

  async function shut(store: RealStore): Promise<void> {
    stores.delete(store.id);
    await store.host.close();
    await store.log.close();
    await store.kv.close();
  }

  after(async () => {
    for (const store of [...stores.values()]) await shut(store);
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  const leader = (): RealStore | undefined => [...stores.values()].find((s) => s.host.peer(1)?.isLeader() === true);
  let ids = 1;
  const run = async (store: RealStore, ...ops: KvOp[]): Promise<KvOpResult[]> => {
    const response = await store.service.handle({ requestId: ids++, timeoutMs: 10_000, ops });
    assert.ok('results' in response);
    return [...response.results];
  };
  const put = (key: string, value: string): KvOp => ({ op: 'put', regionId: 1, regionEpoch: REGION.epoch, key: bytes(key), value: bytes(value) });
  const get = (key: string): KvOp => ({ op: 'get', regionId: 1, regionEpoch: REGION.epoch, key: bytes(key), consistency: { level: 'linearizable' } });

  test('writes are replicated through real disks and sockets, and survive a restart', async () => {
    for (const id of [1, 2, 3]) {
      const dir = await mkdtemp(path.join(os.tmpdir(), `flotilla-store-${id}-`));
      dirs.push(dir);
      await open(id, dir);
    }
    for (const store of stores.values()) await store.host.bootstrapRegion(REGION);
    await waitFor('a leader', () => leader() !== undefined);
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => run(leader()!, put(`k${i}`, `v${i}`))));
    assert.ok(results.every(([r]) => r?.op === 'put'));
    const [read] = await run(leader()!, get('k49'));
    assert.equal(text(read?.op === 'get' ? read.value : null), 'v49');

    // A follower is down while the leader writes and compacts; it restarts from its RocksDB
    // directories and catches up through a snapshot streamed over TCP.
    const follower = [...stores.values()].find((s) => s !== leader())!;
    await shut(follower);
    // Read after the shutdown: an upper bound of what it persisted (nothing runs any more).
    const followerLast = follower.host.peer(1)!.node.status().lastIndex;
    // The others forget the dead store (and what they had queued for it), so all it can get on
    // return is what the leader still has: a snapshot.
    for (const other of stores.values()) other.transport.removePeer(follower.id);
    // Write until the leader's log starts past the follower's last entry (compaction waits for
    // the KV engine's durable applied index, synced about once a second).
    let written = 0;
    await waitFor('the leader compacts past the follower', async () => {
      const [r] = await run(leader()!, put(`d${written}`, `${written}`));
      assert.deepEqual(r, { op: 'put' });
      written++;
      return leader()!.host.peer(1)!.node.status().firstIndex > followerLast + 1;
    });
    const lastKey = `d${written - 1}`;
    const back = await open(follower.id, follower.dir);
    // The data lands in the KV engine before the install completes: wait for both.
    await waitFor(
      'the restarted follower installs a snapshot and catches up',
      async () => back.host.stats().snapshotsReceived >= 1 && text(await back.kv.get(bytes(lastKey))) === `${written - 1}`,
    );
    assert.equal(text(await back.kv.get(bytes('k0'))), 'v0');
    // And replication goes on from the snapshot.
    assert.deepEqual(await run(leader()!, put('after', 'snapshot')), [{ op: 'put' }]);
    await waitFor('replication after the snapshot', async () => text(await back.kv.get(bytes('after'))) === 'snapshot');
  });
});
