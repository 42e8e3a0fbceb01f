/**
 * The store's side of the placement driver: the PD client following leader hints, the
 * per-region traffic counts, region size counting and split keys, and the operator runner
 * executing PD's steps on in-memory stores.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { MemoryNetwork } from '@flotilla/transport';
import type { KvRequest, KvResponse, RegionMeta } from '@flotilla/wire';
import { isStoreError } from '../src/errors.ts';
import { OperatorRunner } from '../src/pd/operator-runner.ts';
import { PdClient } from '../src/pd/pd-client.ts';
import { RegionFlow } from '../src/pd/region-flow.ts';
import { measureRegion, middleKey } from '../src/pd/region-size.ts';
import { EPOCH, REGION, bytes, connectAll, leaderOf, memoryStore, waitFor, type MemoryStore } from './harness.ts';

/** A fake PD member answering every POST with `answer(path)`. */
async function fakeMember(answer: (path: string) => { status: number; body: unknown }): Promise<{ url: string; server: Server; hits: string[] }> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      hits.push(req.url ?? '');
      const { status, body } = answer(req.url ?? '');
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, hits };
}

const HEARTBEAT = { storeId: 4, capacityBytes: 10, availableBytes: 5, usedBytes: 5, regionCount: 1, leaderCount: 1, rates: { writeBytes: 0, writeKeys: 0, readBytes: 0, readKeys: 0 } };

describe('PdClient', () => {
  const servers: Server[] = [];
  after(() => Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve)))));

  it('follows a follower\'s leader hint, then asks the leader first', async () => {
    const leader = await fakeMember(() => ({ status: 200, body: { stores: [{ storeId: 1, raftAddress: 'h:1', apiAddress: 'h:2' }], operatorRegionIds: [7] } }));
    const follower = await fakeMember(() => ({ status: 421, body: { error: { code: 'FLOTILLA_PD_NOT_LEADER', message: 'no', leader: { memberId: 2, url: leader.url } } } }));
    servers.push(leader.server, follower.server);
    const client = new PdClient([follower.url]);
    const answer = await client.storeHeartbeat(HEARTBEAT);
    assert.deepEqual(answer.operatorRegionIds, [7]);
    await client.storeHeartbeat(HEARTBEAT);
    assert.equal(follower.hits.length, 1, 'the leader is asked first once known');
    assert.equal(leader.hits.length, 2);
    await client.close();
  });

  it('tries the next member while one is electing; a refusal is not retried; all down is UNAVAILABLE', async () => {
    const electing = await fakeMember(() => ({ status: 503, body: { error: { code: 'FLOTILLA_PD_NO_LEADER', message: 'electing' } } }));
    const refusing = await fakeMember(() => ({ status: 409, body: { error: { code: 'FLOTILLA_PD_CLUSTER_MISMATCH', message: 'other cluster' } } }));
    servers.push(electing.server, refusing.server);
    const client = new PdClient([electing.url, refusing.url]);
    await assert.rejects(client.storeHeartbeat(HEARTBEAT), (err) => isStoreError(err, 'FLOTILLA_STORE_PD_REFUSED') && /CLUSTER_MISMATCH/.test(err.message));
    assert.equal(refusing.hits.length, 1);
    const none = new PdClient([electing.url]);
    await assert.rejects(none.storeHeartbeat(HEARTBEAT), (err) => isStoreError(err, 'FLOTILLA_STORE_PD_UNAVAILABLE'));
    const malformed = await fakeMember(() => ({ status: 200, body: { stores: 'nope' } }));
    servers.push(malformed.server);
    await assert.rejects(new PdClient([malformed.url]).storeHeartbeat(HEARTBEAT), /stores: expected an array/);
    await Promise.all([client.close(), none.close()]);
  });
});

