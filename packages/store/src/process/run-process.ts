/**
 * How a Flotilla server process (a store, a PD member) owns its Node process: parse the flags,
 * print --help, log JSON, exit on a typed configuration error (2), start, turn SIGTERM/SIGINT
 * into a graceful shutdown (0), and fail-stop on a failure or an uncaught error (1).
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { LogLevel } from './config.ts';
import { createLogger, errorFields, type Logger } from './logger.ts';

export const EXIT_FAILED = 1;
export const EXIT_INVALID_CONFIG = 2;

/** What differs between the server processes. */
export interface ServerRecipe<C extends { readonly logLevel: LogLevel }, S extends { shutdown(reason: string): Promise<void> }> {
  /** In log messages: "store failed to start". */
  readonly name: string;
  parse(argv: readonly string[], env: NodeJS.ProcessEnv): C | 'help';
  usage(): string;
  /** The typed configuration error of this process (exit code 2), if `err` is one. */
  isInvalidConfig(err: unknown): err is Error;
  /** The fields every log line carries ({ storeId }, { pdMember }). */
  identity(config: C): Readonly<Record<string, number>>;
  start(config: C, logger: Logger, onFailure: (err: unknown) => void): Promise<S>;
}

/**
 * Runs a server as this process and owns the process from then on. Resolves once it serves
 * (or after printing --help).
 */
export async function runServer<C extends { readonly logLevel: LogLevel }, S extends { shutdown(reason: string): Promise<void> }>(
  recipe: ServerRecipe<C, S>,
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<void> {
  let config: C | 'help';
  try {
    config = recipe.parse(argv, env);
  } catch (err) {
    process.stderr.write(`${recipe.isInvalidConfig(err) ? err.message : String(err)}\n`);
    process.exit(EXIT_INVALID_CONFIG);
  }
  if (config === 'help') {
    process.stdout.write(recipe.usage());
    return;
  }
  const logger = createLogger(config.logLevel, recipe.identity(config));
  const fail = (err: unknown, what: string): never => {
    logger.fatal(errorFields(err), what);
    process.exit(recipe.isInvalidConfig(err) ? EXIT_INVALID_CONFIG : EXIT_FAILED);
  };
  process.on('uncaughtException', (err) => fail(err, 'uncaught exception'));
  process.on('unhandledRejection', (err) => fail(err, 'unhandled rejection'));

  let server: S;
  try {
    server = await recipe.start(config, logger, () => process.exit(EXIT_FAILED));
  } catch (err) {
    return fail(err, `${recipe.name} failed to start`);
  }
  const stop = (signal: string): void => {
    server.shutdown(signal).then(
      () => process.exit(0),
      (err: unknown) => fail(err, 'shutdown failed'),
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  // Started by a supervisor with an IPC channel (`flotilla dev`): when the supervisor dies
  // without stopping us, the channel closes; shut down rather than run on orphaned. The channel
  // must not keep the process alive by itself.
  if (process.channel) {
    process.channel.unref();
    process.once('disconnect', () => stop('the supervising process is gone'));
  }
}

/** True when the module at `moduleUrl` is the process's entry point (not imported, e.g. by the CLI). */
export function isEntryPoint(moduleUrl: string): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(moduleUrl));
  } catch {
    return false;
  }
}
