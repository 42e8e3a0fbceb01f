/**
 * `flotilla load`: bulk load. Either generates `--count` keys (`PREFIX` + zero-padded index,
 * values of `--value-size` bytes), or reads JSON lines `{"key": …, "value": …}` from `--file`
 * (`-`: stdin). Pairs go out in putMany batches, a bounded number in flight; a progress line on
 * stderr; a summary on stdout (keys, bytes, seconds, keys/s).
 */
import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { CLUSTER_OPTIONS, ENCODING_OPTION, HELP_OPTION, JSON_OPTION, clusterTarget, commandHelp, parseCommandArgs, parseEncoding, type OptionSpecs, type ParsedArgs } from '../args.ts';
import { openDataClient } from '../data-client.ts';
import { decodeArg, type KeyEncoding } from '../encoding.ts';
import { CliError, EXIT, isCliError, usageError, type ExitCode } from '../errors.ts';
import { bytes } from '../format.ts';
import { Progress } from '../progress.ts';
import { generatedBatches, runBounded, workloadLimits, type Pair } from '../workload.ts';

export const loadLimits = Object.freeze({
  batchPairsDefault: 500,
  concurrencyDefault: 4,
  valueBytesDefault: 100,
  /** One line of a --file (a maximal value, hex-encoded, and its key). */
  lineCharsMax: 2 * workloadLimits.valueBytesMax + 64 * 1024,
});

/** Any key will do: the read only shows that PD and a store answer. */
const PROBE_KEY = new Uint8Array([0]);

const SYNOPSIS = 'flotilla load (--count N [--prefix P] [--value-size B] | --file PATH|-) [--batch N] [--concurrency N] [--json]';

const DESCRIPTION = `Bulk load. --count N writes N generated keys, PREFIX followed by the zero-padded index
(load:0000 … load:9999), each with a value of --value-size bytes that repeats its key.
--file reads one JSON object per line, {"key": "…", "value": "…"} (strings in --encoding),
from PATH, or from stdin with "-". Pairs are written in putMany batches of --batch pairs,
--concurrency batches at a time; loading is NOT atomic: after a failure, the pairs before it
may be written. Prints keys, bytes, seconds and keys/s (--json: one object).`;

const OPTIONS: OptionSpecs = {
  ...CLUSTER_OPTIONS,
  'timeout-ms': { ...CLUSTER_OPTIONS['timeout-ms']!, help: 'the deadline of each batch (retries included)' },
  encoding: { ...ENCODING_OPTION['encoding']!, help: 'how keys and values in --file are written: utf8, hex, base64' },
  count: { type: 'string', value: 'N', help: `generate N keys (1..${workloadLimits.generatedKeysMax})` },
  prefix: { type: 'string', value: 'P', fallback: 'load:', help: 'prefix of generated keys' },
  'value-size': { type: 'string', value: 'B', fallback: String(loadLimits.valueBytesDefault), help: `bytes of each generated value (0..${workloadLimits.valueBytesMax})` },
  file: { type: 'string', value: 'PATH', help: 'read JSON lines {"key","value"} from PATH ("-": stdin)' },
  batch: { type: 'string', value: 'N', fallback: String(loadLimits.batchPairsDefault), help: `pairs per putMany (1..${workloadLimits.batchPairsMax})` },
  concurrency: { type: 'string', value: 'N', fallback: String(loadLimits.concurrencyDefault), help: `batches in flight (1..${workloadLimits.loadConcurrencyMax})` },
  ...JSON_OPTION,
  ...HELP_OPTION,
};

export function loadHelp(): string {
  return commandHelp(SYNOPSIS, DESCRIPTION, OPTIONS);
}

/** Where the pairs come from, checked before anything is sent. */
type Source = { readonly kind: 'generated'; readonly count: number; readonly prefix: string; readonly valueSize: number } | { readonly kind: 'file'; readonly path: string };

