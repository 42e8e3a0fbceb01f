/**
 * Writes no quorum can take (disk-quorum.ts): a leader fails the writes of a region whose voters
 * are too many on stores critically short of disk, at once and with FLOTILLA_DISK_FULL, instead
 * of letting them time out — its admin proposals too; a store tells its peers when it crosses
 * that level, and only then.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { ConfState } from '@flotilla/raft';
import type { DiskReport } from '@flotilla/transport';
import type { KvOp, KvOpResult } from '@flotilla/wire';
import type { DiskChange } from '../src/disk-guard.ts';
import { PeerDisks, diskAnnouncer } from '../src/disk-quorum.ts';
import type { Peer, ProposalOutcome } from '../src/peer.ts';
import { EPOCH, REGION, TestCluster, bytes, get, put, run, text, waitFor, type MemoryStore } from './harness.ts';

const FULL: DiskReport = { refusesReplication: true, availableBytes: 100, reserveBytes: 1_000 };
const ROOM: DiskReport = { refusesReplication: false, availableBytes: 5_000, reserveBytes: 1_000 };

/** A region's peer as PeerDisks sees it: raft peer n lives on store 10·n. */
function peerWith(voters: number[], votersOutgoing: number[] = []): Peer {
  const config: ConfState = { voters, votersOutgoing, learners: [], learnersNext: [], autoLeave: false };
  return { node: { confState: () => config }, storeOf: (id: number) => id * 10 } as unknown as Peer;
}

/** Stores 1, 2 and 3 of `cluster`, each dropping replicated entries while `refuses(its id)`. */
async function startThree(cluster: TestCluster, refuses: (id: number) => boolean): Promise<[MemoryStore, MemoryStore, MemoryStore]> {
  for (const id of [1, 2, 3]) await cluster.startStore(id, undefined, {}, { refusesReplication: () => refuses(id) });
  return [1, 2, 3].map((id) => cluster.stores.get(id)!) as [MemoryStore, MemoryStore, MemoryStore];
}

/** REGION on every store of `cluster`, led by store 1 (answered). */
async function regionLedByStore1(cluster: TestCluster): Promise<MemoryStore> {
  for (const store of cluster.stores.values()) await store.host.bootstrapRegion(REGION);
  await waitFor('store 1 leads', async () => {
    const leader = cluster.leaderOf(1);
    if (leader !== undefined && leader.id !== 1) await leader.host.transferLeader(1, 1);
    return leader?.id === 1;
  });
  return cluster.stores.get(1)!;
}

describe('PeerDisks: may a quorum of the region take entries?', () => {
  test('a majority of voters on stores that take entries: yes; fewer: FLOTILLA_DISK_FULL naming one of the full stores', () => {
    const disks = new PeerDisks(10);
    const region = peerWith([1, 2, 3]);
    assert.equal(disks.quorumRefusal(region), null, 'no store said anything');
    disks.update(30, FULL);
    assert.equal(disks.quorumRefusal(region), null, 'two of three take entries');
    disks.update(20, { ...FULL, availableBytes: 7 });
    assert.deepEqual(disks.quorumRefusal(region), { code: 'FLOTILLA_DISK_FULL', storeId: 20, availableBytes: 7, reserveBytes: 1_000 });
    assert.equal(disks.refusingCount, 2);
    disks.update(20, ROOM);
    assert.equal(disks.quorumRefusal(region), null, 'store 20 has room again');
    disks.update(20, FULL);
    disks.update(20, null);
    assert.equal(disks.quorumRefusal(region), null, 'forgotten with its connection: not taken for full');
    assert.equal(disks.refusingCount, 1);
  });

  test("the leader's own store counts as taking entries; stores outside the region do not count", () => {
    const disks = new PeerDisks(10);
    disks.update(10, FULL); // what another store would relay about us: never ours to judge here
    disks.update(20, FULL);
    disks.update(90, FULL);
    assert.equal(disks.quorumRefusal(peerWith([1, 2, 3])), null);
    assert.notEqual(disks.quorumRefusal(peerWith([1, 2])), null, 'one of two voters is not a majority');
    assert.notEqual(disks.quorumRefusal(peerWith([2])), null);
  });

  test('in a joint configuration each half needs its own majority', () => {
    const disks = new PeerDisks(10);
    disks.update(40, FULL);
    disks.update(50, FULL);
    assert.equal(disks.quorumRefusal(peerWith([1, 2, 3])), null);
    assert.equal(disks.quorumRefusal(peerWith([1, 2, 3], [1, 4, 5]))?.code === 'FLOTILLA_DISK_FULL' ? 'refused' : 'taken', 'refused', 'the outgoing half lacks a majority');
    assert.equal(disks.quorumRefusal(peerWith([1, 4, 5], [1, 2, 3]))?.code, 'FLOTILLA_DISK_FULL', 'the incoming half lacks one');
  });
});

