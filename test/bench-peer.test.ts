/**
 * The peer benchmark's harness (benchmarks/peer, `pnpm bench:peer`) in its quick mode, as CI
 * runs it: it must start etcd and Flotilla, run every workload against both, print one
 * `ratio WORKLOAD C=N X.XX` line per point, write the results JSON and the charts, and stop
 * every process it started — also when interrupted. It checks that the harness works, not
 * speed. Skipped (with the reason) only when etcd cannot be installed on this machine.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { REPO, deadline } from './support/process.ts';

const BENCH = path.join(REPO, 'benchmarks/peer/bench.ts');
const WORKLOADS = ['insert', 'read', 'ycsb-a', 'ycsb-b', 'ycsb-e'];
const QUICK_CONCURRENCY = [1, 16];
/** Bounds on waiting for the child (not speed assertions): a loaded 2-core machine is slow. */
const RUN_DEADLINE_MS = 6 * 60_000;
const STOP_DEADLINE_MS = 60_000;

interface Run {
  readonly child: ChildProcess;
  stdout: string;
  stderr: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const runs: Run[] = [];
const dirs: string[] = [];
after(async () => {
  // The whole process group: a benchmark killed here (it hung) would leave its etcd members,
  // PD and stores running — they are its children, in its group.
  for (const run of runs) {
    try {
      process.kill(-run.child.pid!, 'SIGKILL');
    } catch {
      // ESRCH: the benchmark and everything it started are gone already.
    }
  }
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

function startBench(args: readonly string[]): Run {
  // Its own process group (detached), so that cleanup can reach everything it started.
  const child = spawn(process.execPath, ['--import', 'tsx', BENCH, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const run: Run = {
    child,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal }))),
  };
  child.stdout!.on('data', (d: Buffer) => (run.stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (run.stderr += d.toString()));
  runs.push(run);
  return run;
}

async function outDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'flotilla-bench-peer-test-'));
  dirs.push(dir);
  return dir;
}

/** True (and the test skipped) when the benchmark could not install etcd. */
function skippedForEtcd(t: TestContext, run: Run): boolean {
  const match = /BENCH_ETCD_UNAVAILABLE: (.*)/.exec(run.stderr);
  if (!match) return false;
  t.skip(`etcd cannot be installed here: ${match[1]}`);
  return true;
}

