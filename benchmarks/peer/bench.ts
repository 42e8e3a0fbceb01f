/**
 * Flotilla against etcd, side by side, in one run on one machine (issue 7).
 *
 *   pnpm bench:peer [--quick] [--seconds=10] [--warmup-seconds=3] [--system-warmup-seconds=30]
 *                   [--concurrency=1,16,64,256,1024]
 *                   [--workloads=insert,read,ycsb-a,ycsb-b,ycsb-e] [--records=100000] [--regions=12]
 *                   [--no-curves | --only-curves] [--out-dir=benchmarks/peer]
 *
 * It measures the machine's limits (synced appends, loopback round trip), installs Debian's
 * etcd-server when `etcd` is missing, starts a 3-member etcd and a 3-store Flotilla cluster
 * with PD (fsync on, 3 replicas), preloads the same records into both, and runs every workload
 * at every concurrency against each system in turn (etcd, then Flotilla, point by point, so
 * both see the same noise from the shared machine) with the same closed-loop load generator.
 * Then the Flotilla-only curves (curves.ts). It prints a table and one line per point
 * `ratio WORKLOAD C=N X.XX` (Flotilla ops/s ÷ etcd ops/s), writes results/<date>.json and
 * charts/*.svg under --out-dir, and stops everything it started (also on an error or Ctrl-C).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { REPO } from '../../test/support/process.ts';
import { machineLine, pctCell } from '../cluster/proc.ts';
import { commitOf } from '../pd/pd-view.ts';
import { runCurves, type CurvesOptions } from './curves.ts';
import { EtcdSystem, ensureEtcd } from './etcd.ts';
import { FlotillaSystem } from './flotilla.ts';
import { runPoint, type PointResult, type SystemUnderTest } from './load.ts';
import { measureMachine, type MachineLimits } from './machine.ts';
import { BenchError, cleanUpOnSignals } from './processes.ts';
import { markdownTable, pointsTable, ratioLine, ratios, workloadLines, writeCharts, writeResults, type CurvePoint, type RunResults } from './report.ts';
import { KEY_BYTES, KeySpace, VALUE_BYTES, WORKLOADS, chooser, keyOf, seededRandom, type WorkloadName } from './workloads.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));

interface Options {
  readonly quick: boolean;
  readonly seconds: number;
  readonly warmupSeconds: number;
  /** Unmeasured load on each system after its preload, before its first point (see warmUp). */
  readonly systemWarmupSeconds: number;
  readonly concurrency: readonly number[];
  readonly workloads: readonly WorkloadName[];
  readonly records: number;
  readonly regions: number;
  readonly curves: boolean;
  /** Only the Flotilla-only curves (no etcd, no side-by-side points). */
  readonly onlyCurves: boolean;
  readonly outDir: string;
}

