import { parseArgs } from 'node:util';
import { limits as storageLimits } from '@flotilla/storage';
import { limits } from '../constants.ts';
import { StoreError } from '../errors.ts';
import { EVENT_LOOP_PRIORITY_MAX } from './event-loop-priority.ts';
import { EVENT_LOOP_SLICE_US_MAX, EVENT_LOOP_SLICE_US_MIN } from './event-loop-slice.ts';
import { API_TLS, RAFT_TLS, type TlsFiles } from './tls-files.ts';

/** Where a store listens or is reached: host and TCP port (0: any free port). */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
export const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];

/** Everything a store process is started with (flags, or FLOTILLA_* environment variables). */
export interface StoreConfig {
  /** Given by flag (a static cluster), or undefined with --pd: PD assigns it on the first start. */
  readonly storeId: number | undefined;
  readonly clusterId: number;
  readonly dataDir: string;
  /** Where the raft transport listens. */
  readonly raftListen: HostPort;
  /** The host other stores dial, when it differs from the listening one (0.0.0.0, pods). */
  readonly raftAdvertiseHost: string | undefined;
  /** Where the client and admin HTTP API listens. */
  readonly apiListen: HostPort;
  /** The host PD hands clients for this store's API (default: the listening host). */
  readonly apiAdvertiseHost: string | undefined;
  /**
   * A static cluster (until the placement driver exists): every store's raft address. On its
   * first start each listed store bootstraps region 1 over all keys with one voter per store.
   */
  readonly initialCluster: ReadonlyMap<number, HostPort> | undefined;
  readonly logLevel: LogLevel;
  readonly tickMs: number;
  /** Quiet ticks before a group hibernates; 0: never (every group heartbeats all the time). */
  readonly hibernateAfterTicks: number;
  /** Leaders answer linearizable reads from their read lease (no heartbeat round per read). */
  readonly readLease: boolean;
  readonly appender: 'worker' | 'inline';
  /** Shards of a new raft log directory; undefined: an existing directory's count, else the default. */
  readonly logShards: number | undefined;
  /** Linux nice of the appender threads (0 = the main thread's priority). */
  readonly appenderNice: number;
  /** Raises the event-loop (main) thread's CPU priority to nice −N once the engines are open; 0: unchanged. */
  readonly eventLoopPriority: number;
  /** Asks Linux for an event-loop time slice of this many µs once the engines are open (event-loop-slice.ts); 0: unchanged. */
  readonly eventLoopSliceUs: number;
  /** Young-generation collections without V8's helper threads (--no-parallel-scavenge). */
  readonly serialScavenges: boolean;
  /**
   * Below this many free bytes on the data disk the store refuses writes that add data
   * (disk-guard.ts); 0: never; 'auto': 5% of the filesystem, at most 2 GiB.
   */
  readonly diskReserveBytes: number | 'auto';
  /** Longest /ready answers 503 after a start while the store's replicas catch up (0: not at all). */
  readonly readyCatchUpWaitMaxMs: number;
  /** How long a SIGTERM shutdown may spend moving leaderships away and draining clients. */
  readonly shutdownTimeoutMs: number;
  /** The placement driver's member URLs; undefined for a static cluster. */
  readonly pd: readonly string[] | undefined;
  /** Location labels reported to PD (zone, rack, host…). */
  readonly labels: Readonly<Record<string, string>>;
  readonly storeHeartbeatMs: number;
  readonly regionHeartbeatMs: number;
  /** Tests only: the fault-injection control file the transport follows (undefined: off). */
  readonly faultControl: string | undefined;
  /** Mutual TLS on the raft port: the PEM files (tls-files.ts); undefined: plain TCP. */
  readonly raftTls: TlsFiles | undefined;
  /** HTTPS with client certificates on the API, and this store's credentials towards PD; undefined: plain HTTP. */
  readonly apiTls: TlsFiles | undefined;
}

