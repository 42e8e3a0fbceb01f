/**
 * The data disk's guard (disk-guard.ts): below the reserve a store refuses the writes that add
 * data (put, cas) with FLOTILLA_DISK_FULL and goes on with reads, deletes and replication.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { KvError, KvOp, KvRequest } from '@flotilla/wire';
import { DiskGuard, diskReserveAuto, type DiskSpace } from '../src/disk-guard.ts';
import { KvService } from '../src/kv-service.ts';
import { EPOCH, REGION, TestCluster, bytes, get, put, text, waitFor, type MemoryStore } from './harness.ts';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

/** A disk whose free space the test sets; counts the readings. */
class FakeDisk {
  availableBytes = 10 * GiB;
  capacityBytes = 100 * GiB;
  failing: Error | null = null;
  readings = 0;
  readonly probe = async (): Promise<DiskSpace> => {
    this.readings++;
    if (this.failing) throw this.failing;
    return { availableBytes: this.availableBytes, capacityBytes: this.capacityBytes };
  };
}

function guard(disk: FakeDisk, reserveBytes: number | 'auto', changes: boolean[] = [], errors: unknown[] = []): DiskGuard {
  return new DiskGuard({ storeId: 7, dir: '/unused', reserveBytes, checkMs: 60_000, probe: disk.probe, onChange: (low) => changes.push(low), onProbeError: (err) => errors.push(err) });
}

describe('disk guard', () => {
  test('refuses below the reserve, and accepts again only an eighth of the reserve above it', async () => {
    const disk = new FakeDisk();
    const changes: boolean[] = [];
    const g = guard(disk, 800 * MiB, changes);
    await g.start();
    try {
      assert.equal(g.refusal(), null);
      disk.availableBytes = 800 * MiB - 1;
      await g.check();
      assert.deepEqual(g.refusal(), { code: 'FLOTILLA_DISK_FULL', storeId: 7, availableBytes: 800 * MiB - 1, reserveBytes: 800 * MiB });
      // Back over the reserve, not yet over the margin (100 MiB): still refusing, with the new reading.
      disk.availableBytes = 850 * MiB;
      await g.check();
      const still = g.refusal();
      assert.equal(still?.code === 'FLOTILLA_DISK_FULL' ? still.availableBytes : null, 850 * MiB);
      disk.availableBytes = 900 * MiB;
      await g.check();
      assert.equal(g.refusal(), null);
      assert.deepEqual(changes, [true, false], 'one change each way');
      assert.deepEqual(g.status(), { low: false, reserveBytes: 800 * MiB, space: { availableBytes: 900 * MiB, capacityBytes: 100 * GiB } });
    } finally {
      g.stop();
    }
  });

  test('a store started on a full disk refuses from the first request: start() has read the disk', async () => {
    const disk = new FakeDisk();
    disk.availableBytes = 10 * MiB;
    const g = guard(disk, 100 * MiB);
    await g.start();
    g.stop();
    assert.equal(g.refusal()?.code, 'FLOTILLA_DISK_FULL');
  });

  test("'auto' keeps 5% of the filesystem, at most 2 GiB", async () => {
    assert.deepEqual(diskReserveAuto, { fraction: 0.05, bytesMax: 2 * GiB });
    const small = new FakeDisk();
    small.capacityBytes = 5 * GiB;
    small.availableBytes = 255 * MiB;
    const g = guard(small, 'auto');
    await g.check();
    assert.equal(g.status().reserveBytes, 256 * MiB);
    assert.equal(g.refusal()?.code, 'FLOTILLA_DISK_FULL');
    const large = new FakeDisk();
    large.capacityBytes = 1000 * GiB;
    large.availableBytes = 2 * GiB + 1;
    const h = guard(large, 'auto');
    await h.check();
    assert.equal(h.status().reserveBytes, 2 * GiB);
    assert.equal(h.refusal(), null);
  });

  test('a failed reading keeps the last state and is reported', async () => {
    const disk = new FakeDisk();
    const errors: unknown[] = [];
    const g = guard(disk, GiB, [], errors);
    disk.availableBytes = MiB;
    await g.check();
    disk.failing = new Error('EIO');
    disk.availableBytes = 50 * GiB;
    await g.check();
    assert.equal(errors.length, 1);
    assert.equal(g.refusal()?.code, 'FLOTILLA_DISK_FULL', 'still refusing: nothing says there is room');
  });

  test('reserve 0 never reads the disk; checks under way are joined, not doubled', async () => {
    const off = new FakeDisk();
    const g = guard(off, 0);
    await g.start();
    g.stop();
    assert.equal(off.readings, 0);
    assert.equal(g.refusal(), null);
    const disk = new FakeDisk();
    const h = guard(disk, GiB);
    await Promise.all([h.check(), h.check(), h.check()]);
    assert.equal(disk.readings, 1);
    assert.throws(() => guard(disk, -1), RangeError);
  });
});