describe('diskAnnouncer', () => {
  test('tells the peers each time the store crosses its critical level, and only then', () => {
    const said: DiskReport[] = [];
    const announce = diskAnnouncer({ announceDiskState: (report) => void said.push(report) });
    const change = (low: boolean, critical: boolean, availableBytes: number): DiskChange => ({ low, critical, space: { availableBytes, capacityBytes: 10_000 }, reserveBytes: 1_000 });
    announce(change(true, false, 900));
    assert.deepEqual(said, [], 'below the reserve only: nothing to tell (a healthy store sends no frame)');
    announce(change(true, true, 400));
    announce(change(false, false, 2_000));
    announce(change(true, false, 900));
    assert.deepEqual(said, [
      { refusesReplication: true, availableBytes: 400, reserveBytes: 1_000 },
      { refusesReplication: false, availableBytes: 2_000, reserveBytes: 1_000 },
    ]);
  });
});

describe('a region with two of three voters on stores critically short of disk', () => {
  const cluster = new TestCluster();
  after(() => cluster.closeAll());
  const refusing = new Map<number, boolean>();
  /** A store's disk crosses its critical level: it drops appends with entries and tells its peers. */
  const setCritical = (store: MemoryStore, critical: boolean): void => {
    refusing.set(store.id, critical);
    store.transport.announceDiskState(critical ? FULL : ROOM);
  };
  const write = (op: KvOp['op'], key: string): KvOp => {
    const at = { regionId: 1, regionEpoch: EPOCH };
    switch (op) {
      case 'put':
        return put(key, 'v');
      case 'cas':
        return { ...at, op, key: bytes(key), expected: null, value: bytes('v') };
      case 'delete':
        return { ...at, op, key: bytes(key) };
      default:
        return { ...at, op: 'deleteRange', start: bytes(key), end: bytes(`${key}~`) };
    }
  };
  const codeOf = (r: KvOpResult | undefined): string | undefined => (r?.op === 'error' ? r.error.code : r?.op);

  test('the leader refuses every write at once with FLOTILLA_DISK_FULL; reads go on; writes come back with room', async () => {
    const [, s2, s3] = await startThree(cluster, (id) => refusing.get(id) === true);
    const leader = await regionLedByStore1(cluster);
    assert.deepEqual(await run(leader, put('apple', 'red')), [{ op: 'put' }]);

    setCritical(s3, true);
    await waitFor('the leader heard store 3', () => leader.host.peerDisks.refusingCount === 1);
    assert.deepEqual(await run(leader, put('apple', 'green')), [{ op: 'put' }], 'stores 1 and 2 still make a quorum');

    setCritical(s2, true);
    await waitFor('the leader heard store 2', () => leader.host.peerDisks.refusingCount === 2);
    const results = await run(leader, write('put', 'apple'), write('cas', 'cherry'), write('delete', 'apple'), write('deleteRange', 'a'), get('apple'));
    assert.deepEqual(results.slice(0, 4).map(codeOf), ['FLOTILLA_DISK_FULL', 'FLOTILLA_DISK_FULL', 'FLOTILLA_DISK_FULL', 'FLOTILLA_DISK_FULL'], JSON.stringify(results));
    const refusal = results[0]?.op === 'error' ? results[0].error : null;
    assert.deepEqual(refusal, { code: 'FLOTILLA_DISK_FULL', storeId: 2, availableBytes: FULL.availableBytes, reserveBytes: FULL.reserveBytes });
    assert.equal(results[4]?.op === 'get' ? text(results[4].value) : codeOf(results[4]), 'green', 'reads go on, and nothing refused was written');
    const follower = await run(s2, put('apple', 'x'));
    assert.equal(codeOf(follower[0]), 'FLOTILLA_NOT_LEADER', 'a follower answers as ever');

    setCritical(s2, false);
    await waitFor('the leader heard store 2 has room', () => leader.host.peerDisks.refusingCount === 1);
    assert.deepEqual(await run(leader, put('apple', 'blue')), [{ op: 'put' }]);

    // Store 3 restarts (with room, saying nothing): the leader forgot what it said with its connection.
    await cluster.stop(3);
    refusing.delete(3);
    await waitFor('the leader forgot store 3', () => leader.host.peerDisks.refusingCount === 0);
  });
});

