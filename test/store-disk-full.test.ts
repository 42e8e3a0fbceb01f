/**
 * A real store process whose data disk is below its reserve (`--disk-reserve-bytes` larger than
 * any disk): it refuses puts and compare-and-swaps with FLOTILLA_DISK_FULL from its first
 * request, writes nothing for them, serves reads and deletes, says so in its log and metrics,
 * and keeps serving. A store with room (reserve 0: never refuse) takes the same writes.
 * Below half its reserve a store takes no replicated entries either, and its peers, told so,
 * send it none: in a 3-store region it falls behind while the other two commit, stays up, and
 * catches up once it has room.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import type { KvOp, KvOpResult } from '@flotilla/wire';
import { ProcessCluster, waitFor } from './support/cluster.ts';

const EPOCH = { version: 1, confVer: 1 };
/** 4 PiB: more than any disk this runs on has free. */
const HUGE_RESERVE = 2 ** 52;
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

/** One region over all keys with a voter on each of stores 1, 2 and 3. */
const REGION = { id: 1, startKey: new Uint8Array(0), endKey: new Uint8Array(0), epoch: EPOCH, peers: [1, 2, 3].map((id) => ({ id, storeId: id, role: 'voter' as const })) };
const put = (regionId: number, key: string): KvOp => ({ op: 'put', regionId, regionEpoch: EPOCH, key: bytes(key), value: bytes('v') });

describe('a store process short of disk space', () => {
  const cluster = new ProcessCluster({ tickMs: 50 });
  after(() => cluster.close());
  let requestId = 1;
  const call = async (storeId: number, ...ops: KvOp[]): Promise<KvOpResult[]> => {
    const { status, response } = await cluster.kv(storeId, { requestId: requestId++, timeoutMs: 5_000, ops });
    assert.equal(status, 200);
    assert.ok('results' in response, JSON.stringify(response));
    return [...response.results];
  };
  const region = (id: number, storeId: number) => ({ id, startKey: new Uint8Array(0), endKey: new Uint8Array(0), epoch: EPOCH, peers: [{ id: storeId, storeId, role: 'voter' as const }] });
  const get = (regionId: number, key: string): KvOp => ({ op: 'get', regionId, regionEpoch: EPOCH, key: bytes(key), consistency: { level: 'linearizable' } });

  test('refuses what adds data, serves the rest, and reports it', async () => {
    const full = await cluster.startStore(1, ['--disk-reserve-bytes', String(HUGE_RESERVE)]);
    await cluster.startStore(2, ['--disk-reserve-bytes', '0']);
    // One single-voter region on each store (each its own cluster of one).
    await cluster.bootstrap(region(1, 1));
    await cluster.bootstrap(region(2, 2));
    await waitFor('leaders', async () => (await cluster.leaderOf(1))?.id === 1 && (await cluster.leaderOf(2))?.id === 2);

    const [refused] = await call(1, put(1, 'k'));
    assert.ok(refused?.op === 'error' && refused.error.code === 'FLOTILLA_DISK_FULL', JSON.stringify(refused));
    assert.equal(refused.error.storeId, 1);
    assert.equal(refused.error.reserveBytes, HUGE_RESERVE);
    assert.ok(refused.error.availableBytes > 0 && refused.error.availableBytes < HUGE_RESERVE, `available ${refused.error.availableBytes}`);
    const cas: KvOp = { op: 'cas', regionId: 1, regionEpoch: EPOCH, key: bytes('k'), expected: null, value: bytes('v') };
    const [deleted, refusedCas, read] = await call(1, { op: 'delete', regionId: 1, regionEpoch: EPOCH, key: bytes('k') }, cas, get(1, 'k'));
    assert.deepEqual(deleted, { op: 'delete' });
    assert.equal(refusedCas?.op === 'error' ? refusedCas.error.code : refusedCas?.op, 'FLOTILLA_DISK_FULL');
    assert.deepEqual(read, { op: 'get', value: null }, 'nothing refused was written');

    // The store with room (reserve 0) takes the same write.
    assert.deepEqual(await call(2, put(2, 'k')), [{ op: 'put' }]);

    const page = await (await fetch(`http://${full.api.host}:${full.api.port}/metrics`)).text();
    assert.match(page, /^flotilla_store_disk_writes_refused 1$/m);
    assert.match(page, new RegExp(`^flotilla_store_disk_reserve_bytes ${HUGE_RESERVE}$`, 'm'));
    assert.match(page, /^flotilla_store_disk_available_bytes [1-9]\d*$/m);
    assert.match(page, /^flotilla_store_kv_operations_total\{op="put",code="FLOTILLA_DISK_FULL"\} 1$/m);
    const warned = full.logs.map((l) => JSON.parse(l) as { level?: number; msg?: string; reserveBytes?: number }).find((l) => l.msg?.startsWith('data disk critically short of space'));
    assert.equal(warned?.reserveBytes, HUGE_RESERVE, 'the store logged why it refuses');
  });
});

