import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Raft } from '../src/raft.ts';
import type { RawNode } from '../src/raw-node.ts';
import { TestCluster, bytes, text } from './cluster-harness.ts';

const ELECTION_TICKS = 10;
const HIBERNATE_AFTER_TICKS = 5;

/** Node 1 leads an idle [1, 2, 3] group that has hibernated on every node. */
function hibernated(): TestCluster {
  const c = new TestCluster([1, 2, 3], { electionTicks: ELECTION_TICKS, hibernateAfterTicks: HIBERNATE_AFTER_TICKS });
  c.campaign(1);
  c.get(1).node.propose([bytes('a')]);
  c.stabilize();
  for (let i = 0; i < 4 * HIBERNATE_AFTER_TICKS; i++) {
    if ([...c.nodes.values()].every((tn) => tn.node.status().hibernating)) return c;
    c.tickAll();
  }
  throw new Error('the group did not hibernate');
}

const allHibernating = (c: TestCluster): boolean => [...c.nodes.values()].every((tn) => tn.node.status().hibernating);

describe('hibernation', () => {
  test('a leader serving lease reads stays awake; once the reads stop, the group hibernates', () => {
    const c = new TestCluster([1, 2, 3], { electionTicks: ELECTION_TICKS, hibernateAfterTicks: HIBERNATE_AFTER_TICKS, readOnlyOption: 'leaseBased' });
    const leader = c.campaign(1);
    leader.node.propose([bytes('a')]);
    c.stabilize();
    for (let t = 0; t < 4 * HIBERNATE_AFTER_TICKS; t++) {
      leader.node.readIndex(bytes(`read ${t}`));
      c.stabilize();
      c.tickAll();
      c.stabilize();
      assert.equal(leader.node.status().hibernating, false, `awake at tick ${t}`);
    }
    assert.equal(leader.readStates.length, 4 * HIBERNATE_AFTER_TICKS, 'every read answered');
    assert.ok(!c.sent.some((m) => m.type === 'heartbeat' && m.context.byteLength > 0), 'all from the lease: no ReadIndex round');
    for (let t = 0; t < 4 * HIBERNATE_AFTER_TICKS && !allHibernating(c); t++) {
      c.tickAll();
      c.stabilize();
    }
    assert.ok(allHibernating(c), 'quiet again: hibernated');
  });

  test('an idle group hibernates on all nodes; ticks then produce no messages, no Ready, no election', () => {
    const c = hibernated();
    const before = [...c.nodes.values()].map((tn) => tn.node.status());
    for (const s of before) {
      assert.equal(s.hibernating, true, `node ${s.id}`);
      assert.equal(s.leader, 1);
      assert.equal(s.commit, s.lastIndex);
    }
    assert.ok(c.sent.some((m) => m.type === 'hibernate' && m.from === 1), 'the leader told the followers');
    c.clearSent();
    for (let t = 0; t < 20 * ELECTION_TICKS; t++) {
      for (const tn of c.nodes.values()) {
        tn.node.tick();
        assert.equal(tn.node.hasReady(), false, `node ${tn.id} has no Ready at tick ${t}`);
      }
    }
    c.stabilize();
    assert.deepEqual(c.sent, [], 'not one message');
    const after = [...c.nodes.values()].map((tn) => tn.node.status());
    for (const [i, s] of after.entries()) {
      assert.equal(s.term, before[i]!.term, `node ${s.id} term unchanged`);
      assert.equal(s.role, before[i]!.role);
      assert.equal(s.hibernating, true);
    }
  });

  test('without hibernation (contrast), an idle leader keeps sending heartbeats', () => {
    const c = new TestCluster([1, 2, 3], { electionTicks: ELECTION_TICKS });
    c.campaign(1);
    c.tickAll(4 * HIBERNATE_AFTER_TICKS);
    c.clearSent();
    c.tickAll(ELECTION_TICKS);
    assert.equal(c.sent.filter((m) => m.type === 'heartbeat').length, 2 * ELECTION_TICKS);
    assert.equal(c.get(1).node.status().hibernating, false);
  });

  // The store's follower reads rely on this: a quiet group's followers learn nothing, so a
  // stale read past its bound asks the leader, and that must work while everyone sleeps.
  test("a hibernating follower's readIndex wakes the group and is answered after a heartbeat quorum", () => {
    const c = hibernated();
    const commit = c.get(1).node.status().commit;
    c.clearSent();
    c.get(2).node.readIndex(bytes('quiet'));
    c.stabilize();
    assert.deepEqual(c.get(2).readStates, [{ index: commit, context: bytes('quiet') }]);
    assert.ok(c.sent.some((m) => m.type === 'heartbeat' && m.from === 1 && text(m.context) === 'quiet'), 'confirmed by a heartbeat round');
    assert.equal(c.get(1).node.status().hibernating, false, 'the leader woke');
  });

  test('a proposal on the leader wakes the group and commits; idle again, it hibernates again', () => {
    const c = hibernated();
    const term = c.get(1).node.status().term;
    c.get(1).node.propose([bytes('wake')]);
    c.heartbeatRound(1);
    for (const tn of c.nodes.values()) {
      assert.deepEqual(tn.applied.map(text), ['a', 'wake'], `node ${tn.id} applied`);
      assert.equal(tn.node.status().hibernating, false, `node ${tn.id} awake`);
    }
    c.tickAll(2 * HIBERNATE_AFTER_TICKS);
    assert.equal(allHibernating(c), true, 'hibernates again once idle');
    assert.equal(c.get(1).node.status().term, term);
  });

  test('a proposal on a follower wakes it, is forwarded, and commits', () => {
    const c = hibernated();
    assert.equal(c.get(3).node.propose([bytes('via 3')]), null);
    c.heartbeatRound(1);
    for (const tn of c.nodes.values()) assert.deepEqual(tn.applied.map(text), ['a', 'via 3']);
  });

  test('a woken follower sends wakeUp and does not start an election when the leader answers', () => {
    const c = hibernated();
    const term = c.get(1).node.status().term;
    c.clearSent();
    c.get(2).node.wake();
    assert.equal(c.get(2).node.status().hibernating, false);
    c.processReadyOf(c.get(2));
    assert.deepEqual(c.queue.map((m) => `${m.type} ${m.from}->${m.to}`), ['wakeUp 2->1']);
    c.stabilize();
    assert.equal(c.get(1).node.status().hibernating, false, 'the leader woke up');
    c.tickAll(5 * ELECTION_TICKS);
    const campaigns = c.sent.filter((m) => m.type === 'preVote' || m.type === 'vote');
    assert.deepEqual(campaigns, [], 'no election');
    for (const tn of c.nodes.values()) {
      const s = tn.node.status();
      assert.equal(s.term, term);
      assert.equal(s.leader, 1);
    }
    assert.equal(allHibernating(c), true, 'idle again: hibernating again');
  });

  test('if the leader is gone, woken followers elect a new leader', () => {
    const c = hibernated();
    const term = c.get(1).node.status().term;
    c.isolate(1);
    c.get(2).node.wake();
    c.get(3).node.wake();
    let leader = undefined;
    for (let i = 0; i < 5 * ELECTION_TICKS && !leader; i++) {
      c.tick([2, 3]);
      leader = [c.get(2), c.get(3)].find((tn) => tn.node.status().role === 'leader');
    }
    assert.ok(leader, 'a new leader among 2 and 3');
    assert.ok(leader.node.status().term > term);
    leader.node.propose([bytes('b')]);
    c.heartbeatRound(leader.id);
    assert.deepEqual(c.get(2).applied.map(text), ['a', 'b']);
    assert.deepEqual(c.get(3).applied.map(text), ['a', 'b']);
  });

  test('if the leader is gone and only one follower is woken, the other wakes on its pre-vote and a leader is elected', () => {
    const c = hibernated();
    c.isolate(1);
    c.get(2).node.wake();
    let leader = undefined;
    for (let i = 0; i < 10 * ELECTION_TICKS && !leader; i++) {
      c.tick([2, 3]);
      leader = [c.get(2), c.get(3)].find((tn) => tn.node.status().role === 'leader');
    }
    assert.ok(leader, 'a new leader among 2 and 3');
  });

  test('a follower that missed the hibernate message wakes the group without changing the term', () => {
    const c = new TestCluster([1, 2, 3], { electionTicks: ELECTION_TICKS, hibernateAfterTicks: HIBERNATE_AFTER_TICKS });
    c.campaign(1);
    const term = c.get(1).node.status().term;
    c.filter = (m) => !(m.type === 'hibernate' && m.to === 3);
    c.tickAll(2 * HIBERNATE_AFTER_TICKS);
    assert.equal(c.get(1).node.status().hibernating, true);
    assert.equal(c.get(3).node.status().hibernating, false, 'node 3 never heard');
    c.heal();
    c.clearSent();
    c.tickAll(3 * ELECTION_TICKS);
    assert.ok(c.sent.some((m) => m.type === 'preVote' && m.from === 3), 'node 3 timed out and pre-voted');
    for (const tn of c.nodes.values()) {
      assert.equal(tn.node.status().term, term, `node ${tn.id} term unchanged`);
      assert.equal(tn.node.status().leader, 1);
    }
    assert.equal(allHibernating(c), true, 'all three hibernate in the end');
  });

  test('a hibernating leader holds no replication windows and no read queue (memory of idle groups)', () => {
    const c = new TestCluster([1, 2, 3], { electionTicks: ELECTION_TICKS, hibernateAfterTicks: HIBERNATE_AFTER_TICKS });
    c.campaign(1);
    c.stabilize();
    const core = (node: RawNode): Raft => (node as unknown as { raft: Raft }).raft;
    const leader = core(c.get(1).node);
    // Pipelined appends in replicate state: the windows allocate their arrays.
    for (let i = 0; i < 3; i++) c.get(1).node.propose([bytes(`v${i}`)]);
    c.get(1).node.readIndex(bytes('ctx'));
    c.get(1).node.hasReady();
    assert.ok([...leader.tracker.progress].some(([id, pr]) => id !== 1 && pr.inflights.allocated), 'appends in flight');
    c.stabilize();
    for (let i = 0; i < 4 * HIBERNATE_AFTER_TICKS && !allHibernating(c); i++) c.tickAll();
    assert.equal(allHibernating(c), true);
    for (const [id, pr] of leader.tracker.progress) assert.equal(pr.inflights.allocated, false, `window of ${id}`);
    assert.equal(leader.readOnly.size, 0);
    assert.equal((leader.readOnly as unknown as { pending: unknown }).pending, null, 'no read queue map');
    assert.equal(leader.tracker.votes.size, 0);
  });
});
