import {
  BOOTSTRAP_HARD_STATE,
  SeededRandom,
  bootstrapSnapshot,
  decodeConfChange,
  type ConfState,
  type Entry,
  type Message,
  type Ready,
} from '@flotilla/raft';
import { isStorageError, type ApplyResult, type GroupWrite, type KvCommand, type KvEngine, type LogEngine, type RegionApply, type RegionMeta } from '@flotilla/storage';
import type { InboundHandlers, PeerTransport, StoreId } from '@flotilla/transport';
import {
  coalesceHeartbeat,
  coalesceHeartbeatResponse,
  expandHeartbeat,
  expandHeartbeatResponse,
  type Heartbeat,
  type HeartbeatResponse,
  type RaftEnvelope,
} from '@flotilla/wire';
import { decodeCommands } from './command-codec.ts';
import { limits } from './constants.ts';
import { StoreError } from './errors.ts';
import { Peer } from './peer.ts';

export interface HostOptions {
  readonly storeId: StoreId;
  readonly log: LogEngine;
  readonly kv: KvEngine;
  readonly transport: PeerTransport;
  /** Seed of the raft nodes' election jitter (tests pass a fixed one). */
  readonly seed?: number;
  readonly tickMs?: number;
  readonly hibernateAfterTicks?: number;
}

/** Counters for tests and metrics. */
export interface HostStats {
  readonly peers: number;
  readonly readyCycles: number;
  readonly logWrites: number;
  readonly applyBatches: number;
  readonly messagesSent: number;
  readonly messagesDropped: number;
}

/**
 * The multi-raft host of one store. ONE ticker for all groups and ONE ready loop: each cycle
 * collects the Ready of every group that has one, persists all their entries and hard states
 * in ONE log-engine write (one fsync on an appender worker), then sends every message (the
 * transport coalesces them per destination store), applies every group's committed entries
 * in ONE KV batch, and answers the clients waiting on them.
 */
export class MultiRaftHost implements InboundHandlers {
  readonly storeId: StoreId;
  private readonly peers = new Map<number, Peer>();
  private readonly dirty = new Set<Peer>();
  private readonly random: SeededRandom;
  private ticker: NodeJS.Timeout | undefined;
  private cycleRunning = false;
  private cycleScheduled = false;
  private closed = false;
  private failure: unknown;
  private counters = { readyCycles: 0, logWrites: 0, applyBatches: 0, messagesSent: 0, messagesDropped: 0 };

  constructor(private readonly options: HostOptions) {
    this.storeId = options.storeId;
    this.random = new SeededRandom(options.seed ?? options.storeId);
  }

  // ------------------------------------------------------------ lifecycle

