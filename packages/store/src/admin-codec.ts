import type { ConfState, ProgressStatus } from '@flotilla/raft';
import { limits as wireLimits, type PeerRole, type RegionEpoch, type RegionMeta, type RegionPeer } from '@flotilla/wire';
import { limits } from './constants.ts';
import type { ReplicaStatus } from './host-types.ts';
import type { MembershipChange } from './membership.ts';
import { adminLimits } from './server-limits.ts';

/**
 * The admin API's JSON: reading request bodies and query strings (every field checked, a
 * wrong one named in the error) and writing answers. Byte keys are lowercase hex strings, as
 * TiKV's pd-ctl writes them; an empty string is the empty key. Unknown fields are refused,
 * so a misspelled optional field is an error rather than a silently ignored one.
 */

/** A request value the endpoint does not take: answered 400 with the field's name. */
export class AdminInputError extends Error {
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(`${field}: ${problem}`);
    this.name = 'AdminInputError';
  }
}

// ------------------------------------------------------------ JSON shapes of answers

export interface RegionJson {
  readonly id: number;
  readonly startKey: string;
  readonly endKey: string;
  readonly epoch: RegionEpoch;
  readonly peers: readonly RegionPeer[];
}

export interface ProgressJson {
  readonly peerId: number;
  readonly storeId: number | null;
  readonly match: number;
  readonly next: number;
  readonly state: ProgressStatus['state'];
  readonly isLearner: boolean;
  readonly recentActive: boolean;
  readonly inflightMessages: number;
}

/** One replica's view of its region: hashicorp's Leader(), State() and Stats() in one. */
export interface RegionStatusJson extends RegionJson {
  readonly peerId: number;
  /** The raft role, or `learner` for a replica that can't vote. */
  readonly role: 'leader' | 'follower' | 'preCandidate' | 'candidate' | 'learner';
  readonly term: number;
  /** Null while no leader is known, or while its store is not (a placeholder). */
  readonly leader: { readonly peerId: number; readonly storeId: number } | null;
  readonly commit: number;
  readonly applied: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly hibernating: boolean;
  readonly placeholder: boolean;
  /** The peer a leader is handing over to (0: none). */
  readonly leadTransferee: number;
  readonly config: Pick<ConfState, 'voters' | 'learners' | 'votersOutgoing' | 'learnersNext'>;
  /** Leader only: its view of every member. */
  readonly progress?: readonly ProgressJson[];
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function regionJson(region: RegionMeta): RegionJson {
  return {
    id: region.id,
    startKey: hex(region.startKey),
    endKey: hex(region.endKey),
    epoch: { version: region.epoch.version, confVer: region.epoch.confVer },
    peers: region.peers.map((p) => ({ id: p.id, storeId: p.storeId, role: p.role })),
  };
}

/** The leader hint of a replica's status, as NotLeader carries it (null when unknown). */
export function leaderHint(status: ReplicaStatus): { peerId: number; storeId: number } | null {
  const peerId = status.raft.leader;
  const storeId = status.region.peers.find((p) => p.id === peerId)?.storeId;
  return peerId === 0 || storeId === undefined ? null : { peerId, storeId };
}

export function regionStatusJson(status: ReplicaStatus): RegionStatusJson {
  const { raft, region } = status;
  const { voters, learners, votersOutgoing, learnersNext } = raft.config;
  const votes = voters.includes(status.peerId) || votersOutgoing.includes(status.peerId);
  const json: RegionStatusJson = {
    ...regionJson(region),
    peerId: status.peerId,
    role: raft.role === 'follower' && !votes ? 'learner' : raft.role,
    term: raft.term,
    leader: leaderHint(status),
    commit: raft.commit,
    applied: status.applied,
    firstIndex: raft.firstIndex,
    lastIndex: raft.lastIndex,
    hibernating: raft.hibernating,
    placeholder: status.placeholder,
    leadTransferee: raft.leadTransferee,
    config: { voters: [...voters], learners: [...learners], votersOutgoing: [...votersOutgoing], learnersNext: [...learnersNext] },
  };
  if (raft.role !== 'leader') return json;
  const storeOf = new Map(region.peers.map((p) => [p.id, p.storeId]));
  const progress = [...raft.progress]
    .sort(([a], [b]) => a - b)
    .map(([peerId, p]): ProgressJson => ({ peerId, storeId: storeOf.get(peerId) ?? null, ...p }));
  return { ...json, progress };
}

// ------------------------------------------------------------ reading requests

/** The body as JSON: undefined when empty. */
export function parseJsonBody(body: Buffer): unknown {
  if (body.byteLength === 0) return undefined;
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new AdminInputError('body', `not JSON (${err instanceof Error ? err.message : String(err)})`);
  }
}

type Fields = Readonly<Record<string, unknown>>;

