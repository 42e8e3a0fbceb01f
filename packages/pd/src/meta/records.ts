/**
 * What PD persists in its metadata group, and how. Keys are short ASCII prefixes plus a
 * big-endian u64 id (so a prefix scan returns ids in order); values are msgpack tuples whose
 * first element is the record's format version. Anything PD cannot read back is a typed
 * FLOTILLA_PD_CORRUPT_META, never a guess.
 *
 *   c/cluster      ClusterRecord   written once, when the first store joins
 *   c/alloc        u64             the highest id handed out (ids are reserved in blocks)
 *   c/config       ScheduleConfig  as JSON (operators edit it through the API)
 *   s/<storeId>    StoreRecord
 *   r/<regionId>   RegionMeta      rewritten when a heartbeat brings a newer epoch
 *   m/<memberId>   MemberRecord    a PD member's addresses (its raft peer id is its member id)
 */
import { Packr } from 'msgpackr';
import type { RegionMeta, RegionPeer } from '@flotilla/wire';
import { PdError } from '../errors.ts';
import type { StoreLabels } from '../cluster/types.ts';

const FORMAT = 1;
const packr = new Packr({ useRecords: false, mapsAsObjects: true });
const ascii = (text: string): Uint8Array => new TextEncoder().encode(text);

export const CLUSTER_KEY = ascii('c/cluster');
export const ALLOC_KEY = ascii('c/alloc');
export const CONFIG_KEY = ascii('c/config');
export const STORE_PREFIX = ascii('s/');
export const REGION_PREFIX = ascii('r/');
export const MEMBER_PREFIX = ascii('m/');

export function memberKey(memberId: number): Uint8Array {
  return idKey(MEMBER_PREFIX, memberId);
}

export function storeKey(storeId: number): Uint8Array {
  return idKey(STORE_PREFIX, storeId);
}

export function regionKey(regionId: number): Uint8Array {
  return idKey(REGION_PREFIX, regionId);
}

function idKey(prefix: Uint8Array, id: number): Uint8Array {
  const key = new Uint8Array(prefix.length + 8);
  key.set(prefix);
  new DataView(key.buffer).setBigUint64(prefix.length, BigInt(id));
  return key;
}

/** The cluster's birth certificate: which store founded it and with which first region. */
export interface ClusterRecord {
  readonly clusterId: number;
  readonly bootstrappedMs: number;
  readonly firstStoreId: number;
  readonly firstRegion: RegionMeta;
}

/** A store's admin-set state; up / disconnected / down follow from its heartbeats instead. */
export type StoreAdminState = 'serving' | 'offline' | 'tombstone';

export interface StoreRecord {
  readonly id: number;
  /** Random identity of the store's data directory: a retried join gets the same id back. */
  readonly token: string;
  readonly raftAddress: string;
  readonly apiAddress: string;
  readonly labels: StoreLabels;
  readonly adminState: StoreAdminState;
  readonly registeredMs: number;
}

/** A PD member: where its raft transport listens, and the URL clients and tools use. */
export interface MemberRecord {
  readonly id: number;
  readonly raftAddress: string;
  readonly clientUrl: string;
}

export function encodeMember(record: MemberRecord): Uint8Array {
  return packr.pack([FORMAT, record.id, record.raftAddress, record.clientUrl]);
}

export function decodeMember(bytes: Uint8Array): MemberRecord {
  const [id, raftAddress, clientUrl] = fields(bytes, 3, 'member record');
  return { id: uint(id, 'member id'), raftAddress: text(raftAddress, 'member raftAddress'), clientUrl: text(clientUrl, 'member clientUrl') };
}

export function encodeCluster(record: ClusterRecord): Uint8Array {
  return packr.pack([FORMAT, record.clusterId, record.bootstrappedMs, record.firstStoreId, regionTuple(record.firstRegion)]);
}

export function decodeCluster(bytes: Uint8Array): ClusterRecord {
  const [clusterId, bootstrappedMs, firstStoreId, region] = fields(bytes, 4, 'cluster record');
  return {
    clusterId: uint(clusterId, 'clusterId'),
    bootstrappedMs: uint(bootstrappedMs, 'bootstrappedMs'),
    firstStoreId: uint(firstStoreId, 'firstStoreId'),
    firstRegion: readRegion(region),
  };
}

