/**
 * Test-only TLS credentials (test/support/tls/, made by its make.sh, valid until 2126): a
 * cluster CA and a peer certificate it signed for 127.0.0.1 and localhost; a certificate of the
 * same CA for another host only; another CA and a certificate of its own.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const TLS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'tls');

export interface TlsFiles {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/** Paths of a peer's credentials: `peer` (the cluster's), `wrong-host` (the cluster's CA, another host) or `stranger` (another CA). */
export function tlsFiles(who: 'peer' | 'wrong-host' | 'stranger'): TlsFiles {
  const file = (name: string): string => path.join(TLS_DIR, name);
  return { ca: file(who === 'stranger' ? 'stranger-ca.pem' : 'cluster-ca.pem'), cert: file(`${who}.pem`), key: file(`${who}-key.pem`) };
}

/** The flags that give a process `files` for its HTTP API (--api-tls-*). */
export function apiTlsFlags(files: TlsFiles): string[] {
  return ['--api-tls-ca', files.ca, '--api-tls-cert', files.cert, '--api-tls-key', files.key];
}

/** The same credentials' PEM text (TcpTransportOptions.tls). */
export function tlsCredentials(who: 'peer' | 'wrong-host' | 'stranger'): TlsFiles {
  const files = tlsFiles(who);
  return { ca: readFileSync(files.ca, 'utf8'), cert: readFileSync(files.cert, 'utf8'), key: readFileSync(files.key, 'utf8') };
}