/** Bounds of the flags that take numbers. */
export const configBounds = Object.freeze({
  idMax: Number.MAX_SAFE_INTEGER,
  tickMs: { min: 10, max: 10_000 },
  hibernateAfterTicks: { min: 0, max: 1_000_000 },
  shutdownTimeoutMs: { min: 0, max: 120_000 },
  readyCatchUpWaitMaxMs: { min: 0, max: 24 * 3_600_000 },
  initialClusterStoresMax: 7,
  heartbeatMs: { min: 100, max: 600_000 },
  diskReserveBytes: { min: 0, max: Number.MAX_SAFE_INTEGER },
  pdEndpointsMax: 16,
  labelsMax: 16,
});

/** One flag: its name, the environment variable it falls back to, and its help line. */
export interface Flag {
  readonly name: string;
  readonly help: string;
  readonly fallback?: string;
}

const FLAGS: readonly Flag[] = [
  { name: 'store-id', help: 'this store\'s id, a positive integer unique in the cluster (required without --pd; with --pd, PD assigns it)' },
  { name: 'cluster-id', help: 'the cluster\'s id; stores of another cluster are refused', fallback: '1' },
  { name: 'data-dir', help: 'directory of the raft log and KV engines (required)' },
  { name: 'raft-listen', help: 'host:port of the raft transport', fallback: '127.0.0.1:20160' },
  { name: 'raft-advertise-host', help: 'host other stores dial (default: the listening host)' },
  ...RAFT_TLS.flags,
  { name: 'api-listen', help: 'host:port of the client and admin HTTP API', fallback: '127.0.0.1:20180' },
  { name: 'api-advertise-host', help: 'host clients dial for the API, as PD tells them (default: the listening host; set it when listening on 0.0.0.0)' },
  ...API_TLS.flags,
  { name: 'initial-cluster', help: 'static cluster, e.g. 1=10.0.0.1:20160,2=10.0.0.2:20160,3=10.0.0.3:20160' },
  { name: 'log-level', help: `one of ${LOG_LEVELS.join(', ')}`, fallback: 'info' },
  { name: 'tick-ms', help: 'length of one raft tick', fallback: String(limits.tickMs) },
  { name: 'read-lease', help: 'on: leaders answer linearizable reads from their read lease, without a heartbeat round (every store must run the same --tick-ms); off: a ReadIndex round per read', fallback: 'on' },
  { name: 'hibernate-after-ticks', help: 'quiet ticks before a region stops heartbeating; 0: never', fallback: String(limits.hibernateAfterTicks) },
  { name: 'appender', help: 'raft log appenders: worker (threads) or inline (main thread)', fallback: 'worker' },
  { name: 'log-shards', help: `raft log shards (one appender thread and one RocksDB each), fixed when the data directory is created (default ${limits.logShardsDefault}); an existing directory keeps its count` },
  { name: 'appender-nice', help: 'Linux nice of the appender threads, 0..19: higher yields the CPU to the event loop, lower gets fsyncs out sooner on a busy machine', fallback: String(storageLimits.appenderNiceDefault) },
  { name: 'event-loop-priority', help: `raise the event-loop thread's CPU priority to nice -N, 0..${EVENT_LOOP_PRIORITY_MAX} (Linux; needs CAP_SYS_NICE, root or RLIMIT_NICE): the loop then preempts the appender and RocksDB threads as soon as it wakes, for shorter delays on a busy machine; 0: unchanged`, fallback: '0' },
  { name: 'event-loop-slice-us', help: `ask the Linux 6.12+ scheduler for an event-loop time slice of N µs, ${EVENT_LOOP_SLICE_US_MIN}..${EVENT_LOOP_SLICE_US_MAX} instead of its ~3 ms: the woken loop then preempts busy threads at once, for shorter delays (set through perl's syscall); 0: unchanged`, fallback: '0' },
  { name: 'serial-scavenges', help: 'on: V8 collects the young generation on the collecting thread alone (--no-parallel-scavenge): on a busy machine the helper threads of a parallel collection wait for a core, and the event loop waits for them; off: V8\'s default', fallback: 'off' },
  { name: 'disk-reserve-bytes', help: 'free space kept on the data disk: below it the store refuses puts and compare-and-swaps with FLOTILLA_DISK_FULL (reads, deletes and raft replication go on; below half of it, replication stops too) until space is back; auto: 5% of the filesystem, at most 2 GiB; 0: never refuse', fallback: 'auto' },
  { name: 'shutdown-timeout-ms', help: 'time a SIGTERM shutdown may take', fallback: '10000' },
  { name: 'ready-catch-up-max-ms', help: 'after a start, /ready answers 503 until the store\'s replicas caught up with their leaders, at most this long; 0: no wait', fallback: String(limits.readyCatchUpWaitMaxMs) },
  { name: 'pd', help: 'placement driver member URLs, e.g. http://pd-0:2379,http://pd-1:2379 (instead of --initial-cluster)' },
  { name: 'labels', help: 'location labels reported to PD, e.g. zone=z1,host=h7' },
  { name: 'store-heartbeat-ms', help: 'interval of store heartbeats to PD', fallback: '10000' },
  { name: 'region-heartbeat-ms', help: 'longest interval between heartbeats of a led region to PD (changes are reported at once)', fallback: '60000' },
  { name: 'fault-control', help: 'TESTS ONLY: a JSON file {"dropTo":[ids],"dropFrom":[ids],"clockOffsetMs":n} polled to drop raft traffic to/from those stores and to jump the wall clock (off unless given)' },
];

