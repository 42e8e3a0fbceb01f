/**
 * The client the data commands use: the SDK (@flotilla/client), its errors turned into the
 * CLI's — a bad argument is a usage error (exit 2), anything else the cluster's (exit 3), and
 * a write whose outcome is unknown says so.
 */
import { createClient, isClientError, type FlotillaClient } from '@flotilla/client';
import type { ClusterTls } from './cluster-tls.ts';
import { CliError, EXIT } from './errors.ts';

export interface KvPairBytes {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

export interface ScanRange {
  readonly start: Uint8Array;
  /** Empty: to the end of the keyspace. */
  readonly end: Uint8Array;
  readonly limit: number;
  readonly reverse: boolean;
}

export interface CasOutcome {
  readonly succeeded: boolean;
  readonly previous: Uint8Array | null;
}

/** What the data commands need from a client. */
export interface DataClient {
  get(key: Uint8Array): Promise<Uint8Array | null>;
  put(key: Uint8Array, value: Uint8Array): Promise<void>;
  /** Writes every pair; not atomic across regions (a failure may leave some written). */
  putMany(pairs: readonly KvPairBytes[]): Promise<void>;
  delete(key: Uint8Array): Promise<void>;
  scan(range: ScanRange): Promise<KvPairBytes[]>;
  compareAndSwap(key: Uint8Array, expected: Uint8Array | null, value: Uint8Array | null): Promise<CasOutcome>;
  close(): Promise<void>;
}

/** `tls`: the credentials of --tls-* for a cluster whose APIs are HTTPS (every PD URL then https://). */
export function openDataClient(pdUrls: readonly string[], timeoutMs: number, tls?: ClusterTls): DataClient {
  const client: FlotillaClient = createClient({ pd: pdUrls, timeoutMs, ...(tls === undefined ? {} : { tls }) });
  return {
    get: (key) => translated(pdUrls, () => client.get(key)),
    put: (key, value) => translated(pdUrls, () => client.put(key, value)),
    putMany: (pairs) => translated(pdUrls, () => client.putMany(pairs)),
    delete: (key) => translated(pdUrls, () => client.delete(key)),
    scan: (range) => translated(pdUrls, () => client.scan({ start: range.start, end: range.end, limit: range.limit, reverse: range.reverse })),
    compareAndSwap: (key, expected, value) => translated(pdUrls, () => client.compareAndSwap(key, expected, value)),
    close: () => client.close(),
  };
}

async function translated<T>(pdUrls: readonly string[], call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw toCliError(err, pdUrls);
  }
}

/** Codes after which the user may want to check where the CLI looked for PD. */
const PD_HINTED = new Set(['FLOTILLA_PD_UNAVAILABLE', 'FLOTILLA_PD_ERROR', 'FLOTILLA_DEADLINE_EXCEEDED']);

/** A ClientError as a one-line CliError (anything else is passed on: a bug). */
export function toCliError(err: unknown, pdUrls: readonly string[]): unknown {
  if (!isClientError(err)) return err;
  if (err.code === 'FLOTILLA_INVALID_ARGUMENT') return new CliError(EXIT.usage, err.message);
  const unknown = err.unknownOutcome ? '; the write may or may not have happened' : '';
  const hint = PD_HINTED.has(err.code)
    ? ` (PD: ${pdUrls.join(',')}; set with --pd or FLOTILLA_PD)`
    : err.code === 'FLOTILLA_UNAUTHENTICATED'
      ? " (check --tls-ca, --tls-cert and --tls-key: the CA the cluster's APIs run with, --api-tls-ca, and a client certificate it signed)"
      : '';
  return new CliError(EXIT.cluster, `${err.message}${unknown} (${err.code})${hint}`);
}