function parseOptions(argv: readonly string[]): Options {
  const known = new Set(['quick', 'seconds', 'warmup-seconds', 'system-warmup-seconds', 'concurrency', 'workloads', 'records', 'regions', 'no-curves', 'only-curves', 'out-dir']);
  const flags = new Map<string, string>();
  for (const arg of argv) {
    // `pnpm bench:peer -- --quick` (the documented form) hands the script the `--` too.
    if (arg === '--') continue;
    const match = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!match || !known.has(match[1]!)) throw new BenchError('BENCH_BAD_ARGUMENT', `unknown argument ${arg}; known: ${[...known].map((k) => `--${k}`).join(' ')}`);
    flags.set(match[1]!, match[2] ?? 'true');
  }
  const quick = flags.has('quick');
  const number = (name: string, fallback: number, min: number): number => {
    const value = Number(flags.get(name) ?? fallback);
    if (!Number.isFinite(value) || value < min) throw new BenchError('BENCH_BAD_ARGUMENT', `--${name}: expected a number >= ${min}, got ${flags.get(name)}`);
    return value;
  };
  const list = (name: string, fallback: string): string[] => (flags.get(name) ?? fallback).split(',').filter((s) => s !== '');
  const concurrency = list('concurrency', quick ? '1,16' : '1,16,64,256,1024').map(Number);
  if (concurrency.some((c) => !Number.isSafeInteger(c) || c < 1 || c > 65_536)) throw new BenchError('BENCH_BAD_ARGUMENT', `--concurrency: integers 1..65536, got ${flags.get('concurrency')}`);
  const workloads = list('workloads', WORKLOADS.join(','));
  const unknown = workloads.filter((w) => !WORKLOADS.includes(w as WorkloadName));
  if (unknown.length > 0) throw new BenchError('BENCH_BAD_ARGUMENT', `--workloads: unknown ${unknown.join(',')}; known ${WORKLOADS.join(',')}`);
  return {
    quick,
    seconds: number('seconds', quick ? 1 : 10, 0.1),
    warmupSeconds: number('warmup-seconds', quick ? 0.5 : 3, 0),
    systemWarmupSeconds: number('system-warmup-seconds', quick ? 0 : 30, 0),
    concurrency,
    workloads: workloads as WorkloadName[],
    records: Math.floor(number('records', quick ? 2_000 : 100_000, 100)),
    regions: Math.floor(number('regions', quick ? 3 : 12, 1)),
    curves: flags.has('only-curves') || (!flags.has('no-curves') && !quick),
    onlyCurves: flags.has('only-curves'),
    outDir: path.resolve(flags.get('out-dir') ?? HERE),
  };
}

const log = (line: string): void => {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
};

/** Systems started so far, stopped in reverse order by cleanup (once). */
const started: { stop(): Promise<void> }[] = [];
/** Set on Ctrl-C / SIGTERM: the run stops everything and writes no results. */
let interrupted = false;
let stopping: Promise<void> = Promise.resolve();
/** Serialized: a Ctrl-C during the run's own cleanup waits for it, then finds nothing left. */
function stopAll(): Promise<void> {
  stopping = stopping.then(async () => {
    while (started.length > 0) {
      const system = started.pop()!;
      await system.stop().catch((err: unknown) => log(`stopping: ${String(err)}`));
    }
  });
  return stopping;
}

async function preload(system: SystemUnderTest, records: number): Promise<number> {
  const startedAt = performance.now();
  const keys = Array.from({ length: records }, (_, i) => keyOf(i));
  await system.adapter.load(keys, Buffer.alloc(VALUE_BYTES, 0x62));
  return (performance.now() - startedAt) / 1000;
}

/** The concurrency of the system warm-up: enough for every code path to run often. */
const SYSTEM_WARMUP_CONCURRENCY = 64;

/**
 * Unmeasured load on each system before its first point: every workload of the run in turn,
 * --system-warmup-seconds in all. A store is a fresh Node process: until V8 has compiled its
 * hot paths (tens of seconds at the load of C=1) it spends up to half again as much CPU per
 * operation, which a point's few seconds of warm-up do not cover (measured on 2026-11-23:
 * inserts at C=1 went 444 → 644 → 670 → 652 ops/s over four points run back to back). etcd gets
 * the same load, so neither system's first points are measured cold.
 */
async function warmUp(systems: readonly SystemUnderTest[], options: Options, keySpaces: ReadonlyMap<string, KeySpace>): Promise<void> {
  if (options.systemWarmupSeconds <= 0) return;
  const durationMs = (options.systemWarmupSeconds * 1000) / options.workloads.length;
  for (const system of systems) {
    let ops = 0;
    for (const [w, workload] of options.workloads.entries()) {
      const next = chooser(workload, keySpaces.get(system.name)!, seededRandom(-(w + 1)));
      const point = await runPoint(system, next, { workload, concurrency: SYSTEM_WARMUP_CONCURRENCY, warmupMs: 0, durationMs, bystanders: [] });
      ops += point.ops;
    }
    log(`${system.name}: warmed up for ${options.systemWarmupSeconds} s (${options.workloads.join(', ')} at C=${SYSTEM_WARMUP_CONCURRENCY}, ${ops} operations, not measured)`);
  }
}