/** The environment variable of a flag: --store-id → FLOTILLA_STORE_ID. */
export function envName(flag: string): string {
  return `FLOTILLA_${flag.toUpperCase().replaceAll('-', '_')}`;
}

/** The --help text of a process taking `flags`. */
export function flagsUsage(synopsis: string, flags: readonly Flag[]): string {
  const lines = flags.map((f) => `  --${f.name.padEnd(22)} ${f.help}${f.fallback !== undefined ? ` (default ${f.fallback})` : ''}\n  ${''.padEnd(24)} env ${envName(f.name)}`);
  return `usage: ${synopsis}\n\n${lines.join('\n')}\n  --help                   this text\n`;
}

export function usage(): string {
  return flagsUsage('flotilla store --data-dir DIR (--pd URL[,URL] | --store-id N [--initial-cluster …]) [flags]', FLAGS);
}

/** Typed access to parsed flags; every problem becomes the error `invalid` makes. */
export interface FlagValues {
  readonly help: boolean;
  /** The flag, else its environment variable, else its default. */
  value(name: string): string | undefined;
  required(name: string): string;
  integer(name: string, min: number, max: number): number;
  hostPort(name: string): HostPort;
}

/** Flags win over environment variables, which win over defaults. */
export function readFlags(flags: readonly Flag[], argv: readonly string[], env: NodeJS.ProcessEnv, invalid: (message: string) => Error): FlagValues {
  const options = Object.fromEntries(flags.map((f) => [f.name, { type: 'string' as const }]));
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: { ...options, help: { type: 'boolean' } }, strict: true, allowPositionals: false });
  } catch (err) {
    throw invalid((err as Error).message);
  }
  const value = (name: string): string | undefined => {
    const given = (parsed.values as Record<string, string | boolean | undefined>)[name];
    if (typeof given === 'string') return given;
    return env[envName(name)] ?? flags.find((f) => f.name === name)?.fallback;
  };
  const required = (name: string): string => {
    const v = value(name);
    if (v === undefined || v === '') throw invalid(`--${name} (or ${envName(name)}) is required`);
    return v;
  };
  return {
    help: parsed.values.help === true,
    value,
    required,
    integer: (name, min, max) => parseInteger(name, required(name), min, max, invalid),
    hostPort: (name) => parseHostPort(name, required(name), invalid),
  };
}