export async function loadCommand(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<ExitCode> {
  const args = parseCommandArgs('load', argv, OPTIONS, env, 0);
  if (args.flag('help')) {
    process.stdout.write(loadHelp());
    return EXIT.ok;
  }
  const source = await parseSource(args);
  const encoding = parseEncoding(args);
  const batchPairs = args.integer('batch', 1, workloadLimits.batchPairsMax);
  const concurrency = args.integer('concurrency', 1, workloadLimits.loadConcurrencyMax);
  const { pdUrls, timeoutMs, tls } = clusterTarget(args);

  const client = openDataClient(pdUrls, timeoutMs, tls);
  const progress = new Progress();
  const tally = { keys: 0, bytes: 0 };
  const startedMs = performance.now();
  const batches = source.kind === 'generated' ? generatedBatches(source.prefix, source.count, source.valueSize, batchPairs) : fileBatches(source.path, encoding, batchPairs);
  const total = source.kind === 'generated' ? source.count : undefined;
  try {
    // One read first: an unreachable cluster is reported with its cause before any batch.
    await client.get(PROBE_KEY);
    await runBounded(batches, concurrency, async (batch) => {
      await client.putMany(batch);
      tally.keys += batch.length;
      for (const pair of batch) tally.bytes += pair.key.length + pair.value.length;
      progress.update('loading', tally.keys, total);
    });
  } catch (err) {
    progress.done();
    if (!isCliError(err)) throw err;
    throw new CliError(err.exitCode, `load: ${err.message} (${keysCount(tally.keys)} ${tally.keys === 1 ? 'was' : 'were'} written before it)`);
  } finally {
    await client.close();
  }
  const seconds = (performance.now() - startedMs) / 1_000;
  progress.done();
  const keysPerSecond = Math.round(tally.keys / Math.max(seconds, 0.001));
  if (args.flag('json')) {
    process.stdout.write(`${JSON.stringify({ keys: tally.keys, bytes: tally.bytes, seconds: Math.round(seconds * 1_000) / 1_000, keysPerSecond })}\n`);
  } else {
    process.stdout.write(`loaded ${keysCount(tally.keys)} (${bytes(tally.bytes)}) in ${seconds.toFixed(1)} s: ${keysPerSecond} keys/s\n`);
  }
  return EXIT.ok;
}

async function parseSource(args: ParsedArgs): Promise<Source> {
  const file = args.string('file');
  const countGiven = args.string('count') !== undefined;
  if ((file === undefined) === !countGiven) throw usageError('load: give exactly one of --count N and --file PATH (flotilla load --help)');
  if (file !== undefined) {
    if (file === '') throw usageError('load: --file needs a path, or "-" for stdin');
    if (file !== '-') {
      try {
        await access(file);
      } catch (err) {
        throw usageError(`load: cannot read --file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    }
    return { kind: 'file', path: file };
  }
  return {
    kind: 'generated',
    count: args.integer('count', 1, workloadLimits.generatedKeysMax),
    prefix: args.required('prefix'),
    valueSize: args.integer('value-size', 0, workloadLimits.valueBytesMax),
  };
}

/** The pairs of a JSON-lines file (or stdin) in batches; a bad line is a usage error naming it. */
async function* fileBatches(path: string, encoding: KeyEncoding, batchPairs: number): AsyncGenerator<Pair[]> {
  const input = path === '-' ? process.stdin : createReadStream(path);
  const lines = createInterface({ input, crlfDelay: Infinity });
  let batch: Pair[] = [];
  let lineNumber = 0;
  try {
    for await (const line of lines) {
      lineNumber++;
      if (line.trim() === '') continue;
      batch.push(parseLine(line, lineNumber, encoding));
      if (batch.length >= batchPairs) {
        yield batch;
        batch = [];
      }
    }
  } catch (err) {
    if (isCliError(err)) throw err;
    throw usageError(`cannot read ${path === '-' ? 'stdin' : path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  } finally {
    lines.close();
  }
  if (batch.length > 0) yield batch;
}

function parseLine(line: string, lineNumber: number, encoding: KeyEncoding): Pair {
  const where = `line ${lineNumber}`;
  if (line.length > loadLimits.lineCharsMax) throw usageError(`${where} is over ${loadLimits.lineCharsMax} characters`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    throw usageError(`${where} is not JSON (expected {"key": "…", "value": "…"})`);
  }
  const record = parsed as { key?: unknown; value?: unknown } | null;
  if (typeof record !== 'object' || record === null || typeof record.key !== 'string' || typeof record.value !== 'string') {
    throw usageError(`${where}: expected {"key": "…", "value": "…"} with string key and value`);
  }
  const key = decodeArg(`${where}: key`, record.key, encoding);
  if (key.length === 0) throw usageError(`${where}: the key is empty`);
  return { key, value: decodeArg(`${where}: value`, record.value, encoding) };
}

function keysCount(n: number): string {
  return n === 1 ? '1 key' : `${n} keys`;
}
