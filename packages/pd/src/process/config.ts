/**
 * The PD member process's configuration: flags, or FLOTILLA_* environment variables (the
 * same rules as the store's: flags win over the environment, which wins over defaults).
 */
import { API_TLS, LOG_LEVELS, RAFT_TLS, configBounds, flagsUsage, parseHostPort, parseInteger, readFlags, type Flag, type HostPort, type LogLevel, type TlsFiles } from '@flotilla/store';
import { PdError } from '../errors.ts';

/** A member of PD's own raft group: raft address and client URL. */
export interface MemberAddress {
  readonly raftAddress: HostPort;
  readonly clientUrl: string;
}

export interface PdConfig {
  readonly memberId: number;
  readonly clusterId: number;
  readonly dataDir: string;
  readonly raftListen: HostPort;
  readonly raftAdvertiseHost: string | undefined;
  readonly clientListen: HostPort;
  /** The URL other members, stores and tools reach this member at (default: from the listener). */
  readonly advertiseClientUrl: string | undefined;
  /** A static founding set (every member listed founds PD's group on its first start). */
  readonly initialMembers: ReadonlyMap<number, MemberAddress> | undefined;
  /** A running member's client URL: an empty member asks it to be added to PD's group. */
  readonly join: string | undefined;
  readonly logLevel: LogLevel;
  readonly tickMs: number;
  readonly appender: 'worker' | 'inline';
  readonly shutdownTimeoutMs: number;
  /** How often the leader runs the checkers and schedulers. */
  readonly scheduleIntervalMs: number;
  /** Tests only: the fault-injection control file (raft drops between members, wall-clock jumps); undefined: off. */
  readonly faultControl: string | undefined;
  /** Mutual TLS between members on the raft port (the store's --raft-tls-* flags); undefined: plain TCP. */
  readonly raftTls: TlsFiles | undefined;
  /**
   * HTTPS with client certificates on the HTTP API (the store's --api-tls-* flags), also this
   * member's credentials when it calls another member; undefined: plain HTTP. With it every
   * client URL (advertised, joined, of the initial members) is https://.
   */
  readonly apiTls: TlsFiles | undefined;
}

/** Bounds of the flags that take numbers (the store's where they mean the same). */
export const pdConfigBounds = Object.freeze({
  idMax: configBounds.idMax,
  tickMs: configBounds.tickMs,
  shutdownTimeoutMs: configBounds.shutdownTimeoutMs,
  scheduleIntervalMs: { min: 10, max: 600_000 },
  /** PD groups are small: 1 for development, 3 or 5 in production. */
  initialMembersMax: 7,
});

const FLAGS: readonly Flag[] = [
  { name: 'member-id', help: 'this PD member\'s id, a positive integer unique among PD members (required)' },
  { name: 'cluster-id', help: 'the cluster\'s id; stores of another cluster are refused', fallback: '1' },
  { name: 'data-dir', help: 'directory of PD\'s raft log and metadata (required)' },
  { name: 'raft-listen', help: 'host:port of the member-to-member raft transport', fallback: '127.0.0.1:2380' },
  { name: 'raft-advertise-host', help: 'host other members dial (default: the listening host)' },
  ...RAFT_TLS.flags,
  { name: 'client-listen', help: 'host:port of the HTTP API (stores, clients, tools)', fallback: '127.0.0.1:2379' },
  ...API_TLS.flags,
  { name: 'advertise-client-url', help: 'URL others reach the HTTP API at (default: http://<client-listen>, https:// with --api-tls-*)' },
  { name: 'initial-members', help: 'static founding set, e.g. 1=10.0.0.1:2380@http://10.0.0.1:2379,2=…' },
  { name: 'join', help: 'client URL of a running PD member: start empty and be added to its group' },
  { name: 'log-level', help: `one of ${LOG_LEVELS.join(', ')}`, fallback: 'info' },
  { name: 'tick-ms', help: 'length of one raft tick of PD\'s group', fallback: '100' },
  { name: 'appender', help: 'raft log appenders: worker (threads) or inline (main thread)', fallback: 'inline' },
  { name: 'shutdown-timeout-ms', help: 'time a SIGTERM shutdown may take', fallback: '10000' },
  { name: 'schedule-interval-ms', help: 'how often the leader runs the checkers and schedulers', fallback: '1000' },
  { name: 'fault-control', help: 'TESTS ONLY: a JSON file {"dropTo":[ids],"dropFrom":[ids],"clockOffsetMs":n} polled to drop raft traffic to/from those members and to jump the wall clock (off unless given)' },
];

export function pdUsage(): string {
  return flagsUsage('flotilla pd --member-id N --data-dir DIR (--initial-members … | --join URL) [flags]', FLAGS);
}

