/**
 * The store ↔ placement driver protocol: what a store sends PD (join, store heartbeats,
 * region heartbeats of the regions it leads) and what PD answers (ids, peer addresses, the
 * next step of an operator to run). JSON over HTTP, like the rest of PD's API, so an operator
 * can read every exchange with curl; byte keys are lowercase hex ('' is the empty key).
 *
 * Both sides read what they receive through the `read*` functions below: every field's type
 * and bound is checked, unknown fields are ignored (a newer peer may add some), and a wrong
 * one is a FLOTILLA_WIRE_MALFORMED / LIMIT_EXCEEDED WireError naming the field.
 */
import { malformed, readBool, readId, readList, readUint } from './check.ts';
import { kvKeyBytesMax, regionPeersMax } from './constants.ts';
import { WireError } from './errors.ts';
import type { RegionEpoch, RegionMeta, RegionPeer } from './types.ts';

/** Bounds of the PD protocol. */
export const pdLimits = Object.freeze({
  /** Region heartbeats one request may carry (a store with more leaders sends several). */
  regionHeartbeatsPerRequestMax: 1024,
  /** Stores PD accepts in a cluster (the address list every store heartbeat answer carries). */
  storesMax: 1024,
  /** Location labels of a store, and the length of each name and value. */
  labelsMax: 16,
  labelTextMax: 64,
  /** host:port strings and the data-dir token. */
  addressTextMax: 256,
  tokenTextMax: 128,
  /** Split keys one split step may carry. */
  splitKeysMax: 64,
  /** Ids one alloc-ids request may ask for. */
  allocIdsMax: 10_000,
  /** Peer ids a region heartbeat may list as down or pending. */
  reportedPeersMax: regionPeersMax,
});

export interface FlowRatesJson {
  readonly writeBytes: number;
  readonly writeKeys: number;
  readonly readBytes: number;
  readonly readKeys: number;
}

export interface JoinRequest {
  readonly clusterId: number;
  /** Random identity of the store's data directory, made on its first start. */
  readonly token: string;
  /** The id PD gave this data directory before, if any (a restart). */
  readonly storeId?: number;
  readonly raftAddress: string;
  readonly apiAddress: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface JoinResponse {
  readonly clusterId: number;
  readonly storeId: number;
  /**
   * Present when this store founded the cluster: the first region (all keys, one voter here)
   * it must create if it has no region yet. Answered again on a retry, so a crash between
   * PD's record and the store's founding write loses nothing.
   */
  readonly bootstrapRegion?: RegionMeta;
}

export interface StoreHeartbeat {
  readonly storeId: number;
  readonly capacityBytes: number;
  readonly availableBytes: number;
  readonly usedBytes: number;
  readonly regionCount: number;
  readonly leaderCount: number;
  readonly rates: FlowRatesJson;
  /**
   * The store's data disk is below its reserve: its leaders refuse puts (FLOTILLA_DISK_FULL), so
   * PD moves its leaderships to replicas on stores with room. Absent: false (older stores).
   */
  readonly refusingWrites?: boolean;
}

export interface StoreAddress {
  readonly storeId: number;
  readonly raftAddress: string;
  readonly apiAddress: string;
}

export interface StoreHeartbeatResponse {
  /** Every store that is not a tombstone: where to dial it. */
  readonly stores: readonly StoreAddress[];
  /**
   * Regions this store leads (as PD last heard) that have an operator waiting: the store
   * sends their region heartbeats now, and gets the step to run in the answer.
   */
  readonly operatorRegionIds: readonly number[];
}

export interface RegionHeartbeat {
  readonly region: RegionMeta;
  readonly leaderPeerId: number;
  readonly downPeerIds: readonly number[];
  readonly pendingPeerIds: readonly number[];
  readonly approximateBytes: number;
  readonly approximateKeys: number;
  readonly rates: FlowRatesJson;
}

/** A store parks this request at PD until an operator waits on a region it leads. */
export interface OperatorWatch {
  readonly storeId: number;
  readonly timeoutMs: number;
}

export interface OperatorWatchResponse {
  readonly regionIds: readonly number[];
}

export interface RegionHeartbeatRequest {
  readonly storeId: number;
  readonly heartbeats: readonly RegionHeartbeat[];
}

/** One step of a PD operator, for the region's leader to run (see @flotilla/pd's operators). */
export type PdOperatorStep =
  | { readonly type: 'addLearner'; readonly storeId: number; readonly peerId: number }
  | {
      readonly type: 'changeVoters';
      readonly promote: readonly { readonly storeId: number; readonly peerId: number }[];
      readonly remove: readonly { readonly storeId: number; readonly peerId: number }[];
    }
  | { readonly type: 'transferLeader'; readonly fromStoreId: number; readonly toStoreId: number }
  | { readonly type: 'removePeer'; readonly storeId: number; readonly peerId: number }
  | { readonly type: 'split'; readonly keys: readonly Uint8Array[] }
  | { readonly type: 'merge'; readonly targetRegionId: number };

export interface RegionCommand {
  readonly regionId: number;
  readonly operatorId: number;
  /**
   * The region's epoch when PD made the operator. A split or merge step runs only while the
   * region's version is still this one: PD repeats a step until it sees it done, and a split
   * repeated after the first one applied would cut the region again with the same new ids.
   */
  readonly regionEpoch: RegionEpoch;
  readonly step: PdOperatorStep;
  /** Ids PD allocated for what the step creates (a split's new region and peers). */
  readonly newIds?: readonly number[];
}

export interface RegionHeartbeatResponse {
  /** Steps to run now, at most one per region; regions without a command are absent. */
  readonly commands: readonly RegionCommand[];
}

// ------------------------------------------------------------------ JSON writing

export function hexOf(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** A value ready for JSON.stringify: byte keys become hex strings, nothing else changes. */
export function pdJson(value: unknown): unknown {
  if (value instanceof Uint8Array) return hexOf(value);
  if (Array.isArray(value)) return value.map(pdJson);
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [name, field] of Object.entries(value)) if (field !== undefined) out[name] = pdJson(field);
    return out;
  }
  return value;
}

