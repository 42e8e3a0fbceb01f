/**
 * `--raft-tls-ca`, `--raft-tls-cert`, `--raft-tls-key`: mutual TLS on the raft port (stores and
 * PD members alike; @flotilla/transport's tcp-tls.ts). All three or none. The files are PEM:
 * the cluster's CA certificate(s), this process's certificate (chain), its private key.
 *
 * They are read at start — a file that is missing or does not load stops the start with
 * FLOTILLA_STORE_INVALID_CONFIG naming it — and checked again every RAFT_TLS_RELOAD_CHECK_MS:
 * once they changed (cert-manager renewing a Secret, say) and load again, new connections use
 * them; established connections keep theirs. Files caught half-written are tried again at the
 * next check, the old credentials kept meanwhile.
 */
import { readFile, stat } from 'node:fs/promises';
import { checkTls, isTransportError, type TransportTls } from '@flotilla/transport';
import { StoreError } from '../errors.ts';
import type { Flag, FlagValues } from './config.ts';
import { errorFields, type Logger } from './logger.ts';

/** How often the credential files are looked at for a renewal (their size and modification time). */
export const RAFT_TLS_RELOAD_CHECK_MS = 30_000;

/** Paths of the three PEM files. */
export interface RaftTlsFiles {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

export const RAFT_TLS_FLAGS: readonly Flag[] = [
  { name: 'raft-tls-ca', help: 'PEM file of the CA that signs every raft peer\'s certificate: with --raft-tls-cert and --raft-tls-key, the raft port speaks mutual TLS only (unset: plain TCP)' },
  { name: 'raft-tls-cert', help: 'PEM file of this process\'s certificate on the raft port, signed by --raft-tls-ca, naming the raft advertise host (a subjectAltName)' },
  { name: 'raft-tls-key', help: 'PEM file of the private key of --raft-tls-cert; the three files are re-read when they change' },
];

/** The three flags, all given or none; `invalid` makes the process's config error. */
export function parseRaftTls(flags: FlagValues, invalid: (message: string) => Error): RaftTlsFiles | undefined {
  const [ca, cert, key] = RAFT_TLS_FLAGS.map((f) => flags.value(f.name) || undefined);
  if (ca === undefined && cert === undefined && key === undefined) return undefined;
  if (ca === undefined || cert === undefined || key === undefined) {
    const missing = RAFT_TLS_FLAGS.filter((f) => !flags.value(f.name)).map((f) => `--${f.name}`);
    throw invalid(`raft TLS needs --raft-tls-ca, --raft-tls-cert and --raft-tls-key together; missing ${missing.join(', ')}`);
  }
  return { ca, cert, key };
}

const storeConfigError = (message: string): Error => new StoreError('FLOTILLA_STORE_INVALID_CONFIG', message);

/**
 * Reads and checks the credentials; `invalid` (default FLOTILLA_STORE_INVALID_CONFIG) names the
 * file or the problem.
 */
export async function loadRaftTls(files: RaftTlsFiles, invalid: (message: string) => Error = storeConfigError): Promise<TransportTls> {
  const read = async (flag: string, file: string): Promise<string> => {
    try {
      return await readFile(file, 'utf8');
    } catch (err) {
      throw invalid(`--${flag} ${file}: ${(err as Error).message}`);
    }
  };
  const creds = { ca: await read('raft-tls-ca', files.ca), cert: await read('raft-tls-cert', files.cert), key: await read('raft-tls-key', files.key) };
  try {
    return checkTls(creds);
  } catch (err) {
    if (!isTransportError(err)) throw err;
    throw invalid(`--raft-tls-ca/--raft-tls-cert/--raft-tls-key (${files.ca}, ${files.cert}, ${files.key}): ${err.message}`);
  }
}

/**
 * Re-reads the files when they change and hands the new credentials to `renew` (the transport's
 * setTls). Stops with stop().
 */
export function watchRaftTls(files: RaftTlsFiles, renew: (creds: TransportTls) => void, logger: Logger, everyMs = RAFT_TLS_RELOAD_CHECK_MS): { stop(): void; check(): Promise<void> } {
  let seen: string | null = null;
  let running: Promise<void> | null = null;
  const stamp = async (): Promise<string> => (await Promise.all([files.ca, files.cert, files.key].map((f) => stat(f)))).map((s) => `${s.size}:${s.mtimeMs}`).join('|');
  const look = async (): Promise<void> => {
    try {
      const now = await stamp();
      if (seen === null) seen = now;
      if (now === seen) return;
      const creds = await loadRaftTls(files);
      renew(creds);
      seen = now;
      logger.info({ ca: files.ca, cert: files.cert, key: files.key }, 'raft TLS credentials reloaded: new connections use them');
    } catch (err) {
      logger.warn(errorFields(err), 'raft TLS credentials changed but do not load (yet); keeping the ones in use');
    }
  };
  /** One look at a time: a call while one runs waits for that one. */
  const check = (): Promise<void> => (running ??= look().finally(() => (running = null)));
  void check();
  const timer = setInterval(() => void check(), everyMs);
  timer.unref();
  return { stop: () => clearInterval(timer), check };
}
