import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BOOTSTRAP_INDEX, BOOTSTRAP_TERM, type NodeId } from '@flotilla/raft';
import { TestCluster, bytes, storedEntries } from './cluster-harness.ts';

const ELECTION_TICKS = 10;

/** Ticks each node alone (no delivery) and returns how many ticks it waited before campaigning. */
function electionTimeouts(seed: number): number[] {
  const c = new TestCluster([1, 2, 3], { electionTicks: ELECTION_TICKS }, [], seed);
  c.filter = () => false;
  const out: number[] = [];
  for (const tn of c.nodes.values()) {
    let ticks = 0;
    while (tn.node.status().role === 'follower') {
      tn.node.tick();
      ticks++;
      assert.ok(ticks <= 2 * ELECTION_TICKS, 'campaigned within 2 * electionTicks');
    }
    assert.equal(tn.node.status().role, 'preCandidate');
    out.push(ticks);
  }
  return out;
}

describe('election', () => {
  test('a leader is elected, known to all, in the next term, and its empty entry commits', () => {
    const c = new TestCluster([1, 2, 3]);
    const leader = c.electLeader();
    c.stabilize();
    const leaders = [...c.nodes.values()].filter((tn) => tn.node.status().role === 'leader');
    assert.equal(leaders.length, 1);
    for (const tn of c.nodes.values()) {
      const s = tn.node.status();
      assert.equal(s.leader, leader.id, `node ${tn.id} knows the leader`);
      assert.equal(s.term, BOOTSTRAP_TERM + 1);
      assert.equal(s.commit, BOOTSTRAP_INDEX + 1, 'the new leader commits its empty entry');
      assert.deepEqual(storedEntries(tn), [{ index: BOOTSTRAP_INDEX + 1, term: BOOTSTRAP_TERM + 1 }]);
    }
  });

  test('randomized election timeouts lie in [T, 2T), differ per node, differ per seed, and replay per seed', () => {
    const a = electionTimeouts(1);
    const b = electionTimeouts(2);
    for (const t of [...a, ...b]) {
      assert.ok(t >= ELECTION_TICKS && t < 2 * ELECTION_TICKS, `timeout ${t} in [T, 2T)`);
    }
    assert.ok(new Set(a).size > 1, `nodes of one cluster draw different timeouts: ${a}`);
    assert.notDeepEqual(a, b, 'another seed, other timeouts');
    assert.deepEqual(electionTimeouts(1), a, 'same seed, same timeouts');
    // Across many seeds the whole range is used.
    const seen = new Set<number>();
    for (let seed = 1; seed <= 40; seed++) for (const t of electionTimeouts(seed)) seen.add(t);
    assert.ok(seen.size >= ELECTION_TICKS - 2, `timeouts spread over the range: ${[...seen].sort((x, y) => x - y)}`);
  });

  test('PreVote: a partitioned node rejoining does not bump the term or disrupt the leader', () => {
    const c = new TestCluster([1, 2, 3]);
    const leader = c.electLeader();
    const follower = [...c.nodes.keys()].find((id) => id !== leader.id)!;
    const term = leader.node.status().term;
    c.isolate(follower);
    c.tickAll(10 * ELECTION_TICKS);
    const isolated = c.get(follower).node.status();
    assert.equal(isolated.term, term, 'pre-votes never raise the term');
    assert.notEqual(isolated.role, 'leader');
    leader.node.propose([bytes('while partitioned')]);
    c.stabilize();
    c.heal();
    c.tickAll(3 * ELECTION_TICKS);
    for (const tn of c.nodes.values()) {
      const s = tn.node.status();
      assert.equal(s.term, term, `node ${tn.id} term unchanged`);
      assert.equal(s.leader, leader.id, `node ${tn.id} follows the same leader`);
    }
    assert.equal(c.get(follower).applied.length, 1, 'the rejoined node caught up');
  });

  test('without PreVote (contrast): the rejoining node does disrupt with a higher term', () => {
    const c = new TestCluster([1, 2, 3], { preVote: false, checkQuorum: false });
    const leader = c.electLeader();
    const follower = [...c.nodes.keys()].find((id) => id !== leader.id)!;
    const term = leader.node.status().term;
    c.isolate(follower);
    c.tickAll(10 * ELECTION_TICKS);
    assert.ok(c.get(follower).node.status().term > term + 1, 'the isolated node kept raising its term');
    c.heal();
    c.tickAll(3 * ELECTION_TICKS);
    assert.ok(leader.node.status().term > term, 'the old leader was deposed by the higher term');
  });

  test('CheckQuorum: a leader that cannot hear a quorum steps down after an election timeout', () => {
    const c = new TestCluster([1, 2, 3], { electionTicks: ELECTION_TICKS });
    const leader = c.electLeader();
    c.tickAll(3); // settle into steady heartbeats
    c.isolate(leader.id);
    for (let i = 0; i < ELECTION_TICKS - 1; i++) c.tick([leader.id]);
    assert.equal(leader.node.status().role, 'leader', 'not before one election timeout');
    let steppedDownAfter = -1;
    for (let i = ELECTION_TICKS - 1; i < 2 * ELECTION_TICKS; i++) {
      c.tick([leader.id]);
      if (leader.node.status().role !== 'leader') {
        steppedDownAfter = i + 1;
        break;
      }
    }
    assert.ok(steppedDownAfter > 0, 'stepped down within two election timeouts');
    const s = leader.node.status();
    assert.equal(s.role, 'follower');
    assert.equal(s.leader, 0);
  });

  test('without CheckQuorum (contrast): the isolated leader stays leader', () => {
    const c = new TestCluster([1, 2, 3], { electionTicks: ELECTION_TICKS, checkQuorum: false });
    const leader = c.electLeader();
    c.isolate(leader.id);
    c.tick([leader.id], 5 * ELECTION_TICKS);
    assert.equal(leader.node.status().role, 'leader');
  });

  test('votes are granted only to candidates whose log is up to date', () => {
    const c = new TestCluster([1, 2, 3], { preVote: false, checkQuorum: false });
    c.campaign(1);
    c.isolate(3);
    c.get(1).node.propose([bytes('x')]);
    c.stabilize();
    assert.equal(c.get(2).node.status().lastIndex, c.get(1).node.status().lastIndex);
    assert.ok(c.get(3).node.status().lastIndex < c.get(2).node.status().lastIndex, 'node 3 is behind');

    c.isolate(1);
    c.clearSent();
    c.get(3).node.campaign();
    c.stabilize();
    const answer = c.sent.find((m) => m.type === 'voteResponse' && m.from === 2 && m.to === 3);
    assert.ok(answer, 'node 2 answered');
    assert.equal(answer.reject, true, 'stale log: vote refused');
    assert.equal(c.get(3).node.status().role, 'candidate');
    assert.equal(c.get(2).node.status().vote, 0, 'node 2 did not vote');

    c.clearSent();
    c.get(2).node.campaign();
    c.stabilize();
    const grant = c.sent.find((m) => m.type === 'voteResponse' && m.from === 3 && m.to === 2);
    assert.ok(grant);
    assert.equal(grant.reject, false, 'up-to-date log: vote granted');
    assert.equal(c.get(2).node.status().role, 'leader');
    assert.equal(c.get(3).node.status().vote, 2);
  });

  test('a candidate in a minority partition never becomes leader', () => {
    const ids: NodeId[] = [1, 2, 3, 4, 5];
    const c = new TestCluster(ids, { preVote: false, checkQuorum: true });
    const leader = c.electLeader();
    const minority = ids.filter((id) => id !== leader.id).slice(0, 2);
    const majority = ids.filter((id) => !minority.includes(id));
    c.partition(minority, majority);
    let campaigned = 0;
    for (let t = 0; t < 20 * ELECTION_TICKS; t++) {
      c.tickAll();
      for (const id of minority) {
        const role = c.get(id).node.status().role;
        assert.notEqual(role, 'leader', `node ${id} in the minority became leader at tick ${t}`);
        if (role === 'candidate') campaigned++;
      }
    }
    assert.ok(campaigned > 0, 'the minority did campaign');
    assert.equal(c.leader()?.id, leader.id, 'the majority kept its leader');
  });

  test('with PreVote, a minority never even becomes candidate and keeps its term', () => {
    const ids: NodeId[] = [1, 2, 3, 4, 5];
    const c = new TestCluster(ids);
    const leader = c.electLeader();
    const term = leader.node.status().term;
    const minority = ids.filter((id) => id !== leader.id).slice(0, 2);
    c.partition(minority, ids.filter((id) => !minority.includes(id)));
    let preCampaigned = 0;
    for (let t = 0; t < 20 * ELECTION_TICKS; t++) {
      c.tickAll();
      for (const id of minority) {
        const s = c.get(id).node.status();
        assert.ok(s.role === 'follower' || s.role === 'preCandidate', `node ${id} is ${s.role}`);
        assert.equal(s.term, term);
        if (s.role === 'preCandidate') preCampaigned++;
      }
    }
    assert.ok(preCampaigned > 0);
  });
});
