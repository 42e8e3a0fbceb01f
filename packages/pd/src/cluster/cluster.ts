/**
 * The PD leader's picture of the cluster: stores, regions, ids, the running operators. It is
 * loaded from the replicated metadata when this member becomes leader and thrown away when it
 * stops leading; every change that must outlive a leader is written to the metadata group
 * BEFORE it is acknowledged or acted on. Heartbeat statistics (rates, sizes, leaders) are kept
 * in memory only, as TiKV's PD does: the next heartbeats bring them back.
 */
import { monotonicNowMs } from '@flotilla/store';
import type {
  JoinRequest,
  JoinResponse,
  RegionHeartbeat,
  RegionMeta,
  StoreAddress,
  StoreHeartbeat,
} from '@flotilla/wire';
import { PdError } from '../errors.ts';
import { IdAllocator } from '../meta/id-allocator.ts';
import type { MetaStore, MetaWrite } from '../meta/meta-store.ts';
import {
  CLUSTER_KEY,
  REGION_PREFIX,
  STORE_PREFIX,
  decodeCluster,
  decodeRegion,
  decodeStore,
  encodeCluster,
  encodeRegion,
  encodeStore,
  regionKey,
  storeKey,
  type ClusterRecord,
  type StoreAdminState,
  type StoreRecord,
} from '../meta/records.ts';
import { RegionIndex } from './region-index.ts';
import { ZERO_RATES, type RegionInfo, type StoreInfo, type StoreState } from './types.ts';

/** How a store's heartbeat age maps to its state. */
export interface StoreTiming {
  readonly storeDisconnectMs: number;
  readonly storeDownMs: number;
}

/** Stores PD accepts; a join past it is refused (the wire protocol's bound). */
export const clusterStoresMax = 1024;

interface StoreEntry {
  record: StoreRecord;
  heartbeat: StoreHeartbeat | null;
  lastHeartbeatMs: number;
}

/** What a region heartbeat did to PD's map (the caller logs the interesting ones). */
export type RegionReport =
  | { readonly kind: 'refreshed' }
  | { readonly kind: 'changed'; readonly replaced: readonly number[] }
  | { readonly kind: 'stale'; readonly newer: RegionMeta };

