/**
 * The SDK's errors: one class, stable codes, a brand check that survives duplicate installs,
 * and `isRetryable(err)` — never decided by parsing messages.
 */
import type { KvError } from '@flotilla/wire';

/**
 * Every code a call may fail with. The first eight are the store's own KvError codes (most are
 * retried inside the SDK and surface only when a call runs out of attempts); the rest are the
 * SDK's.
 */
export type ClientErrorCode =
  | 'FLOTILLA_NOT_LEADER'
  | 'FLOTILLA_EPOCH_NOT_MATCH'
  | 'FLOTILLA_REGION_NOT_FOUND'
  | 'FLOTILLA_KEY_NOT_IN_REGION'
  | 'FLOTILLA_SERVER_BUSY'
  | 'FLOTILLA_REQUEST_TOO_LARGE'
  | 'FLOTILLA_TIMEOUT'
  /** The leader's store is short of disk space: it refuses puts and compare-and-swaps (not retried). */
  | 'FLOTILLA_DISK_FULL'
  /** The call's deadline passed before a definite answer. */
  | 'FLOTILLA_DEADLINE_EXCEEDED'
  /** The caller's AbortSignal fired. */
  | 'FLOTILLA_ABORTED'
  /** A store could not be reached, or its connection broke. */
  | 'FLOTILLA_STORE_UNAVAILABLE'
  /** A store answered something the SDK does not understand (a bug on one side). */
  | 'FLOTILLA_STORE_PROTOCOL'
  /** No PD member answered the routing request. */
  | 'FLOTILLA_PD_UNAVAILABLE'
  /** PD refused the routing request (not a transient condition). */
  | 'FLOTILLA_PD_ERROR'
  /** The call's arguments are invalid (key or value too large, bad range, bad option). */
  | 'FLOTILLA_INVALID_ARGUMENT'
  /** Too many operations wait for one store (the SDK's own backpressure). */
  | 'FLOTILLA_CLIENT_BUSY'
  /** A store or PD refused the client's TLS certificate (401), or presented one the client does not trust (createClient's `tls`). */
  | 'FLOTILLA_UNAUTHENTICATED'
  /** close() was called. */
  | 'FLOTILLA_CLIENT_CLOSED';

/** Every ClientErrorCode, for exhaustive checks and docs. */
export const CLIENT_ERROR_CODES: readonly ClientErrorCode[] = Object.freeze([
  'FLOTILLA_NOT_LEADER',
  'FLOTILLA_EPOCH_NOT_MATCH',
  'FLOTILLA_REGION_NOT_FOUND',
  'FLOTILLA_KEY_NOT_IN_REGION',
  'FLOTILLA_SERVER_BUSY',
  'FLOTILLA_REQUEST_TOO_LARGE',
  'FLOTILLA_TIMEOUT',
  'FLOTILLA_DISK_FULL',
  'FLOTILLA_DEADLINE_EXCEEDED',
  'FLOTILLA_ABORTED',
  'FLOTILLA_STORE_UNAVAILABLE',
  'FLOTILLA_STORE_PROTOCOL',
  'FLOTILLA_PD_UNAVAILABLE',
  'FLOTILLA_PD_ERROR',
  'FLOTILLA_INVALID_ARGUMENT',
  'FLOTILLA_CLIENT_BUSY',
  'FLOTILLA_UNAUTHENTICATED',
  'FLOTILLA_CLIENT_CLOSED',
] as const);

/** Codes after which the same call may succeed if made again (unless the outcome is unknown). */
const TRANSIENT = new Set<ClientErrorCode>([
  'FLOTILLA_NOT_LEADER',
  'FLOTILLA_EPOCH_NOT_MATCH',
  'FLOTILLA_REGION_NOT_FOUND',
  'FLOTILLA_KEY_NOT_IN_REGION',
  'FLOTILLA_SERVER_BUSY',
  'FLOTILLA_TIMEOUT',
  'FLOTILLA_DEADLINE_EXCEEDED',
  'FLOTILLA_STORE_UNAVAILABLE',
  'FLOTILLA_PD_UNAVAILABLE',
  'FLOTILLA_CLIENT_BUSY',
]);

const BRAND = Symbol.for('flotilla.client.error');

export interface ClientErrorOptions {
  readonly cause?: unknown;
  /** A write of the call may have taken effect (default false). */
  readonly unknownOutcome?: boolean;
  /** The store's KvError behind this error, when there is one. */
  readonly kvError?: KvError;
}

/** The one error class of the SDK. */
export class ClientError extends Error {
  /** Stable; see ClientErrorCode. */
  readonly code: ClientErrorCode;
  /**
   * True when a write of the failed call may or may not have taken effect (a store timed
   * out, a connection broke after sending, the deadline passed while a write was in flight).
   * Only the caller can tell whether doing it again is safe. False: nothing was written.
   */
  readonly unknownOutcome: boolean;
  /** The store's KvError behind this error, when there is one. */
  readonly kvError: KvError | undefined;
  readonly [BRAND] = true;

  constructor(code: ClientErrorCode, message: string, options: ClientErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ClientError';
    this.code = code;
    this.unknownOutcome = options.unknownOutcome ?? false;
    this.kvError = options.kvError;
  }
}

/** Whether `err` is a ClientError (of `code`, if given), across duplicate installs. */
export function isClientError(err: unknown, code?: ClientErrorCode): err is ClientError {
  if (typeof err !== 'object' || err === null) return false;
  if ((err as { [BRAND]?: unknown })[BRAND] !== true) return false;
  return code === undefined || (err as ClientError).code === code;
}

/**
 * Whether making the same call again is safe and may succeed: the error is transient (a
 * leader change, a split, overload, a deadline, an unreachable store or PD) AND nothing of
 * the call may have been written without the caller knowing (`unknownOutcome` is false).
 * Reads are always safe to repeat; a write that timed out is not (its outcome is unknown).
 */
export function isRetryable(err: unknown): boolean {
  return isClientError(err) && !err.unknownOutcome && TRANSIENT.has(err.code);
}

/** The ClientError for a store's KvError. */
export function fromKvError(error: KvError, unknownOutcome: boolean): ClientError {
  return new ClientError(error.code, kvErrorMessage(error), { kvError: error, unknownOutcome });
}

function kvErrorMessage(error: KvError): string {
  switch (error.code) {
    case 'FLOTILLA_NOT_LEADER':
      return `region ${error.regionId}: not the leader${error.leader ? ` (leader: peer ${error.leader.peerId} on store ${error.leader.storeId})` : ''}`;
    case 'FLOTILLA_EPOCH_NOT_MATCH':
      return `region ${error.regionId}: epoch changed`;
    case 'FLOTILLA_REGION_NOT_FOUND':
      return `region ${error.regionId} not found at the store`;
    case 'FLOTILLA_KEY_NOT_IN_REGION':
      return `region ${error.regionId}: key not in the region`;
    case 'FLOTILLA_SERVER_BUSY':
      return `store busy (retry after ${error.retryAfterMs} ms)`;
    case 'FLOTILLA_REQUEST_TOO_LARGE':
      return `request too large (at most ${error.requestBytesMax} bytes, ${error.opsMax} operations)`;
    case 'FLOTILLA_TIMEOUT':
      return 'the store did not finish in time; a write may or may not have taken effect';
    case 'FLOTILLA_DISK_FULL':
      return `store ${error.storeId} is short of disk space (${error.availableBytes} bytes free, reserve ${error.reserveBytes}): writes that need it are refused until space is freed`;
  }
}
