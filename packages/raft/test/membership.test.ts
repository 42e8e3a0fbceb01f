import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { EMPTY_BYTES, isRaftError, type ConfChange, type ConfChangeSingle, type ConfState } from '@flotilla/raft';
import { TestCluster, bytes, text } from './cluster-harness.ts';

const cs = (fields: Partial<ConfState>): ConfState => ({ voters: [], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false, ...fields });
const change = (transition: ConfChange['transition'], ...changes: ConfChangeSingle[]): ConfChange => ({ transition, changes, context: EMPTY_BYTES });
const add = (nodeId: number): ConfChangeSingle => ({ type: 'addNode', nodeId });
const remove = (nodeId: number): ConfChangeSingle => ({ type: 'removeNode', nodeId });
const learner = (nodeId: number): ConfChangeSingle => ({ type: 'addLearnerNode', nodeId });
const rejected = (err: unknown): boolean => isRaftError(err, 'FLOTILLA_RAFT_CONF_CHANGE_REJECTED');

/** Node 1 leads [1, 2, 3]; node 4 exists with an empty log and has caught up as a learner. */
function withLearner4(): TestCluster {
  const c = new TestCluster([1, 2, 3]);
  c.campaign(1);
  c.get(1).node.propose([bytes('before')]);
  c.stabilize();
  c.addEmpty(4);
  c.get(1).node.proposeConfChange(change('auto', learner(4)));
  c.stabilize();
  c.tickAll(3);
  return c;
}

