import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isRaftError } from '@flotilla/raft';
import { TestCluster, bytes, text } from './cluster-harness.ts';

const ELECTION_TICKS = 10;

describe('leadership transfer', () => {
  test('to an up-to-date follower: it wins at once in the next term', () => {
    const c = new TestCluster([1, 2, 3], { electionTicks: ELECTION_TICKS });
    c.campaign(1);
    c.tickAll(2);
    const term = c.get(1).node.status().term;
    c.clearSent();
    c.get(1).node.transferLeader(2);
    c.stabilize();
    assert.ok(c.sent.some((m) => m.type === 'timeoutNow' && m.from === 1 && m.to === 2), 'timeoutNow sent at once');
    for (const tn of c.nodes.values()) {
      const s = tn.node.status();
      assert.equal(s.leader, 2, `node ${tn.id} follows 2`);
      assert.equal(s.term, term + 1);
    }
    assert.equal(c.get(1).node.status().leadTransferee, 0);
    c.get(2).node.propose([bytes('new leader')]);
    c.heartbeatRound(2);
    for (const tn of c.nodes.values()) assert.deepEqual(tn.applied.map(text), ['new leader']);
  });

  test('transfer through a follower: the request is forwarded to the leader', () => {
    const c = new TestCluster([1, 2, 3]);
    c.campaign(1);
    c.get(3).node.transferLeader(3);
    c.stabilize();
    assert.equal(c.get(3).node.status().role, 'leader');
  });

  test('to a lagging follower: the leader catches it up first', () => {
    const c = new TestCluster([1, 2, 3], { electionTicks: ELECTION_TICKS });
    c.campaign(1);
    c.isolate(3);
    for (let i = 0; i < 5; i++) {
      c.get(1).node.propose([bytes(`e${i}`)]);
      c.stabilize();
    }
    const leaderLast = c.get(1).node.status().lastIndex;
    assert.ok(c.get(3).node.status().lastIndex < leaderLast, 'node 3 lags');
    c.heal();
    c.clearSent();
    c.get(1).node.transferLeader(3);
    assert.equal(c.get(1).node.status().leadTransferee, 3);
    c.stabilize();
    const timeoutNow = c.sent.findIndex((m) => m.type === 'timeoutNow' && m.to === 3);
    const lastAppend = c.sent.findLastIndex((m) => m.type === 'append' && m.to === 3 && m.entries.length > 0 && m.from === 1);
    assert.ok(timeoutNow > lastAppend && lastAppend >= 0, 'entries first, then timeoutNow');
    assert.equal(c.get(3).node.status().role, 'leader');
    c.stabilize();
    for (const tn of c.nodes.values()) assert.deepEqual(tn.applied.map(text), ['e0', 'e1', 'e2', 'e3', 'e4']);
  });

  test('proposals are dropped while a transfer is under way', () => {
    const c = new TestCluster([1, 2, 3], { electionTicks: ELECTION_TICKS });
    c.campaign(1);
    c.isolate(3);
    c.get(1).node.transferLeader(3);
    c.stabilize();
    assert.equal(c.get(1).node.status().leadTransferee, 3);
    assert.throws(() => c.get(1).node.propose([bytes('x')]), (err) => isRaftError(err, 'FLOTILLA_RAFT_PROPOSAL_DROPPED'));
    // Forwarded proposals are dropped silently (no error at the follower, nothing appended).
    const last = c.get(1).node.status().lastIndex;
    c.get(2).node.propose([bytes('y')]);
    c.stabilize();
    assert.equal(c.get(1).node.status().lastIndex, last);
  });

  test('a transfer to an unreachable target is aborted after an election timeout', () => {
    const c = new TestCluster([1, 2, 3], { electionTicks: ELECTION_TICKS });
    c.campaign(1);
    c.tickAll(3);
    c.isolate(3);
    const term = c.get(1).node.status().term;
    c.get(1).node.transferLeader(3);
    c.stabilize();
    for (let i = 0; i < ELECTION_TICKS - 1; i++) {
      c.tick([1, 2]);
      assert.equal(c.get(1).node.status().leadTransferee, 3, `still transferring after ${i + 1} ticks`);
    }
    c.tick([1, 2]);
    const s = c.get(1).node.status();
    assert.equal(s.leadTransferee, 0, 'aborted after electionTicks');
    assert.equal(s.role, 'leader', 'still leader (2 is reachable)');
    assert.equal(s.term, term);
    c.get(1).node.propose([bytes('accepted again')]);
    c.heartbeatRound(1);
    assert.deepEqual(c.get(2).applied.map(text), ['accepted again']);
  });

  test('transfer to self or to a learner is ignored', () => {
    const c = new TestCluster([1, 2, 3], {}, [4]);
    c.campaign(1);
    c.get(1).node.transferLeader(1);
    c.get(1).node.transferLeader(4);
    c.stabilize();
    const s = c.get(1).node.status();
    assert.equal(s.role, 'leader');
    assert.equal(s.leadTransferee, 0);
  });
});
