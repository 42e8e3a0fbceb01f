/**
 * Operator builders (exact steps), stepDone from heartbeats, and operatorProgress judgements:
 * running / finished / timedOut / stale, each with the case that tells them apart.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Operator, RegionInfo, RegionPeer } from '../src/cluster/types.ts';
import { DEFAULT_SCHEDULE_CONFIG } from '../src/scheduling/config.ts';
import {
  buildAddReplica,
  buildMerge,
  buildMovePeer,
  buildRemoveReplica,
  buildSplit,
  buildTransferLeader,
  operatorProgress,
  regionsHeldBy,
  stepDone,
  type OperatorMeta,
} from '../src/scheduling/operators.ts';
import { NOW, allocator, key, region, render } from './scheduling-helpers.ts';

const META: OperatorMeta = { origin: 'admin', reason: 'test', priority: 60, nowMs: NOW, timeouts: DEFAULT_SCHEDULE_CONFIG.operatorTimeoutMs };
const r1 = region(1, { voters: [1, 2, 3] });

describe('operator builders', () => {
  const cases: [string, () => Operator | null, string][] = [
    ['move a follower', () => buildMovePeer(r1, 3, 4, META, allocator()), 'r1 admin: addLearner p1000@s4 > changeVoters +p1000@s4 -p103@s3'],
    [
      'move the leader: transfer first',
      () => buildMovePeer(r1, 1, 4, META, allocator(), 2),
      'r1 admin: transferLeader s1->s2 > addLearner p1000@s4 > changeVoters +p1000@s4 -p101@s1',
    ],
    [
      'move the only voter: promote, hand over, then remove',
      () => buildMovePeer(region(1, { voters: [1] }), 1, 4, META, allocator()),
      'r1 admin: addLearner p1000@s4 > changeVoters +p1000@s4 > transferLeader s1->s4 > removePeer p101@s1',
    ],
    ['move a learner', () => buildMovePeer(region(1, { voters: [1, 2, 3], learners: [4] }), 4, 5, META, allocator()), 'r1 admin: addLearner p1000@s5 > removePeer p104@s4'],
    ['add a replica', () => buildAddReplica(region(1, { voters: [1, 2] }), 3, META, allocator()), 'r1 admin: addLearner p1000@s3 > changeVoters +p1000@s3'],
    ['remove a follower', () => buildRemoveReplica(r1, 2, META, allocator()), 'r1 admin: removePeer p102@s2'],
    ['remove the leader: transfer first', () => buildRemoveReplica(r1, 1, META, allocator(), 3), 'r1 admin: transferLeader s1->s3 > removePeer p101@s1'],
    ['transfer leader', () => buildTransferLeader(r1, 2, META, allocator()), 'r1 admin: transferLeader s1->s2'],
    ['split at the middle', () => buildSplit(r1, [], META, allocator()), 'r1 admin: split middle'],
    ['split at a key', () => buildSplit(region(1, { voters: [1], start: 0, end: 9 }), [key(5)], META, allocator()), 'r1 admin: split k0005'],
    ['merge into the next region', () => buildMerge(r1, region(2, { voters: [1, 2, 3] }), META, allocator()), 'r1 admin: merge into r2'],
  ];
  for (const [name, build, expected] of cases) {
    it(name, () => {
      const op = build();
      assert.ok(op !== null);
      assert.equal(render(op), expected);
    });
  }

  it('the leader with no successor is not removed', () => {
    assert.equal(buildRemoveReplica(region(1, { voters: [1] }), 1, META, allocator()), null);
  });

  it('refuses impossible operators (bugs in the caller)', () => {
    assert.throws(() => buildMovePeer(r1, 3, 2, META, allocator()), /one replica of a region per store/);
    assert.throws(() => buildAddReplica(r1, 1, META, allocator()), /one replica of a region per store/);
    assert.throws(() => buildSplit(region(1, { voters: [1], start: 3, end: 5 }), [key(5)], META, allocator()), /strictly inside/);
    assert.throws(() => buildMerge(r1, region(3, { voters: [1, 2, 3] }), META, allocator()), /adjacent/);
    assert.throws(() => buildMovePeer(r1, 1, 4, META, allocator(), 1), /another healthy voter/);
  });

  it('operators carry epoch, timeout by kind, and hold their regions', () => {
    const move = buildMovePeer(region(1, { voters: [1, 2, 3], version: 4, confVer: 7 }), 3, 4, META, allocator());
    assert.deepEqual(move.regionEpoch, { version: 4, confVer: 7 });
    assert.equal(move.timeoutMs, META.timeouts.peer);
    assert.equal(buildTransferLeader(r1, 2, META, allocator()).timeoutMs, META.timeouts.leader);
    const merge = buildMerge(r1, region(2, { voters: [1, 2, 3] }), META, allocator());
    assert.equal(merge.timeoutMs, META.timeouts.merge);
    assert.deepEqual(regionsHeldBy(merge), [1, 2]);
  });
});

/** The region after some membership edits, as a later heartbeat would show it. */
function heartbeat(base: RegionInfo, edit: { peers?: RegionPeer[]; leader?: number; version?: number; confVer?: number }): RegionInfo {
  const epoch = { version: edit.version ?? base.meta.epoch.version, confVer: edit.confVer ?? base.meta.epoch.confVer };
  return { ...base, meta: { ...base.meta, epoch, peers: edit.peers ?? base.meta.peers }, leaderPeerId: edit.leader ?? base.leaderPeerId };
}

