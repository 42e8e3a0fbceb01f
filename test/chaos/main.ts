/**
 * `pnpm chaos [--seed S] [--duration 10m] [--report-dir DIR]`: one chaos run on real
 * processes (see run.ts). Prints the seed first and `chaos: seed S, N ops, V violations, L lost`
 * last; exits 0 only when V and L are 0, the checker decided every key, every final read
 * answered and the liveness check passed (1 otherwise, 2 for bad arguments).
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseDurationMs } from '../../packages/cli/src/workload.ts';
import { REPO } from '../support/process.ts';
import { chaosOptions, runChaos } from './run.ts';

const DEFAULT_DURATION = '10m';
const SEED_MAX = 2 ** 32 - 1;

function usage(message: string): never {
  process.stderr.write(`chaos: ${message}\nusage: pnpm chaos [--seed S (0..${SEED_MAX})] [--duration 10m] [--report-dir DIR]\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({ options: { seed: { type: 'string' }, duration: { type: 'string' }, 'report-dir': { type: 'string' } }, strict: true, allowPositionals: false }));
  } catch (err) {
    usage((err as Error).message);
  }
  const seed = values.seed === undefined ? Math.floor(Math.random() * SEED_MAX) : Number(values.seed);
  if (!Number.isSafeInteger(seed) || seed < 0 || seed > SEED_MAX) usage(`--seed must be an integer in 0..${SEED_MAX}, got "${values.seed}"`);
  let durationMs: number;
  try {
    durationMs = parseDurationMs('chaos', 'duration', values.duration ?? DEFAULT_DURATION);
  } catch (err) {
    usage((err as Error).message.replace(/^chaos: /, ''));
  }
  const reportDir = values['report-dir'] ?? path.join(REPO, 'test/chaos/reports');
  const log = (line: string): void => void process.stdout.write(`${line}\n`);
  const result = await runChaos(chaosOptions(seed, durationMs, reportDir, log));
  log(result.summary);
  process.exit(result.report.passed ? 0 : 1);
}

main().catch((err: unknown) => {
  process.stderr.write(`chaos: the run itself failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
