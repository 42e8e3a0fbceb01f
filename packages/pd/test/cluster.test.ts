import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryNetwork } from '@flotilla/transport';
import type { RegionHeartbeat, RegionMeta } from '@flotilla/wire';
import { memoryStore, waitFor } from '../../store/test/harness.ts';
import { Cluster } from '../src/cluster/cluster.ts';
import { isPdError } from '../src/errors.ts';
import { metaRegion } from '../src/member/pd-member.ts';
import { MetaStore } from '../src/meta/meta-store.ts';

const TIMING = { storeDisconnectMs: 1_000, storeDownMs: 5_000 };

/** A one-member PD metadata group on the in-memory twins, led by member 1. */
async function metaGroup(): Promise<{ meta: MetaStore; close: () => Promise<void> }> {
  const store = memoryStore(new MemoryNetwork(), 1);
  await store.host.start();
  await store.host.bootstrapRegion(metaRegion([1]));
  store.host.campaign(1);
  const meta = new MetaStore(store.host, store.service);
  await waitFor('member 1 leads', () => meta.leadership().leader);
  return { meta, close: () => store.host.close() };
}

const join = (token: string, extra: object = {}) => ({ clusterId: 7, token, raftAddress: `${token}:1`, apiAddress: `${token}:2`, labels: { zone: token }, ...extra });

function beat(region: RegionMeta, leaderPeerId: number): RegionHeartbeat {
  return { region, leaderPeerId, downPeerIds: [], pendingPeerIds: [], approximateBytes: 1, approximateKeys: 1, rates: { writeBytes: 0, writeKeys: 0, readBytes: 0, readKeys: 0 } };
}

describe('Cluster (PD leader state on a real metadata group)', () => {
  it('the first store founds the cluster; joins are idempotent; a new leader loads it all back', async () => {
    const { meta, close } = await metaGroup();
    try {
      let now = 1_000;
      const cluster = await Cluster.load(meta, 7, () => now);
      assert.equal(cluster.bootstrapped, null);
      const first = await cluster.join(join('a'));
      assert.ok(first.bootstrapRegion, 'the first store founds the cluster');
      assert.deepEqual(first.bootstrapRegion.peers, [{ id: first.bootstrapRegion.peers[0]!.id, storeId: first.storeId, role: 'voter' }]);
      assert.deepEqual(await cluster.join(join('a')), first, 'a retried join answers the same');
      const second = await cluster.join(join('b'));
      assert.equal(second.bootstrapRegion, undefined);
      assert.notEqual(second.storeId, first.storeId);
      assert.deepEqual(await cluster.join(join('b', { storeId: second.storeId })), second, 'a restart with its id is recognised');

      const region = first.bootstrapRegion;
      const split: RegionMeta = { ...region, endKey: Buffer.from('m'), epoch: { version: 2, confVer: 1 } };
      const [reportId] = await cluster.ids.allocate(1);
      const right: RegionMeta = { ...region, id: reportId!, startKey: Buffer.from('m'), epoch: { version: 2, confVer: 1 } };
      const reports = await cluster.regionHeartbeats(first.storeId, [beat(split, region.peers[0]!.id), beat(right, region.peers[0]!.id), beat(region, region.peers[0]!.id)]);
      assert.deepEqual(reports.map((r) => r.kind), ['changed', 'changed', 'stale']);

      now = 50_000;
      const reloaded = await Cluster.load(meta, 7, () => now);
      assert.deepEqual(reloaded.bootstrapped, cluster.bootstrapped);
      assert.deepEqual(reloaded.storeAddresses().map((s) => s.storeId).sort(), [first.storeId, second.storeId].sort());
      assert.deepEqual(reloaded.regions.all().map((r) => r.meta.id), [region.id, right.id], 'split regions persisted');
      assert.deepEqual(reloaded.storeInfos(TIMING).map((s) => s.state), ['up', 'up'], 'a new leader counts every store as just heard from');
      const [fresh] = await reloaded.ids.allocate(1);
      assert.ok(fresh! > cluster.ids.highestReserved, 'a new leader starts past every id the old one reserved');
    } finally {
      await close();
    }
  });

  it('refuses another cluster, an unknown store id, a tombstone, and stale heartbeats', async () => {
    const { meta, close } = await metaGroup();
    try {
      let now = 0;
      const cluster = await Cluster.load(meta, 7, () => now);
      await assert.rejects(cluster.join({ ...join('a'), clusterId: 8 }), (err) => isPdError(err, 'FLOTILLA_PD_CLUSTER_MISMATCH'));
      await assert.rejects(cluster.join(join('a', { storeId: 99 })), (err) => isPdError(err, 'FLOTILLA_PD_STORE_NOT_FOUND'));
      const a = await cluster.join(join('a'));
      const b = await cluster.join(join('b'));
      await assert.rejects(cluster.setStoreAdminState(a.storeId, 'tombstone'), (err) => isPdError(err, 'FLOTILLA_PD_INVALID_ARGUMENT'), 'a store holding replicas cannot be a tombstone');
      await cluster.setStoreAdminState(b.storeId, 'tombstone');
      await assert.rejects(cluster.join(join('b')), (err) => isPdError(err, 'FLOTILLA_PD_STORE_TOMBSTONE'));
      assert.throws(() => cluster.storeHeartbeat({ storeId: b.storeId, capacityBytes: 1, availableBytes: 1, usedBytes: 0, regionCount: 0, leaderCount: 0, rates: { writeBytes: 0, writeKeys: 0, readBytes: 0, readKeys: 0 } }), (err) => isPdError(err, 'FLOTILLA_PD_STORE_TOMBSTONE'));
      assert.deepEqual(cluster.storeAddresses().map((s) => s.storeId), [a.storeId]);
      now = 2_000;
      assert.equal(cluster.storeInfo(a.storeId, TIMING).state, 'disconnected');
      now = 6_000;
      assert.equal(cluster.storeInfo(a.storeId, TIMING).state, 'down');
      cluster.storeHeartbeat({ storeId: a.storeId, capacityBytes: 100, availableBytes: 60, usedBytes: 40, regionCount: 1, leaderCount: 1, rates: { writeBytes: 5, writeKeys: 1, readBytes: 0, readKeys: 0 } });
      assert.equal(cluster.storeInfo(a.storeId, TIMING).state, 'up');
      assert.equal(cluster.storeInfo(a.storeId, TIMING).availableBytes, 60);
      assert.equal(cluster.storeInfo(a.storeId, TIMING).refusingWrites, false, 'a heartbeat that does not say refuses nothing');
      cluster.storeHeartbeat({ storeId: a.storeId, capacityBytes: 100, availableBytes: 1, usedBytes: 99, regionCount: 1, leaderCount: 1, rates: { writeBytes: 0, writeKeys: 0, readBytes: 0, readKeys: 0 }, refusingWrites: true });
      assert.equal(cluster.storeInfo(a.storeId, TIMING).refusingWrites, true);
    } finally {
      await close();
    }
  });

  it('concurrent first joins found the cluster once', async () => {
    const { meta, close } = await metaGroup();
    try {
      const cluster = await Cluster.load(meta, 7, () => 0);
      const answers = await Promise.all(['a', 'b', 'c', 'd'].map((t) => cluster.join(join(t))));
      assert.equal(answers.filter((a) => a.bootstrapRegion).length, 1);
      assert.equal(new Set(answers.map((a) => a.storeId)).size, 4);
    } finally {
      await close();
    }
  });
});
