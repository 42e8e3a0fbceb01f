/**
 * HTTPS on the HTTP APIs (a store's KV and admin API, PD's client API; `--api-tls-*`,
 * process/tls-files.ts), as etcd's client TLS with client-certificate auth:
 *
 * - The server is HTTPS only (TLS 1.2+) with this process's certificate, and asks every client
 *   for a certificate. It lets the handshake finish without one (or with one the CA did not
 *   sign) so that such a client gets a clear answer instead of a reset connection: every path
 *   but the OPEN_PATHS is refused with 401 FLOTILLA_UNAUTHENTICATED and the reason.
 * - /health, /ready and /metrics stay open: kubelet's HTTPS probes and a Prometheus without a
 *   client certificate reach them. They carry no user data and change nothing.
 * - A client (the SDK, a store calling PD, a PD member forwarding to its leader) checks the
 *   server's certificate against the CA and the host it dialed, and presents its own.
 *
 * A certificate says "a client of this cluster": there are no users or roles (yet).
 */
import type { IncomingMessage, Server as HttpServer, ServerOptions as HttpServerOptions, RequestListener } from 'node:http';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { TlsCredentials } from './process/tls-files.ts';

/** Paths served without a client certificate on an HTTPS API. */
export const OPEN_PATHS: ReadonlySet<string> = new Set(['/health', '/ready', '/metrics']);

/** How long a client may take for its TLS handshake before its connection is closed. */
export const API_TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

/** An HTTP API server, plain or HTTPS; `connectionEvent` is the event whose socket is the requests' `req.socket`. */
export interface ApiServer {
  readonly server: HttpServer | HttpsServer;
  readonly connectionEvent: 'connection' | 'secureConnection';
  /** New connections use these credentials (a renewal); a plain server throws. */
  setTls(creds: TlsCredentials): void;
  /**
   * Ends every TCP connection still open, its TLS handshake done or not (close()'s last step:
   * node:http's closeAllConnections knows only connections past their handshake).
   */
  destroySockets(): void;
}

/** A node:http server, or with `tls` a node:https one asking for client certificates. */
export function createApiServer(tls: TlsCredentials | undefined, options: HttpServerOptions, handler: RequestListener): ApiServer {
  if (tls === undefined) {
    return tracked(createHttpServer(options, handler), 'connection', () => {
      throw new Error('setTls on a plain HTTP API server');
    });
  }
  const server = createHttpsServer(
    {
      ...options,
      ca: tls.ca,
      cert: tls.cert,
      key: tls.key,
      minVersion: 'TLSv1.2',
      requestCert: true,
      // Checked per request (clientRefusal): an unauthorized client gets a 401 that says why.
      rejectUnauthorized: false,
      handshakeTimeout: API_TLS_HANDSHAKE_TIMEOUT_MS,
    },
    handler,
  );
  return tracked(server, 'secureConnection', (creds) => server.setSecureContext({ ca: creds.ca, cert: creds.cert, key: creds.key }));
}

/** The ApiServer of `server`, which keeps its raw TCP sockets for destroySockets(). */
function tracked(server: HttpServer | HttpsServer, connectionEvent: ApiServer['connectionEvent'], setTls: (creds: TlsCredentials) => void): ApiServer {
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const destroySockets = (): void => {
    for (const socket of sockets) socket.destroy();
  };
  return { server, connectionEvent, setTls, destroySockets };
}

/**
 * Why a request must be refused for its client certificate, or null when it may be served: a
 * plain HTTP server, an open path, or a certificate the CA signed.
 */
export function clientRefusal(req: IncomingMessage, path: string): string | null {
  const socket = req.socket as Partial<TLSSocket>;
  if (socket.encrypted !== true || OPEN_PATHS.has(path)) return null;
  // `authorized` alone is not enough: a TLS 1.3 session resumed without a peer certificate counts
  // as verified in Node (its PSK rule), and we let unauthenticated clients finish their handshake,
  // so one could resume its way in. A resumed session that had a certificate still shows it.
  const presented = Object.keys(socket.getPeerCertificate?.() ?? {}).length > 0;
  if (presented && socket.authorized === true) return null;
  const reason = presented ? `the one presented does not verify (${String(socket.authorizationError)})` : 'none was presented';
  return `this API needs a client certificate signed by the cluster's CA (--api-tls-ca): ${reason}`;
}

/** undici's `connect` options for an HTTPS API of the cluster: check the server against the CA, present our certificate. */
export function apiTlsConnect(tls: TlsCredentials): { readonly ca: string | Buffer; readonly cert: string | Buffer; readonly key: string | Buffer; readonly minVersion: 'TLSv1.2' } {
  return { ca: tls.ca, cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' };
}
