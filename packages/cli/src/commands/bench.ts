/**
 * `flotilla bench`: a short closed-loop workload against a cluster. `--concurrency` workers each
 * send one operation, wait for its answer, send the next, until `--duration` passed or `--ops`
 * were sent. Reports ops/s, latency percentiles and errors by code (`--json`: one object).
 * Operations that fail are counted, not retried beyond what the SDK retries itself.
 */
import { createClient, isClientError, type FlotillaClient } from '@flotilla/client';
import { CLUSTER_OPTIONS, HELP_OPTION, JSON_OPTION, clusterTarget, commandHelp, parseCommandArgs, type OptionSpecs, type ParsedArgs } from '../args.ts';
import { toCliError } from '../data-client.ts';
import { EXIT, clusterError, usageError, type ExitCode } from '../errors.ts';
import { bytes } from '../format.ts';
import { LatencyHistogram, type LatencySummaryMs } from '../latency.ts';
import { Progress } from '../progress.ts';
import { generatedBatches, generatedKey, generatedValue, parseDurationMs, runBounded, workloadLimits } from '../workload.ts';

const WORKLOADS = ['write', 'read', 'mixed'] as const;
type Workload = (typeof WORKLOADS)[number];

export const benchLimits = Object.freeze({
  concurrencyDefault: 16,
  durationDefault: '10s',
  keyCountDefault: 10_000,
  valueBytesDefault: 100,
  /** Share of reads in the mixed workload. */
  mixedReadFraction: 0.5,
  /** Preparing keys for reads: pairs per putMany and batches in flight. */
  prepareBatchPairs: 1_000,
  prepareConcurrency: 4,
  /** How often the progress line is redrawn while the workload runs. */
  progressEveryMs: 250,
});

const SYNOPSIS = 'flotilla bench [--workload write|read|mixed] [--concurrency N] [--duration D | --ops N] [--key-count N] [--value-size B] [--json]';

const DESCRIPTION = `A closed-loop benchmark: --concurrency workers each send one operation (a put or a
linearizable get of a random key among --key-count keys, PREFIX + zero-padded index), wait for
it, then send the next, for --duration (default ${benchLimits.durationDefault}; 500ms, 10s, 2m) or until --ops were sent.
"mixed" is ${benchLimits.mixedReadFraction * 100}% reads. Before a read or mixed run the keys are written (--no-prepare skips
that, e.g. after flotilla load --count N --prefix bench:). Prints ops/s, latency p50/p99/p99.9
and failed operations by error code (--json: one object). Exit code 3 when every operation failed.`;

const OPTIONS: OptionSpecs = {
  ...CLUSTER_OPTIONS,
  'timeout-ms': { ...CLUSTER_OPTIONS['timeout-ms']!, help: 'the deadline of each operation (retries included)' },
  workload: { type: 'string', value: 'W', fallback: 'mixed', help: `${WORKLOADS.join(', ')}` },
  concurrency: { type: 'string', value: 'N', fallback: String(benchLimits.concurrencyDefault), help: `operations in flight (1..${workloadLimits.benchConcurrencyMax})` },
  duration: { type: 'string', value: 'D', help: `how long to run (default ${benchLimits.durationDefault}; at most 60m)` },
  ops: { type: 'string', value: 'N', help: `stop after N operations instead (1..${workloadLimits.opsMax})` },
  'key-count': { type: 'string', value: 'N', fallback: String(benchLimits.keyCountDefault), help: `keys the operations pick from (1..${workloadLimits.generatedKeysMax})` },
  'value-size': { type: 'string', value: 'B', fallback: String(benchLimits.valueBytesDefault), help: `bytes of each written value (0..${workloadLimits.valueBytesMax})` },
  prefix: { type: 'string', value: 'P', fallback: 'bench:', help: 'prefix of the keys' },
  'no-prepare': { type: 'boolean', help: 'do not write the keys before a read or mixed run' },
  ...JSON_OPTION,
  ...HELP_OPTION,
};

