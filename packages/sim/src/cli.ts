import { parseArgs } from 'node:util';
import { runSimulation, type SimulationResult } from './simulation.ts';

/**
 * `pnpm sim --seeds N [--seed-start S] [--nodes 3|5] [--ops M]`: runs N seeds, prints a
 * replay command for every failing one, ends with `sim: N seeds, V violations` and exits
 * non-zero when V > 0.
 */
function usage(message: string): never {
  process.stderr.write(`sim: ${message}\nusage: pnpm sim --seeds N [--seed-start S] [--nodes 3|5] [--ops M] [--verbose]\n`);
  process.exit(2);
}

function positiveInt(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0) usage(`--${name} takes a whole number, got "${raw}"`);
  return value;
}

const { values } = parseArgs({
  options: {
    seeds: { type: 'string' },
    'seed-start': { type: 'string' },
    seed: { type: 'string' },
    nodes: { type: 'string' },
    ops: { type: 'string' },
    verbose: { type: 'boolean', default: false },
  },
  strict: true,
});

const seedStart = positiveInt('seed-start', values['seed-start'] ?? values.seed, 1);
const seeds = positiveInt('seeds', values.seeds, values.seed !== undefined ? 1 : 100);
const nodes = positiveInt('nodes', values.nodes, 5);
if (nodes !== 3 && nodes !== 5) usage('--nodes must be 3 or 5');
const ops = positiveInt('ops', values.ops, 1000);

let violations = 0;
let failedSeeds = 0;
let totalOps = 0;
const started = performance.now();
for (let seed = seedStart; seed < seedStart + seeds; seed++) {
  const result: SimulationResult = runSimulation({ seed, nodes, ops });
  totalOps += result.ops;
  violations += result.violationCount;
  if (result.violationCount > 0) {
    failedSeeds++;
    process.stdout.write(`seed ${seed}: ${result.violationCount} violations (${result.config})\n`);
    for (const v of result.violations) process.stdout.write(`  [${v.at.toFixed(1)} ms] ${v.rule}: ${v.detail.split('\n').join('\n    ')}\n`);
    process.stdout.write(`  replay: pnpm sim --seed ${seed} --nodes ${nodes} --ops ${ops}\n`);
  } else if (values.verbose) {
    process.stdout.write(
      `seed ${seed}: ok ${result.ops} ops (${result.okOps} ok, ${result.unknownOps} unknown), ${result.faultsInjected} faults, ` +
        `${result.virtualMs} virtual ms, ${result.events} events, trace ${result.traceHash} (${result.config})\n`,
    );
  }
}
const seconds = ((performance.now() - started) / 1000).toFixed(1);
process.stdout.write(`ran ${seeds} seeds (${totalOps} client ops, ${failedSeeds} failing) in ${seconds} s\n`);
process.stdout.write(`sim: ${seeds} seeds, ${violations} violations\n`);
process.exitCode = violations > 0 ? 1 : 0;
