/**
 * A replica that restarts after its region's membership changed must come back with the
 * configuration in force at the applied index it restarts from. It once came back with the
 * log's founding configuration instead, never replayed the conf changes at or below its KV
 * applied index, and (founded as the only voter) elected itself alone: split brain. The KV
 * engine now keeps the configuration with the applied index (putRegion's confState).
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { ConfState } from '@flotilla/raft';
import type { RegionMeta } from '@flotilla/storage';
import { MemoryNetwork } from '@flotilla/transport';
import type { KvOp, KvResponse } from '@flotilla/wire';
import { limits } from '../src/index.ts';
import { EPOCH, REGION, bytes, connectAll, leaderOf, memoryStore, text, waitFor, type MemoryStore } from './harness.ts';

class Cluster {
  readonly network = new MemoryNetwork();
  readonly stores = new Map<number, MemoryStore>();

  async start(id: number, from?: MemoryStore): Promise<MemoryStore> {
    const store = memoryStore(this.network, id, {}, from && { logDisk: from.logDisk, kvDisk: from.kvDisk });
    await store.host.start();
    this.stores.set(id, store);
    connectAll(this.stores.values());
    return store;
  }

  async stop(id: number): Promise<MemoryStore> {
    const store = this.stores.get(id)!;
    await store.host.close();
    this.stores.delete(id);
    return store;
  }

  /** Stops the store and starts it again from its disks (the in-memory twins keep everything). */
  async restart(id: number): Promise<MemoryStore> {
    return this.start(id, await this.stop(id));
  }

  leader(): MemoryStore | undefined {
    return leaderOf(this.stores.values(), 1);
  }

  async closeAll(): Promise<void> {
    for (const id of [...this.stores.keys()]) await this.stop(id);
  }
}

/** A configuration with each list sorted, so two replicas' can be compared. */
function sorted(cs: ConfState): ConfState {
  const s = (ids: readonly number[]): number[] => [...ids].sort((a, b) => a - b);
  return { voters: s(cs.voters), votersOutgoing: s(cs.votersOutgoing), learners: s(cs.learners), learnersNext: s(cs.learnersNext), autoLeave: cs.autoLeave };
}

function config(store: MemoryStore): ConfState {
  return sorted(store.host.regionStatus(1)!.raft.config);
}

let requestIds = 1;
function write(store: MemoryStore, key: string, value: string, epoch = store.host.peer(1)!.region.epoch, timeoutMs = 5_000): Promise<KvResponse> {
  const op: KvOp = { op: 'put', regionId: 1, regionEpoch: epoch, key: bytes(key), value: bytes(value) };
  return store.service.handle({ requestId: requestIds++, timeoutMs, ops: [op] });
}

async function mustWrite(cluster: Cluster, key: string, value: string): Promise<void> {
  await waitFor('a leader', () => cluster.leader() !== undefined);
  const response = await write(cluster.leader()!, key, value);
  assert.ok('results' in response && response.results[0]?.op === 'put', `write refused: ${JSON.stringify(response)}`);
}

async function change(cluster: Cluster, changes: Parameters<MemoryStore['host']['changeMembership']>[1], transition?: 'explicit'): Promise<void> {
  await waitFor('a leader', () => cluster.leader() !== undefined);
  const outcome = await cluster.leader()!.host.changeMembership(1, changes, transition);
  assert.equal(outcome.kind, 'applied', JSON.stringify(outcome));
}

/** Waits until every listed store's replica runs the leader's configuration and has applied its index. */
async function converged(cluster: Cluster, ids: readonly number[]): Promise<ConfState> {
  await waitFor('a leader', () => cluster.leader() !== undefined);
  const leader = cluster.leader()!;
  const want = config(leader);
  const applied = leader.host.regionStatus(1)!.applied;
  await waitFor(`stores ${ids.join(', ')} apply the leader's configuration`, () =>
    ids.every((id) => {
      const status = cluster.stores.get(id)?.host.regionStatus(1);
      return status !== undefined && status.applied >= applied;
    }),
  );
  for (const id of ids) assert.deepEqual(config(cluster.stores.get(id)!), want, `store ${id} runs the leader's configuration`);
  return want;
}

/** Runs `ticks` ticks of `store`'s ticker (a condition on its tick counter, not a sleep). */
async function ticksPass(store: MemoryStore, ticks: number): Promise<void> {
  const until = store.host.stats().ticks + ticks;
  await waitFor(`${ticks} ticks`, () => store.host.stats().ticks >= until);
}