  /** Loads every region the KV engine knows of, starts the transport and the ticker. */
  async start(): Promise<void> {
    for (const state of this.options.kv.regions()) {
      if (state.status !== 'normal') continue;
      this.addPeer(state.region, state.appliedIndex);
    }
    await this.options.transport.start(this);
    this.ticker = setInterval(() => this.tick(), this.options.tickMs ?? limits.tickMs);
    this.ticker.unref();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ticker) clearInterval(this.ticker);
    for (const peer of this.peers.values()) peer.failAll({ code: 'FLOTILLA_REGION_NOT_FOUND', regionId: peer.regionId });
    await this.options.transport.close();
  }

  /**
   * Creates a region on this store as one of its founding replicas (every founding store
   * does the same with the same metadata): log and KV start at the bootstrap snapshot.
   */
  async bootstrapRegion(region: RegionMeta): Promise<void> {
    if (this.peers.has(region.id)) throw new StoreError('FLOTILLA_STORE_REGION_EXISTS', `region ${region.id} already has a replica here`);
    const confState: ConfState = {
      voters: region.peers.filter((p) => p.role === 'voter').map((p) => p.id),
      learners: region.peers.filter((p) => p.role === 'learner').map((p) => p.id),
      votersOutgoing: [],
      learnersNext: [],
      autoLeave: false,
    };
    const snapshot = bootstrapSnapshot(confState);
    await this.options.log.write([{ groupId: region.id, snapshot: snapshot.metadata, hardState: BOOTSTRAP_HARD_STATE, confState }]);
    const index = snapshot.metadata.index;
    // The region is created (at applied 0) and moved to the bootstrap index by the same batch.
    await this.options.kv.apply([{ regionId: region.id, appliedIndex: index, appliedTerm: snapshot.metadata.term, commands: [{ op: 'putRegion', region }] }]);
    this.addPeer(region, index);
  }

  private addPeer(region: RegionMeta, applied: number): Peer {
    if (this.peers.size >= limits.peersMax) throw new StoreError('FLOTILLA_STORE_TOO_MANY_PEERS', `this store hosts ${limits.peersMax} peers already`);
    const self = region.peers.find((p) => p.storeId === this.storeId);
    if (!self) throw new StoreError('FLOTILLA_STORE_INVALID_REGION', `region ${region.id} has no replica on store ${this.storeId}`);
    const peer = new Peer(self.id, region, applied, {
      id: self.id,
      storage: this.options.log.group(region.id),
      random: { nextInt: (bound) => this.random.nextInt(bound) },
      applied,
      electionTicks: limits.electionTicks,
      heartbeatTicks: limits.heartbeatTicks,
      hibernateAfterTicks: this.options.hibernateAfterTicks ?? limits.hibernateAfterTicks,
      preVote: true,
      checkQuorum: true,
    });
    this.peers.set(region.id, peer);
    this.markDirty(peer);
    return peer;
  }

  peer(regionId: number): Peer | undefined {
    return this.peers.get(regionId);
  }

  stats(): HostStats {
    return { peers: this.peers.size, ...this.counters };
  }

  // ------------------------------------------------------------ inbound (transport)

  onRaftMessages(_from: StoreId, messages: readonly RaftEnvelope[]): void {
    for (const envelope of messages) this.stepInto(envelope.regionId, envelope.message);
  }

  onHeartbeats(_from: StoreId, beats: readonly Heartbeat[]): void {
    for (const beat of beats) this.stepInto(beat.regionId, expandHeartbeat(beat));
  }

  onHeartbeatResponses(_from: StoreId, beats: readonly HeartbeatResponse[]): void {
    for (const beat of beats) this.stepInto(beat.regionId, expandHeartbeatResponse(beat));
  }

  onSnapshot(): Promise<void> {
    // Snapshot streaming lands with peer creation on first message (issue 4, next step).
    return Promise.reject(new StoreError('FLOTILLA_STORE_INTERNAL', 'receiving snapshots is not supported yet'));
  }

  onPeerState(store: StoreId, state: 'up' | 'down'): void {
    if (state !== 'down') return;
    // Store-level liveness: wake the hibernating groups led from the store that went down.
    for (const peer of this.peers.values()) {
      const status = peer.node.status();
      if (status.hibernating && peer.storeOf(status.leader) === store) {
        peer.node.wake();
        this.markDirty(peer);
      }
    }
  }

  private stepInto(regionId: number, message: Message): void {
    const peer = this.peers.get(regionId);
    if (!peer) return; // unknown region: peer creation from messages comes with snapshots
    peer.node.step(message);
    this.markDirty(peer);
  }

  // ------------------------------------------------------------ ticker and ready loop

  private tick(): void {
    for (const peer of this.peers.values()) {
      peer.node.tick();
      this.markDirty(peer);
    }
  }

  markDirty(peer: Peer): void {
    this.dirty.add(peer);
    if (this.cycleScheduled || this.cycleRunning || this.closed) return;
    this.cycleScheduled = true;
    setImmediate(() => {
      this.cycleScheduled = false;
      void this.runCycles();
    });
  }

  private async runCycles(): Promise<void> {
    if (this.cycleRunning || this.closed) return;
    this.cycleRunning = true;
    try {
      while (this.dirty.size > 0 && !this.closed) await this.cycle();
    } catch (err) {
      // A failed fsync or a broken invariant: the store must stop, not limp on.
      this.failure = err;
      await this.close();
      throw err;
    } finally {
      this.cycleRunning = false;
    }
  }

  /** One turn of the ready loop over every group that has work. */
  private async cycle(): Promise<void> {
    const batch: { peer: Peer; rd: Ready }[] = [];
    for (const peer of this.dirty) if (peer.node.hasReady()) batch.push({ peer, rd: peer.node.ready() });
    this.dirty.clear();
    if (batch.length === 0) return;
    this.counters.readyCycles++;
    await this.persist(batch);
    for (const { peer, rd } of batch) this.sendAll(peer, rd.messages);
    await this.applyAll(batch);
    for (const { peer, rd } of batch) {
      if (rd.softState && rd.softState.role !== 'leader') peer.onLeadershipLost();
      peer.onReadStates(rd.readStates);
      peer.node.advance(rd);
      peer.releaseReads();
      if (peer.node.hasReady()) this.dirty.add(peer);
    }
  }

  /** All groups' entries, hard states and snapshots: one write, one fsync. */
  private async persist(batch: readonly { peer: Peer; rd: Ready }[]): Promise<void> {
    const writes: GroupWrite[] = [];
    for (const { peer, rd } of batch) {
      if (rd.entries.length === 0 && !rd.hardState && !rd.snapshot) continue;
      writes.push({
        groupId: peer.regionId,
        ...(rd.snapshot ? { snapshot: rd.snapshot.metadata } : {}),
        ...(rd.entries.length > 0 ? { entries: rd.entries } : {}),
        ...(rd.hardState ? { hardState: rd.hardState } : {}),
      });
    }
    if (writes.length === 0) return;
    for (;;) {
      try {
        await this.options.log.write(writes);
        this.counters.logWrites++;
        return;
      } catch (err) {
        if (!isStorageError(err, 'FLOTILLA_STORAGE_QUEUE_FULL')) throw err;
        await this.options.log.writable(); // backpressure: nothing was written, submit again
      }
    }
  }

  private sendAll(peer: Peer, messages: readonly Message[]): void {
    const transport = this.options.transport;
    for (const m of messages) {
      const store = peer.storeOf(m.to);
      if (store === undefined) {
        this.counters.messagesDropped++;
        continue;
      }
      const beat = m.type === 'heartbeat' ? coalesceHeartbeat(peer.regionId, m) : null;
      const response = m.type === 'heartbeatResponse' ? coalesceHeartbeatResponse(peer.regionId, m) : null;
      const refused = beat
        ? transport.sendHeartbeat(store, beat)
        : response
          ? transport.sendHeartbeatResponse(store, response)
          : transport.send(store, { regionId: peer.regionId, fromPeer: m.from, toPeer: m.to, regionEpoch: peer.region.epoch, message: m });
      // A refused message is a lost message: Raft retransmits what matters.
      if (refused === null) this.counters.messagesSent++;
      else this.counters.messagesDropped++;
    }
  }

  /** Committed entries of every group in ONE KV batch; then settle the proposals. */
  private async applyAll(batch: readonly { peer: Peer; rd: Ready }[]): Promise<void> {
    const applies: RegionApply[] = [];
    const applied: { peer: Peer; entries: readonly Entry[]; commandCounts: number[] }[] = [];
    for (const { peer, rd } of batch) {
      const entries = rd.committedEntries;
      const last = entries[entries.length - 1];
      if (!last) continue;
      const commands: KvCommand[] = [];
      const commandCounts: number[] = [];
      for (const entry of entries) {
        const entryCommands = this.commandsOf(peer, entry);
        commandCounts.push(entryCommands.length);
        for (const c of entryCommands) commands.push(c);
      }
      applies.push({ regionId: peer.regionId, appliedIndex: last.index, appliedTerm: last.term, commands });
      applied.push({ peer, entries, commandCounts });
    }
    if (applies.length === 0) return;
    const results = await this.options.kv.apply(applies);
    this.counters.applyBatches++;
    const byRegion = new Map<number, ApplyResult>(results.map((r) => [r.regionId, r]));
    for (const { peer, entries, commandCounts } of applied) {
      const regionResults = byRegion.get(peer.regionId)?.results ?? [];
      let at = 0;
      entries.forEach((entry, i) => {
        const count = commandCounts[i]!;
        peer.onEntryApplied(entry.index, entry.term, regionResults.slice(at, at + count));
        at += count;
      });
      peer.applied = entries[entries.length - 1]!.index;
    }
  }

  /** The KV commands an entry stands for; conf changes switch the raft configuration here. */
  private commandsOf(peer: Peer, entry: Entry): KvCommand[] {
    if (entry.type === 'confChange') {
      // Membership changes of regions (and the region metadata they update) come with the
      // admin commands of issue 4; the core's configuration must still follow the log.
      peer.node.applyConfChange(decodeConfChange(entry.data));
      return [];
    }
    if (entry.data.byteLength === 0) return [];
    return decodeCommands(entry.data);
  }

  /** The error that stopped the host, if any (a failed write or a broken invariant). */
  get stoppedBy(): unknown {
    return this.failure;
  }
}