describe('admin proposals of a region with two of three voters on stores critically short of disk', () => {
  const cluster = new TestCluster();
  after(() => cluster.closeAll());
  const refusing = new Set<number>();

  /** The outcome if it settled before the next event-loop turn (a refusal settles at once), else 'pending'. */
  const atOnce = (outcome: Promise<ProposalOutcome>): Promise<ProposalOutcome | 'pending'> =>
    Promise.race([outcome, new Promise<'pending'>((resolve) => setImmediate(() => resolve('pending')))]);

  test('membership changes, splits and merges fail at once with FLOTILLA_DISK_FULL, nothing proposed; they go through with room again', async () => {
    await startThree(cluster, (id) => refusing.has(id));
    const leader = await regionLedByStore1(cluster);
    assert.equal((await leader.host.split(1, bytes('h'), 2, [21, 22, 23])).kind, 'applied');
    await waitFor('every store holds region 2', () => [...cluster.stores.values()].every((s) => s.host.peer(2) !== undefined));

    for (const id of [2, 3]) {
      refusing.add(id);
      cluster.stores.get(id)!.transport.announceDiskState(FULL);
    }
    await waitFor('the leader heard both', () => leader.host.peerDisks.refusingCount === 2);
    const lastIndex = leader.host.peer(1)!.node.status().lastIndex;
    const refused = { kind: 'failed', error: { code: 'FLOTILLA_DISK_FULL', storeId: 2, availableBytes: FULL.availableBytes, reserveBytes: FULL.reserveBytes } };
    assert.deepEqual(await atOnce(leader.host.changeMembership(1, [{ type: 'addLearner', peerId: 14, storeId: 4 }])), refused, 'a learner');
    assert.deepEqual(await atOnce(leader.host.changeMembership(1, [{ type: 'remove', peerId: 13 }])), refused, "even the removal of a full store's replica: the old quorum must commit it");
    assert.deepEqual(await atOnce(leader.host.split(1, bytes('c'), 3, [31, 32, 33])), refused, 'a split');
    assert.deepEqual(await atOnce(leader.host.prepareMerge(1, 2)), refused, 'a merge');
    assert.equal(leader.host.peer(1)!.node.status().lastIndex, lastIndex, 'nothing was proposed');

    refusing.delete(2);
    cluster.stores.get(2)!.transport.announceDiskState(ROOM);
    await waitFor('the leader heard store 2 has room', () => leader.host.peerDisks.refusingCount === 1);
    assert.equal((await leader.host.split(1, bytes('c'), 3, [31, 32, 33])).kind, 'applied', 'stores 1 and 2 make a quorum again');
  });
});

describe('a leader withholds entries and snapshots from a store that said it refuses them', () => {
  const cluster = new TestCluster();
  after(() => cluster.closeAll());
  const refusing = new Set<number>([3]);

  test('nothing with entries reaches the store until it has room; then it catches up by a snapshot', async () => {
    const [s1, s2, s3] = await startThree(cluster, (id) => refusing.has(id));
    s3.transport.announceDiskState(FULL);
    await waitFor('stores 1 and 2 heard store 3', () => s1.host.peerDisks.refusingCount === 1 && s2.host.peerDisks.refusingCount === 1);
    await regionLedByStore1(cluster);
    for (const fruit of ['apple', 'banana', 'cherry']) assert.deepEqual(await run(s1, put(fruit, 'ripe')), [{ op: 'put' }]);
    await waitFor('the leader withheld appends from store 3', () => s1.host.stats().replicationWithheldForDisk > 0);
    // Store 3 is behind the leader's log start now: what it needs is a snapshot, which is withheld too.
    await s1.host.compactRegionLog(1);
    const withheld = s1.host.stats().replicationWithheldForDisk;
    await waitFor('the leader withheld more (a snapshot, or appends)', () => s1.host.stats().replicationWithheldForDisk > withheld);
    assert.equal(s3.host.stats().replicationRefusedForDisk, 0, 'nothing reached store 3 that it had to drop');
    assert.equal(s3.host.stats().snapshotsReceived, 0);

    refusing.delete(3);
    s3.transport.announceDiskState(ROOM);
    const commit = s1.host.peer(1)!.node.status().commit;
    await waitFor('store 3 caught up by a snapshot', () => (s3.host.peer(1)?.applied ?? 0) >= commit, 30_000);
    assert.ok(s3.host.stats().snapshotsReceived > 0, 'by a snapshot: the leader had compacted its log');
  });
});
