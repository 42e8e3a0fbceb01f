/**
 * The data disk's guard (disk-guard.ts): below the reserve a store refuses the writes that add
 * data (put, cas) with FLOTILLA_DISK_FULL and goes on with reads, deletes and replication.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { KvError, KvOp, KvRequest } from '@flotilla/wire';
import { CRITICAL_FRACTION, DiskGuard, diskReserveAuto, type DiskChange, type DiskSpace } from '../src/disk-guard.ts';
import { KvService } from '../src/kv-service.ts';
import { EPOCH, REGION, TestCluster, bytes, get, put, run, text, waitFor, type MemoryStore } from './harness.ts';

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
  return new DiskGuard({ storeId: 7, dir: '/unused', reserveBytes, checkMs: 60_000, probe: disk.probe, onChange: (change) => changes.push(change.low), onProbeError: (err) => errors.push(err) });
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
      assert.deepEqual(g.status(), { low: false, critical: false, reserveBytes: 800 * MiB, space: { availableBytes: 900 * MiB, capacityBytes: 100 * GiB } });
    } finally {
      g.stop();
    }
  });

  test('below half the reserve it refuses replication too, and takes it again an eighth of the reserve above that', async () => {
    const disk = new FakeDisk();
    const changes: DiskChange[] = [];
    const g = new DiskGuard({ storeId: 7, dir: '/unused', reserveBytes: 800 * MiB, checkMs: 60_000, probe: disk.probe, onChange: (c) => changes.push(c) });
    const state = async (availableBytes: number): Promise<[boolean, boolean]> => {
      disk.availableBytes = availableBytes;
      await g.check();
      assert.equal(g.refusesWrites(), g.refusal() !== null, 'refusesWrites() and refusal() agree');
      return [g.refusesWrites(), g.refusesReplication()];
    };
    assert.deepEqual(await state(500 * MiB), [true, false], 'below the reserve, above half of it: writes refused, replication taken');
    assert.deepEqual(await state(400 * MiB - 1), [true, true], 'below half the reserve: both refused');
    assert.deepEqual(await state(450 * MiB), [true, true], 'back over half the reserve, not by the margin (100 MiB): still refused');
    assert.deepEqual(await state(500 * MiB), [true, false], 'over it by the margin: replication again, writes still refused');
    assert.deepEqual(await state(10 * MiB), [true, true], 'straight to the bottom: both at once');
    assert.deepEqual(await state(2 * GiB), [false, false], 'straight back up: both at once');
    assert.deepEqual(
      changes.map((c) => [c.low, c.critical]),
      [[true, false], [true, true], [true, false], [true, true], [false, false]],
      'one change per move between states, none while a state holds',
    );
    assert.deepEqual(g.status(), { low: false, critical: false, reserveBytes: 800 * MiB, space: { availableBytes: 2 * GiB, capacityBytes: 100 * GiB } });
    assert.equal(CRITICAL_FRACTION, 1 / 2);
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

describe('a store whose disk is critically short (refusesReplication)', () => {
  // Compaction after 8 applied entries: the leader's log moves past what the refusing store has,
  // so it catches up by snapshot, which it must refuse while short of space.
  const cluster = new TestCluster(8);
  after(() => cluster.closeAll());

  test('drops appends and refuses snapshots while the others commit; catches up once it has room', async () => {
    let refusing = false;
    for (const id of [1, 2]) await cluster.startStore(id);
    const short = await cluster.startStore(3, undefined, {}, { refusesReplication: () => refusing });
    for (const store of cluster.stores.values()) await store.host.bootstrapRegion(REGION);
    await waitFor('a leader on a store with room', async () => {
      const leader = cluster.leaderOf(1);
      if (leader === short) await short.host.transferLeader(1, 1);
      return leader !== undefined && leader !== short;
    });
    const leader = cluster.leaderOf(1)!;
    assert.deepEqual(await run(leader, put('before', '1')), [{ op: 'put' }]);
    await waitFor('the short store applied the first put', async () => text(await short.kv.get(bytes('before'))) === '1');

    refusing = true;
    for (let i = 0; i < 20; i++) assert.deepEqual(await run(leader, put(`k${i}`, `v${i}`)), [{ op: 'put' }], 'committed by the two stores with room');
    const other = cluster.stores.get(leader.id === 1 ? 2 : 1)!;
    await waitFor('the other store with room applied them', async () => text(await other.kv.get(bytes('k19'))) === 'v19');
    await waitFor('appends and a snapshot refused', () => short.host.stats().replicationRefusedForDisk > 0 && leader.host.stats().snapshotsSent > 0);
    assert.equal(await short.kv.get(bytes('k0')), null, 'nothing replicated reached the short store');
    assert.equal(short.host.stats().snapshotsReceived, 0);

    refusing = false;
    await waitFor('the short store caught up', async () => text(await short.kv.get(bytes('k19'))) === 'v19', 10_000);
    assert.ok(short.host.stats().snapshotsReceived > 0, 'by snapshot: the log it needed was compacted meanwhile');
  });
});
