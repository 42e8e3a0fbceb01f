import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { limits } from '../src/constants.ts';
import { storeTickGapMs } from '../src/read-lease.ts';
import { REGION, TestCluster, get, put, run, text, waitFor, type MemoryStore } from './harness.ts';

describe("the store's bound on gaps between ticks", () => {
  test('ticks may come ~1.5 tick lengths apart; too short a tick turns leases off', () => {
    assert.equal(storeTickGapMs(100), 148.5);
    assert.equal(storeTickGapMs(50), 73.5);
    assert.equal(storeTickGapMs(2), 0);
  });
});

/** Raft messages the store sent while `work` ran. */
async function messagesDuring(store: MemoryStore, work: () => Promise<void>): Promise<number> {
  const before = store.host.stats().messagesSent;
  await work();
  return store.host.stats().messagesSent - before;
}

async function readsOfOneValue(store: MemoryStore, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const [read] = await run(store, get('lease'));
    assert.equal(text(read?.op === 'get' ? read.value : null), 'held');
  }
}

/** Region 1 on three in-memory stores with the store's real tick (the lease bound depends on it). */
async function leaseCluster(readLease: boolean): Promise<{ cluster: TestCluster; leader: MemoryStore }> {
  const cluster = new TestCluster(10_000, limits.tickMs, 0, { readLease });
  for (const id of [1, 2, 3]) await cluster.startStore(id);
  for (const store of cluster.stores.values()) await store.host.bootstrapRegion(REGION);
  cluster.stores.get(1)!.host.campaign(1);
  await waitFor('store 1 leads', () => cluster.leaderOf(1)?.id === 1);
  const leader = cluster.stores.get(1)!;
  assert.deepEqual(await run(leader, put('lease', 'held')), [{ op: 'put' }]);
  return { cluster, leader };
}

describe('lease reads in a store', () => {
  const clusters: TestCluster[] = [];
  after(async () => {
    for (const cluster of clusters) await cluster.closeAll();
  });

  test('linearizable reads at the leader send no raft message while the lease holds', async () => {
    const { cluster, leader } = await leaseCluster(true);
    clusters.push(cluster);
    const reads = 50;
    // A ReadIndex round would send 2 heartbeats per read; only the periodic rounds (every 300 ms) may go out.
    const sent = await messagesDuring(leader, () => readsOfOneValue(leader, reads));
    assert.ok(sent < reads, `${reads} reads sent ${sent} raft messages`);
    assert.equal(leader.host.stats().readLeaseStalls, 0);
  });

  test('a blocked event loop voids the lease: the next read takes a ReadIndex round', async () => {
    const leader = clusters[0]!.stores.get(1)!;
    const gapMs = storeTickGapMs(limits.tickMs);
    // Block the loop (no tick can run) past the bound, then read before any timer fires.
    const until = performance.now() + gapMs + 50;
    while (performance.now() < until);
    const sent = await messagesDuring(leader, () => readsOfOneValue(leader, 1));
    assert.ok(leader.host.stats().readLeaseStalls >= 1, 'the stall was seen before the lease was used');
    assert.ok(sent >= 2, `the read went through a heartbeat round (${sent} messages sent)`);
    // The round's acks prove a new lease: reads go back to sending nothing.
    const after = await messagesDuring(leader, () => readsOfOneValue(leader, 20));
    assert.ok(after < 20, `20 reads after the stall sent ${after} raft messages`);
  });

  test('with --read-lease off every read takes a round', async () => {
    const { cluster, leader } = await leaseCluster(false);
    clusters.push(cluster);
    const reads = 20;
    const sent = await messagesDuring(leader, () => readsOfOneValue(leader, reads));
    assert.ok(sent >= 2 * reads, `${reads} reads sent only ${sent} raft messages`);
  });
});
