/**
 * Typed errors of @flotilla/transport. Callers branch on the stable `code`, never on the message.
 * The brand check (`isTransportError`) survives duplicate installs of this package.
 *
 * Two uses:
 * - THROWN to a caller that broke the contract (INVALID_ARGUMENT, MESSAGE_TOO_LARGE, NOT_STARTED):
 *   a bug in the host;
 * - REPORTED to the `onError` hook for operating events: a connection that failed or was refused,
 *   a peer that sent something we will not read, a snapshot stream that did not finish. The
 *   transport has already acted (closed the connection, failed the stream); the hook only logs.
 *   Nothing of this kind is ever thrown out of the transport.
 */
import type { StoreId } from './types.ts';

export type TransportErrorCode =
  | 'FLOTILLA_TRANSPORT_INVALID_ARGUMENT' // thrown: a value the contract does not allow (bug in the caller)
  | 'FLOTILLA_TRANSPORT_MESSAGE_TOO_LARGE' // thrown: a raft message larger than one RaftBatch frame can carry
  | 'FLOTILLA_TRANSPORT_NOT_STARTED' // thrown: address() before start(), start() twice
  | 'FLOTILLA_TRANSPORT_BAD_HANDSHAKE' // not our handshake (magic, version, checksum, fields), or an unexpected reply
  | 'FLOTILLA_TRANSPORT_CLUSTER_MISMATCH' // the other side belongs to another cluster
  | 'FLOTILLA_TRANSPORT_STORE_MISMATCH' // the connection was meant for another store (stale address, or ourselves)
  | 'FLOTILLA_TRANSPORT_HANDSHAKE_TIMEOUT' // no (complete) handshake in time
  | 'FLOTILLA_TRANSPORT_BAD_FRAME' // the peer sent bytes the wire decoder refused (cause: the WireError)
  | 'FLOTILLA_TRANSPORT_PROTOCOL' // well-formed frames that break the connection's protocol (wrong kind, store, order)
  | 'FLOTILLA_TRANSPORT_CONNECT_FAILED' // a dial failed (refused, unreachable, timed out)
  | 'FLOTILLA_TRANSPORT_TLS_REFUSED' // a TLS handshake failed either way: no certificate, one the cluster's CA did not sign, a host it does not name, plain TCP
  | 'FLOTILLA_TRANSPORT_CONNECTION_LOST' // an established connection broke
  | 'FLOTILLA_TRANSPORT_WRITE_STALLED' // a peer stopped reading for writeStallTimeoutMs: connection closed
  | 'FLOTILLA_TRANSPORT_LIMIT_EXCEEDED' // a bound of constants.ts refused a connection or a stream
  | 'FLOTILLA_TRANSPORT_SNAPSHOT_REJECTED' // the receiver's onSnapshot threw, or returned before reading every chunk
  | 'FLOTILLA_TRANSPORT_SNAPSHOT_TIMEOUT' // a snapshot stream made no progress in time
  | 'FLOTILLA_TRANSPORT_SNAPSHOT_ABORTED'; // a snapshot stream ended early (connection loss, source failure, close)

const BRAND = Symbol.for('flotilla.transport.error');

export class TransportError extends Error {
  readonly code: TransportErrorCode;
  /** The peer store concerned, when known (null: e.g. a connection that never identified itself). */
  readonly store: StoreId | null;
  readonly [BRAND] = true;

  constructor(code: TransportErrorCode, message: string, options?: { cause?: unknown; store?: StoreId | null }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TransportError';
    this.code = code;
    this.store = options?.store ?? null;
  }
}

export function isTransportError(err: unknown, code?: TransportErrorCode): err is TransportError {
  if (typeof err !== 'object' || err === null) return false;
  if ((err as { [BRAND]?: unknown })[BRAND] !== true) return false;
  return code === undefined || (err as TransportError).code === code;
}

/** Receives operating errors (already handled). Must not throw. */
export type TransportErrorHook = (err: TransportError) => void;

/** A broken invariant is a bug: it stops the process, it is not handled. */
export function assert(condition: unknown, what: string): asserts condition {
  if (!condition) throw new Error(`transport assertion failed: ${what}`);
}

export function invalidArgument(what: string): never {
  throw new TransportError('FLOTILLA_TRANSPORT_INVALID_ARGUMENT', what);
}
