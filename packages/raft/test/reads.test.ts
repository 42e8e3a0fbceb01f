import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TestCluster, bytes, text, type TestNode } from './cluster-harness.ts';

const ELECTION_TICKS = 10;
const DRIFT_TICKS = 2;

const contexts = (states: readonly { context: Uint8Array }[]): string[] => states.map((s) => text(s.context));

describe('ReadIndex (safe)', () => {
  test('answered with the commit index only after a quorum acknowledged a heartbeat', () => {
    const c = new TestCluster([1, 2, 3]);
    const leader = c.campaign(1);
    leader.node.propose([bytes('a')]);
    c.stabilize();
    const commit = leader.node.status().commit;
    leader.node.readIndex(bytes('r1'));
    c.processReadyOf(leader);
    assert.deepEqual(leader.readStates, [], 'not before the heartbeat round');
    const beats = c.queue.filter((m) => m.type === 'heartbeat' && text(m.context) === 'r1');
    assert.deepEqual(beats.map((m) => m.to).sort(), [2, 3], 'a heartbeat round carries the context');
    c.stabilize();
    assert.deepEqual(leader.readStates, [{ index: commit, context: bytes('r1') }]);
  });

  test('one follower is enough for a quorum of 3; none is not', () => {
    const c = new TestCluster([1, 2, 3]);
    const leader = c.campaign(1);
    c.isolate(3);
    leader.node.readIndex(bytes('with 2'));
    c.stabilize();
    assert.deepEqual(contexts(leader.readStates), ['with 2']);
    c.isolate(2, 3);
    leader.node.readIndex(bytes('alone'));
    c.stabilize();
    c.tick([1], 3);
    assert.deepEqual(contexts(leader.readStates), ['with 2'], 'no quorum, no answer');
  });

  test('the read index is the commit at request time, not later', () => {
    const c = new TestCluster([1, 2, 3]);
    const leader = c.campaign(1);
    const commit = leader.node.status().commit;
    leader.node.readIndex(bytes('r'));
    leader.node.propose([bytes('later')]);
    c.stabilize();
    assert.deepEqual(leader.readStates, [{ index: commit, context: bytes('r') }]);
    assert.ok(leader.node.status().commit > commit);
  });

  test("a follower's readIndex is forwarded to the leader and answered to the follower", () => {
    const c = new TestCluster([1, 2, 3]);
    const leader = c.campaign(1);
    leader.node.propose([bytes('a'), bytes('b')]);
    c.stabilize();
    c.clearSent();
    c.get(2).node.readIndex(bytes('from 2'));
    c.stabilize();
    assert.ok(c.sent.some((m) => m.type === 'readIndex' && m.from === 2 && m.to === 1), 'forwarded');
    assert.ok(c.sent.some((m) => m.type === 'readIndexResponse' && m.from === 1 && m.to === 2), 'answered');
    assert.deepEqual(c.get(2).readStates, [{ index: leader.node.status().commit, context: bytes('from 2') }]);
    assert.deepEqual(leader.readStates, [], 'not a read of the leader itself');
  });

  test('a new leader holds reads until it committed an entry of its term', () => {
    const c = new TestCluster([1, 2, 3]);
    c.filter = (m) => !(m.type === 'append' && m.from === 1);
    const leader = c.campaign(1);
    const s = leader.node.status();
    assert.ok(s.commit < s.lastIndex, 'empty entry not committed');
    leader.node.readIndex(bytes('early'));
    c.stabilize();
    c.tick([1], 2); // heartbeats get through and are acked, but the read must wait
    assert.deepEqual(leader.readStates, []);
    c.heal();
    c.tickAll(2);
    assert.deepEqual(leader.readStates, [{ index: s.lastIndex, context: bytes('early') }], 'answered with the new-term commit');
  });
});

