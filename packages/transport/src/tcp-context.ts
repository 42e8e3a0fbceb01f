/**
 * What the pieces of TcpTransport (outbound links, inbound connections, snapshot streams) share:
 * identity, tuning, the error hook, the host's handlers, and the transport's bookkeeping of open
 * sockets (close() waits for every one of them).
 */
import type { Socket } from 'node:net';
import type { RandomSource } from '@flotilla/raft';
import type { TransportTuning } from './constants.ts';
import { TransportError } from './errors.ts';
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
  /** The host's handlers (set by start()). */
  readonly handlers: InboundHandlers;
  report(err: TransportError): void;
  /** Registers a socket the transport owns until its 'close'. */
  track(socket: Socket): void;
}

/** The error a socket failed with, wrapped with its code unless it already is a TransportError. */
export function wrapSocketError(code: 'FLOTILLA_TRANSPORT_CONNECT_FAILED' | 'FLOTILLA_TRANSPORT_CONNECTION_LOST', what: string, store: StoreId | null, cause: unknown): TransportError {
  const detail = cause instanceof Error ? `: ${cause.message}` : '';
  return new TransportError(code, `${what}${detail}`, { store, cause });
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