describe('a store process critically short of disk space in a 3-store region', () => {
  const cluster = new ProcessCluster({ tickMs: 50 });
  after(() => cluster.close());
  let requestId = 1;
  const status = (storeId: number) => cluster.expectAdmin<{ commit: number; applied: number; lastIndex: number }>(storeId, 'GET', '/v1/admin/regions/1');
  const metric = (storeId: number, name: string) => cluster.metric(storeId, name);

  test('falls behind without filling up while the others commit, and catches up with room', async () => {
    await cluster.startStore(1, ['--disk-reserve-bytes', '0']);
    await cluster.startStore(2, ['--disk-reserve-bytes', '0']);
    await cluster.startStore(3, ['--disk-reserve-bytes', String(HUGE_RESERVE)]);
    await cluster.bootstrap(REGION);
    await waitFor('a leader on a store with room', async () => {
      const leader = await cluster.leaderOf(1);
      if (leader?.id === 3) await cluster.admin(3, 'POST', '/v1/admin/regions/1/transfer-leader', { toPeerId: 1 });
      return leader !== undefined && leader.id !== 3;
    });
    const leader = (await cluster.leaderOf(1))!;
    await waitFor('the leader heard store 3', async () => (await metric(leader.id, 'flotilla_store_peer_stores_refusing_replication')) === 1);
    for (let i = 0; i < 10; i++) {
      const { response } = await cluster.kv(leader.id, { requestId: requestId++, timeoutMs: 5_000, ops: [{ op: 'put', regionId: 1, regionEpoch: EPOCH, key: bytes(`k${i}`), value: bytes('v') }] });
      assert.deepEqual('results' in response ? response.results : response, [{ op: 'put' }], 'committed by the two stores with room');
    }
    const { commit } = await status(leader.id);
    // Told by store 3, the leader sends it no entries (it would drop them: flotilla_store_disk_replication_refused_total).
    await waitFor('the leader withheld its appends to store 3', async () => (await metric(leader.id, 'flotilla_store_replication_withheld_for_disk_total')) > 0);
    assert.ok((await status(3)).lastIndex < commit, 'store 3 took none of the entries');
    assert.equal(await metric(3, 'flotilla_store_disk_replication_refused'), 1);

    // Room again (here: a restart without the reserve): store 3 catches up.
    await cluster.terminate(3);
    await cluster.startStore(3, ['--disk-reserve-bytes', '0']);
    await waitFor('store 3 applied up to the commit index seen', async () => (await status(3)).applied >= commit);
  });
});

describe('a 3-store region with two replicas on stores critically short of disk space', () => {
  const cluster = new ProcessCluster({ tickMs: 50 });
  let faultDir: string | undefined;
  after(async () => {
    await cluster.close();
    if (faultDir !== undefined) await rm(faultDir, { recursive: true, force: true });
  });
  const MiB = 1024 ** 2;
  let requestId = 1;
  const metric = (storeId: number, name: string) => cluster.metric(storeId, name);
  const write = (...ops: KvOp[]) => cluster.kv(1, { requestId: requestId++, timeoutMs: 30_000, ops });

  test('its leader, on a store with room, refuses writes at once with FLOTILLA_DISK_FULL instead of timing out; they commit once one has room', async () => {
    faultDir = await mkdtemp(path.join(os.tmpdir(), 'flotilla-disk-'));
    const store2Faults = path.join(faultDir, 'store-2.json');
    await cluster.startStore(1, ['--disk-reserve-bytes', '0']);
    // Store 2 crosses its critical level at runtime (the fault control file sets the free space it sees);
    // store 3 is critically short from its start (it tells its peers as each connection comes up).
    await cluster.startStore(2, ['--disk-reserve-bytes', String(MiB), '--fault-control', store2Faults]);
    await cluster.startStore(3, ['--disk-reserve-bytes', String(HUGE_RESERVE)]);
    await cluster.bootstrap(REGION);
    // A leader on a full store still commits with store 1 (its own appends count): move it to store 1.
    await waitFor('store 1 leads', async () => {
      const leader = await cluster.leaderOf(1);
      if (leader !== undefined && leader.id !== 1) await cluster.admin(leader.id, 'POST', '/v1/admin/regions/1/transfer-leader', { toPeerId: 1 });
      return leader?.id === 1;
    });
    await waitFor('store 1 heard store 3', async () => (await metric(1, 'flotilla_store_peer_stores_refusing_replication')) === 1);
    assert.deepEqual((await write(put(1, 'k'))).response, { requestId: requestId - 1, results: [{ op: 'put' }] }, 'stores 1 and 2 make a quorum');

    await writeFile(store2Faults, JSON.stringify({ diskAvailableBytes: 0 }));
    await waitFor('store 1 heard store 2', async () => (await metric(1, 'flotilla_store_peer_stores_refusing_replication')) === 2);
    const { status, response } = await write(put(1, 'k'), { op: 'delete', regionId: 1, regionEpoch: EPOCH, key: bytes('k') });
    assert.equal(status, 200);
    assert.ok('results' in response, JSON.stringify(response));
    for (const result of response.results) {
      assert.ok(result.op === 'error' && result.error.code === 'FLOTILLA_DISK_FULL', JSON.stringify(result));
      assert.equal(result.error.storeId, 2, 'names the first full voter');
      assert.deepEqual([result.error.availableBytes, result.error.reserveBytes], [0, MiB]);
    }
    assert.equal(await metric(1, 'flotilla_store_kv_operations_total{op="delete",code="FLOTILLA_DISK_FULL"}'), 1);

    await rm(store2Faults);
    await waitFor('store 1 heard store 2 has room', async () => (await metric(1, 'flotilla_store_peer_stores_refusing_replication')) === 1);
    assert.deepEqual((await write(put(1, 'k'))).response, { requestId: requestId - 1, results: [{ op: 'put' }] });
  });
});
