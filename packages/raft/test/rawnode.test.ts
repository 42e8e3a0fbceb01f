import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  BOOTSTRAP_HARD_STATE,
  BOOTSTRAP_INDEX,
  BOOTSTRAP_TERM,
  EMPTY_BYTES,
  RaftError,
  MemoryStorage,
  RawNode,
  SeededRandom,
  bootstrapSnapshot,
  isRaftError,
  message,
  type MessageType,
  type RaftConfig,
  type RaftErrorCode,
} from '@flotilla/raft';
import { TestCluster, bytes } from './cluster-harness.ts';

const is = (code: RaftErrorCode) => (err: unknown): boolean => isRaftError(err, code);

function bootstrapped(voters: number[] = [1]): MemoryStorage {
  const storage = new MemoryStorage();
  storage.applySnapshot(bootstrapSnapshot({ voters, votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false }));
  storage.setHardState(BOOTSTRAP_HARD_STATE);
  return storage;
}

function node(overrides: Partial<RaftConfig> = {}, voters: number[] = [1]): { rn: RawNode; storage: MemoryStorage } {
  const storage = bootstrapped(voters);
  const rn = new RawNode({ id: 1, storage, random: new SeededRandom(1), ...overrides });
  return { rn, storage };
}

/** A single voter that just elected itself: its Ready holds the new term and the empty entry. */
function singleLeader(): { rn: RawNode; storage: MemoryStorage } {
  const n = node();
  n.rn.campaign();
  assert.equal(n.rn.status().role, 'leader');
  return n;
}

