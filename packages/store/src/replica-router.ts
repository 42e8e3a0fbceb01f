import { EMPTY_CONF_STATE, isRaftError, type ConfState, type LeaseClock, type Message, type RaftConfig, type SeededRandom } from '@flotilla/raft';
import type { LogEngine, RegionMeta } from '@flotilla/storage';
import type { StoreId } from '@flotilla/transport';
import { limits } from './constants.ts';
import { StoreError } from './errors.ts';
import type { ReplicaCounts, ReplicaStatus } from './host-types.ts';
import { Peer } from './peer.ts';
import { peerRaftStorage, snapshotDescriptor } from './snapshots.ts';

/** Finds this store's replica of a region (merge-proposals.ts and the host's helpers need no more). */
export interface ReplicaLookup {
  get(regionId: number): Peer | undefined;
}

export interface ReplicaRouterOptions {
  readonly storeId: StoreId;
  readonly log: LogEngine;
  /** One seeded source of election jitter for all groups of the store. */
  readonly random: SeededRandom;
  readonly hibernateAfterTicks: number;
  /** A replica's raft node has work: the host schedules a ready cycle for it. */
  readonly markDirty: (peer: Peer) => void;
  /** False once the host closed: no message creates a replica any more. */
  readonly accepting: () => boolean;
  /** Leaders serve linearizable reads from their lease (read-lease.ts); undefined: ReadIndex rounds only. */
  readonly readLease?: LeaseClock;
}

function leaseReads(lease: LeaseClock): Pick<RaftConfig, 'readOnlyOption' | 'maxClockDriftTicks' | 'beforeLeaseUse'> {
  return { readOnlyOption: 'leaseBased', maxClockDriftTicks: limits.readLeaseDriftTicks, beforeLeaseUse: () => lease.beforeLeaseUse() };
}

/**
 * The store's replicas by region id, and the router of the raft messages that arrive for
 * them. A message for a region with no replica here creates an empty one (a placeholder) when
 * a leader sent it and it is not stale: the tombstones remember which replicas this store
 * removed, so a late message to one of them never brings it back.
 */
export class ReplicaRouter implements ReplicaLookup, Iterable<Peer> {
  private readonly peers = new Map<number, Peer>();
  /** Regions whose replica left this store -> the removed peer id (bounded, oldest forgotten). */
  private readonly tombstones = new Map<number, number>();
  /** Split children whose founding log write runs now: their messages are dropped meanwhile. */
  private readonly foundingChildren = new Set<number>();

  /** The raft settings of lease reads, one object shared by every peer ({} when off). */
  private readonly leaseConfig: Partial<RaftConfig>;

  constructor(private readonly options: ReplicaRouterOptions) {
    this.leaseConfig = options.readLease ? leaseReads(options.readLease) : {};
  }

  get size(): number {
    return this.peers.size;
  }

  get(regionId: number): Peer | undefined {
    return this.peers.get(regionId);
  }

  /** Every replica here, in creation order. */
  [Symbol.iterator](): IterableIterator<Peer> {
    return this.peers.values();
  }

  /** False for a peer that was replaced (a split child's placeholder) or destroyed since. */
  isCurrent(peer: Peer): boolean {
    return this.peers.get(peer.regionId) === peer;
  }

  /** Throws when `count` more replicas would pass limits.peersMax. */
  checkRoomFor(count: number): void {
    if (this.peers.size + count > limits.peersMax) throw new StoreError('FLOTILLA_STORE_TOO_MANY_PEERS', `this store would host more than ${limits.peersMax} peers`);
  }

  /** Starts the raft group of this store's replica of `region`; `confState` is its configuration at `applied`. */
  add(region: RegionMeta, applied: number, confState: ConfState): Peer {
    if (this.peers.size >= limits.peersMax) throw new StoreError('FLOTILLA_STORE_TOO_MANY_PEERS', `this store hosts ${limits.peersMax} peers already`);
    const self = region.peers.find((p) => p.storeId === this.options.storeId);
    if (!self) throw new StoreError('FLOTILLA_STORE_INVALID_REGION', `region ${region.id} has no replica on store ${this.options.storeId}`);
    const storage = peerRaftStorage(this.options.log, region.id, confState, () => snapshotDescriptor(this.peers.get(region.id)!, storage));
    const peer = new Peer(self.id, region, applied, {
      id: self.id,
      storage,
      random: this.options.random,
      applied,
      electionTicks: limits.electionTicks,
      heartbeatTicks: limits.heartbeatTicks,
      hibernateAfterTicks: this.options.hibernateAfterTicks,
      preVote: true,
      checkQuorum: true,
      ...this.leaseConfig,
    }, () => this.options.markDirty(peer));
    this.peers.set(region.id, peer);
    this.options.markDirty(peer);
    return peer;
  }

