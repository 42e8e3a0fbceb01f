import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { EMPTY_BYTES, EMPTY_CONF_STATE, MemoryStorage, isRaftError, type Entry, type Snapshot } from '@flotilla/raft';
import { RaftLog } from '../src/log.ts';
import { UnstableLog } from '../src/log-unstable.ts';
import { ENTRY_OVERHEAD_BYTES } from '../src/util.ts';

/** Entry of `payloadBytes` zero bytes (each counts payload + ENTRY_OVERHEAD_BYTES). */
const e = (index: number, term: number, payloadBytes = 0): Entry => ({ index, term, type: 'normal', data: new Uint8Array(payloadBytes) });
/** Entries [from, from + terms.length) with the given terms. */
const run = (from: number, terms: number[], payloadBytes = 0): Entry[] => terms.map((t, i) => e(from + i, t, payloadBytes));
const snap = (index: number, term: number): Snapshot => ({ metadata: { index, term, confState: EMPTY_CONF_STATE }, data: EMPTY_BYTES });
const ids = (entries: readonly Entry[]): number[] => entries.map((x) => x.index);
const terms = (entries: readonly Entry[]): number[] => entries.map((x) => x.term);

/** A log whose storage holds a snapshot at (5, 5) and `stored` from index 6; `unstable` follows. */
function makeLog(stored: Entry[], unstable: Entry[] = [], committedBytesPerReadyMax = Number.POSITIVE_INFINITY): { log: RaftLog; storage: MemoryStorage } {
  const storage = new MemoryStorage();
  storage.applySnapshot(snap(5, 5));
  storage.append(stored);
  const log = new RaftLog(storage, committedBytesPerReadyMax);
  log.append(unstable);
  return { log, storage };
}

const code = (c: string) => (err: unknown): boolean => isRaftError(err) && err.code === c;

describe('RaftLog basics', () => {
  test('first/last index and cursors start at the snapshot', () => {
    const { log } = makeLog(run(6, [5, 5, 6]), run(9, [6, 7]));
    assert.equal(log.firstIndex(), 6);
    assert.equal(log.lastIndex(), 10);
    assert.equal(log.lastTerm(), 7);
    assert.equal(log.committed, 5);
    assert.equal(log.applied, 5);
    assert.equal(log.unstable.offset, 9);
  });

  test('term() bounds: snapshot index known, below it and past the end are 0/undefined', () => {
    const { log } = makeLog(run(6, [5, 6]), run(8, [7]));
    assert.equal(log.term(5), 5, 'dummy entry at the snapshot');
    assert.equal(log.term(6), 5);
    assert.equal(log.term(7), 6);
    assert.equal(log.term(8), 7, 'unstable');
    assert.equal(log.termOrUndefined(4), undefined);
    assert.equal(log.term(4), 0);
    assert.equal(log.termOrUndefined(9), undefined);
    assert.equal(log.term(9), 0);
    assert.equal(log.matchTerm(8, 7), true);
    assert.equal(log.matchTerm(8, 6), false);
    assert.equal(log.matchTerm(9, 0), false, 'an index we do not have never matches');
  });

  test('isUpToDate compares last term, then last index', () => {
    const { log } = makeLog(run(6, [5, 6, 6])); // last (8, 6)
    assert.equal(log.isUpToDate(8, 6), true);
    assert.equal(log.isUpToDate(9, 6), true);
    assert.equal(log.isUpToDate(7, 6), false);
    assert.equal(log.isUpToDate(1, 7), true, 'higher last term wins whatever the length');
    assert.equal(log.isUpToDate(100, 5), false, 'lower last term loses whatever the length');
  });
});

