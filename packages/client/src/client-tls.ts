/**
 * The SDK over HTTPS (createClient's `tls`): a cluster whose stores and PD members run with
 * `--api-tls-*` serves its APIs over HTTPS and wants a client certificate signed by its CA
 * (docs/OPERATIONS.md, "Security"). The client then dials every store at `https://`, checks each
 * server's certificate against `ca` and the host it dialed, and presents its own.
 *
 * Two refusals surface at once as FLOTILLA_UNAUTHENTICATED instead of being retried until the
 * deadline: a server that answers 401 (our certificate is missing or not the cluster's), and a
 * server whose certificate we do not trust — neither heals by asking again.
 */
import tls from 'node:tls';
import { ClientError } from './errors.ts';

/** PEM text of the cluster's CA certificate(s), the client's certificate (chain) and its private key. */
export interface ClientTls {
  readonly ca: string | Buffer;
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
}

/** Checks the credentials as a connection would load them; FLOTILLA_INVALID_ARGUMENT names what is wrong. */
export function checkClientTls(creds: ClientTls): ClientTls {
  for (const field of ['ca', 'cert', 'key'] as const) {
    const value = (creds as Partial<ClientTls> | null)?.[field];
    if (!(typeof value === 'string' || Buffer.isBuffer(value)) || value.length === 0) {
      throw new ClientError('FLOTILLA_INVALID_ARGUMENT', `tls.${field}: PEM text expected`);
    }
  }
  try {
    tls.createSecureContext({ ca: creds.ca, cert: creds.cert, key: creds.key });
  } catch (err) {
    throw new ClientError('FLOTILLA_INVALID_ARGUMENT', `tls: the certificate, key or CA does not load (${(err as Error).message})`, { cause: err });
  }
  return { ca: creds.ca, cert: creds.cert, key: creds.key };
}

/** undici's `connect` options: check the server against the CA (and the dialed host), present our certificate (also for tools such as the CLI). */
export function tlsConnect(creds: ClientTls): { readonly ca: string | Buffer; readonly cert: string | Buffer; readonly key: string | Buffer; readonly minVersion: 'TLSv1.2' } {
  return { ca: creds.ca, cert: creds.cert, key: creds.key, minVersion: 'TLSv1.2' };
}

/** Node's codes for a server certificate that does not verify (OpenSSL's verify results and the host check). */
const UNTRUSTED_CERTIFICATE_CODES: ReadonlySet<string> = new Set([
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'INVALID_PURPOSE',
]);

/**
 * The error (or one of its causes) saying that a server's TLS certificate does not verify, or
 * undefined: how undici and node:tls report an untrusted server (also for tools such as the CLI).
 */
export function untrustedServerCertificate(err: unknown): { readonly code: string; readonly message: string } | undefined {
  for (let e = err, depth = 0; typeof e === 'object' && e !== null && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    const { code, message } = e as { code?: unknown; message?: unknown };
    if (typeof code === 'string' && UNTRUSTED_CERTIFICATE_CODES.has(code)) return { code, message: typeof message === 'string' ? message : code };
  }
  return undefined;
}

/** Whether a failed exchange failed because the server's certificate is not trusted. */
export function untrustedServer(err: unknown): boolean {
  return untrustedServerCertificate(err) !== undefined;
}

/** What `who` answering 401, or presenting a certificate we do not trust, becomes. */
export function unauthenticated(who: string, detail: string, cause?: unknown): ClientError {
  return new ClientError('FLOTILLA_UNAUTHENTICATED', `${who}: ${detail}`, cause === undefined ? {} : { cause });
}
