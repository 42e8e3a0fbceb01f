/**
 * Flotilla-only curves, after the side-by-side run (etcd stopped by then):
 * - 3 vs 5 stores, and worker vs inline appenders: a fresh cluster of each kind (the peer
 *   run's setup otherwise), write-only inserts through the SDK at CURVE_CONCURRENCY in flight;
 * - active regions 1 / 16 / 256 / 4,096 and the idle cost of 10,000 regions per store: the
 *   existing cluster benchmarks (benchmarks/cluster/write.ts and idle.ts) run as child
 *   processes, their Markdown tables read back (they drive the stores' KV API directly with
 *   client-side batches of 64 puts, not the SDK: see their own reports).
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { REPO } from '../../test/support/process.ts';
import { FlotillaSystem, type FlotillaOptions } from './flotilla.ts';
import { runPoint, type PointResult } from './load.ts';
import { killOnExit, stopChild } from './processes.ts';
import type { CurvePoint } from './report.ts';
import { KeySpace, chooser, keyOf, seededRandom, VALUE_BYTES } from './workloads.ts';

export interface CurvesOptions {
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly records: number;
  /** Runs the child benchmarks in their --quick mode (a harness check). */
  readonly quickChildren: boolean;
  readonly log: (line: string) => void;
}

const CURVE_CONCURRENCY = 256;
const CURVE_REGIONS = 12;
/** A child benchmark that runs longer than this is stopped and its curve left out. */
const CHILD_DEADLINE_MS = 15 * 60_000;

const VARIANTS: readonly { readonly curve: string; readonly x: number; readonly options: FlotillaOptions }[] = [
  { curve: 'stores', x: 3, options: { stores: 3, regions: CURVE_REGIONS, appender: 'worker' } },
  { curve: 'stores', x: 5, options: { stores: 5, regions: CURVE_REGIONS, appender: 'worker' } },
  // x: 1 = worker appenders (threads), 0 = inline appends on the main thread.
  { curve: 'appenders (1 worker, 0 inline)', x: 0, options: { stores: 3, regions: CURVE_REGIONS, appender: 'inline' } },
];

export async function runCurves(options: CurvesOptions, started: { stop(): Promise<void> }[], notes: string[]): Promise<CurvePoint[]> {
  const out: CurvePoint[] = [];
  for (const variant of VARIANTS) {
    const point = await variantPoint(variant.options, options, started).catch((err: unknown) => {
      notes.push(`curve ${variant.curve}=${variant.x} failed: ${String(err)}`);
      return undefined;
    });
    if (!point) continue;
    out.push({ curve: variant.curve, x: variant.x, opsPerS: point.opsPerS, p99Ms: point.p99Ms, detail: point });
    if (variant.options.stores === 3 && variant.options.appender === 'worker') out.push({ curve: 'appenders (1 worker, 0 inline)', x: 1, opsPerS: point.opsPerS, p99Ms: point.p99Ms, detail: point });
    options.log(`curve ${variant.curve}=${variant.x}: ${point.opsPerS.toFixed(0)} inserts/s, p99 ${point.p99Ms.toFixed(1)} ms`);
  }
  out.push(...(await regionsCurve(options, notes)));
  const idle = await childBenchmark('benchmarks/cluster/idle.ts', options.quickChildren ? ['--quick'] : ['--window-s=10'], options.log).catch((err: unknown) => {
    notes.push(`idle-cost benchmark failed: ${String(err)}`);
    return undefined;
  });
  if (idle) notes.push(`idle cost of regions (benchmarks/cluster/idle.ts, run by this suite):\n${idle}`);
  return out;
}

async function variantPoint(flotilla: FlotillaOptions, options: CurvesOptions, started: { stop(): Promise<void> }[]): Promise<PointResult> {
  const system = new FlotillaSystem(flotilla);
  started.push(system);
  try {
    await system.start(options.log);
    const keys = Array.from({ length: options.records }, (_, i) => keyOf(i));
    await system.adapter.load(keys, Buffer.alloc(VALUE_BYTES, 0x62));
    const next = chooser('insert', new KeySpace(options.records), seededRandom(7));
    return await runPoint(system, next, { workload: 'insert', concurrency: CURVE_CONCURRENCY, warmupMs: options.warmupSeconds * 1000, durationMs: options.seconds * 1000, bystanders: [] });
  } finally {
    started.splice(started.indexOf(system), 1);
    await system.stop();
  }
}

/** benchmarks/cluster/write.ts's rows: | active regions | leaders | puts/s | requests/s | p50 | p99 | … */
async function regionsCurve(options: CurvesOptions, notes: string[]): Promise<CurvePoint[]> {
  const text = await childBenchmark('benchmarks/cluster/write.ts', options.quickChildren ? ['--quick'] : [`--seconds=${Math.max(3, Math.round(options.seconds))}`], options.log).catch((err: unknown) => {
    notes.push(`regions curve (benchmarks/cluster/write.ts) failed: ${String(err)}`);
    return '';
  });
  const out: CurvePoint[] = [];
  for (const line of text.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    const regions = Number(cells[1]?.replace(/,/g, ''));
    if (cells.length < 8 || !Number.isFinite(regions) || regions <= 0) continue;
    const opsPerS = Number(cells[3]!.replace(/,/g, ''));
    out.push({ curve: 'active regions', x: regions, opsPerS, p99Ms: Number(cells[6]), detail: { row: line, source: 'benchmarks/cluster/write.ts (3 static stores, KV API, 64 puts per request, 48 requests in flight)' } });
  }
  if (text !== '') notes.push(`regions curve (benchmarks/cluster/write.ts, run by this suite):\n${text}`);
  return out;
}

/** Runs another benchmark script of this repository; resolves with its stdout. */
function childBenchmark(script: string, args: readonly string[], log: (line: string) => void): Promise<string> {
  log(`running ${script} ${args.join(' ')}`);
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO, script), ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  killOnExit(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    for (const line of d.toString().split('\n')) if (line.trim() !== '') log(`  ${path.basename(script)}: ${line}`);
  });
  const timer = setTimeout(() => void stopChild(child), CHILD_DEADLINE_MS);
  return new Promise((resolve, reject) => {
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else reject(new Error(`${script} exited ${code ?? signal}: ${stderr.split('\n').slice(-5).join(' | ')}`));
    });
  });
}