describe('RawNode Ready/advance contract', () => {
  test('ready() twice without advance() is a contract violation', () => {
    const { rn } = singleLeader();
    rn.ready();
    assert.throws(() => rn.ready(), is('FLOTILLA_RAFT_CONTRACT_VIOLATION'));
  });

  test('advance() with another object (even an equal copy) is a contract violation', () => {
    const { rn, storage } = singleLeader();
    const rd = rn.ready();
    storage.append(rd.entries);
    assert.throws(() => rn.advance({ ...rd }), is('FLOTILLA_RAFT_CONTRACT_VIOLATION'));
  });

  test('advance() without a ready() is a contract violation', () => {
    const { rn } = node();
    const fake = { softState: null, hardState: null, readStates: [], entries: [], snapshot: null, committedEntries: [], messages: [], mustSync: false };
    assert.throws(() => rn.advance(fake), is('FLOTILLA_RAFT_CONTRACT_VIOLATION'));
  });

  test('advance() without persisting the entries fails the assertion', () => {
    const { rn } = singleLeader();
    const rd = rn.ready();
    assert.equal(rd.entries.length, 1);
    assert.throws(() => rn.advance(rd), /raft assertion failed: advance: entry 6 was not persisted/);
  });

  test('advance() with entries persisted under another term fails the assertion', () => {
    const { rn, storage } = singleLeader();
    const rd = rn.ready();
    storage.append(rd.entries.map((e) => ({ ...e, term: e.term + 1 })));
    assert.throws(() => rn.advance(rd), /persisted with another term/);
  });

  test('a correct cycle: the first Ready of a new single-voter leader', () => {
    const { rn, storage } = singleLeader();
    assert.equal(rn.hasReady(), true);
    const rd = rn.ready();
    assert.deepEqual(rd.softState, { leader: 1, role: 'leader', hibernating: false });
    assert.deepEqual(rd.hardState, { term: BOOTSTRAP_TERM + 1, vote: 1, commit: BOOTSTRAP_INDEX });
    assert.deepEqual(rd.entries.map((e) => [e.index, e.term, e.type, e.data.byteLength]), [[6, 6, 'normal', 0]]);
    assert.deepEqual(rd.committedEntries, [], 'the leader counts its own copy only once it is persisted');
    assert.equal(rd.mustSync, true);
    assert.deepEqual(rd.messages, []);
    storage.append(rd.entries);
    storage.setHardState(rd.hardState!);
    rn.advance(rd);
    // Persisted: the single voter's copy is the quorum.
    assert.equal(rn.hasReady(), true);
    const committed = rn.ready();
    assert.deepEqual(committed.hardState, { term: BOOTSTRAP_TERM + 1, vote: 1, commit: 6 });
    assert.deepEqual(committed.committedEntries.map((e) => e.index), [6]);
    assert.deepEqual(committed.entries, []);
    assert.equal(committed.mustSync, false, 'only the commit moved');
    storage.setHardState(committed.hardState!);
    rn.advance(committed);
    assert.equal(rn.hasReady(), false);
    assert.equal(rn.status().applied, 6);

    const position = rn.propose([bytes('x'), bytes('y')]);
    assert.deepEqual(position, { firstIndex: 7, lastIndex: 8, term: 6 });
    const rd2 = rn.ready();
    assert.equal(rd2.softState, null, 'unchanged soft state is not repeated');
    assert.equal(rd2.hardState, null, 'nothing committed before the entries are persisted');
    assert.equal(rd2.mustSync, true);
    storage.append(rd2.entries);
    rn.advance(rd2);
    const rd3 = rn.ready();
    assert.deepEqual(rd3.hardState, { term: 6, vote: 1, commit: 8 });
    assert.deepEqual(rd3.committedEntries.map((e) => e.index), [7, 8]);
    rn.advance(rd3);
  });

  test('the leader counts its own copy only once persisted: one follower ack alone commits nothing', () => {
    const c = new TestCluster([1, 2, 3]);
    c.campaign(1);
    c.stabilize();
    const leader = c.get(1);
    const committedBefore = leader.node.status().commit;
    leader.node.propose([bytes('x')]);
    // The host may send the leader's appends before its own write is durable (the Ready
    // contract): take the Ready, deliver its append to node 2 only, and hold back the advance.
    const rd = leader.node.ready();
    assert.equal(rd.entries.length, 1);
    const index = rd.entries[0]!.index;
    for (const m of rd.messages) if (m.to === 2) c.queue.push(m);
    c.deliver();
    c.processReadyOf(c.get(2));
    c.deliver(); // node 2's durable ack reaches the leader
    assert.equal(leader.node.status().commit, committedBefore, "node 2's copy and the leader's volatile one are not a quorum");
    leader.storage.append(rd.entries);
    leader.node.advance(rd);
    assert.equal(leader.node.status().commit, index, 'persisted: the leader and node 2 are');
    // The other way round: the leader persisted first, a follower's ack completes the quorum.
    leader.node.propose([bytes('y')]);
    const rd2 = leader.node.ready();
    leader.storage.append(rd2.entries);
    leader.node.advance(rd2);
    assert.equal(leader.node.status().commit, index, 'the leader alone is not a quorum');
    for (const m of rd2.messages) if (m.to === 2) c.queue.push(m);
    c.deliver();
    c.processReadyOf(c.get(2));
    c.deliver();
    assert.equal(leader.node.status().commit, rd2.entries[0]!.index);
  });

  test('mustSync is false when only the commit index moved', () => {
    const c = new TestCluster([1, 2, 3]);
    c.campaign(1);
    c.get(1).node.propose([bytes('x')]);
    // Deliver until node 2 has persisted the entry, then look at the Ready that only commits.
    const n2 = c.get(2);
    for (let i = 0; i < 10; i++) {
      c.processReady();
      c.deliver();
      if (n2.node.status().commit === n2.node.status().lastIndex && n2.node.hasReady()) break;
      // No append goes out just to carry the commit: the heartbeat round after the one that
      // skipped node 2 (it had just got the append) brings it.
      if (i === 5 || i === 7) c.get(1).node.tick();
    }
    const rd = n2.node.ready();
    assert.equal(rd.entries.length, 0);
    assert.notEqual(rd.hardState, null);
    assert.equal(rd.mustSync, false);
    assert.equal(rd.committedEntries.length, 1);
    n2.node.advance(rd);
  });
});

