/**
 * The storage benchmark (`pnpm bench:storage`, benchmarks/storage) in its quick mode, as a
 * harness check: it measures every scenario, runs the alternating target check and states its
 * verdicts from it. Checks that the harness works, never speed.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { assertFinished, figure, killAll, rowCells, rowsCells, runQuick } from './support/quick-bench.ts';

/** The quick mode takes ~45 s on the 2-core machine; the bound leaves room for a busy one. */
const RUN_DEADLINE_MS = 240_000;
const TEST_TIMEOUT_MS = RUN_DEADLINE_MS + 30_000;

describe('storage benchmark, quick mode', () => {
  const children: ChildProcess[] = [];
  after(() => killAll(children));

  it('measures every scenario and decides the targets on the alternating runs', { timeout: TEST_TIMEOUT_MS }, async () => {
    const run = await runQuick('benchmarks/storage/bench.ts', children, RUN_DEADLINE_MS);
    await assertFinished(run, 'bench:storage');
    for (const field of ['date', 'command', 'machine', 'config']) assert.match(run.stdout, new RegExp(`^- ${field}: \\S`, 'm'), `prints '${field}'`);

    // | appender | shards | groups | entries/s | …: both appenders at every group count.
    const scenarios = [...rowsCells(run.stdout, 'worker').map((c) => ['worker', ...c]), ...rowsCells(run.stdout, 'inline').map((c) => ['inline', ...c])];
    for (const groups of ['1', '16', '256', '4,096']) {
      for (const mode of ['worker', 'inline']) {
        const row = scenarios.find((c) => c[0] === mode && c[2] === groups);
        assert.ok(row, `a ${mode} row for ${groups} groups`);
        assert.ok(figure(row[3]) > 0, `${mode}, ${groups} groups: entries measured (${row[3]})`);
      }
    }

    // | run | raw entries/s | engine entries/s | % of raw | loop p99 ms | idle loop p99 ms | …
    const check = rowCells(run.stdout, '1');
    const rawPerSec = figure(check[0]);
    const enginePerSec = figure(check[1]);
    assert.ok(rawPerSec > 0 && enginePerSec > 0, `the target check measured both: ${check.join(' | ')}`);
    assert.ok(Math.abs(figure(check[2]) - (100 * enginePerSec) / rawPerSec) <= 1, `the share is engine over raw of the same run: ${check.join(' | ')}`);
    assert.ok(figure(check[3]) >= 0, `a loop delay: ${check[3]}`);

    assert.match(run.stdout, /^- >= 80% of raw largest-batch throughput: \d+% \(median of the 1 alternating runs, [^)]*\) — (MET|NOT MET);/m);
    assert.match(run.stdout, /^- main-thread event-loop delay p99 < 2 ms at full speed: [\d.]+ ms \(median of the alternating runs, [^)]*\) — (MET|NOT MET);/m);
    assert.match(run.stdout, /^- group commit >= 50x one-fsync-per-entry: [\d.]+x — (MET|NOT MET)$/m);
    // The same scenario as a store runs with its event-loop settings: at least --serial-scavenges, and why any other is missing.
    assert.match(run.stdout, /^ {2}- as a store runs with (--event-loop-priority 15 )?(--event-loop-slice-us 100 )?--serial-scavenges on( \(no [^)]*\))?: [\d.]+ ms \(median, [^)]*\) — (MET|NOT MET), at \d+% of the raw rate/m);
    assert.ok(figure(check[5]) > 0 && figure(check[7]) >= 0, `the row with the settings measured: ${check.join(' | ')}`);
  });
});