  /** Forgets the region's replica without a tombstone (a placeholder a split child replaces); answers it. */
  detach(regionId: number): Peer | undefined {
    const peer = this.peers.get(regionId);
    this.peers.delete(regionId);
    return peer;
  }

  /** The replica left its region: forgotten, and messages to it (or an older one) stay stale. */
  remove(peer: Peer): void {
    this.peers.delete(peer.regionId);
    this.rememberTombstone(peer.regionId, peer.peerId);
  }

  rememberTombstone(regionId: number, peerId: number): void {
    if (this.tombstones.size >= limits.tombstonesMax) {
      const oldest = this.tombstones.keys().next().value;
      if (oldest !== undefined) this.tombstones.delete(oldest);
    }
    this.tombstones.set(regionId, peerId);
  }

  /** Runs a split child's founding log write; the region's messages are dropped until it is done. */
  async whileFounding<T>(regionId: number, work: () => Promise<T>): Promise<T> {
    this.foundingChildren.add(regionId);
    try {
      return await work();
    } finally {
      this.foundingChildren.delete(regionId);
    }
  }

  /** Steps an inbound message into its region's replica, created here if need be. */
  route(from: StoreId, regionId: number, message: Message): void {
    // While a split child's founding write runs, the region's messages are dropped (Raft
    // retransmits): a placeholder's raft log was built on the empty group, and stepping it
    // while the log engine already shows the founded one appended at a stale offset (chaos
    // seed 2: "commit 9 beyond last index 4", a fail-stop).
    if (this.foundingChildren.has(regionId)) return;
    const peer = this.peers.get(regionId) ?? this.placeholderFor(from, regionId, message);
    if (!peer) return;
    if (peer.placeholder && peer.storeOf(message.from) === undefined) {
      // Until a snapshot brings the real region, learn where members live from their messages.
      peer.region = { ...peer.region, peers: [...peer.region.peers, { id: message.from, storeId: from, role: 'voter' }] };
    }
    try {
      peer.node.step(message);
    } catch (err) {
      // A late response from a member removed meanwhile: dropped, as etcd drops its
      // ErrStepPeerNotFound (thrown, it would reach the transport and stop the process).
      if (isRaftError(err, 'FLOTILLA_RAFT_STEP_PEER_NOT_FOUND')) return;
      throw err;
    }
    this.options.markDirty(peer);
  }

  /**
   * The first message of a group new to this store (a replica added here, or one whose data
   * was lost): create an empty peer. Only a leader's messages do so; the leader will find the
   * log empty and send a snapshot that brings the region's real metadata.
   */
  placeholderFor(from: StoreId, regionId: number, m: Message): Peer | undefined {
    const fromLeader = m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot';
    if (!fromLeader || m.term === 0 || !this.options.accepting()) return undefined;
    // A message for a replica this store already removed (or an older one) is stale.
    const removed = this.tombstones.get(regionId);
    if (removed !== undefined && m.to <= removed) return undefined;
    const region: RegionMeta = {
      id: regionId,
      startKey: new Uint8Array(0),
      endKey: new Uint8Array(0),
      epoch: { version: 0, confVer: 0 },
      peers: [
        { id: m.to, storeId: this.options.storeId, role: 'learner' },
        { id: m.from, storeId: from, role: 'voter' },
      ],
    };
    const peer = this.add(region, 0, EMPTY_CONF_STATE); // a snapshot brings the configuration
    peer.placeholder = true;
    return peer;
  }

  // ------------------------------------------------------------ operators (admin API, metrics)

  /** This store's replica of the region (a placeholder too), or undefined without one. */
  status(regionId: number): ReplicaStatus | undefined {
    const peer = this.peers.get(regionId);
    if (!peer) return undefined;
    return { region: peer.region, peerId: peer.peerId, placeholder: peer.placeholder, applied: peer.applied, raft: peer.node.status() };
  }

  /**
   * Ids of the regions with a replica here, ascending, above `after`, at most `limit` (pages
   * of the admin API). Peers live in a Map in creation order, so a page sorts what is above
   * `after`: about 15 ms at peersMax, paid per page by operators only.
   */
  ids(after: number, limit: number): number[] {
    const ids: number[] = [];
    for (const id of this.peers.keys()) if (id > after) ids.push(id);
    ids.sort((a, b) => a - b);
    return ids.length > limit ? ids.slice(0, limit) : ids;
  }

  /** The replicas here by role and state: a walk over every peer (scrape time, not a hot path). */
  counts(): ReplicaCounts {
    let leaders = 0;
    let hibernating = 0;
    let withoutLeader = 0;
    let merging = 0;
    for (const peer of this.peers.values()) {
      if (peer.placeholder) continue;
      if (peer.isLeader()) leaders++;
      if (peer.node.leader === 0) withoutLeader++;
      if (peer.node.hibernating) hibernating++;
      if (peer.merging !== undefined) merging++;
    }
    return { leaders, hibernating, withoutLeader, merging };
  }
}