describe('membership', () => {
  test('a learner is added, receives a snapshot naming it, catches up and never campaigns', () => {
    const c = withLearner4();
    const expected = cs({ voters: [1, 2, 3], learners: [4] });
    for (const id of [1, 2, 3]) assert.deepEqual(c.get(id).confStates, [expected], `node ${id}`);
    const n4 = c.get(4);
    assert.deepEqual(n4.confStates, [expected], 'node 4 learned its configuration from the snapshot');
    assert.deepEqual(n4.node.confState(), expected);
    assert.deepEqual(n4.applied.map(text), ['before']);
    const pr4 = c.get(1).node.status().progress.get(4)!;
    assert.equal(pr4.isLearner, true);
    assert.equal(pr4.state, 'replicate');
    assert.equal(pr4.match, c.get(1).node.status().lastIndex);

    c.get(1).node.propose([bytes('after')]);
    c.heartbeatRound(1);
    assert.deepEqual(n4.applied.map(text), ['before', 'after']);
    // Quorum is still 2 of the 3 voters: with 2 and 3 cut off nothing commits, learner or not.
    c.isolate(2, 3);
    const commit = c.get(1).node.status().commit;
    c.get(1).node.propose([bytes('no quorum')]);
    c.stabilize();
    assert.equal(c.get(1).node.status().commit, commit, 'a learner does not count towards the quorum');
    c.heal();
    // The learner never campaigns, however long it does not hear from a leader.
    c.isolate(1);
    c.tick([4], 100);
    assert.equal(n4.node.status().role, 'follower');
  });

  test('promotion through joint consensus with automatic leave (learnersNext for a demoted voter)', () => {
    const c = withLearner4();
    const start = cs({ voters: [1, 2, 3], learners: [4] });
    c.get(1).node.proposeConfChange(change('auto', add(4), learner(3))); // two changes: joint
    c.stabilize();
    c.tickAll(3);
    const joint = cs({ voters: [1, 2, 4], votersOutgoing: [1, 2, 3], learnersNext: [3], autoLeave: true });
    const final = cs({ voters: [1, 2, 4], learners: [3] });
    for (const id of [1, 2, 3, 4]) {
      assert.deepEqual(c.get(id).confStates, [start, joint, final], `ConfState sequence on node ${id}`);
      assert.deepEqual(c.get(id).node.confState(), final);
    }
    const progress = c.get(1).node.status().progress;
    assert.equal(progress.get(3)?.isLearner, true);
    assert.equal(progress.get(4)?.isLearner, false);
    // The new voter counts: with 2 and 4 cut off nothing commits; with 3 (a learner now) neither.
    c.isolate(2, 4);
    const commit = c.get(1).node.status().commit;
    c.get(1).node.propose([bytes('x')]);
    c.stabilize();
    assert.equal(c.get(1).node.status().commit, commit);
    c.heal();
    // The lost appends are probed for once outstanding over a heartbeat interval; the commit
    // reaches the followers with the heartbeat after that.
    c.tickAll(3);
    assert.ok(c.get(1).node.status().commit > commit);
    for (const tn of c.nodes.values()) assert.deepEqual(tn.applied.map(text), ['before', 'x']);
  });

  test('explicit joint transition stays joint until an empty change is proposed', () => {
    const c = withLearner4();
    c.get(1).node.proposeConfChange(change('explicit', add(4)));
    c.stabilize();
    c.tickAll(3);
    const joint = cs({ voters: [1, 2, 3, 4], votersOutgoing: [1, 2, 3] });
    for (const id of [1, 2, 3, 4]) assert.deepEqual(c.get(id).node.confState(), joint);
    assert.throws(() => c.get(1).node.proposeConfChange(change('auto', add(5))), rejected, 'must leave joint first');
    c.get(1).node.proposeConfChange(change('auto'));
    c.stabilize();
    for (const id of [1, 2, 3, 4]) assert.deepEqual(c.get(id).node.confState(), cs({ voters: [1, 2, 3, 4] }));
    assert.throws(() => c.get(1).node.proposeConfChange(change('auto')), rejected, 'not joint any more');
  });

  test('simple one-at-a-time change: a fourth voter, and the quorum becomes 3 of 4', () => {
    const c = withLearner4();
    c.get(1).node.proposeConfChange(change('auto', add(4)));
    c.stabilize();
    const voters4 = cs({ voters: [1, 2, 3, 4] });
    for (const id of [1, 2, 3]) assert.deepEqual(c.get(id).confStates, [cs({ voters: [1, 2, 3], learners: [4] }), voters4]);
    assert.deepEqual(c.get(4).confStates.at(-1), voters4);
    assert.equal(c.get(4).confStates.length, 2, 'no joint step in between');
    c.isolate(3, 4);
    const commit = c.get(1).node.status().commit;
    c.get(1).node.propose([bytes('needs 3 of 4')]);
    c.stabilize();
    assert.equal(c.get(1).node.status().commit, commit, '2 of 4 is not a quorum');
    c.isolate(4);
    c.tickAll(2);
    assert.ok(c.get(1).node.status().commit > commit, '3 of 4 is');
  });

  test('removing the leader: it steps down and the others elect a leader among themselves', () => {
    const c = new TestCluster([1, 2, 3]);
    c.campaign(1);
    c.get(1).node.proposeConfChange(change('auto', remove(1)));
    c.stabilize();
    const s1 = c.get(1).node.status();
    assert.equal(s1.role, 'follower', 'the removed leader stepped down');
    assert.deepEqual(s1.config, cs({ voters: [2, 3] }));
    for (const id of [2, 3]) assert.deepEqual(c.get(id).node.confState(), cs({ voters: [2, 3] }), `node ${id} applied the removal`);
    c.tickAll(50);
    const leader = c.leader();
    assert.ok(leader && leader.id !== 1, 'a remaining node leads');
    assert.notEqual(c.get(1).node.status().role, 'leader');
    leader.node.propose([bytes('two voters')]);
    c.heartbeatRound(leader.id);
    for (const id of [2, 3]) assert.deepEqual(c.get(id).applied.map(text), ['two voters']);
    assert.deepEqual(c.get(1).applied, [], 'the removed node gets nothing more');
  });

  test('removing a follower: the others continue with a quorum of 2 of 2', () => {
    const c = new TestCluster([1, 2, 3]);
    c.campaign(1);
    c.get(1).node.proposeConfChange(change('auto', remove(3)));
    c.stabilize();
    assert.deepEqual(c.get(1).node.confState(), cs({ voters: [1, 2] }));
    assert.equal(c.get(1).node.status().progress.has(3), false);
    c.isolate(2);
    const commit = c.get(1).node.status().commit;
    c.get(1).node.propose([bytes('x')]);
    c.stabilize();
    assert.equal(c.get(1).node.status().commit, commit, 'needs node 2');
  });

  test('a new leader refuses a conf change before it committed an entry of its term', () => {
    const c = new TestCluster([1, 2, 3]);
    // Node 1 wins, but its appends (the empty entry of its term) are lost.
    c.filter = (m) => !(m.type === 'append' && m.from === 1);
    c.campaign(1);
    const s = c.get(1).node.status();
    assert.ok(s.commit < s.lastIndex, 'the empty entry of the new term is not committed');
    assert.throws(() => c.get(1).node.proposeConfChange(change('auto', learner(4))), rejected);
    c.heal();
    c.tickAll(2);
    const after = c.get(1).node.status();
    assert.equal(after.commit, after.lastIndex, 'now it committed in its term');
    c.get(1).node.proposeConfChange(change('auto', learner(4)));
    c.stabilize();
    assert.deepEqual(c.get(1).node.confState(), cs({ voters: [1, 2, 3], learners: [4] }));
  });

  test('a second change is refused while one is not applied; a forwarded one becomes an empty entry', () => {
    const c = new TestCluster([1, 2, 3]);
    c.campaign(1);
    c.isolate(2, 3); // the first change can't commit
    c.get(1).node.proposeConfChange(change('auto', learner(4)));
    assert.throws(() => c.get(1).node.proposeConfChange(change('auto', learner(5))), rejected);
    c.heal();
    c.stabilize();
    c.isolate(3);
    c.get(1).node.proposeConfChange(change('auto', learner(6)));
    c.get(2).node.proposeConfChange(change('auto', learner(7))); // forwarded, refused at the leader
    c.stabilize();
    c.heal();
    c.tickAll(2);
    assert.deepEqual(c.get(1).node.confState(), cs({ voters: [1, 2, 3], learners: [4, 6] }));
    assert.deepEqual(c.get(2).node.confState(), cs({ voters: [1, 2, 3], learners: [4, 6] }));
  });

  test('proposals are forwarded from followers; refused without forwarding or without a leader', () => {
    const c = new TestCluster([1, 2, 3]);
    c.campaign(1);
    assert.equal(c.get(2).node.propose([bytes('from 2')]), null, 'a follower does not know the position');
    c.stabilize();
    assert.ok(c.sent.some((m) => m.type === 'propose' && m.from === 2 && m.to === 1), 'forwarded to the leader');
    const position = c.get(1).node.propose([bytes('from 1')]);
    assert.deepEqual(position, { firstIndex: 8, lastIndex: 8, term: 6 });
    c.heartbeatRound(1);
    for (const tn of c.nodes.values()) assert.deepEqual(tn.applied.map(text), ['from 2', 'from 1']);

    const noForward = new TestCluster([1, 2, 3], { disableProposalForwarding: true });
    noForward.campaign(1);
    assert.throws(() => noForward.get(2).node.propose([bytes('x')]), (err) => isRaftError(err, 'FLOTILLA_RAFT_PROPOSAL_DROPPED'));

    const leaderless = new TestCluster([1, 2, 3]);
    assert.throws(() => leaderless.get(2).node.propose([bytes('x')]), (err) => isRaftError(err, 'FLOTILLA_RAFT_PROPOSAL_DROPPED'));
  });

  const BUDGET = 1024;
  for (const [name, batchBytes] of [['a small first batch', 10], ['its uncommitted budget is full', 2 * BUDGET]] as const) {
    test(`a new leader leaves an inherited joint configuration: ${name}`, () => {
      const c = new TestCluster([1, 2, 3], { appendBytesMax: BUDGET, uncommittedBytesMax: BUDGET, inflightBytesMax: 0 });
      c.campaign(1);
      // Node 1 proposes an auto-leave joint change; 2 and 3 persist it, node 1 is then cut off.
      c.filter = (m) => !(m.type === 'appendResponse' && m.to === 1);
      c.get(1).node.proposeConfChange(change('implicit', learner(4)));
      c.stabilize();
      // 2 or 3 takes over; its log ends with the (uncommitted) joint change. Its first appends
      // are lost, so its empty entry is not committed yet when the host proposes.
      c.filter = (m) => m.from !== 1 && m.to !== 1 && m.type !== 'append';
      let leader = undefined;
      for (let i = 0; i < 100 && !leader; i++) {
        c.tick([2, 3]);
        leader = [c.get(2), c.get(3)].find((tn) => tn.node.status().role === 'leader');
      }
      assert.ok(leader, 'a new leader among 2 and 3');
      // Nothing of its term is uncommitted: a batch larger than the budget is accepted.
      leader.node.propose([new Uint8Array(batchBytes)]);
      c.isolate(1);
      c.stabilize();
      c.tickAll(3);
      const joint = cs({ voters: [1, 2, 3], votersOutgoing: [1, 2, 3], learners: [4], autoLeave: true });
      assert.deepEqual(leader.confStates[0], joint, 'the joint configuration was applied');
      assert.deepEqual(leader.node.confState(), cs({ voters: [1, 2, 3], learners: [4] }), 'and left');
    });
  }
});
