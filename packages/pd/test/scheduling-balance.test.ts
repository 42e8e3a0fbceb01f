/**
 * balance-region, balance-leader and hot-region: which store gives, which takes, the
 * tolerance that keeps them from oscillating, and the isolation floor.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RegionInfo } from '../src/cluster/types.ts';
import { balanceLeaders, balanceRegions } from '../src/scheduling/balance.ts';
import { scheduleConfig } from '../src/scheduling/config.ts';
import { scheduleHotRegions } from '../src/scheduling/hot-region.ts';
import { GIB, MIB, allocator, region, renderAll, store, stores, view } from './scheduling-helpers.ts';

const config = scheduleConfig({});
const zoned = scheduleConfig({ locationLabels: ['zone', 'host'] });

/** n regions of 50 MiB on stores `on`, led round-robin by them unless `leader` is given. */
function many(n: number, on: readonly number[], leader?: number): RegionInfo[] {
  return Array.from({ length: n }, (_, i) => region(i + 1, { voters: on, leader: leader ?? on[i % on.length]!, bytes: 50 * MIB, last: i === n - 1 }));
}

describe('balance-region', () => {
  it('moves from the heaviest store to the empty one, followers first', () => {
    const ops = balanceRegions(view(stores(4), many(3, [1, 2, 3])), config, allocator(), 5);
    // s1..s3 hold 150 MiB, s4 none; after one move s1 holds 100 and s4 50: no gap over 2 × 50 MiB is left.
    assert.deepEqual(renderAll(ops), ['r2 balance-region: addLearner p1000@s4 > changeVoters +p1000@s4 -p201@s1']);
  });

  it('each move counts at once (influence): the next one comes from another store', () => {
    const ops = balanceRegions(view(stores(4), many(6, [1, 2, 3])), config, allocator(), 5);
    // 300/300/300/0 MiB -> 250/300/300/50 -> 250/250/300/100 -> 250/250/250/150, then no gap over 100 MiB.
    assert.deepEqual(renderAll(ops), [
      'r2 balance-region: addLearner p1000@s4 > changeVoters +p1000@s4 -p201@s1',
      'r1 balance-region: addLearner p1002@s4 > changeVoters +p1002@s4 -p102@s2',
      'r4 balance-region: addLearner p1004@s4 > changeVoters +p1004@s4 -p403@s3',
    ]);
  });

  it('stores fill by their capacity: a disk three times larger takes every region it can, then nothing moves back', () => {
    // s1..s3 hold 300 MiB each on 100 GiB, s4 nothing on 300 GiB. By bytes alone s4 would get 3
    // regions (the test above); by fill it gets all 6: at 200/200/200/300 MiB s1..s3 are still
    // the fuller (600 against 300 in fill units), but s4 already holds every region.
    const disks = [store(1, { capacity: 100 * GIB }), store(2, { capacity: 100 * GIB }), store(3, { capacity: 100 * GIB }), store(4, { capacity: 300 * GIB })];
    const ops = balanceRegions(view(disks, many(6, [1, 2, 3])), config, allocator(), 10);
    assert.equal(ops.length, 6, renderAll(ops).join('\n'));
    assert.ok(renderAll(ops).every((op) => / \+p\d+@s4 /.test(op)), renderAll(ops).join('\n'));
    assert.match(ops[0]!.reason, /on 33% of the largest store's capacity/);
    // Where they end up, nothing moves (no move invites its reverse).
    const pairs = [[1, 2], [1, 3], [2, 3], [1, 2], [1, 3], [2, 3]] as const;
    const placed = pairs.map(([a, b], i) => region(i + 1, { voters: [4, a, b], leader: a, bytes: 50 * MIB, last: i === 5 }));
    assert.deepEqual(balanceRegions(view(disks, placed), config, allocator(), 10), []);
  });

  it('while a store has not reported its capacity, balance goes by bytes alone', () => {
    const disks = [store(1, { capacity: 0, available: 0 }), store(2, { capacity: 100 * GIB }), store(3, { capacity: 100 * GIB }), store(4, { capacity: 300 * GIB })];
    const ops = balanceRegions(view(disks, many(6, [1, 2, 3])), config, allocator(), 10);
    assert.equal(ops.length, 3, renderAll(ops).join('\n'));
  });

  it('within tolerance: nothing moves', () => {
    const regions = [...many(2, [1, 2, 3]), region(3, { voters: [4, 2, 3], bytes: 50 * MIB, last: true })];
    assert.deepEqual(balanceRegions(view(stores(4), regions), config, allocator(), 5), []);
  });

  it('a move never lowers isolation: only the replica whose zone the target shares moves', () => {
    const storeList = [store(1, { zone: 'a' }), store(2, { zone: 'b' }), store(3, { zone: 'c' }), store(4, { zone: 'c' })];
    const ops = balanceRegions(view(storeList, many(3, [1, 2, 3])), zoned, allocator(), 1);
    assert.deepEqual(renderAll(ops), ['r1 balance-region: addLearner p1000@s4 > changeVoters +p1000@s4 -p103@s3']);
  });

  it('unhealthy regions and busy regions are not balanced', () => {
    const regions = many(3, [1, 2, 3]).map((r) => ({ ...r, pendingPeerIds: [r.meta.peers[1]!.id] }));
    assert.deepEqual(balanceRegions(view(stores(4), regions), config, allocator(), 5), []);
  });
});

describe('balance-leader', () => {
  it('transfers from the store leading most to the voter store leading fewest, until within tolerance', () => {
    const ops = balanceLeaders(view(stores(3), many(6, [1, 2, 3], 1)), config, allocator(), 8);
    // 6/0/0 -> 5/1/0 -> 4/1/1 -> 3/2/1: a gap of 2 is within 2 × tolerantSizeRatio.
    assert.deepEqual(renderAll(ops), ['r1 balance-leader: transferLeader s1->s2', 'r2 balance-leader: transferLeader s1->s3', 'r3 balance-leader: transferLeader s1->s2']);
  });

  it('at tolerantSizeRatio 0.5 a gap of 2 moves: a new store leads one of 2/2/2/0', () => {
    const regions = Array.from({ length: 6 }, (_, i) => region(i + 1, { voters: [1 + (i % 3), 1 + ((i + 1) % 3), 4], leader: 1 + (i % 3), bytes: 50 * MIB, last: i === 5 }));
    assert.deepEqual(renderAll(balanceLeaders(view(stores(4), regions), config, allocator(), 8)), [], 'a gap of 2 is within the default tolerance');
    const even = scheduleConfig({ tolerantSizeRatio: 0.5 });
    assert.deepEqual(renderAll(balanceLeaders(view(stores(4), regions), even, allocator(), 8)), ['r1 balance-leader: transferLeader s1->s4']);
  });

  it('a store refusing writes (disk below its reserve) gives every leadership away, and takes none back', () => {
    const regions = Array.from({ length: 6 }, (_, i) => region(i + 1, { voters: [1, 2, 3], leader: 1 + (i % 3), last: i === 5 }));
    const storeList = [store(1, { refusingWrites: true }), store(2), store(3)];
    // 2/2/2 is balanced by counts; store 1's two leaderships go all the same.
    const ops = renderAll(balanceLeaders(view(storeList, regions), config, allocator(), 8));
    assert.deepEqual(ops, ['r1 balance-leader: transferLeader s1->s2', 'r4 balance-leader: transferLeader s1->s3']);
    assert.match(balanceLeaders(view(storeList, regions), config, allocator(), 1)[0]!.reason, /store 1 refuses writes/);
    // Once it leads nothing, 0/3/3 is a gap of 3, but no leadership goes to it.
    const after = regions.map((r, i) => region(i + 1, { voters: [1, 2, 3], leader: i % 2 === 0 ? 2 : 3, last: i === 5 }));
    assert.deepEqual(renderAll(balanceLeaders(view(storeList, after), config, allocator(), 8)), []);
    // The same cluster with room everywhere stays as it is.
    assert.deepEqual(renderAll(balanceLeaders(view(stores(3), regions), config, allocator(), 8)), []);
    // Nor when it is a region's only other voter, however many the leader's store leads.
    const pairs = Array.from({ length: 6 }, (_, i) => region(i + 1, { voters: [2, 1], last: i === 5 }));
    assert.deepEqual(renderAll(balanceLeaders(view(storeList, pairs), config, allocator(), 8)), []);
    assert.equal(balanceLeaders(view(stores(3), pairs), config, allocator(), 8).length, 2, 'with room it would take two (6/0 to 4/2)');
  });

  it('never to a pending peer or a store that is not up', () => {
    const storeList = [store(1), store(2), store(3, { state: 'disconnected', silentMs: 30_000 })];
    const regions = many(6, [1, 2, 3], 1).map((r) => ({ ...r, pendingPeerIds: [r.meta.peers[1]!.id] }));
    assert.deepEqual(balanceLeaders(view(storeList, regions), config, allocator(), 8), []);
  });
});

describe('hot-region', () => {
  const hot = (id: number, on: number[], write: number, read = 0, last = false): RegionInfo =>
    region(id, { voters: on, write: write * MIB, read: read * MIB, bytes: 10 * MIB, last });

  it('write leaders first, then a hot replica off the most loaded store', () => {
    const regions = [hot(1, [1, 2, 3], 10), hot(2, [1, 2, 3], 10), hot(3, [1, 2, 3], 10, 0, true)];
    const ops = scheduleHotRegions(view(stores(4), regions), config, allocator(), 4);
    assert.deepEqual(renderAll(ops), [
      // s1 leads 30 MiB/s of hot writes: hand 10 to s2 (gap 30 > 2 × 10).
      'r1 hot-region: transferLeader s1->s2',
      // s1..s3 each hold 30 MiB/s of hot replicas, s4 none: move one (its leader moves first).
      'r2 hot-region: transferLeader s1->s3 > addLearner p1001@s4 > changeVoters +p1001@s4 -p201@s1',
    ]);
  });

  it('read-hot leaders spread too; cold regions are ignored', () => {
    const regions = [hot(1, [1, 2, 3], 0, 10), hot(2, [1, 2, 3], 0, 10), hot(3, [1, 2, 3], 0, 10), hot(4, [1, 2, 3], 0, 1, true)];
    const ops = scheduleHotRegions(view(stores(3), regions), config, allocator(), 4);
    assert.deepEqual(renderAll(ops), ['r1 hot-region: transferLeader s1->s2']);
  });

  it('no hot region: nothing', () => {
    assert.deepEqual(scheduleHotRegions(view(stores(4), many(3, [1, 2, 3], 1)), config, allocator(), 4), []);
  });
});
