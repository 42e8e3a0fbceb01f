/**
 * One chaos run: start 3 PD members and 5 stores, split the keyspace, run the workloads while
 * the nemesis injects faults drawn from the seed, stop, heal everything, check liveness (every
 * region led and writable within LIVENESS_DEADLINE_MS), read everything back, and check the
 * history. Every process is stopped at the end, whatever happened.
 */
import { performance } from 'node:perf_hooks';
import type { FlotillaClient } from '../../packages/client/src/index.ts';
import { SeededRandom } from '../../packages/raft/src/index.ts';
import { waitFor } from '../support/cluster.ts';
import { LOST_LISTED_MAX, checkRegisters, lostRegisterWrites, lostSetAdds, unexpectedSetElements } from './check.ts';
import { ChaosCluster, type PdRegion } from './cluster.ts';
import { History } from './history.ts';
import { Nemesis, type NemesisTiming } from './nemesis.ts';
import { writeReport, type ChaosReport, type LivenessVerdict } from './report.ts';
import { SET_PREFIX, Workloads, finalRegisterRead, registerKey, type WorkloadOptions } from './workloads.ts';

/** Ends the key of each liveness probe (a write into each region after the heal). */
const PROBE_SUFFIX = '\u0000liveness';
/** After the heal, every region must have a leader and take a write within this. */
export const LIVENESS_DEADLINE_MS = 30_000;
/** Between two liveness probes after the heal. */
const LIVENESS_POLL_MS = 200;
/** The final reads (every register key, the set) must all answer within this. */
const FINAL_READS_DEADLINE_MS = 60_000;
/** Final register reads in flight at once. */
const FINAL_READS_PARALLEL = 64;
/** Log lines per process kept in a failed run's report. */
const REPORT_LOG_LINES = 300;
/** Log lines kept of each crashed process (its last ones). */
const CRASH_LOG_LINES = 80;

export interface ChaosOptions {
  readonly seed: number;
  /** How long the workloads run under faults. */
  readonly durationMs: number;
  readonly timing: NemesisTiming;
  readonly workload: Omit<WorkloadOptions, 'pdUrls'>;
  /** The linearizability checker's budget, all keys together. */
  readonly checkBudgetMs: number;
  readonly reportDir: string;
  readonly log: (line: string) => void;
}

export interface ChaosResult {
  readonly report: ChaosReport;
  readonly paths: { readonly json: string; readonly markdown: string };
  /** `chaos: seed S, N ops, V violations, L lost` */
  readonly summary: string;
}

/** Settings for a run of `durationMs`: short runs (CI) hold faults for less time. */
export function chaosOptions(seed: number, durationMs: number, reportDir: string, log: (line: string) => void): ChaosOptions {
  const short = durationMs < 180_000;
  return {
    seed,
    durationMs,
    timing: short
      ? { gapMs: [1_000, 3_000], holdMs: [2_000, 6_000], pdOperationEveryMs: [1_500, 4_000], splitKeys: 1_000 }
      : { gapMs: [2_000, 8_000], holdMs: [3_000, 15_000], pdOperationEveryMs: [2_000, 6_000], splitKeys: 1_000 },
    workload: { registerWorkers: 16, workersPerGroup: 8, activeKeys: 1_000, opsPerKeyMax: short ? 40 : 80, setWorkers: 2, clients: 4, callTimeoutMs: 4_000 },
    checkBudgetMs: short ? 30_000 : 120_000,
    reportDir,
    log,
  };
}

