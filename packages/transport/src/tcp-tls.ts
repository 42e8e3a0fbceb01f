/**
 * Mutual TLS on the raft port (optional; TcpTransportOptions.tls): every raft and snapshot
 * connection, both ways, is TLS 1.2+ with certificates checked against the cluster's CA.
 *
 * - The listener asks every dialer for a certificate and refuses one the CA did not sign (or
 *   none): a process without the cluster's credentials can no longer step messages into any
 *   group. The TLS handshake has connectTimeoutMs, as our own handshake after it.
 * - A dialer checks the listener's certificate against the CA and against the host it dialed
 *   (a subjectAltName for the advertised host or IP), as HTTPS does.
 * - Identity stays our handshake's: a certificate says "a member of this cluster", the store id
 *   in the handshake which one (as etcd's peer TLS).
 *
 * The credentials can be replaced while running (TcpTransport.setTls, for certificate
 * rotation): new connections use them; established ones keep theirs.
 */
import { X509Certificate } from 'node:crypto';
import net, { type Server, type Socket } from 'node:net';
import tls from 'node:tls';
import { invalidArgument } from './errors.ts';
import type { PeerAddress } from './tcp-context.ts';

/** PEM text of the cluster's CA certificate(s), this process's certificate (chain) and its private key. */
export interface TransportTls {
  readonly ca: string | Buffer;
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
}

/** Checks the credentials the way a connection would load them; throws INVALID_ARGUMENT naming what is wrong. */
export function checkTls(creds: TransportTls): TransportTls {
  for (const field of ['ca', 'cert', 'key'] as const) {
    const value = creds[field];
    if (!(typeof value === 'string' || Buffer.isBuffer(value)) || value.length === 0) invalidArgument(`tls.${field}: PEM text expected`);
  }
  try {
    tls.createSecureContext({ ca: creds.ca, cert: creds.cert, key: creds.key });
  } catch (err) {
    invalidArgument(`tls: the certificate, key or CA does not load (${err instanceof Error ? err.message : String(err)})`);
  }
  return { ca: creds.ca, cert: creds.cert, key: creds.key };
}

/**
 * When the credentials' certificate (the first of its chain) expires, in Unix seconds: after it,
 * peers refuse this process's connections, and it theirs once their own expire.
 */
export function certificateNotAfter(creds: TransportTls): number {
  return Date.parse(new X509Certificate(creds.cert).validTo) / 1000;
}

/** TLS connections we dialed whose TCP connection is up and whose TLS handshake is not done yet. */
const handshaking = new WeakSet<Socket>();

/**
 * Whether `socket` (from dial) reached the peer but ended before its TLS handshake was done: the
 * peer refused our certificate, or does not speak TLS on that port.
 */
export function endedInTlsHandshake(socket: Socket): boolean {
  return handshaking.has(socket);
}

/** Opens a connection to a peer: plain TCP, or TLS with `creds` (checked: checkTls). */
export function dial(address: PeerAddress, creds: TransportTls | null): Socket {
  if (creds === null) return net.connect({ host: address.host, port: address.port });
  const socket = tls.connect({
    host: address.host,
    port: address.port,
    ca: creds.ca,
    cert: creds.cert,
    key: creds.key,
    minVersion: 'TLSv1.2',
    // SNI takes host names only; an IP is checked against the certificate's IP addresses.
    ...(net.isIP(address.host) === 0 ? { servername: address.host } : {}),
  });
  socket.once('connect', () => handshaking.add(socket));
  socket.once('secureConnect', () => handshaking.delete(socket));
  return socket;
}

/**
 * The raft port's listener: `onConnection` gets each connection once it may carry our handshake
 * (for TLS, once the TLS handshake succeeded). `onRefused` hears of TLS handshakes that failed.
 */
export function listener(creds: TransportTls | null, handshakeTimeoutMs: number, onConnection: (socket: Socket) => void, onRefused: (err: Error, socket: Socket) => void): Server {
  if (creds === null) return net.createServer({ noDelay: true }, onConnection);
  const server = tls.createServer(
    { ca: creds.ca, cert: creds.cert, key: creds.key, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2', handshakeTimeout: handshakeTimeoutMs, noDelay: true },
    onConnection,
  );
  server.on('tlsClientError', onRefused);
  return server;
}

/** New credentials for a listener made by listener() with TLS. */
export function renewListener(server: Server, creds: TransportTls): void {
  (server as tls.Server).setSecureContext({ ca: creds.ca, cert: creds.cert, key: creds.key, minVersion: 'TLSv1.2' });
}