describe('RaftLog.findConflict / findConflictByTerm', () => {
  test('findConflict: first mismatching or new index, 0 when all match', () => {
    const { log } = makeLog(run(6, [5, 6, 6, 7]));
    assert.equal(log.findConflict([]), 0);
    assert.equal(log.findConflict(run(6, [5, 6, 6, 7])), 0);
    assert.equal(log.findConflict(run(7, [6, 6])), 0);
    assert.equal(log.findConflict(run(8, [6, 7, 7])), 10, 'new entry past the end');
    assert.equal(log.findConflict(run(7, [6, 8, 8])), 8, 'term mismatch');
    assert.equal(log.findConflict(run(6, [4])), 6);
  });

  test('findConflictByTerm: largest index <= index with term <= term', () => {
    // index: 6 7 8 9 10 11
    // term : 5 5 6 6 6  8
    const { log } = makeLog(run(6, [5, 5, 6, 6, 6, 8]));
    assert.deepEqual(log.findConflictByTerm(11, 7), { index: 10, term: 6 });
    assert.deepEqual(log.findConflictByTerm(11, 8), { index: 11, term: 8 });
    assert.deepEqual(log.findConflictByTerm(11, 5), { index: 7, term: 5 });
    assert.deepEqual(log.findConflictByTerm(9, 6), { index: 9, term: 6 });
    assert.deepEqual(log.findConflictByTerm(50, 9), { index: 11, term: 8 }, 'clamped to last index');
    assert.deepEqual(log.findConflictByTerm(11, 1), { index: 5, term: 5 }, 'stops at the snapshot');
  });
});

describe('RaftLog.maybeAppend', () => {
  test('refuses when the previous entry does not match', () => {
    const { log } = makeLog(run(6, [5, 6]));
    assert.equal(log.maybeAppend(7, 5, 7, run(8, [6])), undefined, 'term mismatch at 7');
    assert.equal(log.maybeAppend(9, 6, 9, run(10, [6])), undefined, 'gap');
    assert.equal(log.lastIndex(), 7);
    assert.equal(log.committed, 5);
  });

  test('appends new entries and commits min(leaderCommit, lastNew)', () => {
    const { log } = makeLog(run(6, [5, 6]));
    assert.equal(log.maybeAppend(7, 6, 100, run(8, [6, 6])), 9);
    assert.equal(log.lastIndex(), 9);
    assert.equal(log.committed, 9, 'capped at the last new entry');
    const { log: log2 } = makeLog(run(6, [5, 6]));
    assert.equal(log2.maybeAppend(7, 6, 8, run(8, [6, 6])), 9);
    assert.equal(log2.committed, 8, 'leader commit below lastNew');
  });

  test('does not commit our stale suffix beyond what the leader sent', () => {
    // We have 6..10; the leader's append only covers up to 7 (heartbeat-like, empty).
    const { log } = makeLog(run(6, [5, 6, 6, 6, 6]));
    assert.equal(log.maybeAppend(7, 6, 10, []), 7);
    assert.equal(log.committed, 7);
    assert.equal(log.lastIndex(), 10, 'no truncation without a conflict');
  });

  test('truncates a conflicting suffix', () => {
    const { log } = makeLog(run(6, [5, 6]), run(8, [6, 6, 6]));
    assert.equal(log.maybeAppend(7, 6, 7, run(8, [7, 7])), 9);
    assert.equal(log.lastIndex(), 9);
    assert.deepEqual(terms(log.slice(6, 10, Infinity)), [5, 6, 7, 7]);
  });

  test('truncates a conflict that reaches into storage (replacing persisted entries)', () => {
    const { log } = makeLog(run(6, [5, 6, 6, 6]));
    assert.equal(log.maybeAppend(6, 5, 6, run(7, [8])), 7);
    assert.equal(log.lastIndex(), 7);
    assert.equal(log.term(7), 8);
    assert.equal(log.unstable.offset, 7);
    assert.deepEqual(terms(log.slice(6, 8, Infinity)), [5, 8]);
  });

  test('already-present entries are not re-appended (no truncation of a longer log)', () => {
    const { log } = makeLog(run(6, [5, 6, 6, 6]));
    assert.equal(log.maybeAppend(6, 5, 5, run(7, [6])), 7);
    assert.equal(log.lastIndex(), 9);
  });

  test('a conflict with a committed entry is a broken invariant', () => {
    const { log } = makeLog(run(6, [5, 6, 6]));
    log.commitTo(8);
    assert.throws(() => log.maybeAppend(6, 5, 8, run(7, [9])), /conflicts with committed/);
  });
});

