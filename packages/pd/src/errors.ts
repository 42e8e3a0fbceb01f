/**
 * Errors of the placement driver. One class, stable codes (the HTTP API sends the code and
 * message as JSON with the status below), a brand check that survives duplicate installs.
 */
export type PdErrorCode =
  | 'FLOTILLA_PD_NOT_LEADER' // this member does not lead PD's own raft group; `leader` hints who does
  | 'FLOTILLA_PD_NO_LEADER' // PD has no leader right now (election in progress): retry
  | 'FLOTILLA_PD_NOT_BOOTSTRAPPED' // no store has joined yet, so there is no first region
  | 'FLOTILLA_PD_CLUSTER_MISMATCH' // the caller belongs to another cluster
  | 'FLOTILLA_PD_INVALID_ARGUMENT' // a malformed or out-of-bounds request
  | 'FLOTILLA_PD_STORE_NOT_FOUND'
  | 'FLOTILLA_PD_STORE_TOMBSTONE' // a removed store tried to come back
  | 'FLOTILLA_PD_REGION_NOT_FOUND'
  | 'FLOTILLA_PD_OPERATOR_NOT_FOUND'
  | 'FLOTILLA_PD_OPERATOR_EXISTS' // the region already runs an operator (one at a time)
  | 'FLOTILLA_PD_META_WRITE_FAILED' // a write to PD's replicated metadata did not commit: retry
  | 'FLOTILLA_PD_SERVER_BUSY'
  | 'FLOTILLA_PD_REQUEST_TOO_LARGE' // a request body past pdServerLimits.requestBodyBytesMax
  | 'FLOTILLA_PD_UNAUTHENTICATED' // the API is HTTPS (--api-tls-*) and the caller has no client certificate signed by its CA
  | 'FLOTILLA_PD_INVALID_CONFIG' // a flag or environment variable of the PD process
  | 'FLOTILLA_PD_CORRUPT_META' // stored metadata PD can't read: a bug or a newer format
  | 'FLOTILLA_PD_INTERNAL';

/** The HTTP status each code is answered with. */
export const PD_ERROR_STATUS: Readonly<Record<PdErrorCode, number>> = {
  FLOTILLA_PD_NOT_LEADER: 421,
  FLOTILLA_PD_NO_LEADER: 503,
  FLOTILLA_PD_NOT_BOOTSTRAPPED: 409,
  FLOTILLA_PD_CLUSTER_MISMATCH: 409,
  FLOTILLA_PD_INVALID_ARGUMENT: 400,
  FLOTILLA_PD_UNAUTHENTICATED: 401,
  FLOTILLA_PD_STORE_NOT_FOUND: 404,
  FLOTILLA_PD_STORE_TOMBSTONE: 410,
  FLOTILLA_PD_REGION_NOT_FOUND: 404,
  FLOTILLA_PD_OPERATOR_NOT_FOUND: 404,
  FLOTILLA_PD_OPERATOR_EXISTS: 409,
  FLOTILLA_PD_META_WRITE_FAILED: 503,
  FLOTILLA_PD_SERVER_BUSY: 503,
  FLOTILLA_PD_REQUEST_TOO_LARGE: 413,
  FLOTILLA_PD_INVALID_CONFIG: 400,
  FLOTILLA_PD_CORRUPT_META: 500,
  FLOTILLA_PD_INTERNAL: 500,
};

const BRAND = Symbol.for('flotilla.pd.error');

export class PdError extends Error {
  readonly code: PdErrorCode;
  /** For NOT_LEADER: the leader's member id and client URL, when known. */
  readonly leader: { readonly memberId: number; readonly url: string } | undefined;
  readonly [BRAND] = true;

  constructor(code: PdErrorCode, message: string, options?: { cause?: unknown; leader?: { memberId: number; url: string } }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PdError';
    this.code = code;
    this.leader = options?.leader;
  }
}

export function isPdError(err: unknown, code?: PdErrorCode): err is PdError {
  if (typeof err !== 'object' || err === null) return false;
  if ((err as { [BRAND]?: unknown })[BRAND] !== true) return false;
  return code === undefined || (err as PdError).code === code;
}
