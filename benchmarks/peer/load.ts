/**
 * The closed-loop load generator, the same for both systems: N virtual clients, each with one
 * operation in flight, issuing the next as soon as the last one answered. Operations that
 * complete during the warm-up are discarded; during the measured window every completion is
 * counted and its latency recorded in an HDR histogram (µs, 3 significant digits). Around
 * the window it reads the CPU used by this process (process.cpuUsage), by every server
 * process (/proc/PID/stat) and by the whole machine, how long their threads waited for a core
 * (/proc/PID/task/TID/schedstat), and the systems' fsync counters.
 */
import { performance } from 'node:perf_hooks';
import * as hdr from 'hdr-histogram-js';
import { cpuMs, machineCpuMs, runQueueWaitedMs, threadRunQueueWaits } from '../cluster/proc.ts';
import type { KvAdapter, SystemName } from './adapters.ts';
import { sleep } from './processes.ts';
import { VALUE_BYTES, type Operation, type WorkloadName } from './workloads.ts';

/** A system as the load generator sees it: a client, the processes serving it, a sync counter. */
export interface SystemUnderTest {
  readonly name: SystemName;
  readonly adapter: KvAdapter;
  /** Every server process (name, pid), read again at each point (stores may be restarted). */
  processes(): readonly { readonly name: string; readonly pid: number }[];
  /** Cumulative counters of the system's metrics, each summed over its processes. */
  counters(): Promise<ReadonlyMap<string, number>>;
  /** The counter of syncs to disk (a key of counters()). */
  readonly syncMetric: string;
}

export interface PointSpec {
  readonly workload: WorkloadName;
  readonly concurrency: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  /** Processes of the other system, idle meanwhile: their CPU is reported, not counted. */
  readonly bystanders: readonly { readonly name: string; readonly pid: number }[];
}

export interface ProcessCpu {
  readonly name: string;
  /** % of one core. */
  readonly cpuPct: number;
  /**
   * Time its threads were runnable but waited for a core, summed over the threads, in % of the
   * window (like cpuPct: 100 = one thread waiting all the time). NaN without schedstat.
   */
  readonly waitPct: number;
  /** The same for its main thread alone (a Node process's event loop), in % of the window. */
  readonly mainThreadWaitPct: number;
}

export interface PointResult {
  readonly system: SystemName;
  readonly workload: WorkloadName;
  readonly concurrency: number;
  readonly seconds: number;
  readonly ops: number;
  readonly opsPerS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
  readonly errors: number;
  /** The first few distinct error messages (diagnosis). */
  readonly errorSamples: readonly string[];
  /** Reads of preloaded keys that found nothing (a correctness check; counted in errors). */
  readonly missing: number;
  readonly opsByKind: Readonly<Record<string, number>>;
  readonly loadGeneratorCpuPct: number;
  /** How long the load generator's event loop waited for a core, in % of the window. */
  readonly loadGeneratorMainThreadWaitPct: number;
  readonly servers: readonly ProcessCpu[];
  readonly serversCpuPct: number;
  /** The servers' waitPct summed: CPU they were ready to use but did not get (the machine was full). */
  readonly serversWaitPct: number;
  /** Everything else on the machine (the other system, other engineers' processes): machine − servers − generator. */
  readonly othersCpuPct: number;
  /** CPU of the other system's processes during the point (they should idle). */
  readonly bystandersCpuPct: number;
  /** How long the point waited for the other system to go quiet before it started (waitForQuiet). */
  readonly quietWaitMs: number;
  readonly syncsPerS: number;
  readonly syncMetric: string;
  /** Every counter of counters(): its increase during the measured window. */
  readonly counterDeltas: Readonly<Record<string, number>>;
}

const ERROR_SAMPLES_MAX = 5;
/** Histogram bound: 120 s in µs (a call's deadline is 10 s). */
const HISTOGRAM_MAX_US = 120_000_000;

