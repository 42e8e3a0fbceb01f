import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ENTRY_OVERHEAD_BYTES, entriesBytes, isRaftError, type Message } from '@flotilla/raft';
import { TestCluster, bytes, storedEntries, text, settledCluster } from './cluster-harness.ts';

const appendsTo = (msgs: readonly Message[], to: number): Message[] => msgs.filter((m) => m.type === 'append' && m.to === to);
const withEntries = (msgs: readonly Message[]): Message[] => msgs.filter((m) => m.entries.length > 0);
const payload = (n: number, fill = 0): Uint8Array => new Uint8Array(n).fill(fill);


describe('replication', () => {
  test('pipelining is limited by inflightMessagesMax for a follower that does not ack', () => {
    const c = settledCluster({ inflightMessagesMax: 4 });
    const leader = c.get(1);
    c.filter = (m) => !(m.type === 'appendResponse' && m.from === 3);
    c.clearSent();
    for (let i = 0; i < 10; i++) {
      leader.node.propose([bytes(`e${i}`)]);
      c.stabilize(); // one Ready cycle per proposal: one append per follower each time
    }
    assert.equal(withEntries(appendsTo(c.sent, 2)).length, 10, 'the acking follower got every append');
    assert.equal(withEntries(appendsTo(c.sent, 3)).length, 4, 'the silent follower got a window of 4');
    const pr3 = leader.node.status().progress.get(3)!;
    assert.equal(pr3.inflightMessages, 4);
    assert.equal(pr3.state, 'replicate');
    assert.equal(c.get(2).applied.length, 9, 'commits with the other follower (the last commit rides on the next heartbeat)');
    c.heartbeatRound(1);
    assert.equal(c.get(2).applied.length, 10);
  });

  test('replication resumes once acks flow again after a whole window of acks was lost', () => {
    const c = settledCluster({ inflightMessagesMax: 4 });
    const leader = c.get(1);
    c.filter = (m) => !(m.type === 'appendResponse' && m.from === 3);
    for (let i = 0; i < 10; i++) {
      leader.node.propose([bytes(`e${i}`)]);
      c.stabilize();
    }
    c.heal();
    c.tickAll(20); // two election timeouts of heartbeats
    assert.deepEqual(c.get(3).applied.map(text), c.get(1).applied.map(text), 'the follower caught up');
    assert.equal(c.get(3).node.status().lastIndex, leader.node.status().lastIndex);
  });

  test('appendBytesMax splits a large batch into several appends', () => {
    const APPEND_BYTES_MAX = 1024;
    const c = settledCluster({ appendBytesMax: APPEND_BYTES_MAX, inflightBytesMax: 0 });
    const leader = c.get(1);
    const entryBytes = 200 + ENTRY_OVERHEAD_BYTES; // 216: four fit in 1024, five do not
    c.clearSent();
    leader.node.propose(Array.from({ length: 10 }, (_, i) => payload(200, i)));
    c.stabilize();
    for (const to of [2, 3]) {
      const sizes = withEntries(appendsTo(c.sent, to)).map((m) => m.entries.length);
      assert.deepEqual(sizes, [4, 4, 2], `appends to ${to}`);
      for (const m of withEntries(appendsTo(c.sent, to))) assert.ok(entriesBytes(m.entries) <= APPEND_BYTES_MAX);
    }
    assert.equal(4 * entryBytes <= APPEND_BYTES_MAX && 5 * entryBytes > APPEND_BYTES_MAX, true);
    c.heartbeatRound(1);
    for (const tn of c.nodes.values()) assert.equal(tn.applied.length, 10);
  });

  test('a single entry larger than appendBytesMax is still sent, alone', () => {
    const c = settledCluster({ appendBytesMax: 1024, uncommittedBytesMax: 8192, inflightBytesMax: 0 });
    c.clearSent();
    c.get(1).node.propose([payload(3000), payload(10)]);
    c.stabilize();
    assert.deepEqual(withEntries(appendsTo(c.sent, 2)).map((m) => m.entries.length), [1, 1]);
    c.heartbeatRound(1);
    assert.equal(c.get(2).applied.length, 2);
  });

  test('proposals between Readys are batched into one append per follower', () => {
    const c = settledCluster();
    const leader = c.get(1);
    for (let i = 0; i < 5; i++) leader.node.propose([bytes(`p${i}`)]);
    const rd = leader.node.ready();
    assert.equal(rd.entries.length, 5, 'one Ready persists all five');
    const appends = rd.messages.filter((m) => m.type === 'append');
    assert.deepEqual(appends.map((m) => m.to).sort(), [2, 3], 'exactly one append per follower');
    for (const m of appends) assert.deepEqual(m.entries.map((e) => text(e.data)), ['p0', 'p1', 'p2', 'p3', 'p4']);
    leader.storage.append(rd.entries);
    if (rd.hardState) leader.storage.setHardState(rd.hardState);
    for (const m of rd.messages) c.queue.push(m);
    leader.node.advance(rd);
    c.heartbeatRound(1);
    for (const tn of c.nodes.values()) assert.deepEqual(tn.applied.map(text), ['p0', 'p1', 'p2', 'p3', 'p4']);
  });

  test('uncommittedBytesMax drops proposals with FLOTILLA_RAFT_PROPOSAL_DROPPED', () => {
    const UNCOMMITTED_BYTES_MAX = 2048;
    const c = settledCluster({ appendBytesMax: 1024, uncommittedBytesMax: UNCOMMITTED_BYTES_MAX });
    const leader = c.get(1);
    c.isolate(2, 3);
    const perEntry = 100; // the budget counts payload bytes, as etcd-raft does
    let accepted = 0;
    let dropped: unknown;
    for (let i = 0; i < 100; i++) {
      try {
        leader.node.propose([payload(100)]);
        accepted++;
        c.stabilize();
      } catch (err) {
        dropped = err;
        break;
      }
    }
    assert.equal(accepted, Math.floor(UNCOMMITTED_BYTES_MAX / perEntry), '20 entries fit the budget');
    assert.ok(isRaftError(dropped, 'FLOTILLA_RAFT_PROPOSAL_DROPPED'), `dropped with the right code: ${String(dropped)}`);
    c.heal();
    // Heartbeat rounds: a probe, the catch-up appends, and a round that skips the followers
    // (they just got appends, which carried an older commit), then one that brings the commit.
    c.tickAll(4);
    for (const tn of c.nodes.values()) assert.equal(tn.applied.length, accepted);
    leader.node.propose([payload(100)]); // the budget is free again
    c.heartbeatRound(1);
    assert.equal(c.get(2).applied.length, accepted + 1);
  });

  test('a lagging follower catches up through a snapshot after the leader compacted its log', () => {
    const c = settledCluster();
    const leader = c.get(1);
    c.isolate(3);
    for (let i = 0; i < 20; i++) {
      leader.node.propose([bytes(`v${i}`)]);
      c.stabilize();
    }
    const snapshot = c.compact(1);
    assert.ok(leader.storage.firstIndex() > c.get(3).node.status().lastIndex + 1, 'the entries node 3 needs are gone');
    c.heal();
    c.clearSent();
    c.tickAll(3);
    const snapshots = c.sent.filter((m) => m.type === 'snapshot' && m.to === 3);
    assert.equal(snapshots.length, 1, 'one snapshot sent');
    assert.equal(snapshots[0]!.snapshot?.metadata.index, snapshot.metadata.index);
    const s3 = c.get(3).node.status();
    assert.equal(s3.firstIndex, snapshot.metadata.index + 1);
    assert.equal(s3.applied, snapshot.metadata.index);
    assert.deepEqual(c.get(3).applied.map(text), leader.applied.map(text), 'state restored from the snapshot');
    assert.equal(leader.node.status().progress.get(3)?.state, 'replicate', 'back to pipelining');

    leader.node.propose([bytes('after')]);
    c.heartbeatRound(1);
    assert.equal(text(c.get(3).applied.at(-1)!), 'after');
  });

  test('a follower with a divergent log converges to the leader', () => {
    const c = new TestCluster([1, 2, 3]);
    c.campaign(1);
    c.get(1).node.propose([bytes('common')]);
    c.stabilize();
    // Node 1 is cut off and appends entries nobody else will see.
    c.isolate(1);
    c.get(1).node.propose([bytes('lost-1'), bytes('lost-2'), bytes('lost-3')]);
    c.stabilize();
    const divergentLast = c.get(1).node.status().lastIndex;
    // 2 and 3 elect a leader and commit other entries at the same indexes.
    c.tick([2, 3], 30);
    const newLeader = [c.get(2), c.get(3)].find((tn) => tn.node.status().role === 'leader')!;
    assert.ok(newLeader, 'nodes 2 and 3 elected a leader');
    assert.equal(c.get(1).node.status().role, 'leader', 'node 1 (not ticked) still thinks it leads');
    for (let i = 0; i < 5; i++) newLeader.node.propose([bytes(`new-${i}`)]);
    c.stabilize();
    assert.ok(newLeader.node.status().lastIndex >= divergentLast);
    c.heal();
    c.tickAll(30);
    const expected = storedEntries(newLeader);
    for (const tn of c.nodes.values()) {
      assert.deepEqual(storedEntries(tn), expected, `node ${tn.id} log`);
      assert.deepEqual(tn.applied.map(text), ['common', 'new-0', 'new-1', 'new-2', 'new-3', 'new-4'], `node ${tn.id} applied`);
    }
    assert.notEqual(c.get(1).node.status().role, 'leader');
  });
});