describe('RawNode.step', () => {
  const local: MessageType[] = ['hup', 'beat', 'unreachable', 'snapshotStatus', 'checkQuorum'];
  for (const type of local) {
    test(`refuses the local message type '${type}' from the network`, () => {
      const { rn } = node({}, [1, 2, 3]);
      assert.throws(() => rn.step(message({ type, from: 2, to: 1, term: 5 })), is('FLOTILLA_RAFT_STEP_LOCAL_MESSAGE'));
      assert.equal(rn.status().role, 'follower', 'and does not act on it');
    });
  }

  test('refuses a response from a node that is not a member', () => {
    const { rn } = node({}, [1, 2, 3]);
    assert.throws(() => rn.step(message({ type: 'appendResponse', from: 9, to: 1, term: 5 })), is('FLOTILLA_RAFT_STEP_PEER_NOT_FOUND'));
    assert.throws(() => rn.step(message({ type: 'heartbeatResponse', from: 9, to: 1, term: 5 })), is('FLOTILLA_RAFT_STEP_PEER_NOT_FOUND'));
  });

  test('accepts a remote message (a heartbeat makes the sender our leader)', () => {
    const { rn } = node({}, [1, 2, 3]);
    rn.step(message({ type: 'heartbeat', from: 2, to: 1, term: 6, commit: 5 }));
    const s = rn.status();
    assert.equal(s.term, 6);
    assert.equal(s.leader, 2);
    const rd = rn.ready();
    assert.deepEqual(rd.messages.map((m) => [m.type, m.to, m.term]), [['heartbeatResponse', 2, 6]]);
  });
});

describe('RawNode.status', () => {
  test('a fresh follower', () => {
    const { rn } = node({}, [1, 2, 3]);
    const s = rn.status();
    assert.equal(s.id, 1);
    assert.equal(s.term, BOOTSTRAP_TERM);
    assert.equal(s.vote, 0);
    assert.equal(s.commit, BOOTSTRAP_INDEX);
    assert.equal(s.applied, BOOTSTRAP_INDEX);
    assert.equal(s.firstIndex, BOOTSTRAP_INDEX + 1);
    assert.equal(s.lastIndex, BOOTSTRAP_INDEX);
    assert.equal(s.leader, 0);
    assert.equal(s.role, 'follower');
    assert.equal(s.hibernating, false);
    assert.equal(s.leadTransferee, 0);
    assert.deepEqual(s.config, { voters: [1, 2, 3], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false });
    assert.equal(s.progress.size, 0, 'progress only on the leader');
  });

  test('a leader reports progress for every member', () => {
    const c = new TestCluster([1, 2, 3], {}, [4]);
    c.campaign(1);
    c.get(1).node.propose([bytes('x')]);
    c.stabilize();
    const s = c.get(1).node.status();
    assert.equal(s.role, 'leader');
    assert.equal(s.leader, 1);
    assert.equal(s.vote, 1);
    assert.equal(s.term, 6);
    assert.equal(s.lastIndex, 7);
    assert.equal(s.commit, 7);
    assert.equal(s.applied, 7);
    assert.deepEqual([...s.progress.keys()].sort(), [1, 2, 3, 4]);
    for (const [id, pr] of s.progress) {
      assert.equal(pr.match, 7, `match of ${id}`);
      assert.equal(pr.next, 8);
      assert.equal(pr.state, 'replicate');
      assert.equal(pr.isLearner, id === 4);
      assert.equal(pr.inflightMessages, 0);
    }
    assert.equal(c.get(2).node.status().progress.size, 0);
  });
});