describe('lease-based reads', () => {
  const options = { readOnlyOption: 'leaseBased' as const, electionTicks: ELECTION_TICKS, maxClockDriftTicks: DRIFT_TICKS };

  test('answered immediately while the lease holds; not once the leader was cut off for E - drift ticks', () => {
    const c = new TestCluster([1, 2, 3], options);
    const leader = c.campaign(1);
    c.tickAll(3);
    assert.equal(leader.node.leaseValid(), true);
    leader.node.readIndex(bytes('lease'));
    c.processReadyOf(leader);
    assert.deepEqual(contexts(leader.readStates), ['lease'], 'no heartbeat round needed');
    assert.equal(c.queue.filter((m) => text(m.context) === 'lease').length, 0);
    c.stabilize();

    c.isolate(1);
    const leaseTicks = ELECTION_TICKS - DRIFT_TICKS;
    for (let k = 1; k < leaseTicks; k++) {
      c.tick([1]);
      assert.equal(leader.node.leaseValid(), true, `lease holds ${k} ticks after the last ack`);
    }
    leader.node.readIndex(bytes('still'));
    c.processReadyOf(leader);
    assert.deepEqual(contexts(leader.readStates), ['lease', 'still']);
    c.tick([1]);
    assert.equal(leader.node.status().role, 'leader', 'still leader (CheckQuorum has not stepped it down yet)');
    assert.equal(leader.node.leaseValid(), false, `lease gone after ${leaseTicks} ticks cut off`);
    leader.node.readIndex(bytes('too late'));
    c.stabilize();
    c.tick([1], 3);
    assert.deepEqual(contexts(leader.readStates), ['lease', 'still'], 'not answered from an expired lease');
  });

  /** Node 1 leads with a lease and committed an entry of its term; nothing sent since. */
  function leaderWithAnEntry(): { c: TestCluster; leader: TestNode } {
    const c = new TestCluster([1, 2, 3], options);
    const leader = c.campaign(1);
    c.tickAll(3);
    leader.node.propose([bytes('first')]);
    c.stabilize();
    c.clearSent();
    return { c, leader };
  }

  test('under steady writes the acks of appends keep the lease (no heartbeat is sent), and only acks of appends sent recently count', () => {
    const { c, leader } = leaderWithAnEntry();
    // An entry every tick: every heartbeat round skips both followers.
    for (let t = 0; t < 3 * ELECTION_TICKS; t++) {
      c.tickAll(1);
      leader.node.propose([bytes(`w${t}`)]);
      c.stabilize();
      assert.equal(leader.node.leaseValid(), true, `lease holds at tick ${t}`);
    }
    assert.deepEqual(c.sent.filter((m) => m.type === 'heartbeat'), [], 'the appends did the heartbeats\' work');
    assert.ok(c.sent.filter((m) => m.type === 'appendResponse').every((m) => m.leaderTick > 0), 'responses echo the append\'s leader tick');
    assert.equal(leader.node.status().role, 'leader', 'CheckQuorum is satisfied by append responses');
    // The acks stop (the followers are cut off, the appends keep going out): the lease runs out
    // as after the last acknowledged heartbeat.
    c.isolate(2, 3);
    const leaseTicks = ELECTION_TICKS - DRIFT_TICKS;
    for (let k = 1; k <= leaseTicks; k++) {
      c.tick([1]);
      leader.node.propose([bytes(`lost${k}`)]);
      c.stabilize();
      assert.equal(leader.node.leaseValid(), k < leaseTicks, `${k} ticks after the last ack`);
    }
  });

  test('an expired lease falls back to a heartbeat round', () => {
    const c = new TestCluster([1, 2, 3], options);
    const leader = c.campaign(1);
    c.tickAll(2);
    c.isolate(2, 3);
    c.tick([1], ELECTION_TICKS - DRIFT_TICKS);
    assert.equal(leader.node.leaseValid(), false);
    leader.node.readIndex(bytes('safe'));
    c.processReadyOf(leader);
    assert.deepEqual(leader.readStates, []);
    c.heal();
    c.stabilize();
    assert.deepEqual(contexts(leader.readStates), ['safe']);
  });

  test('voidLease(): acks of earlier heartbeats stop counting; a heartbeat sent after it restores the lease', () => {
    const c = new TestCluster([1, 2, 3], options);
    const leader = c.campaign(1);
    c.tickAll(3);
    assert.equal(leader.node.leaseValid(), true);
    leader.node.voidLease();
    assert.equal(leader.node.leaseValid(), false, 'void at once, though the acks are recent');
    leader.node.readIndex(bytes('after the stall'));
    c.processReadyOf(leader);
    assert.deepEqual(leader.readStates, [], 'not served from the voided lease');
    const round = c.queue.filter((m) => m.type === 'heartbeat' && text(m.context) === 'after the stall');
    assert.equal(round.length, 2, 'a ReadIndex round instead');
    c.stabilize();
    assert.deepEqual(contexts(leader.readStates), ['after the stall']);
    assert.equal(leader.node.leaseValid(), true, "the round's acks (sent after the void) prove a new lease");
    c.get(2).node.voidLease(); // a follower has no lease: nothing happens
    assert.equal(c.get(2).node.status().role, 'follower');
  });

  test('beforeLeaseUse runs before every lease read, and a voidLease() it makes is obeyed at once', () => {
    let checks = 0;
    let stalled = false;
    let leaderNode: { voidLease(): void } | undefined;
    const c = new TestCluster([1, 2, 3], {
      ...options,
      beforeLeaseUse: () => {
        checks++;
        if (stalled) leaderNode?.voidLease();
      },
    });
    const leader = c.campaign(1);
    leaderNode = leader.node;
    c.tickAll(3);
    leader.node.readIndex(bytes('on time'));
    c.processReadyOf(leader);
    assert.deepEqual(contexts(leader.readStates), ['on time'], 'the check passed: served from the lease');
    assert.ok(checks >= 1);
    stalled = true;
    leader.node.readIndex(bytes('stalled'));
    c.processReadyOf(leader);
    assert.deepEqual(contexts(leader.readStates), ['on time'], 'the host voided the lease inside the check');
    stalled = false;
    c.stabilize();
    assert.deepEqual(contexts(leader.readStates), ['on time', 'stalled'], 'answered by its ReadIndex round');
  });

  test('leaseValid() is false during a transfer, and for the rest of the term once TimeoutNow went out', () => {
    const c = new TestCluster([1, 2, 3], options);
    const leader = c.campaign(1);
    c.tickAll(3);
    assert.equal(leader.node.leaseValid(), true);
    c.isolate(3);
    leader.node.transferLeader(3);
    c.stabilize();
    assert.equal(leader.node.status().leadTransferee, 3);
    assert.equal(leader.node.leaseValid(), false);
    leader.node.readIndex(bytes('during transfer'));
    c.processReadyOf(leader);
    assert.deepEqual(leader.readStates, [], 'not served from the lease');
    c.stabilize();
    c.tick([1, 2], ELECTION_TICKS); // the transfer is aborted
    assert.equal(leader.node.status().leadTransferee, 0);
    assert.equal(leader.node.status().role, 'leader');
    c.tick([1, 2]);
    // 3 was up to date, so TimeoutNow went out at once; arriving late, it could still force a
    // vote past 2's lease promise. So the lease stays off for the term.
    assert.equal(leader.node.leaseValid(), false, 'no lease after a TimeoutNow in this term');
    leader.node.readIndex(bytes('after abort'));
    c.stabilize();
    // Both reads were answered by ReadIndex heartbeat rounds, none from the lease.
    assert.deepEqual(contexts(leader.readStates), ['during transfer', 'after abort']);
  });

  test('a transfer abandoned before any TimeoutNow lets a heartbeat round renew the lease', () => {
    const c = new TestCluster([1, 2, 3], options);
    const leader = c.campaign(1);
    c.tickAll(3);
    c.isolate(3);
    leader.node.propose([bytes('3 misses this')]);
    c.stabilize();
    leader.node.transferLeader(3); // 3 lags: the leader must catch it up first, which it can't
    c.stabilize();
    assert.equal(leader.node.leaseValid(), false);
    c.tick([1, 2], ELECTION_TICKS); // the transfer is aborted
    assert.equal(leader.node.status().leadTransferee, 0);
    c.tick([1, 2]);
    assert.equal(leader.node.leaseValid(), true, 'a heartbeat round after the abort renewed it');
  });

  test('leaseReadIndex(): the commit index while the lease holds, with no Ready and no message; undefined whenever readIndex() would need a round', () => {
    const { c, leader } = leaderWithAnEntry();
    assert.equal(leader.node.leaseReadIndex(), leader.node.status().commit);
    assert.equal(leader.node.hasReady(), false, 'nothing for the host to do');
    assert.equal(c.queue.length, 0, 'nothing sent');
    assert.equal(c.get(2).node.leaseReadIndex(), undefined, 'a follower takes a round through the leader');
    leader.node.voidLease();
    assert.equal(leader.node.leaseReadIndex(), undefined, 'a void lease');
    c.stabilize();
    c.tickAll(3);
    assert.equal(leader.node.leaseReadIndex(), leader.node.status().commit, 'a round renewed it');
    c.isolate(1);
    c.tick([1], ELECTION_TICKS - DRIFT_TICKS);
    assert.equal(leader.node.leaseReadIndex(), undefined, 'an expired lease');

    const safe = new TestCluster([1, 2, 3], { electionTicks: ELECTION_TICKS });
    const safeLeader = safe.campaign(1);
    safe.tickAll(3);
    assert.equal(safeLeader.node.leaseReadIndex(), undefined, 'leases off: every read takes a round');
  });

  test("leaseReadIndex() is undefined until the leader committed an entry of its term", () => {
    const c = new TestCluster([1, 2, 3], options);
    c.filter = (m) => !(m.type === 'append' && m.from === 1);
    const leader = c.campaign(1);
    c.tick([1], 2); // heartbeats are acked: the lease holds, but the commit may lag
    assert.equal(leader.node.leaseValid(), true);
    assert.equal(leader.node.leaseReadIndex(), undefined);
    c.heal();
    c.tickAll(2);
    const s = leader.node.status();
    assert.equal(s.commit, s.lastIndex);
    assert.equal(leader.node.leaseReadIndex(), s.commit);
  });

  test('followers and non-leaders never have a lease', () => {
    const c = new TestCluster([1, 2, 3], options);
    c.campaign(1);
    c.tickAll(2);
    assert.equal(c.get(2).node.leaseValid(), false);
    assert.equal(c.get(3).node.leaseValid(), false);
  });
});