class ClosedLoop {
  private stopped = false;
  private measuring = false;
  readonly histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: HISTOGRAM_MAX_US, numberOfSignificantValueDigits: 3 });
  ops = 0;
  errors = 0;
  missing = 0;
  readonly errorSamples = new Set<string>();
  readonly opsByKind: Record<string, number> = {};

  constructor(
    private readonly adapter: KvAdapter,
    private readonly next: () => Operation,
    private readonly value: Buffer,
  ) {}

  run(concurrency: number): Promise<void[]> {
    return Promise.all(Array.from({ length: concurrency }, () => this.client()));
  }

  measure(on: boolean): void {
    this.measuring = on;
  }

  stop(): void {
    this.stopped = true;
  }

  private async client(): Promise<void> {
    while (!this.stopped) {
      const op = this.next();
      const started = performance.now();
      let failure: string | undefined;
      try {
        const rows = await this.adapter.run(op, this.value);
        if (op.kind === 'read' && rows === 0) failure = `read of preloaded key ${op.key} found nothing`;
      } catch (err) {
        failure = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
        // A system that fails every call at once (stopped, its client closed) would otherwise
        // spin these loops on microtasks alone, starving the timers that end the point and the
        // child-process exits an interrupted run waits for.
        await new Promise((resolve) => setImmediate(resolve));
      }
      if (!this.measuring) continue;
      if (failure !== undefined) {
        this.errors++;
        if (failure.startsWith('read of preloaded')) this.missing++;
        if (this.errorSamples.size < ERROR_SAMPLES_MAX) this.errorSamples.add(failure.slice(0, 300));
        continue;
      }
      this.histogram.recordValue(Math.max(1, Math.round((performance.now() - started) * 1000)));
      this.ops++;
      this.opsByKind[op.kind] = (this.opsByKind[op.kind] ?? 0) + 1;
    }
  }
}

interface Snapshot {
  readonly atMs: number;
  readonly self: NodeJS.CpuUsage;
  readonly selfWaits: ReadonlyMap<number, number>;
  readonly servers: readonly number[];
  readonly serverWaits: readonly ReadonlyMap<number, number>[];
  readonly bystandersMs: number;
  readonly machineMs: number;
  readonly counters: ReadonlyMap<string, number>;
}

async function snapshot(sut: SystemUnderTest, pids: readonly number[], bystanders: readonly number[]): Promise<Snapshot> {
  const counters = await sut.counters();
  return {
    atMs: performance.now(),
    self: process.cpuUsage(),
    selfWaits: threadRunQueueWaits(process.pid),
    servers: pids.map(cpuMs),
    serverWaits: pids.map(threadRunQueueWaits),
    bystandersMs: sumCpuMs(bystanders),
    machineMs: machineCpuMs(),
    counters,
  };
}

/** CPU ms of processes that may have exited meanwhile (those count 0). */
function sumCpuMs(pids: readonly number[]): number {
  let sum = 0;
  for (const pid of pids) {
    try {
      sum += cpuMs(pid);
    } catch {
      // gone
    }
  }
  return sum;
}

/** The other system counts as quiet below this share of one core (all its processes together). */
const QUIET_CPU_PCT = 10;
/** How often, and at most how long, a point waits for the other system to go quiet. */
const QUIET_SAMPLE_MS = 500;
const QUIET_WAIT_MAX_MS = 30_000;

/**
 * Waits until the other system's processes use less than QUIET_CPU_PCT of a core over half
 * a second, at most QUIET_WAIT_MAX_MS; answers how long it waited. After a point, a system can
 * keep a core busy for a while (the idle Flotilla stores did, during a few of etcd's points of
 * every full run: benchmarks/RESULTS.md): measured beside it, the next point of the other
 * system would get less of the machine (points disturbed anyway show in bystandersCpuPct).
 */