describe('RaftLog.maybeCommit / commitTo', () => {
  test('only entries of the current term are committed by counting', () => {
    const { log } = makeLog(run(6, [5, 6, 6, 7]));
    assert.equal(log.maybeCommit(8, 7), false, 'entry 8 has term 6, we are in term 7');
    assert.equal(log.committed, 5);
    assert.equal(log.maybeCommit(9, 7), true);
    assert.equal(log.committed, 9);
    assert.equal(log.maybeCommit(8, 6), false, 'never moves back');
    assert.equal(log.committed, 9);
  });

  test('commitTo never decreases and never passes the last index', () => {
    const { log } = makeLog(run(6, [5, 5]));
    log.commitTo(7);
    log.commitTo(6);
    assert.equal(log.committed, 7);
    assert.throws(() => log.commitTo(8), /beyond last index/);
  });
});

describe('RaftLog.slice', () => {
  const PAYLOAD = 84; // 100 bytes per entry with the overhead
  const PER_ENTRY = PAYLOAD + ENTRY_OVERHEAD_BYTES;

  test('spans storage and unstable', () => {
    const { log } = makeLog(run(6, [5, 5, 5]), run(9, [6, 6]));
    assert.deepEqual(ids(log.slice(6, 11, Infinity)), [6, 7, 8, 9, 10]);
    assert.deepEqual(ids(log.slice(8, 10, Infinity)), [8, 9]);
    assert.deepEqual(ids(log.slice(9, 11, Infinity)), [9, 10]);
    assert.deepEqual(ids(log.slice(7, 8, Infinity)), [7]);
    assert.deepEqual(log.slice(8, 8, Infinity), []);
  });

  test('byte limits: stops in storage, stops in unstable, never empty', () => {
    const { log } = makeLog(run(6, [5, 5, 5], PAYLOAD), run(9, [6, 6], PAYLOAD));
    assert.equal(PER_ENTRY, 100);
    assert.deepEqual(ids(log.slice(6, 11, 250)), [6, 7], 'limit hit inside storage');
    assert.deepEqual(ids(log.slice(6, 11, 300)), [6, 7, 8], 'exactly the storage part');
    assert.deepEqual(ids(log.slice(6, 11, 450)), [6, 7, 8, 9], 'limit hit inside unstable');
    assert.deepEqual(ids(log.slice(6, 11, 1)), [6], 'at least one entry');
    assert.deepEqual(ids(log.slice(9, 11, 1)), [9], 'at least one, unstable only');
    assert.deepEqual(ids(log.entries(8, 250)), [8, 9]);
  });

  test('below the first index is COMPACTED; past the end is a broken invariant', () => {
    const { log } = makeLog(run(6, [5, 5]));
    assert.throws(() => log.slice(5, 7, Infinity), code('FLOTILLA_RAFT_COMPACTED'));
    assert.throws(() => log.slice(6, 9, Infinity), /beyond last index/);
    assert.deepEqual(log.entries(8, Infinity), [], 'entries past the end are simply empty');
  });

  test('committed entries handed out are bounded by committedBytesPerReadyMax', () => {
    const { log } = makeLog(run(6, [5, 5, 5, 5], PAYLOAD), [], 250);
    log.commitTo(9);
    assert.equal(log.hasNextCommittedEntries(), true);
    const first = log.nextCommittedEntries();
    assert.deepEqual(ids(first), [6, 7]);
    log.acceptApplying(7);
    assert.deepEqual(ids(log.nextCommittedEntries()), [8, 9]);
    log.acceptApplying(9);
    assert.equal(log.hasNextCommittedEntries(), false);
    log.appliedTo(9);
    assert.equal(log.applied, 9);
    assert.throws(() => log.appliedTo(10), /beyond committed/);
  });
});

