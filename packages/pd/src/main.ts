/**
 * The PD member process: `node --import tsx packages/pd/src/main.ts --member-id 1 --data-dir DIR
 * --initial-members 1=127.0.0.1:2380@http://127.0.0.1:2379` (`pnpm run pd …` from the repository
 * root, or `flotilla pd …`; `--help` lists the flags).
 *
 * Exit codes: 0 after a graceful shutdown (SIGTERM, SIGINT), 1 when the member failed, 2 for an
 * invalid configuration.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createLogger, errorFields } from '@flotilla/store';
import { isPdError } from './errors.ts';
import { parsePdConfig, pdUsage } from './process/config.ts';
import { PdProcess } from './process/pd-process.ts';

const EXIT_FAILED = 1;
const EXIT_INVALID_CONFIG = 2;

/**
 * Runs a PD member as this process: parses `argv` (flags) and `env` (FLOTILLA_* variables),
 * starts the member and owns the process from then on — it installs the SIGTERM/SIGINT handlers
 * and exits the process (0 after a graceful shutdown, 1 on failure, 2 for a bad configuration).
 * Resolves once the member serves (or after printing `--help`).
 */
export async function runPd(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  let config;
  try {
    config = parsePdConfig(argv, env);
  } catch (err) {
    process.stderr.write(`${isPdError(err) ? err.message : String(err)}\n`);
    process.exit(EXIT_INVALID_CONFIG);
  }
  if (config === 'help') {
    process.stdout.write(pdUsage());
    return;
  }
  const logger = createLogger(config.logLevel, { pdMember: config.memberId });
  const fail = (err: unknown, what: string): never => {
    logger.fatal(errorFields(err), what);
    process.exit(isPdError(err, 'FLOTILLA_PD_INVALID_CONFIG') ? EXIT_INVALID_CONFIG : EXIT_FAILED);
  };
  process.on('uncaughtException', (err) => fail(err, 'uncaught exception'));
  process.on('unhandledRejection', (err) => fail(err, 'unhandled rejection'));

  let pd: PdProcess;
  try {
    pd = await PdProcess.start(config, logger, () => process.exit(EXIT_FAILED));
  } catch (err) {
    return fail(err, 'pd failed to start');
  }
  const stop = (signal: string): void => {
    pd.shutdown(signal).then(
      () => process.exit(0),
      (err: unknown) => fail(err, 'shutdown failed'),
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

/** True when this module is the process's entry point (not imported, e.g. by the flotilla CLI). */
function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) void runPd(process.argv.slice(2), process.env);