const voter = (id: number, storeId: number): RegionPeer => ({ id, storeId, role: 'voter' });
const learner = (id: number, storeId: number): RegionPeer => ({ id, storeId, role: 'learner' });

describe('stepDone and operatorProgress', () => {
  // r1 on stores 1 (leader), 2, 3; move s1 -> s4 with leadership to s2 first; new peer 1000.
  const move = buildMovePeer(r1, 1, 4, META, allocator(), 2);
  const afterTransfer = heartbeat(r1, { leader: 102 });
  const afterLearner = heartbeat(afterTransfer, { peers: [voter(101, 1), voter(102, 2), voter(103, 3), learner(1000, 4)], confVer: 2 });
  const joint = heartbeat(afterTransfer, { peers: [voter(101, 1), voter(102, 2), voter(103, 3), voter(1000, 4)], confVer: 3 });
  const afterLeave = heartbeat(afterTransfer, { peers: [voter(102, 2), voter(103, 3), voter(1000, 4)], confVer: 4 });

  it('stepDone judges each step from the heartbeat', () => {
    const [transfer, add, change] = move.steps;
    assert.ok(transfer !== undefined && add !== undefined && change !== undefined);
    assert.equal(stepDone(transfer, r1, 1, move.regionEpoch), false);
    assert.equal(stepDone(transfer, afterTransfer, 2, move.regionEpoch), true);
    assert.equal(stepDone(add, afterTransfer, 2, move.regionEpoch), false);
    assert.equal(stepDone(add, afterLearner, 2, move.regionEpoch), true);
    assert.equal(stepDone(add, { ...afterLearner, pendingPeerIds: [1000] }, 2, move.regionEpoch), false, 'a learner still catching up is not done: it would be promoted without its data');
    assert.equal(stepDone(add, { ...afterLearner, downPeerIds: [1000] }, 2, move.regionEpoch), false, 'nor one that does not answer');
    assert.equal(stepDone(change, joint, 2, move.regionEpoch), false, 'still joint: the old voter is outgoing');
    assert.equal(stepDone(change, afterLeave, 2, move.regionEpoch), true);
  });

  const at = NOW + 1000;
  const progress: [string, RegionInfo | undefined, number, number, unknown][] = [
    ['nothing done yet', r1, 0, at, { state: 'running', step: 0 }],
    ['leader moved', afterTransfer, 0, at, { state: 'running', step: 1 }],
    ['learner added', afterLearner, 1, at, { state: 'running', step: 2 }],
    ['joint, half way', joint, 2, at, { state: 'running', step: 2 }],
    ['done', afterLeave, 2, at, { state: 'finished' }],
    ['done late still counts as done', afterLeave, 2, NOW + META.timeouts.peer + 1, { state: 'finished' }],
    ['timed out', afterLearner, 1, NOW + META.timeouts.peer, { state: 'timedOut', step: 2 }],
    ['fromStep is not rewound when the leader moves back', heartbeat(afterLearner, { leader: 101 }), 1, at, { state: 'running', step: 2 }],
    ['older heartbeat than the operator: no judgement', heartbeat(r1, { confVer: 0 }), 1, at, { state: 'running', step: 1 }],
  ];
  for (const [name, hb, from, now, expected] of progress) {
    it(`progress: ${name}`, () => assert.deepEqual(operatorProgress(move, hb, now, from), expected));
  }

  const stale: [string, Operator, RegionInfo | undefined, RegExp][] = [
    ['a split under a move', move, heartbeat(afterTransfer, { version: 2 }), /version moved 1 -> 2/],
    ['confVer beyond what the steps reached so far can do', move, heartbeat(afterTransfer, { confVer: 3 }), /confVer moved 1 -> 3/],
    ['any confVer move under a leader transfer', buildTransferLeader(r1, 2, META, allocator()), heartbeat(r1, { confVer: 2 }), /confVer/],
    ['any version move under a leader transfer', buildTransferLeader(r1, 2, META, allocator()), heartbeat(r1, { version: 2 }), /version/],
    ['a membership change under a split', buildSplit(r1, [], META, allocator()), heartbeat(r1, { confVer: 2 }), /confVer/],
    ['the region vanished under a move', move, undefined, /gone/],
  ];
  for (const [name, op, hb, reason] of stale) {
    it(`stale: ${name}`, () => {
      const result = operatorProgress(op, hb, at);
      assert.equal(result.state, 'stale');
      assert.match(result.state === 'stale' ? result.reason : '', reason);
    });
  }

  it('a split or merge finishes when the version grows; a vanished merge source is finished', () => {
    const split = buildSplit(r1, [], META, allocator());
    assert.deepEqual(operatorProgress(split, r1, at), { state: 'running', step: 0 });
    assert.deepEqual(operatorProgress(split, heartbeat(r1, { version: 2 }), at), { state: 'finished' });
    const merge = buildMerge(r1, region(2, { voters: [1, 2, 3] }), META, allocator());
    assert.deepEqual(operatorProgress(merge, heartbeat(r1, { version: 2, confVer: 2 }), at), { state: 'finished' });
    assert.deepEqual(operatorProgress(merge, undefined, at), { state: 'finished' });
  });
});
