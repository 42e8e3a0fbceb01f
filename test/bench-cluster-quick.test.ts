/**
 * The multi-process benchmarks in their quick modes, as a harness check: `pnpm
 * bench:cluster-write`, `bench:cluster-heartbeats`, `bench:cluster-idle` (3 store processes
 * each) and `bench:pd-heartbeats` (a PD process). Each must run to the end, exit 0, stop every
 * process it started, print what the benchmark rules ask of every result (date, command,
 * machine, config) and its tables with measured figures, and its verdict lines. The assertions
 * on figures are about behaviour, never speed: heartbeats of many regions share frames, idle
 * regions hibernate, no operation is refused. One at a time: each loads both cores.
 * (`bench:pd-repair --quick` takes ~65 s and is left to manual runs; test/pd-cluster.test.ts
 * covers PD's repair of a killed store.)
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { assertFinished, figure, killAll, rowCells, rowsCells, runQuick, type Finished } from './support/quick-bench.ts';

/** A bound on waiting for a child (not a speed assertion): a loaded 2-core machine is slow. */
const RUN_DEADLINE_MS = 4 * 60_000;
const TEST_TIMEOUT_MS = RUN_DEADLINE_MS + 10_000;

const children: ChildProcess[] = [];
after(() => killAll(children));

async function quick(script: string, what: string): Promise<Finished> {
  const run = await runQuick(script, children, RUN_DEADLINE_MS);
  await assertFinished(run, what);
  for (const field of ['date', 'command', 'machine', 'config']) assert.match(run.stdout, new RegExp(`^- ${field}: \\S`, 'm'), `${what} prints '${field}'`);
  return run;
}

describe('multi-process benchmarks, quick mode', () => {
  it('bench:cluster-write measures every active-region point with nothing refused, and states its verdict', { timeout: TEST_TIMEOUT_MS }, async () => {
    const run = await quick('benchmarks/cluster/write.ts', 'bench:cluster-write');
    // | active regions | leaders per store | puts/s | requests/s | p50 | p99 | refused ops | …
    for (const regions of ['1', '16', '256', '4,096']) {
      const cells = rowCells(run.stdout, regions);
      assert.ok(figure(cells[1]) > 0, `${regions} active regions: puts measured (${cells[1]})`);
      assert.equal(figure(cells[5]), 0, `${regions} active regions: no operation refused`);
      // | … | store CPU µs per put | store main threads wait % (1 / 2 / 3) | …: a main thread
      // cannot wait longer than the window (a little over for the readings' own timing).
      const waits = cells[8]!.split(' / ');
      assert.equal(waits.length, 3, `${regions} active regions: a wait per store (${cells[8]})`);
      for (const w of waits) if (w !== '-') assert.ok(figure(w) >= 0 && figure(w) <= 110, `${regions} active regions: a main thread's wait within the window (${cells[8]})`);
      // | … | raft messages per put |: puts are replicated, so the stores sent messages.
      assert.ok(figure(cells[12]) > 0, `${regions} active regions: raft messages per put measured (${cells[12]})`);
    }
    assert.match(run.stdout, /^- the curve rises with regions until the cores saturate, not falls: (MET|NOT MET)\b/m);
  });

  it('bench:cluster-heartbeats: ten times the awake regions, about the same frames (heartbeats are coalesced per store pair)', { timeout: TEST_TIMEOUT_MS }, async () => {
    const run = await quick('benchmarks/cluster/heartbeats.ts', 'bench:cluster-heartbeats');
    // | awake regions per store | frames/s | raft messages/s | bytes/s | CPU % …
    const small = rowCells(run.stdout, '100');
    const large = rowCells(run.stdout, '1,000');
    assert.ok(figure(small[0]) > 0 && figure(small[1]) > 0, `heartbeats measured at 100 regions: ${small.join(' | ')}`);
    const framesRatio = figure(large[0]) / figure(small[0]);
    const messagesRatio = figure(large[1]) / figure(small[1]);
    assert.ok(messagesRatio > 5, `messages grow with the regions (x${messagesRatio.toFixed(2)})`);
    assert.ok(framesRatio < 2, `frames do not (x${framesRatio.toFixed(2)})`);
    assert.match(run.stdout, /^Regions ×10: frames ×[\d.]+, messages ×[\d.]+, bytes ×[\d.]+\.$/m);
  });

  it('bench:cluster-idle: hibernated regions send nothing, and the targets are judged', { timeout: TEST_TIMEOUT_MS }, async () => {
    const run = await quick('benchmarks/cluster/idle.ts', 'bench:cluster-idle');
    // | regions per store | settle s | CPU % (1/2/3) | RSS MiB | heap | RSS after GC | frames/s | raft messages/s | …
    for (const regions of ['0', '500', '2,000']) rowCells(run.stdout, regions);
    const largest = rowCells(run.stdout, '2,000');
    assert.ok(figure(largest[6]) < 100, `2,000 hibernated regions per store: ${largest[6]} raft messages/s`);
    assert.match(run.stdout, /^- CPU per store process < 5% of a core at [\d,]+ idle regions: max [\d.]+% — (MET|NOT MET)$/m);
    assert.match(run.stdout, /^- RSS growth per idle region <= 10 KB, settled \(after a full GC\): .* — (MET|NOT MET)/m);
  });

  it('bench:pd-heartbeats: PD registers every region and answers every heartbeat', { timeout: TEST_TIMEOUT_MS }, async () => {
    const run = await quick('benchmarks/pd/heartbeats.ts', 'bench:pd-heartbeats');
    // Second table: | regions | PD knows (after register) | PD counted region heartbeats | …
    for (const regions of ['2,000', '10,000']) {
      const rows = rowsCells(run.stdout, regions);
      assert.equal(rows.length, 4, `three windows and a summary for ${regions} regions`);
      const windows = rows.slice(0, 3);
      // | regions | window | s | region heartbeats | heartbeats/s | PD CPU % | per CPU-second | ms | client % | others % | errors |
      for (const cells of windows) assert.equal(figure(cells[9]), 0, `${regions} regions, ${cells[0]}: no errors`);
      const steady = windows.find((cells) => cells[0]!.startsWith('steady'));
      assert.ok(steady && figure(steady[3]) > 0, `${regions} regions: steady heartbeats measured`);
      assert.equal(figure(rows[3]![0]), figure(regions), `PD knows all ${regions} regions`);
    }
  });
});