interface BenchPlan {
  readonly workload: Workload;
  readonly concurrency: number;
  /** Exactly one of the two stops the run. */
  readonly durationMs: number | undefined;
  readonly ops: number | undefined;
  readonly keyCount: number;
  readonly valueSize: number;
  readonly prefix: string;
  readonly prepare: boolean;
}

export interface BenchResult {
  readonly workload: Workload;
  readonly concurrency: number;
  readonly keyCount: number;
  readonly valueSize: number;
  readonly seconds: number;
  /** Operations that succeeded, and their rate. */
  readonly ops: number;
  readonly opsPerSecond: number;
  readonly reads: number;
  readonly writes: number;
  readonly latencyMs: LatencySummaryMs;
  readonly errorCount: number;
  readonly errors: Readonly<Record<string, number>>;
}

export function benchHelp(): string {
  return commandHelp(SYNOPSIS, DESCRIPTION, OPTIONS);
}

export async function benchCommand(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<ExitCode> {
  const args = parseCommandArgs('bench', argv, OPTIONS, env, 0);
  if (args.flag('help')) {
    process.stdout.write(benchHelp());
    return EXIT.ok;
  }
  const plan = parsePlan(args);
  const { pdUrls, timeoutMs, tls } = clusterTarget(args);
  const client = createClient({ pd: pdUrls, timeoutMs, ...(tls === undefined ? {} : { tls }) });
  const progress = new Progress();
  try {
    await probe(client, plan, pdUrls);
    if (plan.prepare) await prepareKeys(client, plan, pdUrls, progress);
    const result = await runWorkload(client, plan, progress);
    progress.done();
    process.stdout.write(args.flag('json') ? `${JSON.stringify(result)}\n` : describe(result));
    if (result.ops === 0 && result.errorCount > 0) throw clusterError(`bench: every operation failed (${topError(result.errors)})`);
    return EXIT.ok;
  } finally {
    progress.done();
    await client.close();
  }
}

function parsePlan(args: ParsedArgs): BenchPlan {
  const workload = args.required('workload');
  if (!(WORKLOADS as readonly string[]).includes(workload)) throw usageError(`bench: --workload must be one of ${WORKLOADS.join(', ')}, got "${workload}"`);
  const durationText = args.string('duration');
  const opsGiven = args.string('ops') !== undefined;
  if (durationText !== undefined && opsGiven) throw usageError('bench: give --duration or --ops, not both');
  return {
    workload: workload as Workload,
    concurrency: args.integer('concurrency', 1, workloadLimits.benchConcurrencyMax),
    durationMs: opsGiven ? undefined : parseDurationMs('bench', 'duration', durationText ?? benchLimits.durationDefault),
    ops: opsGiven ? args.integer('ops', 1, workloadLimits.opsMax) : undefined,
    keyCount: args.integer('key-count', 1, workloadLimits.generatedKeysMax),
    valueSize: args.integer('value-size', 0, workloadLimits.valueBytesMax),
    prefix: args.required('prefix'),
    prepare: workload !== 'write' && !args.flag('no-prepare'),
  };
}

/** One read before anything else: an unreachable PD or cluster is one clear error, not a run of failures. */
async function probe(client: FlotillaClient, plan: BenchPlan, pdUrls: readonly string[]): Promise<void> {
  try {
    await client.get(generatedKey(plan.prefix, 0, plan.keyCount));
  } catch (err) {
    throw toCliError(err, pdUrls);
  }
}

async function prepareKeys(client: FlotillaClient, plan: BenchPlan, pdUrls: readonly string[], progress: Progress): Promise<void> {
  let written = 0;
  const label = `bench: writing ${plan.keyCount} keys to read`;
  progress.update(label, 0, plan.keyCount);
  try {
    await runBounded(generatedBatches(plan.prefix, plan.keyCount, plan.valueSize, benchLimits.prepareBatchPairs), benchLimits.prepareConcurrency, async (batch) => {
      await client.putMany(batch);
      written += batch.length;
      progress.update(label, written, plan.keyCount);
    });
  } catch (err) {
    throw toCliError(err, pdUrls);
  }
}

async function runWorkload(client: FlotillaClient, plan: BenchPlan, progress: Progress): Promise<BenchResult> {
  const histogram = new LatencyHistogram();
  const errors = new Map<string, number>();
  const counts = { started: 0, reads: 0, writes: 0 };
  // Writes put the same bytes: generating a value per operation would be measured too.
  const value = generatedValue(generatedKey(plan.prefix, 0, plan.keyCount), plan.valueSize);
  const startedMs = performance.now();
  const deadlineMs = plan.durationMs === undefined ? Infinity : startedMs + plan.durationMs;
  const more = (): boolean => (plan.ops === undefined ? performance.now() < deadlineMs : counts.started < plan.ops);

  const worker = async (): Promise<void> => {
    while (more()) {
      counts.started++;
      const key = generatedKey(plan.prefix, Math.floor(Math.random() * plan.keyCount), plan.keyCount);
      const read = plan.workload === 'read' || (plan.workload === 'mixed' && Math.random() < benchLimits.mixedReadFraction);
      const sentMs = performance.now();
      try {
        if (read) await client.get(key);
        else await client.put(key, value);
        histogram.record(performance.now() - sentMs);
        if (read) counts.reads++;
        else counts.writes++;
      } catch (err) {
        if (!isClientError(err)) throw err; // a bug, not a measurement
        errors.set(err.code, (errors.get(err.code) ?? 0) + 1);
      }
    }
  };

  const label = `bench: ${plan.workload}, ${plan.concurrency} workers`;
  const draw = (): void => {
    const elapsedMs = performance.now() - startedMs;
    const live = progress.interactive ? `, ${Math.round(histogram.count / Math.max(elapsedMs / 1_000, 0.001))} ops/s` : '';
    if (plan.ops !== undefined) progress.update(`${label}${live}`, counts.started, plan.ops);
    // Seconds to a tenth: the bar moves smoothly through a short run.
    else progress.update(`${label}${live}`, Math.min(Math.floor(elapsedMs / 100) / 10, plan.durationMs! / 1_000), plan.durationMs! / 1_000);
  };
  draw();
  const timer = setInterval(draw, benchLimits.progressEveryMs);
  try {
    await Promise.all(Array.from({ length: plan.concurrency }, worker));
  } finally {
    clearInterval(timer);
  }
  const seconds = (performance.now() - startedMs) / 1_000;
  const errorCount = [...errors.values()].reduce((a, b) => a + b, 0);
  return {
    workload: plan.workload,
    concurrency: plan.concurrency,
    keyCount: plan.keyCount,
    valueSize: plan.valueSize,
    seconds: Math.round(seconds * 1_000) / 1_000,
    ops: histogram.count,
    opsPerSecond: Math.round(histogram.count / Math.max(seconds, 0.001)),
    reads: counts.reads,
    writes: counts.writes,
    latencyMs: histogram.summary(),
    errorCount,
    errors: Object.fromEntries([...errors].sort((a, b) => b[1] - a[1])),
  };
}

/** The result line (and a line of errors when there were any). */
function describe(r: BenchResult): string {
  const l = r.latencyMs;
  const ms = (n: number): string => n.toFixed(n < 10 ? 2 : 1);
  const line = `bench ${r.workload}: ${r.ops} ops in ${r.seconds.toFixed(1)} s = ${r.opsPerSecond} ops/s; latency ms p50 ${ms(l.p50)} p99 ${ms(l.p99)} p99.9 ${ms(l.p999)} max ${ms(l.max)}; errors ${r.errorCount}`;
  const setup = `(${r.concurrency} workers, ${r.keyCount} keys, values of ${bytes(r.valueSize)}, ${r.reads} reads, ${r.writes} writes)`;
  const failed = r.errorCount === 0 ? '' : `errors: ${Object.entries(r.errors).map(([code, n]) => `${code} ${n}`).join(', ')}\n`;
  return `${line}\n${setup}\n${failed}`;
}

function topError(errors: Readonly<Record<string, number>>): string {
  const [code, n] = Object.entries(errors)[0] ?? ['?', 0];
  return `${n} × ${code}`;
}