export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const { seed, log } = options;
  const startedAt = new Date().toISOString();
  log(`chaos: seed ${seed}, faults for ${Math.round(options.durationMs / 1000)} s`);
  const cluster = new ChaosCluster();
  let workloads: Workloads | undefined;
  try {
    await cluster.start(log);
    await presplit(cluster, [registerKey(333), registerKey(666), SET_PREFIX]);
    const random = new SeededRandom(seed);
    const history = new History();
    workloads = new Workloads({ ...options.workload, pdUrls: cluster.pdUrls() }, history, new SeededRandom(random.nextInt(2 ** 32)));
    const nemesis = new Nemesis(cluster, new SeededRandom(random.nextInt(2 ** 32)), new SeededRandom(random.nextInt(2 ** 32)), options.timing, history.startedAt, log);
    await underFaults(workloads, nemesis, options.durationMs);
    log(`chaos: faults stopped after ${history.size} operations; healing`);

    await cluster.healAll();
    const liveness = await checkLiveness(cluster, workloads.client(0));
    log(`chaos: liveness ${liveness.ok ? 'ok' : `FAILED: ${liveness.problem}`} in ${(liveness.ms / 1000).toFixed(1)} s`);
    const finalReads = { registers: await readRegisters(history, workloads.client(1), [...workloads.keysUsed]), set: await readSet(workloads.client(2)) };
    log(`chaos: checking ${history.registerOps.length} register operations on ${workloads.keysUsed.size} keys`);
    const report = await judge(options, { startedAt, cluster, history, nemesis, keysUsed: workloads.keysUsed.size, liveness, finalReads });
    const paths = await writeReport(options.reportDir, report);
    if (report.linearizability.undecidedKeys > 0) log(`chaos: the checker ran out of its ${options.checkBudgetMs} ms budget with ${report.linearizability.undecidedKeys} keys undecided (first: ${report.linearizability.firstUndecided}): a failure`);
    if (report.finalReadsUnanswered > 0) log(`chaos: ${report.finalReadsUnanswered} final reads unanswered: a failure`);
    for (const crash of report.crashes) log(`chaos: a process crashed (a failure): ${crash.split('\n')[0]}`);
    log(`chaos: report ${paths.markdown}`);
    return { report, paths, summary: `chaos: seed ${seed}, ${report.ops} ops, ${report.violations} violations, ${report.lost} lost` };
  } finally {
    await workloads?.close();
    await cluster.close();
  }
}

/** The workloads and the nemesis for `durationMs`; resolves once the last fault is healed and every call returned. */
async function underFaults(workloads: Workloads, nemesis: Nemesis, durationMs: number): Promise<void> {
  workloads.start();
  const faults = nemesis.run();
  await new Promise((resolve) => setTimeout(resolve, durationMs));
  nemesis.stop();
  await faults;
  await workloads.finish();
}

interface RunEvidence {
  readonly startedAt: string;
  readonly cluster: ChaosCluster;
  readonly history: History;
  readonly nemesis: Nemesis;
  readonly keysUsed: number;
  readonly liveness: LivenessVerdict;
  readonly finalReads: { readonly registers: { values: Map<string, string | null>; unanswered: number }; readonly set: Set<string> };
}

/** The checks on what the run recorded, and the report that holds them. */
async function judge(options: ChaosOptions, run: RunEvidence): Promise<ChaosReport> {
  const { history, finalReads, liveness } = run;
  const linearizability = checkRegisters(history.registerOps, options.checkBudgetMs);
  const lostWrites = {
    registers: lostRegisterWrites(history.registerOps, finalReads.registers.values),
    setAdds: lostSetAdds(history.setAdds, finalReads.set),
    unexpectedSetElements: unexpectedSetElements(history.setAdds, finalReads.set),
  };
  const lost = lostWrites.registers.length + lostWrites.setAdds.length + lostWrites.unexpectedSetElements.length;
  const crashes = run.cluster.crashes(CRASH_LOG_LINES);
  const passed = linearizability.illegalKeys === 0 && linearizability.undecidedKeys === 0 && lost === 0 && liveness.ok && finalReads.registers.unanswered === 0 && crashes.length === 0;
  return {
    seed: options.seed,
    startedAt: run.startedAt,
    durationMs: options.durationMs,
    config: { timing: options.timing, workload: options.workload, checkBudgetMs: options.checkBudgetMs },
    ops: history.size,
    outcomes: history.outcomes,
    registerKeys: run.keysUsed,
    setAdds: countAdds(history, finalReads.set.size),
    violations: linearizability.illegalKeys,
    lost,
    linearizability,
    lostWrites: { registers: lostWrites.registers.slice(0, LOST_LISTED_MAX), setAdds: lostWrites.setAdds.slice(0, LOST_LISTED_MAX), unexpectedSetElements: lostWrites.unexpectedSetElements.slice(0, LOST_LISTED_MAX) },
    finalReadsUnanswered: finalReads.registers.unanswered,
    liveness,
    regionsAtEnd: (await run.cluster.regions().catch(() => [])).length,
    passed,
    timeline: run.nemesis.timeline,
    anomalies: run.nemesis.anomalies,
    crashes,
    opsPerSecond: history.opsSeries(),
    errorsByCode: Object.fromEntries(history.errorsByCode),
    ...(passed ? {} : { logs: run.cluster.logs(REPORT_LOG_LINES) }),
  };
}