describe('RawNode configuration', () => {
  const storage = bootstrapped();
  const base: RaftConfig = { id: 1, storage, random: new SeededRandom(1) };
  const invalid: [string, Partial<RaftConfig>][] = [
    ['lease-based reads without checkQuorum', { readOnlyOption: 'leaseBased', checkQuorum: false }],
    ['electionTicks == heartbeatTicks', { electionTicks: 3, heartbeatTicks: 3 }],
    ['electionTicks < heartbeatTicks', { electionTicks: 2, heartbeatTicks: 3 }],
    ['drift == electionTicks', { electionTicks: 10, maxClockDriftTicks: 10 }],
    ['drift > electionTicks', { electionTicks: 10, maxClockDriftTicks: 11 }],
    ['negative drift', { maxClockDriftTicks: -1 }],
    ['node id 0', { id: 0 }],
    ['fractional node id', { id: 1.5 }],
    ['heartbeatTicks 0', { heartbeatTicks: 0 }],
    ['inflightMessagesMax 0', { inflightMessagesMax: 0 }],
    ['inflightBytesMax below appendBytesMax', { inflightBytesMax: 1000, appendBytesMax: 2000 }],
    ['uncommittedBytesMax below appendBytesMax', { uncommittedBytesMax: 1000, appendBytesMax: 2000 }],
    ['pendingReadIndexMax 0', { pendingReadIndexMax: 0 }],
    ['negative hibernateAfterTicks', { hibernateAfterTicks: -1 }],
  ];
  for (const [name, overrides] of invalid) {
    test(`FLOTILLA_RAFT_INVALID_CONFIG: ${name}`, () => {
      assert.throws(() => new RawNode({ ...base, ...overrides }), is('FLOTILLA_RAFT_INVALID_CONFIG'));
    });
  }

  test('valid edge configurations are accepted', () => {
    assert.doesNotThrow(() => new RawNode({ ...base, readOnlyOption: 'leaseBased', checkQuorum: true }));
    assert.doesNotThrow(() => new RawNode({ ...base, electionTicks: 2, heartbeatTicks: 1, maxClockDriftTicks: 1 }));
    assert.doesNotThrow(() => new RawNode({ ...base, maxClockDriftTicks: 0 }));
    assert.doesNotThrow(() => new RawNode({ ...base, inflightBytesMax: 0 }));
  });

  test('a stored hard state inconsistent with the log is refused', () => {
    const beyond = bootstrapped();
    beyond.setHardState({ term: 5, vote: 0, commit: 9 });
    assert.throws(() => new RawNode({ ...base, storage: beyond }), is('FLOTILLA_RAFT_INVALID_CONFIG'));
    const oldTerm = bootstrapped();
    oldTerm.append([{ index: 6, term: 7, type: 'normal', data: EMPTY_BYTES }]);
    oldTerm.setHardState({ term: 6, vote: 0, commit: 5 });
    assert.throws(() => new RawNode({ ...base, storage: oldTerm }), is('FLOTILLA_RAFT_INVALID_CONFIG'));
  });

  test('a restarted node resumes from its stored hard state and applied index', () => {
    const s = bootstrapped([1, 2, 3]);
    s.append([6, 7, 8].map((index) => ({ index, term: 6, type: 'normal' as const, data: bytes(`e${index}`) })));
    s.setHardState({ term: 6, vote: 2, commit: 8 });
    const rn = new RawNode({ ...base, storage: s, applied: 7 });
    const st = rn.status();
    assert.equal(st.term, 6);
    assert.equal(st.vote, 2);
    assert.equal(st.commit, 8);
    assert.equal(st.applied, 7);
    const rd = rn.ready();
    assert.deepEqual(rd.committedEntries.map((e) => e.index), [8], 'only what was not applied');
  });
});

/** A single voter that committed three entries after the bootstrap index (its storage holds them). */
function committedThree(): { storage: MemoryStorage; committed: number } {
  const { rn, storage } = singleLeader();
  for (const data of ['a', 'b', 'c']) rn.propose([bytes(data)]);
  for (let i = 0; i < 5 && rn.hasReady(); i++) {
    const rd = rn.ready();
    storage.append(rd.entries);
    if (rd.hardState) storage.setHardState(rd.hardState);
    rn.advance(rd);
  }
  return { storage, committed: rn.status().commit };
}