// ------------------------------------------------------------------ JSON reading

export function readJoinRequest(value: unknown): JoinRequest {
  const o = object(value, 'join request');
  const storeId = o['storeId'] === undefined ? undefined : readId(o['storeId'], 'storeId');
  return {
    clusterId: readId(o['clusterId'], 'clusterId'),
    token: text(o['token'], pdLimits.tokenTextMax, 'token'),
    ...(storeId === undefined ? {} : { storeId }),
    raftAddress: text(o['raftAddress'], pdLimits.addressTextMax, 'raftAddress'),
    apiAddress: text(o['apiAddress'], pdLimits.addressTextMax, 'apiAddress'),
    labels: readLocationLabels(o['labels'] ?? {}),
  };
}

export function readJoinResponse(value: unknown): JoinResponse {
  const o = object(value, 'join response');
  const region = o['bootstrapRegion'] === undefined ? undefined : readRegionJson(o['bootstrapRegion'], 'bootstrapRegion');
  return { clusterId: readId(o['clusterId'], 'clusterId'), storeId: readId(o['storeId'], 'storeId'), ...(region ? { bootstrapRegion: region } : {}) };
}

export function readStoreHeartbeat(value: unknown): StoreHeartbeat {
  const o = object(value, 'store heartbeat');
  return {
    storeId: readId(o['storeId'], 'storeId'),
    capacityBytes: readUint(o['capacityBytes'], 'capacityBytes'),
    availableBytes: readUint(o['availableBytes'], 'availableBytes'),
    usedBytes: readUint(o['usedBytes'], 'usedBytes'),
    regionCount: readUint(o['regionCount'], 'regionCount'),
    leaderCount: readUint(o['leaderCount'], 'leaderCount'),
    rates: rates(o['rates'], 'rates'),
    ...(o['refusingWrites'] === undefined ? {} : { refusingWrites: readBool(o['refusingWrites'], 'refusingWrites') }),
  };
}

export function readStoreHeartbeatResponse(value: unknown): StoreHeartbeatResponse {
  const o = object(value, 'store heartbeat response');
  return {
    operatorRegionIds: readList(o['operatorRegionIds'] ?? [], pdLimits.regionHeartbeatsPerRequestMax, 'operatorRegionIds').map((r) => readId(r, 'operatorRegionIds')),
    stores: readList(o['stores'], pdLimits.storesMax, 'stores').map((s, i) => {
      const a = object(s, `stores[${i}]`);
      return {
        storeId: readId(a['storeId'], `stores[${i}].storeId`),
        raftAddress: text(a['raftAddress'], pdLimits.addressTextMax, `stores[${i}].raftAddress`),
        apiAddress: text(a['apiAddress'], pdLimits.addressTextMax, `stores[${i}].apiAddress`),
      };
    }),
  };
}

