/**
 * logCatchUpWrite: the log write a crash cut off, derived from the KV record (log-catch-up.ts).
 * Each shape of log a crash can leave behind a KV applied index, and the write must be one the
 * log engine accepts and that leaves a log a raft node starts from.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RawNode, SeededRandom, type ConfState, type Entry, type HardState } from '@flotilla/raft';
import { MemoryLogEngine, type RegionState } from '@flotilla/storage';
import { logCatchUpWrite } from '../src/log-catch-up.ts';
import { peerRaftStorage } from '../src/snapshots.ts';
import { REGION, bytes } from './harness.ts';

const CONF: ConfState = { voters: [11, 12, 13], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false };

function kvState(appliedIndex: number, appliedTerm: number): RegionState {
  return { region: REGION, confState: CONF, appliedIndex, appliedTerm, status: 'normal' };
}

const entries = (from: number, to: number, term: number): Entry[] =>
  Array.from({ length: to - from + 1 }, (_, i) => ({ index: from + i, term, type: 'normal' as const, data: bytes('x') }));

/** A log with the bootstrap snapshot, `entries` after it and `hardState`. */
async function logWith(tail: readonly Entry[], hardState: HardState): Promise<MemoryLogEngine> {
  const log = new MemoryLogEngine();
  await log.write([{ groupId: 1, snapshot: { index: 5, term: 5, confState: CONF }, hardState: { term: 5, vote: 0, commit: 5 } }]);
  await log.write([{ groupId: 1, ...(tail.length > 0 ? { entries: tail } : {}), hardState }]);
  return log;
}

/** Applies the repair and starts a raft node at the applied index, as the host does. */
async function repairAndStart(log: MemoryLogEngine, state: RegionState): Promise<RawNode> {
  const write = logCatchUpWrite(state, log.group(1));
  assert.ok(write !== null);
  await log.write([write]);
  const storage = peerRaftStorage(log, 1, state.confState, () => {
    throw new Error('no snapshot');
  });
  return new RawNode({ id: 13, storage, applied: state.appliedIndex, electionTicks: 10, heartbeatTicks: 1, random: new SeededRandom(1) });
}

describe('logCatchUpWrite', () => {
  test('a log at or past the applied index needs nothing', async () => {
    const log = await logWith(entries(6, 20, 6), { term: 6, vote: 11, commit: 20 });
    assert.equal(logCatchUpWrite(kvState(20, 6), log.group(1)), null);
    assert.equal(logCatchUpWrite(kvState(12, 6), log.group(1)), null);
  });

  test('no log group (a split child, a snapshot into a new replica): the snapshot point with a fresh hard state', async () => {
    const log = new MemoryLogEngine();
    assert.deepEqual(logCatchUpWrite(kvState(5, 5), log.group(1)), {
      groupId: 1,
      snapshot: { index: 5, term: 5, confState: CONF },
      hardState: { term: 5, vote: 0, commit: 5 },
      confState: CONF,
    });
    const node = await repairAndStart(log, kvState(40, 7));
    assert.equal(node.status().commit, 40);
    assert.equal(log.group(1).firstIndex(), 41);
  });

  test('a placeholder that voted in a later term keeps its term and vote', async () => {
    const log = new MemoryLogEngine();
    await log.write([{ groupId: 1, hardState: { term: 9, vote: 12, commit: 0 } }]);
    const write = logCatchUpWrite(kvState(40, 7), log.group(1));
    assert.deepEqual(write?.hardState, { term: 9, vote: 12, commit: 40 });
    const node = await repairAndStart(log, kvState(40, 7));
    assert.equal(node.status().term, 9);
    assert.equal(log.group(1).hardState().vote, 12);
  });

  test('a log that differs from the snapshot at its index is replaced by it (its entries after it were never committed)', async () => {
    const log = await logWith(entries(6, 30, 6), { term: 6, vote: 11, commit: 10 });
    const write = logCatchUpWrite(kvState(20, 7), log.group(1));
    assert.deepEqual(write?.snapshot, { index: 20, term: 7, confState: CONF });
    assert.deepEqual(write?.hardState, { term: 7, vote: 0, commit: 20 }, 'a newer term: no vote cast in it here');
    const node = await repairAndStart(log, kvState(20, 7));
    assert.equal(node.status().commit, 20);
    assert.equal(log.group(1).lastIndex(), 20);
  });

  test('a log that holds the entry at the applied index keeps the entries after it; only the commit moves', async () => {
    const log = await logWith(entries(6, 30, 6), { term: 8, vote: 12, commit: 10 });
    const write = logCatchUpWrite(kvState(20, 6), log.group(1));
    assert.deepEqual(write, { groupId: 1, hardState: { term: 8, vote: 12, commit: 20 } });
    const node = await repairAndStart(log, kvState(20, 6));
    assert.equal(node.status().commit, 20);
    assert.equal(log.group(1).lastIndex(), 30, 'entries this replica may have acknowledged stay');
  });

  test('without the repair the raft node refuses to start (the crash windows this closes)', async () => {
    const log = await logWith(entries(6, 10, 6), { term: 6, vote: 11, commit: 8 });
    const storage = peerRaftStorage(log, 1, CONF, () => {
      throw new Error('no snapshot');
    });
    assert.throws(() => new RawNode({ id: 13, storage, applied: 20, electionTicks: 10, heartbeatTicks: 1, random: new SeededRandom(1) }), /applied 20 beyond committed 8/);
  });
});
