/**
 * A restarted store is not ready before its replicas caught up with their leaders
 * (MultiRaftHost.catchUpStatus, which /ready reads): the rolling restart of a StatefulSet then
 * never takes a second store down while the first one is still behind.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { KvEngine, MemoryKvEngine } from '@flotilla/storage';
import { StoreServer } from '../src/index.ts';
import { HeldCalls, REGION, TestCluster, intercept, put, run, waitFor } from './harness.ts';

async function getReady(origin: string): Promise<{ status: number; body: { ready: boolean; reason?: string } }> {
  const res = await fetch(`${origin}/ready`);
  return { status: res.status, body: (await res.json()) as { ready: boolean; reason?: string } };
}

/** Holds every KV apply of the engine it wraps while armed: the replica cannot catch up. */
class ApplyGate extends HeldCalls {
  wrap(engine: MemoryKvEngine): KvEngine {
    return intercept<KvEngine>(engine, ['apply'], async (_method, _args, call) => {
      if (this.armed) await this.hold();
      return call();
    });
  }
}

describe('readiness after a restart', () => {
  const cluster = new TestCluster();
  const gate = new ApplyGate();
  after(async () => {
    gate.release();
    await cluster.closeAll();
  });

  test('waits until the restarted replica applied what its leader had committed', async () => {
    for (const id of [1, 2, 3]) await cluster.startStore(id);
    for (const store of cluster.stores.values()) await store.host.bootstrapRegion(REGION);
    await waitFor('a leader', () => cluster.leaderOf(1) !== undefined);
    const leader = cluster.leaderOf(1)!;
    for (const store of cluster.stores.values()) assert.deepEqual(store.host.catchUpStatus(), { caughtUp: true }, 'a region bootstrapped after the start is not waited for');

    const follower = [...cluster.stores.values()].find((s) => s !== leader)!;
    await cluster.stop(follower.id);
    for (let i = 0; i < 20; i++) assert.deepEqual(await run(leader, put(`k${i}`, 'v')), [{ op: 'put' }]);
    const committed = leader.host.peer(1)!.node.status().commit;
    assert.ok(follower.host.peer(1) === undefined || follower.host.peer(1)!.applied < committed);

    gate.armed = true;
    const back = await cluster.startStore(follower.id, { logDisk: follower.logDisk, kvDisk: follower.kvDisk }, { kv: (kv) => gate.wrap(kv) });
    await waitFor('the leader\'s entries arrive and their apply is held', () => !back.host.catchUpStatus().caughtUp && gate.count > 0);
    const waiting = back.host.catchUpStatus();
    assert.deepEqual(waiting.caughtUp ? null : [waiting.waiting, waiting.of, waiting.example], [1, 1, 1]);
    const server = new StoreServer({ service: back.service, host: back.host, transport: back.transport, defaultMetrics: false });
    const origin = `http://127.0.0.1:${(await server.listen()).port}`;
    try {
      const notReady = await getReady(origin);
      assert.equal(notReady.status, 503);
      assert.match(notReady.body.reason ?? '', /1 of the 1 replicas this store started with have not caught up/);

      gate.release();
      await waitFor('/ready answers 200', async () => (await getReady(origin)).status === 200);
      assert.ok(back.host.peer(1)!.applied >= committed, `applied ${back.host.peer(1)!.applied} >= ${committed}, the leader's commit while the store was down`);
    } finally {
      await server.close();
    }
  });
});
