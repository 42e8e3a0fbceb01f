/**
 * The in-process benchmarks (`pnpm bench:raft-core`, `bench:wire`, `bench:transport`, the
 * latter also over TLS) in their quick modes, as a harness check: each must run to the end, exit 0, print what the
 * benchmark rules ask of every result (date, command, machine, config) and every table it
 * documents, with measured figures in them. It checks that the harnesses work, not speed: the
 * three run at once on a shared machine.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { assertFinished, cell, killAll, runQuick as runQuickIn, type Finished } from './support/quick-bench.ts';

/** A bound on waiting for a child (not a speed assertion): a loaded 2-core machine is slow. */
const RUN_DEADLINE_MS = 4 * 60_000;

const children: ChildProcess[] = [];
after(() => killAll(children));

function runQuick(script: string, args: readonly string[] = []): Promise<Finished> {
  return runQuickIn(script, children, RUN_DEADLINE_MS, args);
}

describe('in-process benchmarks, quick mode', () => {
  // All three at once: each is single-threaded, and together they take a third of the time.
  const raftCore = runQuick('benchmarks/raft-core/bench.ts');
  const wire = runQuick('benchmarks/wire/bench.ts');
  const transport = runQuick('benchmarks/transport/bench.ts');
  const transportTls = runQuick('benchmarks/transport/bench.ts', ['--tls', '--mode=worker']);

  it('bench:raft-core prints its setting, three tables and the verdict line', { timeout: RUN_DEADLINE_MS + 10_000 }, async () => {
    const run = await raftCore;
    await assertFinished(run, 'bench:raft-core');
    for (const field of ['command :', 'date    :', 'machine :', 'config  :']) assert.match(run.stdout, new RegExp(`^${field}`, 'm'), `prints '${field}'`);
    for (const batch of ['64', '256', '1024']) {
      const entriesPerSecond = cell(run.stdout, batch, 3);
      assert.ok(entriesPerSecond > 0, `batch ${batch} committed entries (${entriesPerSecond}/s)`);
    }
    assert.match(run.stdout, /## 2\. Ready cycle cost/);
    assert.equal(cell(run.stdout, 'hibernated', 4), 0, 'hibernated groups sent no message');
    assert.match(run.stdout, /^target 1,000,000 committed entries\/s on one core: best [\d,]+ \([\d.]+%\), worst [\d,]+$/m);
  });

  it('bench:wire prints its setting, both frames and the stage breakdown', { timeout: RUN_DEADLINE_MS + 10_000 }, async () => {
    const run = await wire;
    await assertFinished(run, 'bench:wire');
    for (const field of ['date', 'command', 'machine', 'config']) assert.match(run.stdout, new RegExp(`^- ${field}: \\S`, 'm'), `prints '${field}'`);
    for (const frame of ['RaftBatch: 100 groups', 'HeartbeatBatch: 1,000 coalesced beats']) {
      assert.ok(cell(run.stdout, frame, 4) > 0, `${frame}: round trips measured`);
    }
    assert.match(run.stdout, /^Coalescing 1,000 heartbeats: [\d.]+x fewer bytes, [\d.]+x faster round trip/m);
    assert.match(run.stdout, /## Where the time goes/);
  });

  it('bench:transport prints its setting and both modes, appends and heartbeats', { timeout: RUN_DEADLINE_MS + 10_000 }, async () => {
    const run = await transport;
    await assertFinished(run, 'bench:transport');
    for (const field of ['date', 'command', 'machine', 'config']) assert.match(run.stdout, new RegExp(`^- ${field}: \\S`, 'm'), `prints '${field}'`);
    for (const mode of ['same-loop', 'worker']) {
      const section = run.stdout.slice(run.stdout.indexOf(`## mode: ${mode}`));
      assert.ok(section.length > 0, `a section for mode ${mode}`);
      assert.ok(cell(section, '1,000 groups × 1 append', 0) > 0, `${mode}: appends delivered`);
      assert.match(section, /^\| round trip \(beats out, responses back\), p50 \/ p99 \| [\d.]+ ms \/ [\d.]+ ms \|$/m, `${mode}: heartbeat round trips`);
    }
  });

  it('bench:transport --tls runs over mutual TLS and says so', { timeout: RUN_DEADLINE_MS + 10_000 }, async () => {
    const run = await transportTls;
    await assertFinished(run, 'bench:transport --tls');
    assert.match(run.stdout, /^- config: .*mutual TLS/m);
    assert.ok(cell(run.stdout.slice(run.stdout.indexOf('## mode: worker')), '1,000 groups × 1 append', 0) > 0, 'appends delivered over TLS');
  });
});
