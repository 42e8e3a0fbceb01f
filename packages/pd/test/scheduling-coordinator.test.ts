/**
 * The coordinator: priority (repair first), one operator per region (merge targets held too),
 * limits per origin counting running operators, scheduler switches and intervals, and the
 * region history it keeps for the merge cooldown and load split.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ClusterView, RegionInfo } from '../src/cluster/types.ts';
import { scheduleConfig } from '../src/scheduling/config.ts';
import { newSchedulerState, schedule } from '../src/scheduling/coordinator.ts';
import { buildMerge } from '../src/scheduling/operators.ts';
import { MIB, NOW, allocator, region, renderAll, store, stores, view } from './scheduling-helpers.ts';

const MINUTE = 60_000;
const quiet = { balanceRegion: { enabled: false }, balanceLeader: { enabled: false }, hotRegion: { enabled: false } };

describe('coordinator', () => {
  it('repair comes first and the most urgent region first within the replica limit', () => {
    const config = scheduleConfig({ replicaScheduleLimit: 1, schedulers: quiet });
    const storeList = [store(1), store(2), store(3, { state: 'down', silentMs: 60 * MINUTE }), store(4), store(5)];
    const regions = [region(1, { voters: [1, 2, 4], learners: [5] }), region(2, { voters: [1, 3] }), region(3, { voters: [1, 2] })];
    const ops = schedule(view(storeList, regions), config, allocator(), newSchedulerState());
    // r2 has one good voter (s3 is down), r3 two, r1 three. s4 and s5 hold one replica each, s2 two.
    assert.deepEqual(renderAll(ops), ['r2 replica-checker: addLearner p1000@s4 > changeVoters +p1000@s4 -p203@s3']);
  });

  it('running operators count against their limit; other origins keep their own', () => {
    const config = scheduleConfig({ replicaScheduleLimit: 1, schedulers: { ...quiet, balanceLeader: { enabled: true } } });
    const regions = [region(1, { voters: [1, 2] }), region(2, { voters: [1, 2] }), ...[3, 4, 5, 6, 7, 8].map((id) => region(id, { voters: [1, 2, 3], last: id === 8 }))];
    const first = schedule(view(stores(4), regions), config, allocator(), newSchedulerState());
    // One repair (the limit), though r2 needs one too; s1 leads all 8: leaders go until 4/2/2.
    assert.deepEqual(renderAll(first), [
      'r1 replica-checker: addLearner p1000@s4 > changeVoters +p1000@s4',
      'r2 balance-leader: transferLeader s1->s2',
      'r3 balance-leader: transferLeader s1->s3',
      'r4 balance-leader: transferLeader s1->s2',
      'r5 balance-leader: transferLeader s1->s3',
    ]);
    const replicaOp = first.filter((op) => op.origin === 'replica-checker');
    const again = schedule(view(stores(4), regions, replicaOp, NOW + 10 * MINUTE), config, allocator(), newSchedulerState());
    assert.equal(again.filter((op) => op.origin === 'replica-checker').length, 0, 'the replica limit is full');
  });

  it('one operator per region: a region too big and under-replicated gets the repair only', () => {
    const config = scheduleConfig({ schedulers: quiet });
    const regions = [region(1, { voters: [1, 2], bytes: 500 * MIB, last: true })];
    assert.deepEqual(renderAll(schedule(view(stores(3), regions), config, allocator(), newSchedulerState())), ['r1 replica-checker: addLearner p1000@s3 > changeVoters +p1000@s3']);
  });

  it('a running merge holds its target region too', () => {
    const config = scheduleConfig({ schedulers: quiet });
    const regions = [region(1, { voters: [1, 2, 3] }), region(2, { voters: [1, 2], last: true })];
    const meta = { origin: 'merge-checker' as const, reason: 'test', priority: 40, nowMs: NOW, timeouts: config.operatorTimeoutMs };
    const running = [buildMerge(regions[0]!, regions[1]!, meta, allocator(1))];
    assert.equal(schedule(view(stores(3), regions), config, allocator(), newSchedulerState()).length, 1, 'control: r2 needs a replica');
    assert.deepEqual(schedule(view(stores(3), regions, running), config, allocator(), newSchedulerState()), []);
  });

  it('disabled checkers and schedulers make nothing', () => {
    const config = scheduleConfig({ checkers: { replicaChecker: { enabled: false } }, schedulers: quiet });
    assert.deepEqual(schedule(view(stores(3), [region(1, { voters: [1], last: true })]), config, allocator(), newSchedulerState()), []);
  });

  it('a scheduler runs at most once per interval', () => {
    const config = scheduleConfig({ schedulers: { ...quiet, balanceLeader: { enabled: true, intervalMs: 5000 } } });
    const regions = [3, 4, 5, 6].map((id) => region(id, { voters: [1, 2, 3], start: id, end: id + 1 }));
    const state = newSchedulerState();
    const at = (ms: number): ClusterView => view(stores(3), regions, [], ms);
    // s1 leads all 4: two transfers (4/0/0 -> 2/1/1) whenever the scheduler runs.
    assert.equal(schedule(at(NOW), config, allocator(), state).length, 2);
    assert.equal(schedule(at(NOW + 4999), config, allocator(), state).length, 0);
    assert.equal(schedule(at(NOW + 5000), config, allocator(), state).length, 2);
  });

  describe('region history: merge cooldown and load split from what the coordinator saw', () => {
    const config = scheduleConfig({ schedulers: quiet, splitMergeCooldownMs: 10 * MINUTE, loadSplitSpanMs: MINUTE });
    const pair = (version: number): RegionInfo[] => [
      region(1, { voters: [1, 2, 3], bytes: MIB, keys: 10, version }),
      region(2, { voters: [1, 2, 3], bytes: MIB, keys: 10, last: true }),
    ];

    it('regions first seen now wait a cooldown; a version change restarts it', () => {
      const state = newSchedulerState();
      const run = (regions: RegionInfo[], ms: number): string[] => renderAll(schedule(view(stores(3), regions, [], ms), config, allocator(), state));
      assert.deepEqual(run(pair(1), NOW), []);
      assert.deepEqual(run(pair(2), NOW + 9 * MINUTE), [], 'r1 split again: its cooldown restarts');
      assert.deepEqual(run(pair(2), NOW + 10 * MINUTE), [], 'r2 cooled down, r1 has 1 min to go');
      assert.deepEqual(run(pair(2), NOW + 19 * MINUTE), ['r1 merge-checker: merge into r2']);
    });

    it('forgets regions it no longer sees (bounded memory)', () => {
      const state = newSchedulerState();
      schedule(view(stores(3), pair(1)), config, allocator(), state);
      assert.deepEqual([...state.regionTimes.keys()], [1, 2]);
      schedule(view(stores(3), [region(2, { voters: [1, 2, 3], start: 0, last: true })], [], NOW + 1), config, allocator(), state);
      assert.deepEqual([...state.regionTimes.keys()], [2]);
    });

    it('load split after a span of continuous heat; cooling down resets it', () => {
      const state = newSchedulerState();
      const hot = (write: number): RegionInfo[] => [region(1, { voters: [1, 2, 3], bytes: 50 * MIB, keys: 1000, write, last: true })];
      const run = (write: number, ms: number): string[] => renderAll(schedule(view(stores(3), hot(write), [], ms), config, allocator(), state));
      assert.deepEqual(run(2 * MIB, NOW), []);
      assert.deepEqual(run(0, NOW + 30_000), []);
      assert.deepEqual(run(2 * MIB, NOW + 40_000), []);
      assert.deepEqual(run(2 * MIB, NOW + 99_999), []);
      assert.deepEqual(run(2 * MIB, NOW + 100_000), ['r1 split-checker: split middle']);
    });
  });
});