export function encodeAlloc(highest: number): Uint8Array {
  return packr.pack([FORMAT, highest]);
}

export function decodeAlloc(bytes: Uint8Array): number {
  const [highest] = fields(bytes, 1, 'id allocator record');
  return uint(highest, 'highest allocated id');
}

export function encodeStore(record: StoreRecord): Uint8Array {
  return packr.pack([FORMAT, record.id, record.token, record.raftAddress, record.apiAddress, { ...record.labels }, record.adminState, record.registeredMs]);
}

export function decodeStore(bytes: Uint8Array): StoreRecord {
  const [id, token, raftAddress, apiAddress, labels, adminState, registeredMs] = fields(bytes, 7, 'store record');
  if (adminState !== 'serving' && adminState !== 'offline' && adminState !== 'tombstone') corrupt(`store admin state ${String(adminState)}`);
  return {
    id: uint(id, 'store id'),
    token: text(token, 'store token'),
    raftAddress: text(raftAddress, 'raftAddress'),
    apiAddress: text(apiAddress, 'apiAddress'),
    labels: readLabels(labels),
    adminState,
    registeredMs: uint(registeredMs, 'registeredMs'),
  };
}

export function encodeRegion(region: RegionMeta): Uint8Array {
  return packr.pack([FORMAT, regionTuple(region)]);
}

export function decodeRegion(bytes: Uint8Array): RegionMeta {
  const [region] = fields(bytes, 1, 'region record');
  return readRegion(region);
}

export function encodeConfig(config: object): Uint8Array {
  return ascii(JSON.stringify(config));
}

export function decodeConfig(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as unknown;
  } catch (err) {
    throw new PdError('FLOTILLA_PD_CORRUPT_META', 'the stored schedule config is not JSON', { cause: err });
  }
}

function regionTuple(region: RegionMeta): unknown[] {
  return [
    region.id,
    region.startKey,
    region.endKey,
    region.epoch.version,
    region.epoch.confVer,
    region.peers.map((p) => [p.id, p.storeId, p.role === 'voter' ? 0 : 1]),
  ];
}

function readRegion(value: unknown): RegionMeta {
  if (!Array.isArray(value) || value.length !== 6) corrupt('region tuple');
  const [id, startKey, endKey, version, confVer, peers] = value as unknown[];
  if (!Array.isArray(peers)) corrupt('region peers');
  return {
    id: uint(id, 'region id'),
    startKey: bytes(startKey, 'startKey'),
    endKey: bytes(endKey, 'endKey'),
    epoch: { version: uint(version, 'version'), confVer: uint(confVer, 'confVer') },
    peers: (peers as unknown[]).map(readPeer),
  };
}

function readPeer(value: unknown): RegionPeer {
  if (!Array.isArray(value) || value.length !== 3) corrupt('region peer');
  const [id, storeId, role] = value as unknown[];
  if (role !== 0 && role !== 1) corrupt(`peer role ${String(role)}`);
  return { id: uint(id, 'peer id'), storeId: uint(storeId, 'peer store id'), role: role === 0 ? 'voter' : 'learner' };
}

function readLabels(value: unknown): StoreLabels {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) corrupt('store labels');
  const labels: Record<string, string> = {};
  for (const [name, label] of Object.entries(value as object)) labels[name] = text(label, `label ${name}`);
  return labels;
}

function fields(encoded: Uint8Array, count: number, what: string): unknown[] {
  let value: unknown;
  try {
    value = packr.unpack(encoded);
  } catch (err) {
    throw new PdError('FLOTILLA_PD_CORRUPT_META', `${what} is not msgpack`, { cause: err });
  }
  if (!Array.isArray(value) || value.length !== count + 1) corrupt(what);
  if (value[0] !== FORMAT) corrupt(`${what} of format ${String(value[0])} (this PD reads format ${FORMAT})`);
  return value.slice(1);
}

function uint(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) corrupt(what);
  return value;
}

function text(value: unknown, what: string): string {
  if (typeof value !== 'string') corrupt(what);
  return value;
}

function bytes(value: unknown, what: string): Uint8Array {
  if (!(value instanceof Uint8Array)) corrupt(what);
  return value;
}

function corrupt(what: string): never {
  throw new PdError('FLOTILLA_PD_CORRUPT_META', `unreadable PD metadata: ${what}`);
}