describe('a store short of disk space', () => {
  const cluster = new TestCluster();
  after(() => cluster.closeAll());
  let refusal: KvError | null = null;
  const refusingService = (store: MemoryStore): KvService => new KvService(store.host, store.kv, () => refusal);
  let requestIds = 1;
  const handle = async (service: KvService, ...ops: KvOp[]) => {
    const request: KvRequest = { requestId: requestIds++, timeoutMs: 5_000, ops };
    const response = await service.handle(request);
    assert.ok('results' in response, JSON.stringify(response));
    return response.results;
  };
  const cas = (key: string, expected: string | null, value: string): KvOp => ({ op: 'cas', regionId: 1, regionEpoch: EPOCH, key: bytes(key), expected: expected === null ? null : bytes(expected), value: bytes(value) });
  const del = (key: string): KvOp => ({ op: 'delete', regionId: 1, regionEpoch: EPOCH, key: bytes(key) });

  test('refuses puts and compare-and-swaps it leads, nothing written; reads and deletes go on', async () => {
    for (const id of [1, 2, 3]) await cluster.startStore(id);
    for (const store of cluster.stores.values()) await store.host.bootstrapRegion(REGION);
    await waitFor('a leader', () => cluster.leaderOf(1) !== undefined);
    const leader = cluster.leaderOf(1)!;
    const service = refusingService(leader);
    assert.deepEqual(await handle(service, put('apple', 'red'), put('banana', 'yellow')), [{ op: 'put' }, { op: 'put' }]);

    refusal = { code: 'FLOTILLA_DISK_FULL', storeId: leader.id, availableBytes: 1, reserveBytes: 2 };
    const [refusedPut, refusedCas, deleted, read] = await handle(service, put('apple', 'yellow'), cas('cherry', null, 'dark'), del('banana'), get('apple'));
    assert.deepEqual(refusedPut, { op: 'error', error: refusal });
    assert.deepEqual(refusedCas, { op: 'error', error: refusal });
    assert.deepEqual(deleted, { op: 'delete' });
    assert.ok(read?.op === 'get');
    assert.equal(text(read.value), 'red', 'the refused put wrote nothing');
    assert.equal(await leader.kv.get(bytes('cherry')), null, 'the refused cas wrote nothing');

    // A replica that does not lead the region answers NotLeader as ever: the leader's disk counts.
    const follower = [...cluster.stores.values()].find((s) => s !== leader)!;
    const [notLeader] = await handle(refusingService(follower), put('apple', 'yellow'));
    assert.equal(notLeader?.op === 'error' ? notLeader.error.code : notLeader?.op, 'FLOTILLA_NOT_LEADER');

    refusal = null;
    assert.deepEqual(await handle(service, put('apple', 'yellow')), [{ op: 'put' }]);
    const [again] = await handle(service, get('apple'));
    assert.equal(again?.op === 'get' ? text(again.value) : null, 'yellow');
  });
});
