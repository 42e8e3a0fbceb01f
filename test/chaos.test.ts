/**
 * A short chaos run on real processes (test/chaos): 3 PD members and 5 stores, register and set
 * workloads through the SDK, kills, power losses (lossyfs, where FUSE is available), pauses,
 * partitions, clock jumps and PD operations drawn from a random
 * seed (printed; `pnpm chaos --seed S --duration 40s` replays the schedule), then the heal and
 * the checks: linearizable per key, no acknowledged write lost, every region led and writable
 * within 30 s. runChaos stops every process, also when it fails.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { REPO } from './support/process.ts';
import type { KvOperation } from '@flotilla/sim';
import { checkRegisters, lostRegisterWrites, lostSetAdds, unexpectedSetElements } from './chaos/check.ts';
import { chaosOptions, runChaos } from './chaos/run.ts';

/** Faults for this long; with the start, the heal and the checks the test takes about 90 s. */
const FAULTS_MS = 40_000;

describe('chaos checks (on made-up histories: each can fail)', () => {
  const put = (clientId: number, key: string, value: string, call: number, ret: number | null): KvOperation => ({ clientId, input: { kind: 'put', key, value }, output: ret === null ? undefined : { kind: 'put' }, call, ret: ret ?? Infinity });
  const get = (clientId: number, key: string, value: string | null, call: number, ret: number): KvOperation => ({ clientId, input: { kind: 'get', key }, output: { kind: 'get', value }, call, ret });

  it('finds a stale read, lets an unknown write explain a later read, and fails a key it cannot decide', () => {
    const stale = checkRegisters([put(1, 'a', 'x', 0, 1), get(2, 'a', null, 2, 3), put(1, 'b', 'y', 0, 1), get(2, 'b', 'y', 2, 3)], 10_000);
    assert.equal(stale.illegalKeys, 1);
    assert.equal(stale.illegal[0]?.key, 'a');
    const unknown = checkRegisters([put(1, 'a', 'x', 0, null), get(2, 'a', 'x', 5, 6), get(2, 'a', 'x', 7, 8)], 10_000);
    assert.equal(unknown.illegalKeys, 0);
    assert.equal(unknown.undecidedKeys, 0);
    const noBudget = checkRegisters([put(1, 'a', 'x', 0, 1)], 0);
    assert.equal(noBudget.undecidedKeys, 1, 'a key the budget did not cover is undecided, not passed');
  });

  it('counts acknowledged writes the final reads miss, and elements nobody added', () => {
    const ops = [put(1, 'a', 'x', 0, 1), put(1, 'b', 'y', 0, null), get(2, 'c', null, 0, 1)];
    assert.deepEqual(lostRegisterWrites(ops, new Map([['a', null], ['b', null], ['c', null]])), ['a']);
    assert.deepEqual(lostRegisterWrites(ops, new Map([['a', 'x']])), []);
    const adds = [{ element: 'e1', outcome: 'ok' as const }, { element: 'e2', outcome: 'unknown' as const }, { element: 'e3', outcome: 'ok' as const }];
    assert.deepEqual(lostSetAdds(adds, new Set(['e1'])), ['e3']);
    assert.deepEqual(unexpectedSetElements(adds, new Set(['e1', 'e2', 'e9'])), ['e9']);
  });
});

describe('chaos on real processes (short schedule)', () => {
  it('stays linearizable, loses no acknowledged write and recovers after the heal', async () => {
    const seed = Number(process.env.FLOTILLA_CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 32));
    const log = (line: string): void => console.log(line);
    log(`chaos test: seed ${seed} (FLOTILLA_CHAOS_SEED=${seed} repeats it)`);
    const { report, summary, paths } = await runChaos(chaosOptions(seed, FAULTS_MS, path.join(REPO, 'test/chaos/reports'), log));
    log(summary);
    const why = `seed ${seed}; report ${paths.markdown}`;
    assert.ok(report.timeline.length > 0, `the nemesis injected faults (${why})`);
    assert.ok(report.outcomes.ok > 0, `operations succeeded (${why})`);
    assert.equal(report.violations, 0, `linearizability violations: ${report.linearizability.illegal.map((i) => i.description).join('\n\n')} (${why})`);
    assert.equal(report.linearizability.undecidedKeys, 0, `the checker decided every key in its budget (${why})`);
    assert.equal(report.lost, 0, `lost writes: ${JSON.stringify(report.lostWrites)} (${why})`);
    assert.equal(report.finalReadsUnanswered, 0, `every final read answered (${why})`);
    assert.deepEqual(report.crashes, [], `no process crashed (${why})`);
    assert.ok(report.liveness.ok, `liveness after the heal: ${report.liveness.problem} (${why})`);
    assert.ok(report.passed, why);
  });
});