/** Throws INVALID_CONFIG. */
export function parseStoreConfig(argv: readonly string[], env: NodeJS.ProcessEnv): StoreConfig | 'help' {
  const flags = readFlags(FLAGS, argv, env, invalid);
  if (flags.help) return 'help';
  const logLevel = flags.required('log-level');
  if (!LOG_LEVELS.includes(logLevel as LogLevel)) throw invalid(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  const appender = flags.required('appender');
  if (appender !== 'worker' && appender !== 'inline') throw invalid(`--appender must be worker or inline, got "${appender}"`);
  const eventLoopSliceUs = flags.integer('event-loop-slice-us', 0, EVENT_LOOP_SLICE_US_MAX);
  if (eventLoopSliceUs > 0 && eventLoopSliceUs < EVENT_LOOP_SLICE_US_MIN) {
    throw invalid(`--event-loop-slice-us must be 0 or at least ${EVENT_LOOP_SLICE_US_MIN} (the kernel's shortest slice), got ${eventLoopSliceUs}`);
  }
  const pdText = flags.value('pd');
  const pd = pdText === undefined || pdText === '' ? undefined : parsePdEndpoints(pdText);
  const initialCluster = flags.value('initial-cluster');
  if (pd && initialCluster) throw invalid('--pd and --initial-cluster exclude each other (PD places regions; a static cluster has none)');
  const storeIdText = flags.value('store-id');
  if (pd && storeIdText) throw invalid('--store-id is not given with --pd: PD assigns store ids (kept in the data directory)');
  const storeId = pd ? undefined : flags.integer('store-id', 1, configBounds.idMax);
  const advertise = flags.value('raft-advertise-host');
  return {
    storeId,
    clusterId: flags.integer('cluster-id', 1, configBounds.idMax),
    dataDir: flags.required('data-dir'),
    raftListen: flags.hostPort('raft-listen'),
    raftAdvertiseHost: advertise === undefined || advertise === '' ? undefined : advertise,
    apiListen: flags.hostPort('api-listen'),
    apiAdvertiseHost: flags.value('api-advertise-host') || undefined,
    initialCluster: initialCluster === undefined || initialCluster === '' || storeId === undefined ? undefined : parseInitialCluster(initialCluster, storeId),
    logLevel: logLevel as LogLevel,
    tickMs: flags.integer('tick-ms', configBounds.tickMs.min, configBounds.tickMs.max),
    hibernateAfterTicks: flags.integer('hibernate-after-ticks', configBounds.hibernateAfterTicks.min, configBounds.hibernateAfterTicks.max),
    readLease: onOff(flags, 'read-lease'),
    appender,
    logShards: flags.value('log-shards') ? flags.integer('log-shards', 1, storageLimits.appenderShardsMax) : undefined,
    appenderNice: flags.integer('appender-nice', 0, 19),
    eventLoopPriority: flags.integer('event-loop-priority', 0, EVENT_LOOP_PRIORITY_MAX),
    eventLoopSliceUs,
    serialScavenges: onOff(flags, 'serial-scavenges'),
    diskReserveBytes: flags.required('disk-reserve-bytes') === 'auto' ? 'auto' : flags.integer('disk-reserve-bytes', configBounds.diskReserveBytes.min, configBounds.diskReserveBytes.max),
    shutdownTimeoutMs: flags.integer('shutdown-timeout-ms', configBounds.shutdownTimeoutMs.min, configBounds.shutdownTimeoutMs.max),
    readyCatchUpWaitMaxMs: flags.integer('ready-catch-up-max-ms', configBounds.readyCatchUpWaitMaxMs.min, configBounds.readyCatchUpWaitMaxMs.max),
    pd,
    labels: parseLabels(flags.value('labels') ?? ''),
    storeHeartbeatMs: flags.integer('store-heartbeat-ms', configBounds.heartbeatMs.min, configBounds.heartbeatMs.max),
    regionHeartbeatMs: flags.integer('region-heartbeat-ms', configBounds.heartbeatMs.min, configBounds.heartbeatMs.max),
    faultControl: flags.value('fault-control') || undefined,
    raftTls: RAFT_TLS.parse(flags, invalid),
    apiTls: API_TLS.parse(flags, invalid),
  };
}

/** A flag that is `on` or `off`. */
function onOff(flags: FlagValues, name: string): boolean {
  const value = flags.required(name);
  if (value !== 'on' && value !== 'off') throw invalid(`--${name} must be on or off, got "${value}"`);
  return value === 'on';
}

/** `http://h1:p1,http://h2:p2` (or `https://`, PD with --api-tls-*): PD member URLs (origins only). */
function parsePdEndpoints(text: string): string[] {
  const urls = text.split(',').map((item) => {
    let url: URL;
    try {
      url = new URL(item.trim());
    } catch {
      throw invalid(`--pd: "${item}" is not a URL`);
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.pathname !== '/') throw invalid(`--pd: "${item}" must be http://host:port or https://host:port`);
    return url.origin;
  });
  if (urls.length > configBounds.pdEndpointsMax) throw invalid(`--pd: at most ${configBounds.pdEndpointsMax} URLs`);
  return urls;
}

/** `zone=z1,host=h7` (empty: no labels). */
function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  if (text.trim() === '') return labels;
  for (const item of text.split(',')) {
    const match = /^\s*([A-Za-z0-9_.-]{1,64})=([^,=]{1,64})\s*$/.exec(item);
    if (!match) throw invalid(`--labels: "${item}" is not name=value (names of letters, digits, _ . -; both 1..64 characters)`);
    labels[match[1]!] = match[2]!.trim();
  }
  if (Object.keys(labels).length > configBounds.labelsMax) throw invalid(`--labels: at most ${configBounds.labelsMax}`);
  return labels;
}

