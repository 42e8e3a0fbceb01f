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

  test("a segment's commands are its entries' in log order; the lists commandsOf hands over are never changed", () => {
    const put = (index: number, k: number): KvCommand => ({ op: 'put', key: new Uint8Array([index, k]), value: new Uint8Array(0) });
    const shared: readonly KvCommand[] = Object.freeze([{ op: 'noop' }]);
    const handed = new Map<number, KvCommand[]>();
    const of = (_peer: string, e: Entry): KvCommand[] => {
      // Entry 8 answers a shared constant list, as commandsOf does for refused admin commands.
      const list = e.index === 8 ? (shared as KvCommand[]) : Array.from({ length: e.data.byteLength }, (_, k) => put(e.index, k));
      handed.set(e.index, list);
      return list;
    };
    const [batch] = [...applyBatches([{ peer: 'a', entries: [entry(6, 2), entry(7, 1), entry(8, 1)] }, { peer: 'b', entries: [entry(3, 2)] }], of, { commandsMax: 100, regionsMax: 10 })];
    const keys = (list: readonly KvCommand[]): string[] => list.map((c) => (c.op === 'put' ? c.key.join('.') : c.op));
    assert.deepEqual(batch!.map((s) => keys(s.commands)), [['6.0', '6.1', '7.0', 'noop'], ['3.0', '3.1']]);
    assert.deepEqual(keys(handed.get(6)!), ['6.0', '6.1'], "the first entry's list is not where the segment's grows");
    assert.deepEqual(keys(shared), ['noop']);
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