describe('PdClient.close', () => {
  it('aborts a parked watch and asks no other member after it (a SIGTERM waited out the watch)', async () => {
    const parked: import('node:http').ServerResponse[] = [];
    const hold = async (): Promise<{ url: string; server: Server; hits: string[] }> => {
      const hits: string[] = [];
      const server = createServer((req, res) => {
        hits.push(req.url ?? '');
        parked.push(res); // never answered: the watch stays parked
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, hits };
    };
    const first = await hold();
    const second = await hold();
    const client = new PdClient([first.url, second.url]);
    const watch = client.watchOperators(4, 60_000);
    await waitFor('the watch is parked at the first member', () => first.hits.length === 1);
    await client.close();
    await assert.rejects(watch, (err) => isStoreError(err, 'FLOTILLA_STORE_PD_UNAVAILABLE'));
    assert.equal(second.hits.length, 0, 'no member is asked once closed');
    await assert.rejects(client.storeHeartbeat(HEARTBEAT), /closed/);
    for (const res of parked) res.destroy();
    await Promise.all([first, second].map(({ server }) => new Promise((resolve) => server.close(resolve))));
  });
});

describe('RegionFlow', () => {
  it('counts successful reads and writes per region and for the store, as rates', async () => {
    let now = 0;
    const inner = {
      handle: async (request: KvRequest): Promise<KvResponse> => ({
        requestId: request.requestId,
        results: [{ op: 'put' }, { op: 'get', value: bytes('vvvv') }, { op: 'error', error: { code: 'FLOTILLA_REGION_NOT_FOUND', regionId: 9 } }],
      }),
    };
    const flow = new RegionFlow(inner, () => now);
    await flow.handle({
      requestId: 1,
      ops: [
        { op: 'put', regionId: 1, regionEpoch: EPOCH, key: bytes('kk'), value: bytes('123456') },
        { op: 'get', regionId: 1, regionEpoch: EPOCH, key: bytes('kk'), consistency: { level: 'linearizable' } },
        { op: 'put', regionId: 9, regionEpoch: EPOCH, key: bytes('x'), value: bytes('y') },
      ],
    });
    now = 2_000;
    assert.deepEqual(flow.take(1), { writeBytes: 4, writeKeys: 1, readBytes: 3, readKeys: 1 }, 'per second over 2 s, rounded');
    assert.deepEqual(flow.take(9), { writeBytes: 0, writeKeys: 0, readBytes: 0, readKeys: 0 }, 'a failed op counts nothing');
    assert.deepEqual(flow.takeStore(), { writeBytes: 4, writeKeys: 1, readBytes: 3, readKeys: 1 });
    assert.deepEqual(flow.takeWritesSinceEstimate(1), { bytes: 8, putBytes: 8, putKeys: 1, deletedKeys: 0 }, 'key + value bytes, one key put');
    assert.deepEqual(flow.takeWritesSinceEstimate(1), { bytes: 0, putBytes: 0, putKeys: 0, deletedKeys: 0 }, 'the count restarts');
    assert.deepEqual(flow.takeWritesSinceEstimate(9), { bytes: 0, putBytes: 0, putKeys: 0, deletedKeys: 0 }, 'a failed op wrote nothing');
  });
});

/** Three in-memory stores with REGION (peers on 1, 2, 3) plus an empty store 4. */
async function fourStores(): Promise<{ stores: Map<number, MemoryStore>; close: () => Promise<void> }> {
  const network = new MemoryNetwork();
  const stores = new Map([1, 2, 3, 4].map((id) => [id, memoryStore(network, id)]));
  for (const s of stores.values()) await s.host.start();
  connectAll(stores.values());
  for (const id of [1, 2, 3]) await stores.get(id)!.host.bootstrapRegion(REGION);
  await waitFor('a leader', () => leaderOf(stores.values(), 1) !== undefined);
  return { stores, close: async () => void (await Promise.all([...stores.values()].map((s) => s.host.close()))) };
}

describe('region size and OperatorRunner', () => {
  it('measures a region, finds its middle key, and runs PD\'s steps: learner, promote+remove, leader transfer, split', async () => {
    const { stores, close } = await fourStores();
    try {
      const leader = leaderOf(stores.values(), 1)!;
      const ops = Array.from({ length: 10 }, (_, i) => ({ op: 'put' as const, regionId: 1, regionEpoch: EPOCH, key: bytes(`k${i}`), value: bytes('value') }));
      const written = await leader.service.handle({ requestId: 1, ops });
      assert.ok('results' in written && written.results.every((r) => r.op === 'put'));
      assert.deepEqual(await measureRegion(leader.kv, REGION), { bytes: 10 * (2 + 5), keys: 10, capped: false });
      assert.deepEqual(await middleKey(leader.kv, REGION), bytes('k5'));

      const events: string[] = [];
      const runner = (s: MemoryStore) => new OperatorRunner(s.host, s.kv, { info: () => {}, warn: (fields) => events.push(JSON.stringify(fields)) });
      const regionOf = (s: MemoryStore): RegionMeta => s.host.peer(1)!.region;
      runner(leader).run({ regionId: 1, operatorId: 1, regionEpoch: EPOCH, step: { type: 'addLearner', storeId: 4, peerId: 14 } });
      await waitFor('a learner on store 4', () => regionOf(leader).peers.some((p) => p.id === 14 && p.role === 'learner'));
      const leaving = [11, 12, 13].find((id) => id !== leader.host.peer(1)!.peerId)!;
      const promote = { regionId: 1, operatorId: 1, regionEpoch: EPOCH, step: { type: 'changeVoters' as const, promote: [{ storeId: 4, peerId: 14 }], remove: [{ storeId: leaving - 10, peerId: leaving }] } };
      const learnerProgress = () => leader.host.peer(1)!.node.status().progress.get(14);
      if (learnerProgress()?.state !== 'replicate') {
        runner(leader).run(promote);
        await waitFor('a refused promotion', () => events.some((e) => /has not caught up/.test(e)));
        assert.equal(regionOf(leader).peers.find((p) => p.id === 14)?.role, 'learner', 'an empty learner is not promoted');
      }
      await waitFor('the learner caught up', () => learnerProgress()?.state === 'replicate' && (learnerProgress()?.match ?? 0) > 0);
      runner(leader).run(promote);
      await waitFor('14 a voter and the other peer gone', () => {
        const peers = regionOf(leader).peers;
        return peers.some((p) => p.id === 14 && p.role === 'voter') && !peers.some((p) => p.id === leaving) && peers.length === 3;
      });
      runner(leader).run({ regionId: 1, operatorId: 2, regionEpoch: EPOCH, step: { type: 'transferLeader', fromStoreId: leader.id, toStoreId: 4 } });
      await waitFor('store 4 leads', () => stores.get(4)!.host.peer(1)?.isLeader() === true);
      const newLeader = stores.get(4)!;
      const split = { regionId: 1, operatorId: 3, regionEpoch: regionOf(newLeader).epoch, step: { type: 'split' as const, keys: [] }, newIds: [50, 51, 52, 53] };
      runner(newLeader).run(split);
      await waitFor('the split at the middle key', () => regionOf(newLeader).epoch.version === 2 && newLeader.host.peer(50) !== undefined);
      assert.deepEqual(regionOf(newLeader).endKey, bytes('k5'));
      runner(newLeader).run(split);
      runner(newLeader).run({ ...split, operatorId: 4, regionEpoch: regionOf(newLeader).epoch, newIds: [60] });
      runner(leader).run({ regionId: 1, operatorId: 5, regionEpoch: EPOCH, step: { type: 'addLearner', storeId: 4, peerId: 99 } });
      await waitFor('three more refusals logged', () => events.filter((e) => !/has not caught up/.test(e)).length >= 3);
      assert.match(events.join('\n'), /split or merged since/, 'a split PD repeats after it applied is refused');
      assert.match(events.join('\n'), /needs 4/);
      assert.match(events.join('\n'), /does not lead/);
      assert.deepEqual(regionOf(newLeader).endKey, bytes('k5'), 'the region was cut once');
      // A split at several keys: one region per key, with the ids PD sent for each piece.
      runner(newLeader).run({ regionId: 1, operatorId: 6, regionEpoch: regionOf(newLeader).epoch, step: { type: 'split', keys: [bytes('k2'), bytes('k3')] }, newIds: [70, 71, 72, 73, 74, 75, 76, 77] });
      await waitFor('split at both keys', () => newLeader.host.peer(70) !== undefined && newLeader.host.peer(74) !== undefined && regionOf(newLeader).epoch.version === 4);
      assert.deepEqual(regionOf(newLeader).endKey, bytes('k2'));
      assert.deepEqual([newLeader.host.peer(70)!.region.startKey, newLeader.host.peer(70)!.region.endKey], [bytes('k2'), bytes('k3')]);
      assert.deepEqual([newLeader.host.peer(74)!.region.startKey, newLeader.host.peer(74)!.region.endKey], [bytes('k3'), bytes('k5')]);
    } finally {
      await close();
    }
  });
});