describe('RaftLog.restore and stableTo', () => {
  test('restore replaces the log with a snapshot', () => {
    const { log } = makeLog(run(6, [5, 6]), run(8, [6]));
    log.restore(snap(20, 9));
    assert.equal(log.firstIndex(), 21);
    assert.equal(log.lastIndex(), 20);
    assert.equal(log.lastTerm(), 9);
    assert.equal(log.committed, 20);
    assert.equal(log.term(20), 9);
    assert.equal(log.termOrUndefined(8), undefined, 'old entries are gone');
    assert.equal(log.hasNextCommittedEntries(), false, 'the snapshot is applied first');
    assert.equal(log.snapshot().metadata.index, 20, 'the pending snapshot is what we would send');
    log.stableSnapshotTo(19);
    assert.notEqual(log.unstable.snapshot, null, 'another index does not clear it');
    log.stableSnapshotTo(20);
    assert.equal(log.unstable.snapshot, null);
  });

  test('stableTo drops persisted entries; stale acknowledgements are ignored', () => {
    const { log } = makeLog([], run(6, [5, 5, 6]));
    assert.equal(log.unstable.offset, 6);
    log.stableTo(7, 6); // wrong term: ignored
    assert.equal(log.unstable.offset, 6);
    assert.equal(log.unstable.entries.length, 3);
    log.stableTo(7, 5);
    assert.equal(log.unstable.offset, 8);
    assert.deepEqual(ids(log.unstable.entries), [8]);
    log.stableTo(6, 5); // already stable: ignored
    assert.equal(log.unstable.offset, 8);
    log.stableTo(12, 6); // beyond the end: ignored
    assert.equal(log.unstable.offset, 8);
  });

  test('stableTo after the entries were replaced (term changed) is ignored', () => {
    const u = new UnstableLog(6);
    u.truncateAndAppend(run(6, [5, 5, 5]));
    u.truncateAndAppend(run(7, [6])); // 7 and 8 replaced by 7@6
    assert.deepEqual(terms(u.entries), [5, 6]);
    u.stableTo(7, 5); // ack for the old 7@5
    assert.equal(u.offset, 6);
    u.stableTo(7, 6);
    assert.equal(u.offset, 8);
    assert.equal(u.entries.length, 0);
  });
});

describe('UnstableLog', () => {
  test('truncateAndAppend: append, replace all, replace a suffix', () => {
    const u = new UnstableLog(10);
    u.truncateAndAppend(run(10, [1, 1]));
    u.truncateAndAppend(run(12, [1]));
    assert.deepEqual(ids(u.entries), [10, 11, 12]);
    u.truncateAndAppend(run(11, [2, 2, 2]));
    assert.deepEqual(terms(u.entries), [1, 2, 2, 2]);
    u.truncateAndAppend(run(8, [3]));
    assert.equal(u.offset, 8);
    assert.deepEqual(ids(u.entries), [8]);
    assert.equal(u.maybeLastIndex(), 8);
  });

  test('maybeTerm / maybeFirstIndex / maybeLastIndex with a snapshot', () => {
    const u = new UnstableLog(1);
    assert.equal(u.maybeFirstIndex(), undefined);
    assert.equal(u.maybeLastIndex(), undefined);
    u.restore(snap(10, 4));
    assert.equal(u.maybeFirstIndex(), 11);
    assert.equal(u.maybeLastIndex(), 10);
    assert.equal(u.maybeTerm(10), 4);
    assert.equal(u.maybeTerm(9), undefined);
    u.truncateAndAppend(run(11, [5]));
    assert.equal(u.maybeLastIndex(), 11);
    assert.equal(u.maybeTerm(11), 5);
    assert.equal(u.maybeTerm(12), undefined);
  });

  test('slice checks bounds', () => {
    const u = new UnstableLog(5);
    u.truncateAndAppend(run(5, [1, 1, 1]));
    assert.deepEqual(ids(u.slice(6, 8)), [6, 7]);
    assert.throws(() => u.slice(4, 6), /out of/);
    assert.throws(() => u.slice(6, 9), /out of/);
  });
});