/** Every workload at every concurrency, against each system in turn (the same operations for each). */
async function runPoints(systems: readonly SystemUnderTest[], options: Options, points: PointResult[], notes: string[]): Promise<void> {
  const keySpaces = new Map(systems.map((s) => [s.name, new KeySpace(options.records)]));
  await warmUp(systems, options, keySpaces);
  for (const [w, workload] of options.workloads.entries()) {
    for (const concurrency of options.concurrency) {
      for (const system of systems) {
        const seed = (w + 1) * 100_003 + concurrency;
        const next = chooser(workload, keySpaces.get(system.name)!, seededRandom(seed));
        const bystanders = systems.filter((s) => s !== system).flatMap((s) => s.processes());
        const point = await runPoint(system, next, { workload, concurrency, warmupMs: options.warmupSeconds * 1000, durationMs: options.seconds * 1000, bystanders });
        points.push(point);
        const elections = point.counterDeltas['etcd_server_leader_changes_seen_total'] ?? 0;
        if (elections > 0) notes.push(`${workload} C=${concurrency} etcd: ${elections} leader changes seen by the members during the point`);
        log(pointLine(point));
      }
      const last = ratios(points).at(-1);
      if (last) log(ratioLine(last));
    }
  }
}

/** etcd and Flotilla started, preloaded, and every point run against each in turn; Flotilla's layout. */
async function sideBySide(options: Options, points: PointResult[], notes: string[], setEtcdVersion: (v: string) => void): Promise<unknown> {
  const etcd = ensureEtcd(log);
  setEtcdVersion(etcd.version);
  const etcdSystem = new EtcdSystem(etcd.binary);
  started.push(etcdSystem);
  await etcdSystem.start();
  log(`etcd: ${etcd.version}, 3 members at ${etcdSystem.cluster.clientUrls.join(', ')}`);
  const flotilla = new FlotillaSystem({ stores: 3, regions: options.regions, appender: 'worker' });
  started.push(flotilla);
  await flotilla.start(log);
  const layout = await flotilla.layout();
  log(`flotilla: ${JSON.stringify(layout)}`);
  const systems: SystemUnderTest[] = [etcdSystem, flotilla];
  log(`server processes: ${systems.flatMap((s) => s.processes()).map((p) => `${p.name} pid ${p.pid}`).join(', ')}`);
  for (const system of systems) log(`${system.name}: preloaded ${options.records} records in ${(await preload(system, options.records)).toFixed(1)} s`);
  await runPoints(systems, options, points, notes);
  notes.push(`Flotilla SDK coalescing over the whole run: ${JSON.stringify(flotilla.adapter.stats())} (requests sent, operations in them)`);
  await stopAll();
  return layout;
}

/** A point that waited longer than this for the other system to go quiet says so in its line. */
const QUIET_WAIT_REPORTED_MS = 1_000;

function pointLine(p: PointResult): string {
  const errors = `${p.errors} errors${p.errors > 0 ? ` (${p.errorSamples[0]})` : ''}`;
  const cpu = `generator ${p.loadGeneratorCpuPct.toFixed(0)}% / servers ${p.serversCpuPct.toFixed(0)}% / other system ${p.bystandersCpuPct.toFixed(0)}% / others ${p.othersCpuPct.toFixed(0)}% CPU`;
  const waits = `waited for a core: servers ${pctCell(p.serversWaitPct)}% (main threads ${p.servers.map((s) => pctCell(s.mainThreadWaitPct)).join('/')}%), generator's loop ${pctCell(p.loadGeneratorMainThreadWaitPct)}%`;
  const quiet = p.quietWaitMs > QUIET_WAIT_REPORTED_MS ? ` (waited ${(p.quietWaitMs / 1000).toFixed(1)} s for the other system to go quiet)` : '';
  return `${p.workload} C=${p.concurrency} ${p.system}: ${p.opsPerS.toFixed(0)} ops/s, p99 ${p.p99Ms.toFixed(1)} ms, ${errors}, ${cpu}; ${waits}${quiet}`;
}