describe('committed entries the storage is still reading from disk', () => {
  test('a restarted node applies nothing, and does not spin, until entriesAvailable()', () => {
    // A single voter commits three entries, then restarts with applied at the bootstrap index.
    const { storage, committed } = committedThree();
    assert.ok(committed >= BOOTSTRAP_INDEX + 4, `entries committed (${committed})`);
    // The storage answers TEMPORARILY_UNAVAILABLE until its (simulated) disk read finishes.
    let onDisk = true;
    const asyncStorage = Object.create(storage) as MemoryStorage;
    asyncStorage.entries = (lo, hi, maxBytes) => {
      if (onDisk) throw new RaftError('FLOTILLA_RAFT_LOG_TEMPORARILY_UNAVAILABLE', 'being read');
      return storage.entries(lo, hi, maxBytes);
    };
    const restarted = new RawNode({ id: 1, storage: asyncStorage, random: new SeededRandom(1), applied: BOOTSTRAP_INDEX });
    assert.ok(restarted.hasReady());
    const first = restarted.ready();
    assert.deepEqual(first.committedEntries, [], 'nothing to apply yet');
    restarted.advance(first);
    assert.equal(restarted.hasReady(), false, 'no empty Ready over and over while the read runs');
    onDisk = false;
    restarted.entriesAvailable();
    assert.ok(restarted.hasReady());
    const second = restarted.ready();
    assert.deepEqual(second.committedEntries.map((e) => e.index), Array.from({ length: committed - BOOTSTRAP_INDEX }, (_, i) => BOOTSTRAP_INDEX + 1 + i));
    restarted.advance(second);
  });
});

describe('held applying (a merge target waiting for its source)', () => {
  /** The node of committedThree(), restarted with nothing applied after the bootstrap index. */
  function withCommitted(): { rn: RawNode; committed: number } {
    const { storage, committed } = committedThree();
    return { rn: new RawNode({ id: 1, storage, random: new SeededRandom(1), applied: BOOTSTRAP_INDEX }), committed };
  }

  test('entries after the hold are not applied, not offered again until resumed, then offered from the hold', () => {
    const { rn, committed } = withCommitted();
    const rd = rn.ready();
    const indexes = rd.committedEntries.map((e) => e.index);
    assert.ok(indexes.length >= 3, `committed entries handed out (${indexes.join(',')})`);
    const holdAt = indexes[0]!; // applied the first, the second must wait
    rn.advance(rd, holdAt);
    assert.equal(rn.status().applied, holdAt, 'the node knows only the first is applied');
    assert.ok(rn.applyingHeld);
    assert.equal(rn.hasReady(), false, 'no Ready while held: the host is not spun');
    rn.resumeApplying();
    assert.ok(rn.hasReady());
    const again = rn.ready();
    assert.deepEqual(again.committedEntries.map((e) => e.index), indexes.slice(1), 'the held entries come again, in order');
    rn.advance(again);
    assert.equal(rn.status().applied, committed);
  });

  test('a hold before the first entry applies nothing; a hold past the Ready is refused', () => {
    const { rn } = withCommitted();
    const rd = rn.ready();
    const first = rd.committedEntries[0]!.index;
    rn.advance(rd, first - 1);
    assert.equal(rn.status().applied, first - 1);
    rn.resumeApplying();
    const again = rn.ready();
    assert.equal(again.committedEntries[0]!.index, first);
    assert.throws(() => rn.advance(again, first - 2), /raft assertion failed/);
  });
});

describe('commitKnown (an entry known committed from elsewhere)', () => {
  test('commits the local prefix only when the local entry has the committed term', () => {
    const storage = bootstrapped([1, 2, 3]);
    storage.append([6, 7, 8].map((index) => ({ index, term: 6, type: 'normal' as const, data: bytes(`e${index}`) })));
    storage.setHardState({ term: 6, vote: 2, commit: 6 });
    const rn = new RawNode({ id: 1, storage, random: new SeededRandom(1), applied: 6 });
    assert.equal(rn.commitKnown(8, 5), false, 'another term at 8: not the committed entry');
    assert.equal(rn.commitKnown(9, 6), false, 'not in the local log');
    assert.equal(rn.commitKnown(6, 6), false, 'committed already');
    assert.equal(rn.commitKnown(8, 6), true);
    assert.equal(rn.status().commit, 8);
    const rd = rn.ready();
    assert.equal(rd.hardState?.commit, 8, 'the new commit index is persisted with the next Ready');
    assert.deepEqual(rd.committedEntries.map((e) => e.index), [7, 8]);
  });
});
