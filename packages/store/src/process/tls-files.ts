/**
 * The TLS credential flags of a process, in two families of three (stores and PD members alike):
 *
 * - `--raft-tls-ca`, `--raft-tls-cert`, `--raft-tls-key`: mutual TLS on the raft port
 *   (@flotilla/transport's tcp-tls.ts);
 * - `--api-tls-ca`, `--api-tls-cert`, `--api-tls-key`: HTTPS on the HTTP API (a store's KV and
 *   admin API, PD's client API), every request but /health, /ready and /metrics needing a client
 *   certificate signed by the CA (api-tls.ts); the same credentials are this process's own when
 *   it calls an HTTPS API (a store calling PD, a PD member forwarding to its leader).
 *
 * All three of a family or none. The files are PEM: the cluster's CA certificate(s), this
 * process's certificate (chain), its private key. They are read at start — a file that is
 * missing or does not load stops the start with the process's INVALID_CONFIG naming it — and
 * checked again every TLS_RELOAD_CHECK_MS: once they changed (cert-manager renewing a Secret,
 * say) and load again, new connections use them; established connections keep theirs. Files
 * caught half-written are tried again at the next check, the old credentials kept meanwhile.
 */
import { readFile, stat } from 'node:fs/promises';
import { checkTls, isTransportError, type TransportTls } from '@flotilla/transport';
import { StoreError } from '../errors.ts';
import type { Flag, FlagValues } from './config.ts';
import { errorFields, type Logger } from './logger.ts';

/** How often the credential files are looked at for a renewal (their size and modification time). */
export const TLS_RELOAD_CHECK_MS = 30_000;

/** Paths of the three PEM files. */
export interface TlsFiles {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/** PEM text of a CA, a certificate (chain) and its key; the transport's type is the same triple. */
export type TlsCredentials = TransportTls;

/** One family of three flags and what reads, checks and watches its files. */
export interface TlsFlagFamily {
  /** `raft TLS` or `API TLS`, as messages and logs name it. */
  readonly what: string;
  readonly flags: readonly Flag[];
  /** The three flags, all given or none; `invalid` makes the process's config error. */
  parse(flags: FlagValues, invalid: (message: string) => Error): TlsFiles | undefined;
  /** Reads and checks the credentials; `invalid` (default FLOTILLA_STORE_INVALID_CONFIG) names the file or the problem. */
  load(files: TlsFiles, invalid?: (message: string) => Error): Promise<TlsCredentials>;
  /** Re-reads the files when they change and hands the new credentials to `renew`; stop() ends it. */
  watch(files: TlsFiles, renew: (creds: TlsCredentials) => void, logger: Logger, everyMs?: number): TlsWatch;
}

export interface TlsWatch {
  stop(): void;
  /** One look now (tests); a call while one runs waits for that one. */
  check(): Promise<void>;
}

const storeConfigError = (message: string): Error => new StoreError('FLOTILLA_STORE_INVALID_CONFIG', message);

function tlsFlagFamily(prefix: 'raft' | 'api', what: string, help: { readonly ca: string; readonly cert: string; readonly key: string }): TlsFlagFamily {
  const names = { ca: `${prefix}-tls-ca`, cert: `${prefix}-tls-cert`, key: `${prefix}-tls-key` } as const;
  const flags: readonly Flag[] = [
    { name: names.ca, help: help.ca },
    { name: names.cert, help: help.cert },
    { name: names.key, help: help.key },
  ];
  const fields = ['ca', 'cert', 'key'] as const;

  const parse = (values: FlagValues, invalid: (message: string) => Error): TlsFiles | undefined => {
    const [ca, cert, key] = fields.map((f) => values.value(names[f]) || undefined);
    if (ca === undefined && cert === undefined && key === undefined) return undefined;
    if (ca === undefined || cert === undefined || key === undefined) {
      const missing = fields.filter((f) => !values.value(names[f])).map((f) => `--${names[f]}`);
      throw invalid(`${what} needs --${names.ca}, --${names.cert} and --${names.key} together; missing ${missing.join(', ')}`);
    }
    return { ca, cert, key };
  };

  const load = async (files: TlsFiles, invalid: (message: string) => Error = storeConfigError): Promise<TlsCredentials> => {
    const read = async (field: (typeof fields)[number]): Promise<string> => {
      try {
        return await readFile(files[field], 'utf8');
      } catch (err) {
        throw invalid(`--${names[field]} ${files[field]}: ${(err as Error).message}`);
      }
    };
    const creds = { ca: await read('ca'), cert: await read('cert'), key: await read('key') };
    try {
      return checkTls(creds);
    } catch (err) {
      if (!isTransportError(err)) throw err;
      throw invalid(`--${names.ca}/--${names.cert}/--${names.key} (${files.ca}, ${files.cert}, ${files.key}): ${err.message}`);
    }
  };

  const watch = (files: TlsFiles, renew: (creds: TlsCredentials) => void, logger: Logger, everyMs = TLS_RELOAD_CHECK_MS): TlsWatch => {
    let seen: string | null = null;
    let running: Promise<void> | null = null;
    const stamp = async (): Promise<string> => (await Promise.all(fields.map((f) => stat(files[f])))).map((s) => `${s.size}:${s.mtimeMs}`).join('|');
    const look = async (): Promise<void> => {
      try {
        const now = await stamp();
        if (seen === null) seen = now;
        if (now === seen) return;
        const creds = await load(files);
        renew(creds);
        seen = now;
        logger.info({ ca: files.ca, cert: files.cert, key: files.key }, `${what} credentials reloaded: new connections use them`);
      } catch (err) {
        logger.warn(errorFields(err), `${what} credentials changed but do not load (yet); keeping the ones in use`);
      }
    };
    const check = (): Promise<void> => (running ??= look().finally(() => (running = null)));
    void check();
    const timer = setInterval(() => void check(), everyMs);
    timer.unref();
    return { stop: () => clearInterval(timer), check };
  };

  return { what, flags, parse, load, watch };
}

/** Mutual TLS on the raft port. */
export const RAFT_TLS: TlsFlagFamily = tlsFlagFamily('raft', 'raft TLS', {
  ca: 'PEM file of the CA that signs every raft peer\'s certificate: with --raft-tls-cert and --raft-tls-key, the raft port speaks mutual TLS only (unset: plain TCP)',
  cert: 'PEM file of this process\'s certificate on the raft port, signed by --raft-tls-ca, naming the raft advertise host (a subjectAltName)',
  key: 'PEM file of the private key of --raft-tls-cert; the three files are re-read when they change',
});

/** HTTPS with client certificates on the HTTP API. */
export const API_TLS: TlsFlagFamily = tlsFlagFamily('api', 'API TLS', {
  ca: 'PEM file of the CA that signs the API\'s clients\' certificates (and PD\'s, for a store): with --api-tls-cert and --api-tls-key, the HTTP API is HTTPS only and every request but /health, /ready and /metrics needs a client certificate it signed (unset: plain HTTP)',
  cert: 'PEM file of this process\'s certificate on the HTTP API, signed by --api-tls-ca, naming the API advertise host (a subjectAltName); also its client certificate when it calls PD',
  key: 'PEM file of the private key of --api-tls-cert; the three files are re-read when they change',
});
