/**
 * The store process: `node --import tsx packages/store/src/main.ts --store-id 1 --data-dir DIR …`
 * (`pnpm run store …` from the repository root; `--help` lists the flags).
 *
 * Exit codes: 0 after a graceful shutdown (SIGTERM, SIGINT), 1 when the store failed (a failed
 * log write, a broken invariant: it fail-stops), 2 for an invalid configuration.
 */
import { isStoreError } from './errors.ts';
import { parseStoreConfig, usage } from './process/config.ts';
import { createLogger, errorFields } from './process/logger.ts';
import { StoreProcess } from './process/store-process.ts';

const EXIT_FAILED = 1;
const EXIT_INVALID_CONFIG = 2;

async function main(): Promise<void> {
  let config;
  try {
    config = parseStoreConfig(process.argv.slice(2), process.env);
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

void main();
