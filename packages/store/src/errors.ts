/**
 * Errors of the store itself (not the per-operation KvErrors it answers clients with, which
 * are data in @flotilla/wire). One class, stable codes, a brand check that survives
 * duplicate installs.
 */
export type StoreErrorCode =
  | 'FLOTILLA_STORE_CLOSED'
  | 'FLOTILLA_STORE_CORRUPT_ENTRY' // an entry in a region's log can't be decoded: a bug or corruption
  | 'FLOTILLA_STORE_REGION_EXISTS'
  | 'FLOTILLA_STORE_INVALID_REGION'
  | 'FLOTILLA_STORE_TOO_MANY_PEERS'
  | 'FLOTILLA_STORE_SNAPSHOT_REFUSED' // a received snapshot the replica must not install
  | 'FLOTILLA_STORE_INVALID_CONFIG' // a flag or environment variable of the store process
  | 'FLOTILLA_STORE_PD_REFUSED' // the placement driver answered a request with a non-retryable error
  | 'FLOTILLA_STORE_PD_UNAVAILABLE' // no placement driver member answered (retry later)
  | 'FLOTILLA_STORE_INTERNAL';

const BRAND = Symbol.for('flotilla.store.error');

export class StoreError extends Error {
  readonly code: StoreErrorCode;
  readonly [BRAND] = true;

  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreError';
    this.code = code;
  }
}

export function isStoreError(err: unknown, code?: StoreErrorCode): err is StoreError {
  if (typeof err !== 'object' || err === null) return false;
  if ((err as { [BRAND]?: unknown })[BRAND] !== true) return false;
  return code === undefined || (err as StoreError).code === code;
}
