import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Entry } from '@flotilla/raft';
import type { KvCommand } from '@flotilla/storage';
import { applyBatches } from '../src/apply-plan.ts';

const entry = (index: number, commands: number): Entry => ({ index, term: 6, type: 'normal', data: new Uint8Array(commands) });
const commandsOf = (_peer: string, e: Entry): KvCommand[] => Array.from({ length: e.data.byteLength }, () => ({ op: 'noop' }) as const);

describe('applyBatches', () => {
  test('everything in one batch when it fits', () => {
    const batches = [...applyBatches([{ peer: 'a', entries: [entry(6, 3), entry(7, 2)] }, { peer: 'b', entries: [entry(9, 1)] }], commandsOf, { commandsMax: 10, regionsMax: 10 })];
    assert.equal(batches.length, 1);
    assert.deepEqual(batches[0]!.map((s) => [s.peer, s.entries.map((e) => e.index), s.commandCounts]), [['a', [6, 7], [3, 2]], ['b', [9], [1]]]);
  });

  test('a region is cut at an entry boundary when the commands bound is reached; no batch passes it', () => {
    const entries = [entry(6, 4), entry(7, 4), entry(8, 4)];
    const batches = [...applyBatches([{ peer: 'a', entries }], commandsOf, { commandsMax: 9, regionsMax: 10 })];
    assert.deepEqual(batches.map((b) => b.map((s) => s.entries.map((e) => e.index))), [[[6, 7]], [[8]]]);
    for (const b of batches) assert.ok(b.reduce((n, s) => n + s.commands.length, 0) <= 9);
  });

  test('the regions bound starts a new batch', () => {
    const groups = ['a', 'b', 'c'].map((peer, i) => ({ peer, entries: [entry(6 + i, 1)] }));
    const batches = [...applyBatches(groups, commandsOf, { commandsMax: 100, regionsMax: 2 })];
    assert.deepEqual(batches.map((b) => b.map((s) => s.peer)), [['a', 'b'], ['c']]);
  });

  test('lazy: an entry past a full batch is looked at only after that batch was taken', () => {
    const seen: number[] = [];
    const plan = applyBatches([{ peer: 'a', entries: [entry(6, 5), entry(7, 5)] }], (p, e) => (seen.push(e.index), commandsOf(p, e)), { commandsMax: 5, regionsMax: 10 });
    assert.deepEqual(plan.next().value?.[0]?.entries.map((e: Entry) => e.index), [6]);
    assert.deepEqual(seen, [6, 7], 'entry 7 was decoded to find the batch full, in log order');
    assert.deepEqual(plan.next().value?.[0]?.entries.map((e: Entry) => e.index), [7]);
    assert.equal(plan.next().done, true);
  });
});