/** Throws FLOTILLA_PD_INVALID_CONFIG. */
export function parsePdConfig(argv: readonly string[], env: NodeJS.ProcessEnv): PdConfig | 'help' {
  const flags = readFlags(FLAGS, argv, env, invalid);
  if (flags.help) return 'help';
  const logLevel = flags.required('log-level');
  if (!LOG_LEVELS.includes(logLevel as LogLevel)) throw invalid(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  const appender = flags.required('appender');
  if (appender !== 'worker' && appender !== 'inline') throw invalid(`--appender must be worker or inline, got "${appender}"`);
  const memberId = flags.integer('member-id', 1, pdConfigBounds.idMax);
  const initial = nonEmpty(flags.value('initial-members'));
  const join = nonEmpty(flags.value('join'));
  if (initial !== undefined && join !== undefined) throw invalid('--initial-members and --join exclude each other');
  const advertiseUrl = nonEmpty(flags.value('advertise-client-url'));
  const apiTls = API_TLS.parse(flags, invalid);
  const scheme = apiTls === undefined ? 'http:' : 'https:';
  return {
    memberId,
    clusterId: flags.integer('cluster-id', 1, pdConfigBounds.idMax),
    dataDir: flags.required('data-dir'),
    raftListen: flags.hostPort('raft-listen'),
    raftAdvertiseHost: nonEmpty(flags.value('raft-advertise-host')),
    clientListen: flags.hostPort('client-listen'),
    advertiseClientUrl: advertiseUrl === undefined ? undefined : httpUrl('advertise-client-url', advertiseUrl, scheme),
    initialMembers: initial === undefined ? undefined : parseInitialMembers(initial, memberId, scheme),
    join: join === undefined ? undefined : httpUrl('join', join, scheme),
    logLevel: logLevel as LogLevel,
    tickMs: flags.integer('tick-ms', pdConfigBounds.tickMs.min, pdConfigBounds.tickMs.max),
    appender,
    shutdownTimeoutMs: flags.integer('shutdown-timeout-ms', pdConfigBounds.shutdownTimeoutMs.min, pdConfigBounds.shutdownTimeoutMs.max),
    scheduleIntervalMs: flags.integer('schedule-interval-ms', pdConfigBounds.scheduleIntervalMs.min, pdConfigBounds.scheduleIntervalMs.max),
    faultControl: nonEmpty(flags.value('fault-control')),
    raftTls: RAFT_TLS.parse(flags, invalid),
    apiTls,
  };
}

/** `1=h:p@http://h:p,2=…`: distinct ids, this member among them, real ports. */
export function parseInitialMembers(text: string, memberId: number, scheme: 'http:' | 'https:' = 'http:'): ReadonlyMap<number, MemberAddress> {
  const members = new Map<number, MemberAddress>();
  for (const item of text.split(',')) {
    const match = /^\s*(\d+)=([^@]+)@(\S+)\s*$/.exec(item);
    if (!match) throw invalid(`--initial-members: "${item}" is not id=host:port@http://host:port`);
    const id = parseInteger('initial-members', match[1]!, 1, pdConfigBounds.idMax, invalid);
    if (members.has(id)) throw invalid(`--initial-members: member ${id} is listed twice`);
    members.set(id, { raftAddress: parseHostPort('initial-members', match[2]!, invalid), clientUrl: httpUrl('initial-members', match[3]!, scheme) });
  }
  // A member founding PD alone may listen anywhere (port 0): nobody dials it from this list.
  if (members.size > 1) {
    for (const [id, member] of members) if (member.raftAddress.port === 0) throw invalid(`--initial-members: member ${id} needs a real port, not 0`);
  }
  if (members.size > pdConfigBounds.initialMembersMax) throw invalid(`--initial-members: at most ${pdConfigBounds.initialMembersMax} members`);
  if (!members.has(memberId)) throw invalid(`--initial-members does not list this member (${memberId})`);
  return members;
}

/** A member's client URL: `scheme` (https:// with --api-tls-*), host and port only. */
function httpUrl(flag: string, text: string, scheme: 'http:' | 'https:'): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalid(`--${flag}: "${text}" is not a URL`);
  }
  if (url.protocol !== scheme || url.pathname !== '/' || url.search !== '') {
    throw invalid(`--${flag}: "${text}" must be ${scheme}//host:port${scheme === 'https:' ? ' (the API is HTTPS: --api-tls-*)' : ''}`);
  }
  return url.origin;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function invalid(message: string): PdError {
  return new PdError('FLOTILLA_PD_INVALID_CONFIG', `${message}\n(flotilla pd --help lists the flags)`);
}
