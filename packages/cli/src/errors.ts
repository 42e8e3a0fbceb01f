/**
 * The CLI's errors and exit codes. A `CliError` is an expected failure (a user mistake, an
 * unreachable cluster): it is printed as one line, never with a stack trace.
 */

/** Exit codes of every command (stable: scripts rely on them). */
export const EXIT = Object.freeze({
  ok: 0,
  /** A negative answer, not a failure: `get` of an absent key, a `cas` whose condition was false. */
  no: 1,
  /** A usage mistake found before anything was sent: a bad flag, argument or key encoding. */
  usage: 2,
  /** The cluster could not do it: PD or stores unreachable, a refusal, a timeout. */
  cluster: 3,
  /** A bug in the CLI (unexpected error); FLOTILLA_DEBUG=1 prints its stack. */
  internal: 70,
});

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

const BRAND = Symbol.for('flotilla.cli.error');

export class CliError extends Error {
  readonly exitCode: ExitCode;
  readonly [BRAND] = true;

  constructor(exitCode: ExitCode, message: string) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

export function isCliError(err: unknown): err is CliError {
  return typeof err === 'object' && err !== null && (err as Record<symbol, unknown>)[BRAND] === true;
}

export function usageError(message: string): CliError {
  return new CliError(EXIT.usage, message);
}

export function clusterError(message: string): CliError {
  return new CliError(EXIT.cluster, message);
}

/** A network error in words: `connect ECONNREFUSED 127.0.0.1:1`, `timed out after 5000 ms`. */
export function describeNetworkError(err: unknown, timeoutMs?: number): string {
  if (typeof err !== 'object' || err === null) return String(err);
  const e = err as { name?: string; code?: string; message?: string; cause?: unknown };
  if (e.name === 'TimeoutError' || e.name === 'AbortError' || e.code === 'UND_ERR_CONNECT_TIMEOUT' || e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT') {
    return timeoutMs === undefined ? 'timed out' : `no answer within ${timeoutMs} ms`;
  }
  if (e.cause !== undefined && e.cause !== err) return describeNetworkError(e.cause, timeoutMs);
  return e.message ?? e.code ?? String(err);
}
