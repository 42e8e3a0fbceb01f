/**
 * What the pieces of TcpTransport (outbound links, inbound connections, snapshot streams) share:
 * identity, tuning, the error hook, the host's handlers, and the transport's bookkeeping of open
 * sockets (close() waits for every one of them).
 */
import type { Socket } from 'node:net';
import type { RandomSource } from '@flotilla/raft';
import type { TransportTuning } from './constants.ts';
import { TransportError } from './errors.ts';
import { endedInTlsHandshake, type TransportTls } from './tcp-tls.ts';
import type { DiskReport, InboundHandlers, StoreId } from './types.ts';

export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

export interface TcpContext {
  readonly localStore: StoreId;
  readonly clusterId: number;
  readonly tuning: TransportTuning;
  readonly random: RandomSource;
  /** True once close() began: nothing new starts, every handler is ignored. */
  readonly closed: boolean;
  /** What the store last announced of its disk: sent first on every new raft connection; null: never. */
  readonly diskReport: DiskReport | null;
  /** Mutual TLS credentials of every new connection (tcp-tls.ts); null: plain TCP. */
  readonly tls: TransportTls | null;
  /** The host's handlers (set by start()). */
  readonly handlers: InboundHandlers;
  report(err: TransportError): void;
  /** Registers a socket the transport owns until its 'close'. */
  track(socket: Socket): void;
}

/**
 * The error a socket failed with, wrapped with its code unless it already is a TransportError;
 * FLOTILLA_TRANSPORT_TLS_REFUSED when it was the TLS handshake (either side refused the other).
 */
export function wrapSocketError(code: 'FLOTILLA_TRANSPORT_CONNECT_FAILED' | 'FLOTILLA_TRANSPORT_CONNECTION_LOST', what: string, store: StoreId | null, cause: unknown, socket?: Socket): TransportError {
  const detail = cause instanceof Error ? `: ${cause.message}` : '';
  if (isTlsFailure(cause) || (socket !== undefined && endedInTlsHandshake(socket))) {
    return new TransportError('FLOTILLA_TRANSPORT_TLS_REFUSED', `${what}: the TLS handshake failed${detail} (a certificate refused either way, or no TLS on that port)`, { store, cause });
  }
  return new TransportError(code, `${what}${detail}`, { store, cause });
}

/** OpenSSL's certificate verification results, as Node reports them in `err.code`. */
const CERTIFICATE_FAILURES = new Set(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'CERT_SIGNATURE_FAILURE', 'CERT_UNTRUSTED', 'CERT_REJECTED', 'INVALID_CA', 'INVALID_PURPOSE']);

/** Whether a socket error came from a TLS handshake (a refused certificate, an alert, not TLS at all). */
export function isTlsFailure(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return false;
  return code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_') || CERTIFICATE_FAILURES.has(code);
}

/** Ends a socket politely, then destroys it if it has not closed within `lingerMs`. */
export function endSocket(socket: Socket, lingerMs: number, data?: Uint8Array): void {
  if (socket.destroyed) return;
  const timer = setTimeout(() => socket.destroy(), lingerMs);
  socket.once('close', () => clearTimeout(timer));
  if (data === undefined) socket.end();
  else socket.end(data);
}

export function describeRemote(socket: Socket): string {
  return `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
}