function limitsLine(m: MachineLimits): string {
  return `${m.syncedAppendsPerS.toFixed(0)} synced appends/s (1 entry), ${m.syncedBatchEntriesPerS.toFixed(0)} entries/s in synced batches of ${m.batchEntries}, loopback round trip p50 ${m.loopbackRoundTripUs.p50.toFixed(0)} µs`;
}

/** The installed version of one of the benchmarks' dependencies. */
function packageVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(path.join(HERE, '..', 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const startedAt = new Date();
  const command = `pnpm bench:peer ${process.argv.slice(2).join(' ')}`.trim();
  const notes: string[] = [];
  const points: PointResult[] = [];
  let curves: CurvePoint[] = [];
  let machine: MachineLimits | null = null;
  let machineAfter: MachineLimits | null = null;
  let etcdVersion = 'not started';
  let layout: unknown = null;
  let failure: unknown;
  cleanUpOnSignals(() => {
    interrupted = true;
    return stopAll();
  }, log);
  log(`machine: ${machineLine()}; ${command}`);
  try {
    machine = await measureMachine(options.quick ? 300 : 3_000);
    log(`machine limits: ${limitsLine(machine)}`);
    if (!options.onlyCurves) layout = await sideBySide(options, points, notes, (v) => (etcdVersion = v));
    if (options.curves) {
      const curveOptions: CurvesOptions = { seconds: options.seconds, warmupSeconds: options.warmupSeconds, records: Math.min(options.records, 20_000), quickChildren: options.seconds < 5, log };
      curves = await runCurves(curveOptions, started, notes);
    }
    // Again at the end: on a shared machine the disk and the cores change under a long run.
    machineAfter = await measureMachine(options.quick ? 300 : 3_000);
    log(`machine limits after the run: ${limitsLine(machineAfter)}`);
  } catch (err) {
    failure = err;
    if (!interrupted) log(`FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  } finally {
    await stopAll();
  }
  if (interrupted) return;
  const rs = ratios(points);
  const results: RunResults = {
    meta: {
      date: startedAt.toISOString(),
      finished: new Date().toISOString(),
      command,
      commit: commitOf(REPO),
      node: `${process.version} (${process.platform}/${process.arch})`,
      machine: machineLine(),
      etcd: etcdVersion,
      etcd3Client: packageVersion('etcd3'),
      hdrHistogramJs: packageVersion('hdr-histogram-js'),
      config: {
        ...options,
        keyBytes: KEY_BYTES,
        valueBytes: VALUE_BYTES,
        etcd: '3 members on loopback, default flags (WAL fsync per commit), etcd3 client with all members as hosts',
        flotilla: `1 PD + 3 stores on loopback, 3 replicas, fsync on, tick 100 ms, 1 log shard (the default; a worker appender), ${options.regions} regions pre-split, leaders spread evenly, PD schedulers off while measuring`,
        flotillaLayout: layout,
      },
      workloads: workloadLines(),
    },
    machine,
    machineAfter,
    points,
    ratios: rs,
    curves,
    notes,
    ...(failure === undefined ? {} : { failure: String(failure) }),
  };
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  const file = await writeResults(options.outDir, `${stamp}${options.quick ? '-quick' : ''}`, results);
  const charts = await writeCharts(options.outDir, results);
  process.stdout.write(`\n${pointsTable(points)}\n${markdownTable(points)}\n`);
  for (const r of rs) process.stdout.write(`${ratioLine(r)}\n`);
  process.stdout.write(`results: ${file}\ncharts: ${charts.length} SVG files in ${path.join(options.outDir, 'charts')}\n`);
  if (failure !== undefined) process.exitCode = 1;
}

await main();