describe('a replica restarted after membership changes', () => {
  test('comes back with the configuration in force at its applied index: joint, left, after a log compaction', async () => {
    const cluster = new Cluster();
    try {
      for (const id of [1, 2, 3, 4]) await cluster.start(id);
      for (const id of [1, 2, 3]) await cluster.stores.get(id)!.host.bootstrapRegion(REGION);
      await mustWrite(cluster, 'b', 'before');
      // A learner on store 4, then its promotion with the removal of store 3's voter, by a
      // joint configuration left explicitly (so a restart can meet it while joint).
      await change(cluster, [{ type: 'addLearner', peerId: 14, storeId: 4 }]);
      await change(cluster, [{ type: 'addVoter', peerId: 14, storeId: 4 }, { type: 'remove', peerId: 13 }], 'explicit');
      const joint = await converged(cluster, [1, 2, 3, 4]);
      assert.deepEqual(joint, { voters: [11, 12, 14], votersOutgoing: [11, 12, 13], learners: [], learnersNext: [], autoLeave: false });
      await mustWrite(cluster, 'c', 'joint');

      // Restart a replica whose KV engine applied everything (the conf changes are at or below
      // its applied index, so nothing replays them): it must still run the joint configuration.
      const follower = [2, 4].find((id) => cluster.stores.get(id) !== cluster.leader())!;
      await cluster.restart(follower);
      assert.deepEqual(config(cluster.stores.get(follower)!), joint, 'joint configuration after a restart');

      await change(cluster, []); // leave the joint configuration
      await waitFor('store 3 destroys its replica', () => cluster.stores.get(3)!.host.peer(1) === undefined);
      const left = await converged(cluster, [1, 2, 4]);
      assert.deepEqual(left, { voters: [11, 12, 14], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false });

      // Every log compacted past the conf changes: a restart cannot find them in the log at all.
      for (const id of [1, 2, 4]) {
        const compacted = await cluster.stores.get(id)!.host.compactRegionLog(1);
        // Bootstrap at 5, then at least an election's entry, two writes and three conf changes.
        assert.ok(compacted !== null && compacted.index > 10, `store ${id} compacted to ${compacted?.index}`);
      }
      for (const id of [1, 2, 4]) {
        await cluster.restart(id);
        assert.deepEqual(config(cluster.stores.get(id)!), left, `store ${id} after compaction and restart`);
      }
      await mustWrite(cluster, 'd', 'after');
      await converged(cluster, [1, 2, 4]);
      for (const id of [1, 2, 4]) await waitFor(`store ${id} applies the last write`, async () => text(await cluster.stores.get(id)!.kv.get(bytes('d'))) === 'after');
    } finally {
      await cluster.closeAll();
    }
  });

  test('a replica founded as the only voter, grown to three voters, never elects itself alone after a restart', async () => {
    const cluster = new Cluster();
    try {
      const solo: RegionMeta = { ...REGION, peers: [{ id: 11, storeId: 1, role: 'voter' }] };
      for (const id of [1, 2, 3]) await cluster.start(id);
      await cluster.stores.get(1)!.host.bootstrapRegion(solo);
      await mustWrite(cluster, 'b', 'alone');
      for (const [peerId, storeId] of [[12, 2], [13, 3]] as const) {
        await change(cluster, [{ type: 'addLearner', peerId, storeId }]);
        await change(cluster, [{ type: 'addVoter', peerId, storeId }]);
      }
      const three = await converged(cluster, [1, 2, 3]);
      assert.deepEqual(three.voters, [11, 12, 13]);
      assert.equal(cluster.stores.get(1)!.host.peer(1)!.region.epoch.confVer, EPOCH.confVer + 4);

      // Restart store 1 from its disks, once as is and once after compacting its log past every
      // conf change: each time it must run with three voters.
      await cluster.restart(1);
      assert.deepEqual(config(cluster.stores.get(1)!), three, 'after a restart');
      await converged(cluster, [1, 2, 3]);
      assert.ok((await cluster.stores.get(1)!.host.compactRegionLog(1)) !== null);
      assert.ok(cluster.stores.get(1)!.host.regionStatus(1)!.raft.firstIndex > 10, 'the log no longer holds the conf changes');
      await cluster.restart(1);
      assert.deepEqual(config(cluster.stores.get(1)!), three, 'after a compaction and a restart');

      // Alone, it must not lead: not by its own election timeout, not when told to campaign,
      // and a write there never commits.
      await cluster.stop(2);
      await cluster.stop(3);
      const lone = cluster.stores.get(1)!;
      lone.host.campaign(1);
      await ticksPass(lone, 5 * limits.electionTicks);
      assert.equal(lone.host.regionStatus(1)!.raft.role === 'leader', false, 'a lone replica of three voters elected itself');
      const response = await write(lone, 'x', 'split brain', undefined, 200);
      assert.ok(!('results' in response && response.results[0]?.op === 'put'), `a write committed on one of three voters: ${JSON.stringify(response)}`);
      assert.equal(await lone.kv.get(bytes('x')), null);
    } finally {
      await cluster.closeAll();
    }
  });
});
