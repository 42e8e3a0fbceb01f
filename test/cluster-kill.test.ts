/**
 * Three store processes on loopback (RocksDB, TCP, HTTP): clients write and read through the
 * client API while the leader's store is killed with SIGKILL. The history of every operation
 * must be linearizable — so no acknowledged write is lost and no read is stale — the cluster
 * must keep serving with two stores, and the killed store must recover and catch up.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { checkLinearizability, kvModel, type KvInput, type KvOperation } from '@flotilla/sim';
import { ProcessCluster, waitFor } from './support/cluster.ts';
import { RecordingClient, type Region } from './support/kv-client.ts';
import { reservedPorts } from './support/ports.ts';

const KEYS = ['apple', 'banana', 'cherry', 'date', 'elder'];
const CLIENTS = 4;
/** Operations each client completes before the kill, and again after it. */
const OPS_PER_PHASE = 40;

interface RegionStatus {
  readonly role: string;
  readonly commit: number;
  readonly applied: number;
}

describe('a 3-store cluster of real processes', () => {
  const cluster = new ProcessCluster({ tickMs: 50 });
  after(() => cluster.close());

  test('kill -9 of the leader store: no acknowledged write lost, reads linearizable, the store recovers', async () => {
    for (const id of [1, 2, 3]) await cluster.startStore(id);
    const region: Region = { id: 1, epoch: { version: 1, confVer: 1 } };
    await cluster.bootstrap({
      id: 1,
      startKey: new Uint8Array(0),
      endKey: new Uint8Array(0),
      epoch: region.epoch,
      peers: [1, 2, 3].map((storeId) => ({ id: storeId, storeId, role: 'voter' })),
    });
    await waitFor('a leader', async () => (await cluster.leaderOf(1)) !== undefined);

    const history: KvOperation[] = [];
    const clients = Array.from({ length: CLIENTS }, (_, i) => new RecordingClient(cluster, i + 1, region, history, 1 + (i % 3)));
    let serial = 0;
    const randomInput = (clientId: number): KvInput => {
      const key = KEYS[Math.floor(Math.random() * KEYS.length)]!;
      return Math.random() < 0.5 ? { kind: 'get', key } : { kind: 'put', key, value: `c${clientId}-${serial++}` };
    };
    const phase = (ops: number): Promise<number[]> =>
      Promise.all(
        clients.map(async (client, i) => {
          let acknowledged = 0;
          for (let n = 0; n < ops; n++) if ((await client.run(randomInput(i + 1))) !== undefined) acknowledged++;
          return acknowledged;
        }),
      );

    // Phase 1 runs while the kill lands in the middle of it.
    const leader = (await cluster.leaderOf(1))!;
    const running = phase(OPS_PER_PHASE);
    await waitFor('some writes acknowledged', () => history.filter((o) => o.input.kind === 'put' && o.output !== undefined).length >= 20);
    await cluster.kill9(leader.id);
    await running;
    // Phase 2: the two remaining stores keep serving; most operations must succeed.
    const acknowledged = await phase(OPS_PER_PHASE);
    assert.ok(acknowledged.every((n) => n >= OPS_PER_PHASE / 2), `clients were served after the kill: ${acknowledged.join(', ')}`);
    const newLeader = await cluster.leaderOf(1);
    assert.ok(newLeader && newLeader.id !== leader.id, 'a surviving store leads');

    // The killed store restarts on its data and catches up with the leader's commit index.
    await cluster.startStore(leader.id);
    const final = await phase(5);
    assert.ok(final.every((n) => n > 0));
    const leaderNow = (await cluster.leaderOf(1))!;
    const { commit } = await cluster.expectAdmin<RegionStatus>(leaderNow.id, 'GET', '/v1/admin/regions/1');
    await waitFor('the restarted store applies up to the commit index seen', async () => {
      const status = await cluster.expectAdmin<RegionStatus>(leader.id, 'GET', '/v1/admin/regions/1');
      return status.applied >= commit;
    });

    // Reads of every key at the end belong to the history, so a lost write shows as illegal.
    const reader = new RecordingClient(cluster, 99, region, history, leaderNow.id);
    for (const key of KEYS) assert.notEqual(await reader.run({ kind: 'get', key }), undefined, `final read of ${key}`);
    const writes = history.filter((o) => o.input.kind === 'put' && o.output !== undefined).length;
    assert.ok(writes >= 40, `enough acknowledged writes to mean something (${writes})`);
    const verdict = checkLinearizability(kvModel, history, { timeBudgetMs: 60_000 });
    assert.equal(verdict.verdict, 'ok', verdict.verdict === 'illegal' ? verdict.illegalPartition.description : verdict.verdict);
  });
});

describe('store processes: graceful shutdown and a static cluster', () => {
  const cluster = new ProcessCluster({ tickMs: 50 });
  after(() => cluster.close());

  test('a static cluster from --initial-cluster; SIGTERM moves leadership away and exits 0', async () => {
    // --initial-cluster needs every store's raft port before any starts (the one place these
    // tests do not listen on port 0): free ports outside the ephemeral range (test/support/ports.ts).
    const ports = await reservedPorts(3);
    const initial = ports.map((port, i) => `${i + 1}=127.0.0.1:${port}`).join(',');
    for (const id of [1, 2, 3]) await cluster.startStore(id, ['--raft-listen', `127.0.0.1:${ports[id - 1]}`, '--initial-cluster', initial]);
    await waitFor('region 1 of the static cluster has a leader', async () => (await cluster.leaderOf(1)) !== undefined);
    const region: Region = { id: 1, epoch: { version: 1, confVer: 1 } };
    const history: KvOperation[] = [];
    const client = new RecordingClient(cluster, 1, region, history, 1);
    assert.deepEqual(await client.run({ kind: 'put', key: 'static', value: 'yes' }), { kind: 'put' });

    const leader = (await cluster.leaderOf(1))!;
    const exitCode = await cluster.terminate(leader.id);
    assert.equal(exitCode, 0, 'a graceful shutdown exits 0');
    const moved = leader.logs.map((line) => JSON.parse(line) as { msg?: string; stillLeading?: number }).find((entry) => entry.msg === 'leaderships moved away');
    assert.equal(moved?.stillLeading, 0, 'the store handed its leadership over before it stopped');
    assert.deepEqual(await client.run({ kind: 'get', key: 'static' }), { kind: 'get', value: 'yes' });
  });
});