async function waitForQuiet(pids: readonly number[]): Promise<number> {
  const startedMs = performance.now();
  if (pids.length === 0) return 0;
  for (;;) {
    const before = sumCpuMs(pids);
    const windowStartMs = performance.now();
    await sleep(QUIET_SAMPLE_MS);
    const cpuPct = ((sumCpuMs(pids) - before) / (performance.now() - windowStartMs)) * 100;
    const waitedMs = performance.now() - startedMs;
    if (cpuPct < QUIET_CPU_PCT || waitedMs >= QUIET_WAIT_MAX_MS) return waitedMs;
  }
}

/** One point: the other system quiet, warm-up, a measured window of fixed length, then the clients drain. */
export async function runPoint(sut: SystemUnderTest, next: () => Operation, spec: PointSpec): Promise<PointResult> {
  const value = Buffer.alloc(VALUE_BYTES, 0x61);
  const loop = new ClosedLoop(sut.adapter, next, value);
  const processes = sut.processes();
  const pids = processes.map((p) => p.pid);
  const quietWaitMs = await waitForQuiet(spec.bystanders.map((p) => p.pid));
  const running = loop.run(spec.concurrency);
  await sleep(spec.warmupMs);
  const bystanders = spec.bystanders.map((p) => p.pid);
  const before = await snapshot(sut, pids, bystanders);
  loop.measure(true);
  await sleep(spec.durationMs);
  loop.measure(false);
  const after = await snapshot(sut, pids, bystanders);
  loop.stop();
  await running;
  const elapsedMs = after.atMs - before.atMs;
  const pct = (ms: number): number => (ms / elapsedMs) * 100;
  const selfUs = after.self.user - before.self.user + after.self.system - before.self.system;
  const servers = processes.map((p, i) => {
    const waited = runQueueWaitedMs(p.pid, before.serverWaits[i]!, after.serverWaits[i]!);
    return { name: p.name, cpuPct: pct(after.servers[i]! - before.servers[i]!), waitPct: pct(waited.allThreads), mainThreadWaitPct: pct(waited.mainThread) };
  });
  const serversCpuPct = servers.reduce((sum, s) => sum + s.cpuPct, 0);
  const loadGeneratorCpuPct = pct(selfUs / 1000);
  const h = loop.histogram;
  const ms = (us: number): number => us / 1000;
  const result: PointResult = {
    system: sut.name,
    workload: spec.workload,
    concurrency: spec.concurrency,
    seconds: elapsedMs / 1000,
    ops: loop.ops,
    opsPerS: loop.ops / (elapsedMs / 1000),
    p50Ms: ms(h.getValueAtPercentile(50)),
    p99Ms: ms(h.getValueAtPercentile(99)),
    p999Ms: ms(h.getValueAtPercentile(99.9)),
    maxMs: ms(h.maxValue),
    errors: loop.errors,
    errorSamples: [...loop.errorSamples],
    missing: loop.missing,
    opsByKind: loop.opsByKind,
    loadGeneratorCpuPct,
    loadGeneratorMainThreadWaitPct: pct(runQueueWaitedMs(process.pid, before.selfWaits, after.selfWaits).mainThread),
    servers,
    serversCpuPct,
    serversWaitPct: servers.reduce((sum, s) => sum + s.waitPct, 0),
    othersCpuPct: Math.max(0, pct(after.machineMs - before.machineMs) - serversCpuPct - loadGeneratorCpuPct),
    bystandersCpuPct: pct(after.bystandersMs - before.bystandersMs),
    quietWaitMs,
    syncsPerS: ((after.counters.get(sut.syncMetric) ?? NaN) - (before.counters.get(sut.syncMetric) ?? NaN)) / (elapsedMs / 1000),
    syncMetric: sut.syncMetric,
    counterDeltas: Object.fromEntries([...after.counters].map(([name, v]) => [name, v - (before.counters.get(name) ?? 0)])),
  };
  h.destroy();
  return result;
}