/** `1=h1:p1,2=h2:p2,…`: distinct store ids, this store among them, at most a handful. */
export function parseInitialCluster(text: string, storeId: number): ReadonlyMap<number, HostPort> {
  const cluster = new Map<number, HostPort>();
  for (const item of text.split(',')) {
    const at = item.indexOf('=');
    if (at <= 0) throw invalid(`--initial-cluster: "${item}" is not id=host:port`);
    const id = parseInteger('initial-cluster', item.slice(0, at).trim(), 1, configBounds.idMax, invalid);
    if (cluster.has(id)) throw invalid(`--initial-cluster: store ${id} is listed twice`);
    const address = parseHostPort('initial-cluster', item.slice(at + 1).trim(), invalid);
    if (address.port === 0) throw invalid(`--initial-cluster: store ${id} needs a real port, not 0`);
    cluster.set(id, address);
  }
  if (cluster.size > configBounds.initialClusterStoresMax) {
    throw invalid(`--initial-cluster: at most ${configBounds.initialClusterStoresMax} stores (grow the cluster with membership changes)`);
  }
  if (!cluster.has(storeId)) throw invalid(`--initial-cluster does not list this store (${storeId})`);
  return cluster;
}

/** `host:port` (IPv6: `[addr]:port`); port 0 means any free port. */
export function parseHostPort(flag: string, text: string, invalid: (message: string) => Error): HostPort {
  // The last colon separates the port, so bracketless IPv6 hosts are refused rather than misread.
  const at = text.lastIndexOf(':');
  const host = text.slice(0, at).replace(/^\[(.*)\]$/, '$1');
  if (at <= 0 || host === '' || (host.includes(':') && !text.startsWith('['))) throw invalid(`--${flag}: "${text}" is not host:port (IPv6: [addr]:port)`);
  return { host, port: parseInteger(flag, text.slice(at + 1), 0, 65_535, invalid) };
}

export function parseInteger(flag: string, text: string, min: number, max: number, invalid: (message: string) => Error): number {
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw invalid(`--${flag} must be an integer in ${min}..${max}, got "${text}"`);
  return n;
}

function invalid(message: string): StoreError {
  return new StoreError('FLOTILLA_STORE_INVALID_CONFIG', `${message}\n(flotilla store --help lists the flags)`);
}