describe('MemoryStorage', () => {
  function storage(): MemoryStorage {
    const s = new MemoryStorage();
    s.applySnapshot(snap(5, 5));
    s.append(run(6, [5, 6, 6, 7], 84));
    return s;
  }

  test('append, first/last index, term', () => {
    const s = storage();
    assert.equal(s.firstIndex(), 6);
    assert.equal(s.lastIndex(), 9);
    assert.equal(s.term(5), 5);
    assert.equal(s.term(9), 7);
    s.append(run(8, [8])); // truncates 8, 9
    assert.equal(s.lastIndex(), 8);
    assert.equal(s.term(8), 8);
    s.append(run(3, [1, 1, 1, 1])); // 3..5 are compacted and ignored; 6 replaced
    assert.equal(s.lastIndex(), 6);
    assert.equal(s.term(6), 1);
    s.append(run(1, [1, 1])); // entirely compacted: ignored
    assert.equal(s.lastIndex(), 6);
    assert.throws(() => s.append(run(8, [9])), /gap/);
  });

  test('error codes: COMPACTED below, UNAVAILABLE above', () => {
    const s = storage();
    assert.throws(() => s.term(4), code('FLOTILLA_RAFT_COMPACTED'));
    assert.throws(() => s.term(10), code('FLOTILLA_RAFT_UNAVAILABLE'));
    assert.throws(() => s.entries(5, 7, Infinity), code('FLOTILLA_RAFT_COMPACTED'));
    assert.throws(() => s.entries(6, 11, Infinity), code('FLOTILLA_RAFT_UNAVAILABLE'));
  });

  test('entries respects maxBytes but returns at least one', () => {
    const s = storage();
    assert.deepEqual(ids(s.entries(6, 10, Infinity)), [6, 7, 8, 9]);
    assert.deepEqual(ids(s.entries(6, 10, 200)), [6, 7]);
    assert.deepEqual(ids(s.entries(6, 10, 299)), [6, 7]);
    assert.deepEqual(ids(s.entries(6, 10, 0)), [6]);
  });

  test('compact keeps the term of the compaction point', () => {
    const s = storage();
    s.compact(7);
    assert.equal(s.firstIndex(), 8);
    assert.equal(s.lastIndex(), 9);
    assert.equal(s.term(7), 6);
    assert.throws(() => s.term(6), code('FLOTILLA_RAFT_COMPACTED'));
    assert.throws(() => s.entries(7, 9, Infinity), code('FLOTILLA_RAFT_COMPACTED'));
    assert.throws(() => s.compact(7), code('FLOTILLA_RAFT_COMPACTED'));
    assert.throws(() => s.compact(10), /beyond last index/);
    s.compact(9);
    assert.equal(s.firstIndex(), 10);
    assert.equal(s.lastIndex(), 9);
    assert.equal(s.term(9), 7);
  });

  test('createSnapshot records index, term and conf state; does not compact', () => {
    const s = storage();
    const cs = { ...EMPTY_CONF_STATE, voters: [1, 2, 3] };
    const data = new Uint8Array([1, 2, 3]);
    const sn = s.createSnapshot(8, cs, data);
    assert.deepEqual(sn.metadata, { index: 8, term: 6, confState: cs });
    assert.equal(s.snapshot(), sn);
    assert.equal(s.firstIndex(), 6);
    assert.throws(() => s.createSnapshot(8, cs, data), code('FLOTILLA_RAFT_SNAPSHOT_OUT_OF_DATE'));
    assert.throws(() => s.createSnapshot(10, cs, data), /beyond last index/);
  });

  test('the configuration read at start: recorded by setConfState, or from a newer snapshot', () => {
    const s = storage();
    assert.equal(s.confStateAppliedIndex(), 5, 'from the snapshot applied at 5');
    const recorded = { ...EMPTY_CONF_STATE, voters: [1, 2] };
    s.setConfState(recorded, 8);
    assert.deepEqual(s.initialState().confState, recorded);
    assert.equal(s.confStateAppliedIndex(), 8);
    s.createSnapshot(7, { ...EMPTY_CONF_STATE, voters: [9] }, EMPTY_BYTES);
    assert.deepEqual(s.initialState().confState, recorded, 'a snapshot older than the recorded change does not override it');
    const incoming: Snapshot = { metadata: { index: 30, term: 9, confState: { ...EMPTY_CONF_STATE, voters: [4, 5, 6] } }, data: EMPTY_BYTES };
    s.applySnapshot(incoming);
    assert.deepEqual(s.initialState().confState.voters, [4, 5, 6], 'a newer snapshot does');
    assert.equal(s.confStateAppliedIndex(), 30);
    const hs = { term: 9, vote: 4, commit: 30 };
    s.setHardState(hs);
    assert.deepEqual(s.initialState().hardState, hs);
  });

  test('applySnapshot replaces the log; older snapshots are refused', () => {
    const s = storage();
    s.applySnapshot(snap(20, 9));
    assert.equal(s.firstIndex(), 21);
    assert.equal(s.lastIndex(), 20);
    assert.equal(s.term(20), 9);
    assert.throws(() => s.applySnapshot(snap(20, 9)), code('FLOTILLA_RAFT_SNAPSHOT_OUT_OF_DATE'));
    assert.throws(() => s.applySnapshot(snap(10, 9)), code('FLOTILLA_RAFT_SNAPSHOT_OUT_OF_DATE'));
  });
});
