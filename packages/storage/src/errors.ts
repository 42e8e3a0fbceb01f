/**
 * Typed errors of @flotilla/storage. Callers branch on the stable `code`, never on the message.
 * The brand check (`isStorageError`) survives duplicate installs of this package.
 */
export type StorageErrorCode =
  | 'FLOTILLA_STORAGE_CORRUPTION' // a checksum, format or invariant of stored data failed; not repairable here
  | 'FLOTILLA_STORAGE_FORMAT_VERSION' // on-disk format written by an unknown (newer) version
  | 'FLOTILLA_STORAGE_QUEUE_FULL' // an appender shard's queue is full: wait for `writable()` and retry
  | 'FLOTILLA_STORAGE_LIMIT_EXCEEDED' // a request exceeds a bound of constants.ts
  | 'FLOTILLA_STORAGE_CLOSED' // the engine is closed (or not yet open)
  | 'FLOTILLA_STORAGE_FAILED' // an earlier write failed; the engine refuses everything (fsync failure is fatal)
  | 'FLOTILLA_STORAGE_CONTRACT_VIOLATION' // the caller broke the documented ordering or range contract
  | 'FLOTILLA_STORAGE_REGION_NOT_FOUND'
  | 'FLOTILLA_STORAGE_REGION_BUSY' // a region snapshot is being applied
  | 'FLOTILLA_STORAGE_SNAPSHOT_INVALID' // a received region snapshot failed its checksum or framing
  | 'FLOTILLA_STORAGE_SNAPSHOT_REFUSED'; // the owner refused a received snapshot (it overlaps a live region)

const BRAND = Symbol.for('flotilla.storage.error');

export class StorageError extends Error {
  readonly code: StorageErrorCode;
  readonly [BRAND] = true;

  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageError';
    this.code = code;
  }
}

export function isStorageError(err: unknown, code?: StorageErrorCode): err is StorageError {
  if (typeof err !== 'object' || err === null) return false;
  if ((err as { [BRAND]?: unknown })[BRAND] !== true) return false;
  return code === undefined || (err as StorageError).code === code;
}

/**
 * A broken invariant is a bug: it stops the process, it is not handled. On hot paths write
 * `if (!cond) fail(\`...\`)` instead of assert(cond, \`...\`): a template argument is built on
 * every call, even when the condition holds.
 */
export function assert(condition: unknown, what: string): asserts condition {
  if (!condition) fail(what);
}

export function fail(what: string): never {
  throw new Error(`storage assertion failed: ${what}`);
}
