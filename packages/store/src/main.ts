/**
 * The store process: `node --import tsx packages/store/src/main.ts --store-id 1 --data-dir DIR …`
 * (`pnpm run store …` from the repository root, or `flotilla store …`; `--help` lists the flags).
 *
 * Exit codes: 0 after a graceful shutdown (SIGTERM, SIGINT), 1 when the store failed (a failed
 * log write, a broken invariant: it fail-stops), 2 for an invalid configuration.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isStoreError } from './errors.ts';
import { parseStoreConfig, usage } from './process/config.ts';
import { createLogger, errorFields } from './process/logger.ts';
import { StoreProcess } from './process/store-process.ts';

const EXIT_FAILED = 1;
const EXIT_INVALID_CONFIG = 2;

/**
 * Runs a store as this process: parses `argv` (flags) and `env` (FLOTILLA_* variables), starts
 * the store and owns the process from then on — it installs the SIGTERM/SIGINT handlers and
 * exits the process (0 after a graceful shutdown, 1 on failure, 2 for a bad configuration).
 * Resolves once the store serves (or after printing `--help`).
 */
export async function runStore(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  let config;
  try {
    config = parseStoreConfig(argv, env);
  } catch (err) {
    process.stderr.write(`${isStoreError(err) ? err.message : String(err)}\n`);
    process.exit(EXIT_INVALID_CONFIG);
  }
  if (config === 'help') {
    process.stdout.write(usage());
    return;
  }
  const logger = createLogger(config.logLevel, config.storeId === undefined ? {} : { storeId: config.storeId });
  const fail = (err: unknown, what: string): never => {
    logger.fatal(errorFields(err), what);
    process.exit(isStoreError(err, 'FLOTILLA_STORE_INVALID_CONFIG') ? EXIT_INVALID_CONFIG : EXIT_FAILED);
  };
  process.on('uncaughtException', (err) => fail(err, 'uncaught exception'));
  process.on('unhandledRejection', (err) => fail(err, 'unhandled rejection'));

  let store: StoreProcess;
  try {
    store = await StoreProcess.start(config, logger, () => process.exit(EXIT_FAILED));
  } catch (err) {
    return fail(err, 'store failed to start');
  }
  const stop = (signal: string): void => {
    store.shutdown(signal).then(
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

if (isEntryPoint()) void runStore(process.argv.slice(2), process.env);
