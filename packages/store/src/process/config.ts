import { parseArgs } from 'node:util';
import { limits as storageLimits } from '@flotilla/storage';
import { limits } from '../constants.ts';
import { StoreError } from '../errors.ts';

/** Where a store listens or is reached: host and TCP port (0: any free port). */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];

/** Everything a store process is started with (flags, or FLOTILLA_* environment variables). */
export interface StoreConfig {
  readonly storeId: number;
  readonly clusterId: number;
  readonly dataDir: string;
  /** Where the raft transport listens. */
  readonly raftListen: HostPort;
  /** The host other stores dial, when it differs from the listening one (0.0.0.0, pods). */
  readonly raftAdvertiseHost: string | undefined;
  /** Where the client and admin HTTP API listens. */
  readonly apiListen: HostPort;
  /**
   * A static cluster (until the placement driver exists): every store's raft address. On its
   * first start each listed store bootstraps region 1 over all keys with one voter per store.
   */
  readonly initialCluster: ReadonlyMap<number, HostPort> | undefined;
  readonly logLevel: LogLevel;
  readonly tickMs: number;
  /** Quiet ticks before a group hibernates; 0: never (every group heartbeats all the time). */
  readonly hibernateAfterTicks: number;
  readonly appender: 'worker' | 'inline';
  readonly logShards: number;
  /** How long a SIGTERM shutdown may spend moving leaderships away and draining clients. */
  readonly shutdownTimeoutMs: number;
}

/** Bounds of the flags that take numbers. */
export const configBounds = Object.freeze({
  idMax: Number.MAX_SAFE_INTEGER,
  tickMs: { min: 10, max: 10_000 },
  hibernateAfterTicks: { min: 0, max: 1_000_000 },
  shutdownTimeoutMs: { min: 0, max: 120_000 },
  initialClusterStoresMax: 7,
});

/** One flag: its name, the environment variable it falls back to, and its help line. */
interface Flag {
  readonly name: string;
  readonly help: string;
  readonly fallback?: string;
}

const FLAGS: readonly Flag[] = [
  { name: 'store-id', help: 'this store\'s id, a positive integer unique in the cluster (required)' },
  { name: 'cluster-id', help: 'the cluster\'s id; stores of another cluster are refused', fallback: '1' },
  { name: 'data-dir', help: 'directory of the raft log and KV engines (required)' },
  { name: 'raft-listen', help: 'host:port of the raft transport', fallback: '127.0.0.1:20160' },
  { name: 'raft-advertise-host', help: 'host other stores dial (default: the listening host)' },
  { name: 'api-listen', help: 'host:port of the client and admin HTTP API', fallback: '127.0.0.1:20180' },
  { name: 'initial-cluster', help: 'static cluster, e.g. 1=10.0.0.1:20160,2=10.0.0.2:20160,3=10.0.0.3:20160' },
  { name: 'log-level', help: `one of ${LOG_LEVELS.join(', ')}`, fallback: 'info' },
  { name: 'tick-ms', help: 'length of one raft tick', fallback: String(limits.tickMs) },
  { name: 'hibernate-after-ticks', help: 'quiet ticks before a region stops heartbeating; 0: never', fallback: String(limits.hibernateAfterTicks) },
  { name: 'appender', help: 'raft log appenders: worker (threads) or inline (main thread)', fallback: 'worker' },
  { name: 'log-shards', help: 'raft log shards (one appender thread and one RocksDB each); fixed at creation', fallback: String(storageLimits.appenderShardsDefault) },
  { name: 'shutdown-timeout-ms', help: 'time a SIGTERM shutdown may take', fallback: '10000' },
];

/** The environment variable of a flag: --store-id → FLOTILLA_STORE_ID. */
export function envName(flag: string): string {
  return `FLOTILLA_${flag.toUpperCase().replaceAll('-', '_')}`;
}

export function usage(): string {
  const lines = FLAGS.map((f) => `  --${f.name.padEnd(22)} ${f.help}${f.fallback !== undefined ? ` (default ${f.fallback})` : ''}\n  ${''.padEnd(24)} env ${envName(f.name)}`);
  return `usage: flotilla-store --store-id N --data-dir DIR [flags]\n\n${lines.join('\n')}\n  --help                   this text\n`;
}