/** Resolves once `pattern` appears in the child's stderr (or fails when it exits first). */
async function stderrLine(run: Run, pattern: RegExp, ms: number): Promise<RegExpExecArray> {
  const seen = new Promise<RegExpExecArray>((resolve, reject) => {
    const check = (): void => {
      const match = pattern.exec(run.stderr);
      if (match) resolve(match);
    };
    run.child.stderr!.on('data', check);
    check();
    void run.exited.then(() => {
      check();
      reject(new Error(`bench exited before printing ${pattern}:\n${run.stderr}`));
    });
  });
  return deadline(seen, ms, `${pattern} in the benchmark's output`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('pnpm bench:peer --quick', () => {
  it('runs every workload against etcd and Flotilla, prints the ratios, writes JSON and charts', async (t) => {
    const dir = await outDir();
    // The `--` is what `pnpm bench:peer -- --quick` (benchmarks/README.md) passes on.
    const run = startBench(['--', '--quick', `--out-dir=${dir}`]);
    const exit = await deadline(run.exited, RUN_DEADLINE_MS, 'the quick benchmark to finish');
    if (skippedForEtcd(t, run)) return;
    assert.equal(exit.code, 0, `exit ${exit.code ?? exit.signal}\n${run.stderr}`);

    const ratioLines = run.stdout.split('\n').filter((l) => l.startsWith('ratio '));
    const expected = WORKLOADS.flatMap((w) => QUICK_CONCURRENCY.map((c) => `${w} C=${c}`));
    assert.deepEqual(ratioLines.map((l) => l.replace(/ [^ ]+$/, '').slice('ratio '.length)), expected, run.stdout);
    for (const line of ratioLines) {
      const ratio = Number(/^ratio \S+ C=\d+ (\d+\.\d\d)$/.exec(line)?.[1]);
      assert.ok(Number.isFinite(ratio) && ratio > 0, `a positive ratio with two decimals: ${line}`);
    }

    const files = readdirSync(path.join(dir, 'results')).filter((f) => f.endsWith('.json'));
    assert.equal(files.length, 1, files.join(', '));
    const results = JSON.parse(readFileSync(path.join(dir, 'results', files[0]!), 'utf8')) as {
      points: { system: string; workload: string; concurrency: number; ops: number; servers: { name: string; waitPct: number | null; mainThreadWaitPct: number | null }[] }[];
      ratios: unknown[];
      machine: { syncedAppendsPerS: number; loopbackRoundTripUs: { p50: number } } | null;
      failure?: string;
    };
    assert.equal(results.failure, undefined);
    assert.equal(results.points.length, expected.length * 2);
    assert.equal(results.ratios.length, expected.length);
    for (const p of results.points) {
      assert.ok(p.ops > 0, `${p.system} ${p.workload} C=${p.concurrency} completed operations`);
      assert.equal(p.servers.length, p.system === 'etcd' ? 3 : 4, `server processes measured for ${p.system}`);
      // Run-queue waits (JSON writes NaN as null: a kernel without schedstat). A main thread
      // cannot wait longer than the window (10% slack for reading the files around it).
      for (const s of p.servers) {
        if (s.mainThreadWaitPct === null) continue;
        assert.ok(s.mainThreadWaitPct >= 0 && s.mainThreadWaitPct <= 110, `${s.name}: main thread waited ${s.mainThreadWaitPct}% of the window`);
        assert.ok(s.waitPct !== null && s.waitPct >= s.mainThreadWaitPct - 1, `${s.name}: all threads waited ${s.waitPct}%, the main one ${s.mainThreadWaitPct}%`);
      }
    }
    assert.ok(results.machine !== null && results.machine.syncedAppendsPerS > 0 && results.machine.loopbackRoundTripUs.p50 > 0);
    for (const w of WORKLOADS) {
      for (const chart of [`throughput-${w}.svg`, `latency-${w}.svg`]) {
        const svg = readFileSync(path.join(dir, 'charts', chart), 'utf8');
        assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"[\s\S]*<polyline[\s\S]*<\/svg>\n$/, chart);
      }
    }
  });

  it('stops every process it started when interrupted (SIGINT) in the middle of a point', async (t) => {
    const dir = await outDir();
    const run = startBench(['--quick', `--out-dir=${dir}`]);
    const ready = await Promise.race([stderrLine(run, /server processes: (.+)/, RUN_DEADLINE_MS), run.exited.then(() => undefined)]);
    if (ready === undefined) {
      if (skippedForEtcd(t, run)) return;
      assert.fail(`the benchmark exited before starting its clusters:\n${run.stderr}`);
    }
    const pids = [...ready[1]!.matchAll(/pid (\d+)/g)].map((m) => Number(m[1]));
    assert.equal(pids.length, 3 + 3 + 1, ready[1]);
    // etcd's first point is done: Flotilla's is running. Its client, closed by the cleanup,
    // then fails every call at once (which once starved the run's event loop: it never exited).
    await stderrLine(run, /insert C=1 etcd: /, RUN_DEADLINE_MS);
    run.child.kill('SIGINT');
    const exit = await deadline(run.exited, STOP_DEADLINE_MS, 'the benchmark to stop after SIGINT');
    assert.equal(exit.code, 130, run.stderr);
    assert.deepEqual(pids.filter(alive), [], 'no server process outlives the benchmark');
    assert.ok(!existsSync(path.join(dir, 'results')), 'an interrupted run writes no results');
  });
});