export class Cluster {
  private readonly stores = new Map<number, StoreEntry>();
  readonly regions = new RegionIndex();
  /** Joins and admin-state changes run one at a time: each reads, then writes, the store set. */
  private storeChanges: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly meta: MetaStore,
    readonly clusterId: number,
    private record: ClusterRecord | null,
    readonly ids: IdAllocator,
    private readonly now: () => number,
  ) {}

  /**
   * Everything the metadata group holds, read linearizably: the first thing a new leader does.
   * Stores count as just heard from, so a leader change declares no store down by itself.
   * `now` times every silence and age (default: the monotonic clock, so a wall-clock step never
   * declares a store down).
   */
  static async load(meta: MetaStore, clusterId: number, now: () => number = monotonicNowMs): Promise<Cluster> {
    const stored = await meta.get(CLUSTER_KEY);
    const record = stored ? decodeCluster(stored) : null;
    if (record && record.clusterId !== clusterId) {
      throw new PdError('FLOTILLA_PD_CLUSTER_MISMATCH', `PD's metadata belongs to cluster ${record.clusterId}, this PD runs cluster ${clusterId}`);
    }
    const cluster = new Cluster(meta, clusterId, record, await IdAllocator.load(meta), now);
    const takeover = now();
    for (const row of await meta.scanPrefix(STORE_PREFIX)) {
      const store = decodeStore(row.value);
      cluster.stores.set(store.id, { record: store, heartbeat: null, lastHeartbeatMs: takeover });
    }
    for (const row of await meta.scanPrefix(REGION_PREFIX)) {
      cluster.regions.put(regionInfoOf(decodeRegion(row.value), 0, takeover));
    }
    return cluster;
  }

  get bootstrapped(): ClusterRecord | null {
    return this.record;
  }

  // ------------------------------------------------------------------ stores

  /**
   * A store joins (or rejoins): idempotent by the data directory's token. The first store to
   * join an empty cluster founds it: PD records the first region (all keys, one voter on
   * that store) in the same write as the store, and answers it on every retry of that store.
   */
  join(request: JoinRequest): Promise<JoinResponse> {
    return this.oneAtATime(() => this.joinNow(request));
  }

  private async joinNow(request: JoinRequest): Promise<JoinResponse> {
    if (request.clusterId !== this.clusterId) {
      throw new PdError('FLOTILLA_PD_CLUSTER_MISMATCH', `this PD runs cluster ${this.clusterId}, the store asked to join cluster ${request.clusterId}`);
    }
    const known = this.knownStore(request);
    const record = known ? await this.refreshStore(known, request) : await this.registerStore(request);
    const founder = this.record?.firstStoreId === record.id;
    return { clusterId: this.clusterId, storeId: record.id, ...(founder && this.record ? { bootstrapRegion: this.record.firstRegion } : {}) };
  }

  private knownStore(request: JoinRequest): StoreRecord | undefined {
    const byToken = [...this.stores.values()].find((s) => s.record.token === request.token)?.record;
    if (request.storeId !== undefined && byToken?.id !== request.storeId) {
      throw new PdError(
        'FLOTILLA_PD_STORE_NOT_FOUND',
        `store ${request.storeId} with this data directory is unknown to PD (was PD's metadata reset, or the directory copied?)`,
      );
    }
    if (byToken?.adminState === 'tombstone') {
      throw new PdError('FLOTILLA_PD_STORE_TOMBSTONE', `store ${byToken.id} was removed from the cluster; wipe its data directory to join as a new store`);
    }
    return byToken;
  }

  private async refreshStore(known: StoreRecord, request: JoinRequest): Promise<StoreRecord> {
    const moved = known.raftAddress !== request.raftAddress || known.apiAddress !== request.apiAddress || !sameLabels(known.labels, request.labels);
    if (!moved) return known;
    const record: StoreRecord = { ...known, raftAddress: request.raftAddress, apiAddress: request.apiAddress, labels: request.labels };
    await this.meta.write([{ op: 'put', key: storeKey(record.id), value: encodeStore(record) }]);
    this.entry(record.id).record = record;
    return record;
  }

  private async registerStore(request: JoinRequest): Promise<StoreRecord> {
    if (this.stores.size >= clusterStoresMax) throw new PdError('FLOTILLA_PD_SERVER_BUSY', `the cluster has ${this.stores.size} stores, at most ${clusterStoresMax}`);
    const nowMs = this.now();
    const founding = this.record === null;
    const [storeId, regionId, peerId] = await this.ids.allocate(founding ? 3 : 1);
    const record: StoreRecord = {
      id: storeId!,
      token: request.token,
      raftAddress: request.raftAddress,
      apiAddress: request.apiAddress,
      labels: request.labels,
      adminState: 'serving',
      registeredMs: nowMs,
    };
    const writes: MetaWrite[] = [{ op: 'put', key: storeKey(record.id), value: encodeStore(record) }];
    let founded: ClusterRecord | null = null;
    if (founding) {
      const firstRegion: RegionMeta = {
        id: regionId!,
        startKey: new Uint8Array(0),
        endKey: new Uint8Array(0),
        epoch: { version: 1, confVer: 1 },
        peers: [{ id: peerId!, storeId: record.id, role: 'voter' }],
      };
      founded = { clusterId: this.clusterId, bootstrappedMs: nowMs, firstStoreId: record.id, firstRegion };
      writes.push({ op: 'put', key: CLUSTER_KEY, value: encodeCluster(founded) }, { op: 'put', key: regionKey(firstRegion.id), value: encodeRegion(firstRegion) });
    }
    await this.meta.write(writes);
    this.stores.set(record.id, { record, heartbeat: null, lastHeartbeatMs: nowMs });
    if (founded) {
      this.record = founded;
      this.regions.put(regionInfoOf(founded.firstRegion, 0, nowMs));
    }
    return record;
  }

  storeHeartbeat(heartbeat: StoreHeartbeat): StoreAddress[] {
    const entry = this.entry(heartbeat.storeId);
    if (entry.record.adminState === 'tombstone') throw new PdError('FLOTILLA_PD_STORE_TOMBSTONE', `store ${heartbeat.storeId} was removed from the cluster`);
    entry.heartbeat = heartbeat;
    entry.lastHeartbeatMs = this.now();
    return this.storeAddresses();
  }

  /** Where every store that is not a tombstone can be reached. */
  storeAddresses(): StoreAddress[] {
    return [...this.stores.values()]
      .filter((s) => s.record.adminState !== 'tombstone')
      .map((s) => ({ storeId: s.record.id, raftAddress: s.record.raftAddress, apiAddress: s.record.apiAddress }));
  }

  /** Marks a store offline (drain it), serving again, or tombstone (only once it holds nothing). */
  setStoreAdminState(storeId: number, state: StoreAdminState): Promise<StoreRecord> {
    return this.oneAtATime(() => this.setStoreAdminStateNow(storeId, state));
  }

  private async setStoreAdminStateNow(storeId: number, state: StoreAdminState): Promise<StoreRecord> {
    const entry = this.entry(storeId);
    if (entry.record.adminState === 'tombstone') throw new PdError('FLOTILLA_PD_STORE_TOMBSTONE', `store ${storeId} is already a tombstone`);
    if (state === 'tombstone') {
      const held = this.regions.all().filter((r) => r.meta.peers.some((p) => p.storeId === storeId)).length;
      if (held > 0) throw new PdError('FLOTILLA_PD_INVALID_ARGUMENT', `store ${storeId} still holds ${held} region replicas; set it offline and wait until they moved`);
    }
    const record: StoreRecord = { ...entry.record, adminState: state };
    await this.meta.write([{ op: 'put', key: storeKey(storeId), value: encodeStore(record) }]);
    entry.record = record;
    return record;
  }

  /** Every store as the schedulers see it; `up`/`disconnected`/`down` follow from heartbeat age. */
  storeInfos(timing: StoreTiming): StoreInfo[] {
    const nowMs = this.now();
    return [...this.stores.values()].map((s) => storeInfoOf(s, stateOf(s, nowMs, timing)));
  }

  storeInfo(storeId: number, timing: StoreTiming): StoreInfo {
    const entry = this.entry(storeId);
    return storeInfoOf(entry, stateOf(entry, this.now(), timing));
  }

  private oneAtATime<T>(change: () => Promise<T>): Promise<T> {
    const run = this.storeChanges.then(change, change);
    this.storeChanges = run.catch(() => {});
    return run;
  }

  private entry(storeId: number): StoreEntry {
    const entry = this.stores.get(storeId);
    if (!entry) throw new PdError('FLOTILLA_PD_STORE_NOT_FOUND', `store ${storeId} is not registered with PD`);
    return entry;
  }

  // ------------------------------------------------------------------ regions

  /**
   * The region heartbeats of one store's leaders. Stale reports are refused region by region;
   * regions whose epoch changed are persisted (all of this request's in one write) before the
   * answer, so a new PD leader starts from them.
   */
  async regionHeartbeats(storeId: number, heartbeats: readonly RegionHeartbeat[]): Promise<RegionReport[]> {
    this.entry(storeId);
    const nowMs = this.now();
    const writes: MetaWrite[] = [];
    const reports = heartbeats.map((beat): RegionReport => {
      const outcome = this.regions.put(regionInfoOf(beat.region, beat.leaderPeerId, nowMs, beat));
      if (outcome.kind === 'stale') return { kind: 'stale', newer: outcome.newer.meta };
      if (!outcome.metaChanged) return { kind: 'refreshed' };
      writes.push({ op: 'put', key: regionKey(beat.region.id), value: encodeRegion(beat.region) });
      for (const removed of outcome.removed) writes.push({ op: 'delete', key: regionKey(removed.meta.id) });
      return { kind: 'changed', replaced: outcome.removed.map((r) => r.meta.id) };
    });
    await this.meta.write(writes);
    return reports;
  }

  /** The leader's store of a region, if PD knows it. */
  leaderStoreOf(region: RegionInfo): number | undefined {
    return region.meta.peers.find((p) => p.id === region.leaderPeerId)?.storeId;
  }
}