export function readOperatorWatch(value: unknown): OperatorWatch {
  const o = object(value, 'operator watch');
  return { storeId: readId(o['storeId'], 'storeId'), timeoutMs: readUint(o['timeoutMs'], 'timeoutMs') };
}

export function readOperatorWatchResponse(value: unknown): OperatorWatchResponse {
  const o = object(value, 'operator watch response');
  return { regionIds: readList(o['regionIds'], pdLimits.regionHeartbeatsPerRequestMax, 'regionIds').map((r) => readId(r, 'regionIds')) };
}

export function readRegionHeartbeatRequest(value: unknown): RegionHeartbeatRequest {
  const o = object(value, 'region heartbeat request');
  const beats = readList(o['heartbeats'], pdLimits.regionHeartbeatsPerRequestMax, 'heartbeats');
  return { storeId: readId(o['storeId'], 'storeId'), heartbeats: beats.map((b, i) => readRegionHeartbeat(b, `heartbeats[${i}]`)) };
}

function readRegionHeartbeat(value: unknown, what: string): RegionHeartbeat {
  const o = object(value, what);
  return {
    region: readRegionJson(o['region'], `${what}.region`),
    leaderPeerId: readId(o['leaderPeerId'], `${what}.leaderPeerId`),
    downPeerIds: readList(o['downPeerIds'] ?? [], pdLimits.reportedPeersMax, `${what}.downPeerIds`).map((p) => readId(p, `${what}.downPeerIds`)),
    pendingPeerIds: readList(o['pendingPeerIds'] ?? [], pdLimits.reportedPeersMax, `${what}.pendingPeerIds`).map((p) => readId(p, `${what}.pendingPeerIds`)),
    approximateBytes: readUint(o['approximateBytes'] ?? 0, `${what}.approximateBytes`),
    approximateKeys: readUint(o['approximateKeys'] ?? 0, `${what}.approximateKeys`),
    rates: rates(o['rates'] ?? ZERO, `${what}.rates`),
  };
}

export function readRegionHeartbeatResponse(value: unknown): RegionHeartbeatResponse {
  const o = object(value, 'region heartbeat response');
  const commands = readList(o['commands'], pdLimits.regionHeartbeatsPerRequestMax, 'commands');
  return {
    commands: commands.map((c, i) => {
      const a = object(c, `commands[${i}]`);
      const newIds = a['newIds'] === undefined ? undefined : readList(a['newIds'], regionPeersMax + 1, `commands[${i}].newIds`).map((n) => readId(n, `commands[${i}].newIds`));
      const epoch = object(a['regionEpoch'], `commands[${i}].regionEpoch`);
      return {
        regionId: readId(a['regionId'], `commands[${i}].regionId`),
        operatorId: readId(a['operatorId'], `commands[${i}].operatorId`),
        regionEpoch: { version: readUint(epoch['version'], `commands[${i}].regionEpoch.version`), confVer: readUint(epoch['confVer'], `commands[${i}].regionEpoch.confVer`) },
        step: readStep(a['step'], `commands[${i}].step`),
        ...(newIds ? { newIds } : {}),
      };
    }),
  };
}