/** A JSON object holding only `known` fields. */
function object(value: unknown, field: string, known: readonly string[]): Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new AdminInputError(field, 'expected a JSON object');
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) throw new AdminInputError(field === 'body' ? key : `${field}.${key}`, `unknown field (known: ${known.join(', ') || 'none'})`);
  }
  return value as Fields;
}

function integer(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new AdminInputError(field, `expected an integer in [${min}, ${max}], got ${JSON.stringify(value) ?? 'nothing'}`);
  }
  return value;
}

/** Region, peer and store ids: positive safe integers. */
function id(value: unknown, field: string): number {
  return integer(value, field, 1, Number.MAX_SAFE_INTEGER);
}

function oneOf<T extends string>(value: unknown, field: string, options: readonly T[]): T {
  if (typeof value !== 'string' || !(options as readonly string[]).includes(value)) {
    throw new AdminInputError(field, `expected one of ${options.map((o) => `"${o}"`).join(', ')}, got ${JSON.stringify(value) ?? 'nothing'}`);
  }
  return value as T;
}

function list(value: unknown, field: string, min: number, max: number): readonly unknown[] {
  if (!Array.isArray(value)) throw new AdminInputError(field, 'expected an array');
  if (value.length < min || value.length > max) throw new AdminInputError(field, `expected ${min} to ${max} items, got ${value.length}`);
  return value;
}

const HEX = /^(?:[0-9a-f]{2})*$/;

/** A key: lowercase hex of at most the wire's key bound. */
function hexKey(value: unknown, field: string): Uint8Array {
  if (typeof value !== 'string') throw new AdminInputError(field, 'expected a lowercase hex string');
  if (value.length > 2 * wireLimits.kvKeyBytesMax) throw new AdminInputError(field, `a key is at most ${wireLimits.kvKeyBytesMax} bytes`);
  if (!HEX.test(value)) throw new AdminInputError(field, 'expected lowercase hex digits, two per byte');
  return Uint8Array.from(Buffer.from(value, 'hex'));
}

/** How long to wait for the outcome: the body's `timeoutMs`, else the default. */
function waitMs(fields: Fields): number {
  return fields.timeoutMs === undefined ? adminLimits.waitMsDefault : integer(fields.timeoutMs, 'timeoutMs', 1, adminLimits.waitMsMax);
}

/** Endpoints without a body take nothing, or an empty object. */
export function parseNoBody(body: unknown): void {
  if (body !== undefined) object(body, 'body', []);
}

/** A path segment naming a store or a region: a positive decimal integer. */
export function parsePathId(segment: string, field: string): number {
  const value = /^[1-9][0-9]{0,15}$/.test(segment) ? Number(segment) : NaN;
  if (!Number.isSafeInteger(value)) throw new AdminInputError(field, `expected a positive integer, got ${JSON.stringify(segment.slice(0, 32))}`);
  return value;
}

/** Endpoints other than the region list take no query string. */
export function parseNoQuery(query: URLSearchParams): void {
  for (const key of query.keys()) throw new AdminInputError(`query ${key}`, 'this endpoint takes no query parameters');
}

/** GET /v1/admin/regions?after=&limit= */
export function parseRegionsQuery(query: URLSearchParams): { after: number; limit: number } {
  let after = 0;
  let limit: number = adminLimits.regionsPageDefault;
  for (const [key, value] of query) {
    const number = /^[0-9]{1,16}$/.test(value) ? Number(value) : NaN;
    if (key === 'after') after = integer(number, 'query after', 0, Number.MAX_SAFE_INTEGER);
    else if (key === 'limit') limit = integer(number, 'query limit', 1, adminLimits.regionsPageMax);
    else throw new AdminInputError(`query ${key}`, 'unknown parameter (known: after, limit)');
  }
  return { after, limit };
}

/** PUT /v1/admin/stores/:storeId */
export function parseStoreAddress(body: unknown): { host: string; port: number } {
  const fields = object(body, 'body', ['host', 'port']);
  const host = fields.host;
  if (typeof host !== 'string' || host.length === 0 || host.length > adminLimits.hostCharsMax) {
    throw new AdminInputError('host', `expected a host name or address of 1 to ${adminLimits.hostCharsMax} characters`);
  }
  return { host, port: integer(fields.port, 'port', 1, 65_535) };
}

/**
 * POST /v1/admin/bootstrap: `{ region }`, or `{ regions: [...] }` to found many in one log
 * write and one KV batch. `many` tells which (the answer follows the request's shape).
 */
export function parseBootstrap(body: unknown): { readonly regions: readonly RegionMeta[]; readonly many: boolean } {
  const fields = object(body, 'body', ['region', 'regions']);
  if ((fields.region === undefined) === (fields.regions === undefined)) throw new AdminInputError('body', 'expected either region or regions');
  if (fields.region !== undefined) return { regions: [parseRegion(fields.region, 'region')], many: false };
  const regions = list(fields.regions, 'regions', 1, limits.bootstrapRegionsMax).map((value, i) => parseRegion(value, `regions[${i}]`));
  checkDistinct(regions.map((r) => r.id), 'regions', 'region ids');
  return { regions, many: true };
}