function regionInfoOf(meta: RegionMeta, leaderPeerId: number, nowMs: number, beat?: RegionHeartbeat): RegionInfo {
  return {
    meta,
    leaderPeerId,
    downPeerIds: beat?.downPeerIds ?? [],
    pendingPeerIds: beat?.pendingPeerIds ?? [],
    approximateBytes: beat?.approximateBytes ?? 0,
    approximateKeys: beat?.approximateKeys ?? 0,
    rates: beat?.rates ?? ZERO_RATES,
    lastHeartbeatMs: nowMs,
  };
}

function stateOf(entry: StoreEntry, nowMs: number, timing: StoreTiming): StoreState {
  if (entry.record.adminState === 'tombstone') return 'tombstone';
  if (entry.record.adminState === 'offline') return 'offline';
  const silentMs = nowMs - entry.lastHeartbeatMs;
  if (silentMs >= timing.storeDownMs) return 'down';
  if (silentMs >= timing.storeDisconnectMs) return 'disconnected';
  return 'up';
}

function storeInfoOf(entry: StoreEntry, state: StoreState): StoreInfo {
  const beat = entry.heartbeat;
  return {
    id: entry.record.id,
    raftAddress: entry.record.raftAddress,
    apiAddress: entry.record.apiAddress,
    labels: entry.record.labels,
    state,
    capacityBytes: beat?.capacityBytes ?? 0,
    availableBytes: beat?.availableBytes ?? 0,
    usedBytes: beat?.usedBytes ?? 0,
    regionCount: beat?.regionCount ?? 0,
    leaderCount: beat?.leaderCount ?? 0,
    rates: beat?.rates ?? ZERO_RATES,
    refusingWrites: beat?.refusingWrites ?? false,
    lastHeartbeatMs: entry.lastHeartbeatMs,
  };
}

function sameLabels(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const names = Object.keys(a);
  return names.length === Object.keys(b).length && names.every((name) => a[name] === b[name]);
}
