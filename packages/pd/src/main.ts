/**
 * The PD member process: `node --import tsx packages/pd/src/main.ts --member-id 1 --data-dir DIR
 * --initial-members 1=127.0.0.1:2380@http://127.0.0.1:2379` (`pnpm run pd …` from the repository
 * root, or `flotilla pd …`; `--help` lists the flags).
 *
 * Exit codes: 0 after a graceful shutdown (SIGTERM, SIGINT), 1 when the member failed, 2 for an
 * invalid configuration.
 */
import { isEntryPoint, runServer, type ServerRecipe } from '@flotilla/store';
import { isPdError } from './errors.ts';
import { parsePdConfig, pdUsage, type PdConfig } from './process/config.ts';
import { PdProcess } from './process/pd-process.ts';

const PD: ServerRecipe<PdConfig, PdProcess> = {
  name: 'pd',
  parse: parsePdConfig,
  usage: pdUsage,
  isInvalidConfig: (err): err is Error => isPdError(err, 'FLOTILLA_PD_INVALID_CONFIG'),
  identity: (config) => ({ pdMember: config.memberId }),
  start: (config, logger, onFailure) => PdProcess.start(config, logger, onFailure),
};

/**
 * Runs a PD member as this process: parses `argv` (flags) and `env` (FLOTILLA_* variables),
 * starts the member and owns the process from then on — it installs the SIGTERM/SIGINT handlers
 * and exits the process (0 after a graceful shutdown, 1 on failure, 2 for a bad configuration).
 * Resolves once the member serves (or after printing `--help`).
 */
export function runPd(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  return runServer(PD, argv, env);
}

if (isEntryPoint(import.meta.url)) void runPd(process.argv.slice(2), process.env);