/** Splits the first region at `keys` through PD operators, one at a time, each awaited. */
async function presplit(cluster: ChaosCluster, keys: readonly string[]): Promise<void> {
  for (const key of keys.map((k) => Buffer.from(k).toString('hex'))) {
    await waitFor(`a region to start at ${key}`, async () => {
      const regions = await cluster.regions();
      if (regions.some((r) => r.startKey === key)) return true;
      const region = regionOf(regions, key);
      if (region) await cluster.pdCall('POST', '/pd/api/v1/operators', { type: 'split', regionId: region.id, keys: [key] });
      return false;
    }, 60_000);
  }
}

function regionOf(regions: readonly PdRegion[], hexKey: string): PdRegion | undefined {
  return regions.find((r) => r.startKey <= hexKey && (r.endKey === '' || hexKey < r.endKey));
}

/**
 * After the heal: every region PD knows has a leader, and a write into each succeeds, all
 * within LIVENESS_DEADLINE_MS. The probe keys sort right after each region's start key and
 * outside both workloads' prefixes' keys.
 */
async function checkLiveness(cluster: ChaosCluster, client: FlotillaClient): Promise<LivenessVerdict> {
  const started = performance.now();
  let problem = 'not checked yet';
  const deadline = started + LIVENESS_DEADLINE_MS;
  while (performance.now() < deadline) {
    problem = await livenessProblem(cluster, client, Math.max(1, Math.min(5_000, deadline - performance.now())));
    if (problem === '') return { ok: true, ms: performance.now() - started, problem: null };
    await new Promise((resolve) => setTimeout(resolve, LIVENESS_POLL_MS));
  }
  return { ok: false, ms: performance.now() - started, problem };
}

/** '' when every region is led and writable now; else what is not. */
async function livenessProblem(cluster: ChaosCluster, client: FlotillaClient, timeoutMs: number): Promise<string> {
  let regions: PdRegion[];
  try {
    regions = await cluster.regions();
  } catch (err) {
    return `PD: ${(err as Error).message}`;
  }
  const leaderless = regions.filter((r) => r.leader === null);
  if (leaderless.length > 0) return `regions without a leader in PD: ${leaderless.map((r) => r.id).join(', ')}`;
  const failures = await Promise.all(
    regions.map(async (r) => {
      const probe = Buffer.concat([Buffer.from(r.startKey, 'hex'), Buffer.from(PROBE_SUFFIX)]);
      try {
        await client.put(probe, 'probe', { timeoutMs: Math.floor(timeoutMs) });
        return null;
      } catch (err) {
        return `region ${r.id}: ${(err as Error).message.split('\n')[0]}`;
      }
    }),
  );
  const failed = failures.filter((f) => f !== null);
  return failed.length === 0 ? '' : `writes failed: ${failed.slice(0, 3).join('; ')}${failed.length > 3 ? ` (+${failed.length - 3})` : ''}`;
}

/** Reads every register key once (recorded as history), retrying failed reads until the deadline. */
async function readRegisters(history: History, client: FlotillaClient, keys: readonly number[]): Promise<{ values: Map<string, string | null>; unanswered: number }> {
  const values = new Map<string, string | null>();
  let pending = [...keys];
  const deadline = performance.now() + FINAL_READS_DEADLINE_MS;
  while (pending.length > 0 && performance.now() < deadline) {
    const failed: number[] = [];
    for (let at = 0; at < pending.length; at += FINAL_READS_PARALLEL) {
      await Promise.all(
        pending.slice(at, at + FINAL_READS_PARALLEL).map(async (index) => {
          const output = await finalRegisterRead(history, client, index);
          if (output?.kind === 'get') values.set(registerKey(index), output.value);
          else failed.push(index);
        }),
      );
    }
    pending = failed;
  }
  return { values, unanswered: pending.length };
}

/** The set's elements, by one scan of its prefix (retried until the deadline). */
async function readSet(client: FlotillaClient): Promise<Set<string>> {
  const end = SET_PREFIX.slice(0, -1) + String.fromCharCode(SET_PREFIX.charCodeAt(SET_PREFIX.length - 1) + 1);
  const deadline = performance.now() + FINAL_READS_DEADLINE_MS;
  for (;;) {
    try {
      const rows = await client.scan({ start: SET_PREFIX, end, timeoutMs: 20_000 });
      // The liveness probe of the region starting at the prefix is no element.
      return new Set(rows.filter((row) => !row.key.toString().endsWith(PROBE_SUFFIX)).map((row) => row.value.toString()));
    } catch (err) {
      if (performance.now() > deadline) throw err;
    }
  }
}

function countAdds(history: History, found: number): ChaosReport['setAdds'] {
  const count = (outcome: string): number => history.setAdds.filter((a) => a.outcome === outcome).length;
  return { acknowledged: count('ok'), unknown: count('unknown'), failed: count('fail'), found };
}
