/**
 * The CLI against a cluster whose HTTP APIs run HTTPS with client certificates (the stores' and
 * PD's `--api-tls-*`): `--tls-ca`, `--tls-cert`, `--tls-key` read and checked before anything is
 * sent, the connect options every HTTPS call uses, and the two refusals that no retry heals — a
 * server answering 401 (our certificate is missing or not the cluster's) and a server whose
 * certificate we do not trust.
 *
 * The connect options and what an untrusted server looks like are the SDK's (tlsConnect,
 * untrustedServerCertificate); not @flotilla/store's, whose import loads RocksDB, which `ctl`
 * must not need.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { tlsConnect as sdkTlsConnect, untrustedServerCertificate } from '@flotilla/client';
import { usageError } from './errors.ts';

/** PEM text of the cluster's CA certificate(s), this client's certificate (chain) and its private key. */
export interface ClusterTls {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/** Paths of the three PEM files (`--tls-ca`, `--tls-cert`, `--tls-key`). */
export interface ClusterTlsFiles {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

const FLAG = { ca: '--tls-ca', cert: '--tls-cert', key: '--tls-key' } as const;

/**
 * Reads the three files and checks that they load as a connection would load them; a usage
 * error names the file (or the pair) that does not.
 */
export function loadClusterTls(files: ClusterTlsFiles): ClusterTls {
  const read = (field: keyof ClusterTlsFiles): string => {
    let text: string;
    try {
      text = readFileSync(files[field], 'utf8');
    } catch (err) {
      throw usageError(`${FLAG[field]} ${files[field]}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
    }
    if (text.trim() === '') throw usageError(`${FLAG[field]} ${files[field]}: the file is empty (expected PEM)`);
    return text;
  };
  const creds = { ca: read('ca'), cert: read('cert'), key: read('key') };
  // Node loads a CA file without a certificate in it without a word: look for one.
  const blocks = creds.ca.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw usageError(`${FLAG.ca} ${files.ca}: no PEM certificate in it (-----BEGIN CERTIFICATE-----)`);
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch (err) {
      throw usageError(`${FLAG.ca} ${files.ca}: a certificate in it does not load (${(err as Error).message})`);
    }
  }
  const check = (options: tls.SecureContextOptions, what: string): void => {
    try {
      tls.createSecureContext(options);
    } catch (err) {
      throw usageError(`${what}: does not load (${(err as Error).message})`);
    }
  };
  check({ ca: creds.ca }, `${FLAG.ca} ${files.ca}`);
  check({ cert: creds.cert }, `${FLAG.cert} ${files.cert}`);
  check({ key: creds.key }, `${FLAG.key} ${files.key}`);
  check({ ca: creds.ca, cert: creds.cert, key: creds.key }, `${FLAG.cert} ${files.cert} with ${FLAG.key} ${files.key}`);
  return creds;
}

/** undici's `connect` options for an HTTPS API of the cluster: check the server against the CA (and the dialed host), present our certificate. */
export const tlsConnect = sdkTlsConnect;

/** The error (or one of its causes) saying the server's certificate does not verify, else undefined. */
export const untrustedServer = untrustedServerCertificate;

/** What the CLI says when `who` does not pass the TLS check of the server's certificate. */
export function untrustedServerMessage(who: string, err: { readonly code: string; readonly message: string }): string {
  return `${who}: its TLS certificate is not trusted: ${err.message} (${err.code}); check --tls-ca (the CA that signed the cluster's API certificates) and that the address is one its certificate names`;
}

/** What the CLI says when `who` answered 401: it did not take this client's certificate (or none was given). */
export function refusedCertificateMessage(who: string, detail: string, tlsGiven: boolean): string {
  if (!tlsGiven) return `${who} wants a client certificate: ${detail}; give --tls-ca, --tls-cert and --tls-key (FLOTILLA_TLS_CA, …_CERT, …_KEY)`;
  return `${who} refused this client's TLS certificate: ${detail}; check --tls-cert and --tls-key (a certificate signed by the CA the cluster's APIs run with, --api-tls-ca) and --tls-ca`;
}