/** Flags win over environment variables, which win over defaults. Throws INVALID_CONFIG. */
export function parseStoreConfig(argv: readonly string[], env: NodeJS.ProcessEnv): StoreConfig | 'help' {
  const options = Object.fromEntries(FLAGS.map((f) => [f.name, { type: 'string' as const }]));
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: { ...options, help: { type: 'boolean' } }, strict: true, allowPositionals: false });
  } catch (err) {
    throw invalid((err as Error).message);
  }
  if (parsed.values.help) return 'help';
  const value = (name: string): string | undefined => {
    const given = (parsed.values as Record<string, string | boolean | undefined>)[name];
    if (typeof given === 'string') return given;
    return env[envName(name)] ?? FLAGS.find((f) => f.name === name)?.fallback;
  };
  const required = (name: string): string => {
    const v = value(name);
    if (v === undefined || v === '') throw invalid(`--${name} (or ${envName(name)}) is required`);
    return v;
  };
  const logLevel = required('log-level');
  if (!LOG_LEVELS.includes(logLevel as LogLevel)) throw invalid(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  const appender = required('appender');
  if (appender !== 'worker' && appender !== 'inline') throw invalid(`--appender must be worker or inline, got "${appender}"`);
  const storeId = integer('store-id', required('store-id'), 1, configBounds.idMax);
  const initialCluster = value('initial-cluster');
  const advertise = value('raft-advertise-host');
  return {
    storeId,
    clusterId: integer('cluster-id', required('cluster-id'), 1, configBounds.idMax),
    dataDir: required('data-dir'),
    raftListen: hostPort('raft-listen', required('raft-listen')),
    raftAdvertiseHost: advertise === undefined || advertise === '' ? undefined : advertise,
    apiListen: hostPort('api-listen', required('api-listen')),
    initialCluster: initialCluster === undefined || initialCluster === '' ? undefined : parseInitialCluster(initialCluster, storeId),
    logLevel: logLevel as LogLevel,
    tickMs: integer('tick-ms', required('tick-ms'), configBounds.tickMs.min, configBounds.tickMs.max),
    hibernateAfterTicks: integer('hibernate-after-ticks', required('hibernate-after-ticks'), configBounds.hibernateAfterTicks.min, configBounds.hibernateAfterTicks.max),
    appender,
    logShards: integer('log-shards', required('log-shards'), 1, storageLimits.appenderShardsMax),
    shutdownTimeoutMs: integer('shutdown-timeout-ms', required('shutdown-timeout-ms'), configBounds.shutdownTimeoutMs.min, configBounds.shutdownTimeoutMs.max),
  };
}

/** `1=h1:p1,2=h2:p2,…`: distinct store ids, this store among them, at most a handful. */
export function parseInitialCluster(text: string, storeId: number): ReadonlyMap<number, HostPort> {
  const cluster = new Map<number, HostPort>();
  for (const item of text.split(',')) {
    const at = item.indexOf('=');
    if (at <= 0) throw invalid(`--initial-cluster: "${item}" is not id=host:port`);
    const id = integer('initial-cluster', item.slice(0, at).trim(), 1, configBounds.idMax);
    if (cluster.has(id)) throw invalid(`--initial-cluster: store ${id} is listed twice`);
    const address = hostPort('initial-cluster', item.slice(at + 1).trim());
    if (address.port === 0) throw invalid(`--initial-cluster: store ${id} needs a real port, not 0`);
    cluster.set(id, address);
  }
  if (cluster.size > configBounds.initialClusterStoresMax) {
    throw invalid(`--initial-cluster: at most ${configBounds.initialClusterStoresMax} stores (grow the cluster with membership changes)`);
  }
  if (!cluster.has(storeId)) throw invalid(`--initial-cluster does not list this store (${storeId})`);
  return cluster;
}

function hostPort(flag: string, text: string): HostPort {
  // The last colon separates the port, so bracketless IPv6 hosts are refused rather than misread.
  const at = text.lastIndexOf(':');
  const host = text.slice(0, at).replace(/^\[(.*)\]$/, '$1');
  if (at <= 0 || host === '' || (host.includes(':') && !text.startsWith('['))) throw invalid(`--${flag}: "${text}" is not host:port (IPv6: [addr]:port)`);
  return { host, port: integer(flag, text.slice(at + 1), 0, 65_535) };
}

function integer(flag: string, text: string, min: number, max: number): number {
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw invalid(`--${flag} must be an integer in ${min}..${max}, got "${text}"`);
  return n;
}

function invalid(message: string): StoreError {
  return new StoreError('FLOTILLA_STORE_INVALID_CONFIG', `${message}\n(flotilla-store --help lists the flags)`);
}
