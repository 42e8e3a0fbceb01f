/**
 * The store process: `node --import tsx packages/store/src/main.ts --store-id 1 --data-dir DIR …`
 * (`pnpm run store …` from the repository root, or `flotilla store …`; `--help` lists the flags).
 *
 * Exit codes: 0 after a graceful shutdown (SIGTERM, SIGINT), 1 when the store failed (a failed
 * log write, a broken invariant: it fail-stops), 2 for an invalid configuration.
 */
import { isStoreError } from './errors.ts';
import { parseStoreConfig, usage, type StoreConfig } from './process/config.ts';
import { isEntryPoint, runServer, type ServerRecipe } from './process/run-process.ts';
import { StoreProcess } from './process/store-process.ts';

const STORE: ServerRecipe<StoreConfig, StoreProcess> = {
  name: 'store',
  parse: parseStoreConfig,
  usage,
  isInvalidConfig: (err): err is Error => isStoreError(err, 'FLOTILLA_STORE_INVALID_CONFIG'),
  identity: (config) => (config.storeId === undefined ? {} : { storeId: config.storeId }),
  start: (config, logger, onFailure) => StoreProcess.start(config, logger, onFailure),
};

/**
 * Runs a store as this process: parses `argv` (flags) and `env` (FLOTILLA_* variables), starts
 * the store and owns the process from then on — it installs the SIGTERM/SIGINT handlers and
 * exits the process (0 after a graceful shutdown, 1 on failure, 2 for a bad configuration).
 * Resolves once the store serves (or after printing `--help`).
 */
export function runStore(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  return runServer(STORE, argv, env);
}

if (isEntryPoint(import.meta.url)) void runStore(process.argv.slice(2), process.env);