export function readStep(value: unknown, what: string): PdOperatorStep {
  const o = object(value, what);
  const peerRef = (v: unknown, at: string): { storeId: number; peerId: number } => {
    const p = object(v, at);
    return { storeId: readId(p['storeId'], `${at}.storeId`), peerId: readId(p['peerId'], `${at}.peerId`) };
  };
  switch (o['type']) {
    case 'addLearner':
    case 'removePeer':
      return { type: o['type'], ...peerRef(o, what) };
    case 'changeVoters':
      return {
        type: 'changeVoters',
        promote: readList(o['promote'], regionPeersMax, `${what}.promote`).map((p, i) => peerRef(p, `${what}.promote[${i}]`)),
        remove: readList(o['remove'], regionPeersMax, `${what}.remove`).map((p, i) => peerRef(p, `${what}.remove[${i}]`)),
      };
    case 'transferLeader':
      return { type: 'transferLeader', fromStoreId: readId(o['fromStoreId'], `${what}.fromStoreId`), toStoreId: readId(o['toStoreId'], `${what}.toStoreId`) };
    case 'split':
      return { type: 'split', keys: readList(o['keys'], pdLimits.splitKeysMax, `${what}.keys`).map((k, i) => hexKey(k, `${what}.keys[${i}]`)) };
    case 'merge':
      return { type: 'merge', targetRegionId: readId(o['targetRegionId'], `${what}.targetRegionId`) };
    default:
      return malformed(`${what}.type: unknown step type ${JSON.stringify(o['type'])}`);
  }
}

/** A region as JSON: { id, startKey, endKey (hex), epoch: {version, confVer}, peers: [{id, storeId, role}] }. */
export function readRegionJson(value: unknown, what: string): RegionMeta {
  const o = object(value, what);
  const epoch = object(o['epoch'], `${what}.epoch`);
  return {
    id: readId(o['id'], `${what}.id`),
    startKey: hexKey(o['startKey'], `${what}.startKey`),
    endKey: hexKey(o['endKey'], `${what}.endKey`),
    epoch: { version: readUint(epoch['version'], `${what}.epoch.version`), confVer: readUint(epoch['confVer'], `${what}.epoch.confVer`) },
    peers: readList(o['peers'], regionPeersMax, `${what}.peers`).map((p, i): RegionPeer => {
      const peer = object(p, `${what}.peers[${i}]`);
      const role = peer['role'];
      if (role !== 'voter' && role !== 'learner') malformed(`${what}.peers[${i}].role: expected "voter" or "learner"`);
      return { id: readId(peer['id'], `${what}.peers[${i}].id`), storeId: readId(peer['storeId'], `${what}.peers[${i}].storeId`), role };
    }),
  };
}

const ZERO: FlowRatesJson = { writeBytes: 0, writeKeys: 0, readBytes: 0, readKeys: 0 };

function rates(value: unknown, what: string): FlowRatesJson {
  const o = object(value, what);
  return {
    writeBytes: readUint(o['writeBytes'] ?? 0, `${what}.writeBytes`),
    writeKeys: readUint(o['writeKeys'] ?? 0, `${what}.writeKeys`),
    readBytes: readUint(o['readBytes'] ?? 0, `${what}.readBytes`),
    readKeys: readUint(o['readKeys'] ?? 0, `${what}.readKeys`),
  };
}

/**
 * Location labels (a store's `--labels`, a client's own): at most labelsMax, names and values
 * of 1..labelTextMax characters; WireError otherwise.
 */
export function readLocationLabels(value: unknown): Readonly<Record<string, string>> {
  const o = object(value, 'labels');
  const entries = Object.entries(o);
  if (entries.length > pdLimits.labelsMax) limit(`labels: ${entries.length}, at most ${pdLimits.labelsMax}`);
  const out: Record<string, string> = {};
  for (const [name, label] of entries) {
    if (name.length === 0 || name.length > pdLimits.labelTextMax) malformed(`labels: a name of 1..${pdLimits.labelTextMax} characters`);
    out[name] = text(label, pdLimits.labelTextMax, `labels.${name}`);
  }
  return out;
}

function hexKey(value: unknown, what: string): Uint8Array {
  if (typeof value !== 'string' || value.length % 2 !== 0 || !/^[0-9a-f]*$/.test(value)) malformed(`${what}: expected lowercase hex`);
  if (value.length / 2 > kvKeyBytesMax) limit(`${what}: ${value.length / 2} bytes, at most ${kvKeyBytesMax}`);
  return new Uint8Array(Buffer.from(value, 'hex'));
}

function object(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) malformed(`${what}: expected an object`);
  return value as Record<string, unknown>;
}

function text(value: unknown, max: number, what: string): string {
  if (typeof value !== 'string' || value.length === 0) malformed(`${what}: expected a non-empty string`);
  if (value.length > max) limit(`${what}: ${value.length} characters, at most ${max}`);
  return value;
}

function limit(what: string): never {
  throw new WireError('FLOTILLA_WIRE_LIMIT_EXCEEDED', what);
}
