/**
 * A real store process whose data disk is below its reserve (`--disk-reserve-bytes` larger than
 * any disk): it refuses puts and compare-and-swaps with FLOTILLA_DISK_FULL from its first
 * request, writes nothing for them, serves reads and deletes, says so in its log and metrics,
 * and keeps serving. A store with room (reserve 0: never refuse) takes the same writes.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { KvOp, KvOpResult } from '@flotilla/wire';
import { ProcessCluster, waitFor } from './support/cluster.ts';

const EPOCH = { version: 1, confVer: 1 };
/** 4 PiB: more than any disk this runs on has free. */
const HUGE_RESERVE = 2 ** 52;
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

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
  const put = (regionId: number, key: string): KvOp => ({ op: 'put', regionId, regionEpoch: EPOCH, key: bytes(key), value: bytes('v') });
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
    const warned = full.logs.map((l) => JSON.parse(l) as { level?: number; msg?: string; reserveBytes?: number }).find((l) => l.msg?.startsWith('data disk short of space'));
    assert.equal(warned?.reserveBytes, HUGE_RESERVE, 'the store logged why it refuses');
  });
});