/** A region's metadata, checked as the KV engine and the raft core will. */
function parseRegion(value: unknown, field: string): RegionMeta {
  const region = object(value, field, ['id', 'startKey', 'endKey', 'epoch', 'peers']);
  const epoch = object(region.epoch, `${field}.epoch`, ['version', 'confVer']);
  const startKey = hexKey(region.startKey, `${field}.startKey`);
  const endKey = hexKey(region.endKey, `${field}.endKey`);
  if (endKey.byteLength > 0 && Buffer.compare(startKey, endKey) >= 0) throw new AdminInputError(`${field}.endKey`, 'must sort after startKey (or be empty: unbounded)');
  const peers = list(region.peers, `${field}.peers`, 1, wireLimits.regionPeersMax).map((peer, i) => parsePeer(peer, `${field}.peers[${i}]`));
  checkDistinct(peers.map((p) => p.id), `${field}.peers`, 'peer ids');
  checkDistinct(peers.map((p) => p.storeId), `${field}.peers`, 'stores (one replica of a region per store)');
  if (!peers.some((p) => p.role === 'voter')) throw new AdminInputError(`${field}.peers`, 'at least one voter');
  return {
    id: id(region.id, `${field}.id`),
    startKey,
    endKey,
    epoch: {
      version: integer(epoch.version, `${field}.epoch.version`, 0, Number.MAX_SAFE_INTEGER),
      confVer: integer(epoch.confVer, `${field}.epoch.confVer`, 0, Number.MAX_SAFE_INTEGER),
    },
    peers,
  };
}

function parsePeer(value: unknown, field: string): RegionPeer {
  const peer = object(value, field, ['id', 'storeId', 'role']);
  return { id: id(peer.id, `${field}.id`), storeId: id(peer.storeId, `${field}.storeId`), role: oneOf<PeerRole>(peer.role, `${field}.role`, ['voter', 'learner']) };
}

function checkDistinct(values: readonly number[], field: string, what: string): void {
  if (new Set(values).size !== values.length) throw new AdminInputError(field, `${what} must be distinct`);
}

export interface MembersRequest {
  readonly changes: readonly MembershipChange[];
  readonly transition: 'auto' | 'implicit' | 'explicit';
  readonly timeoutMs: number;
}

/** POST /v1/admin/regions/:id/members (an empty list leaves a joint configuration). */
export function parseMembers(body: unknown): MembersRequest {
  const fields = object(body, 'body', ['changes', 'transition', 'timeoutMs']);
  const changes = list(fields.changes, 'changes', 0, wireLimits.regionPeersMax).map((value, i) => parseChange(value, `changes[${i}]`));
  checkDistinct(changes.map((c) => c.peerId), 'changes', 'peer ids');
  const transition = fields.transition === undefined ? 'auto' : oneOf(fields.transition, 'transition', ['auto', 'implicit', 'explicit'] as const);
  return { changes, transition, timeoutMs: waitMs(fields) };
}

function parseChange(value: unknown, field: string): MembershipChange {
  const change = object(value, field, ['type', 'peerId', 'storeId']);
  const type = oneOf(change.type, `${field}.type`, ['addVoter', 'addLearner', 'remove'] as const);
  const peerId = id(change.peerId, `${field}.peerId`);
  // Removing needs no store; one given is checked all the same (it is a typo otherwise).
  if (type === 'remove') {
    if (change.storeId !== undefined) id(change.storeId, `${field}.storeId`);
    return { type, peerId };
  }
  return { type, peerId, storeId: id(change.storeId, `${field}.storeId`) };
}

/** POST /v1/admin/regions/:id/transfer-leader */
export function parseTransfer(body: unknown): { toPeerId: number; timeoutMs: number } {
  const fields = object(body, 'body', ['toPeerId', 'timeoutMs']);
  return { toPeerId: id(fields.toPeerId, 'toPeerId'), timeoutMs: waitMs(fields) };
}

export interface SplitRequest {
  readonly splitKey: Uint8Array;
  readonly newRegionId: number;
  readonly newPeerIds: readonly number[];
  readonly timeoutMs: number;
}

/** POST /v1/admin/regions/:id/split */
export function parseSplit(body: unknown): SplitRequest {
  const fields = object(body, 'body', ['splitKey', 'newRegionId', 'newPeerIds', 'timeoutMs']);
  const splitKey = hexKey(fields.splitKey, 'splitKey');
  const newPeerIds = list(fields.newPeerIds, 'newPeerIds', 1, wireLimits.regionPeersMax).map((value, i) => id(value, `newPeerIds[${i}]`));
  checkDistinct(newPeerIds, 'newPeerIds', 'peer ids');
  return { splitKey, newRegionId: id(fields.newRegionId, 'newRegionId'), newPeerIds, timeoutMs: waitMs(fields) };
}
