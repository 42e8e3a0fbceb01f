import { BOOTSTRAP_INDEX, SeededRandom, type LeaseClock, type Ready } from '@flotilla/raft';
import type { RegionMeta, RegionState } from '@flotilla/storage';
import type { DiskReport, InboundHandlers, StoreId } from '@flotilla/transport';
import {
  expandHeartbeat,
  expandHeartbeatResponse,
  type Heartbeat,
  type HeartbeatResponse,
  type RaftEnvelope,
} from '@flotilla/wire';
import { ApplyStage } from './apply-stage.ts';
import type { CatchUpGate, CatchUpStatus } from './catch-up.ts';
import type { EntryEffects } from './entry-commands.ts';
import { limits } from './constants.ts';
import { StoreError } from './errors.ts';
import { PeerDisks } from './disk-quorum.ts';
import { foundingApply, foundingConfState, foundingLogWrite, isUnstartedFounding } from './founding.ts';
import { SILENT_EVENTS, type HostEventLog, type HostObserver, type HostOptions, type HostStats, type ReplicaCounts, type ReplicaStatus } from './host-types.ts';
import { HostLogWrites } from './host-log-writes.ts';
import { handOverLeaderships } from './leader-handover.ts';
import { restartLogWrites } from './log-catch-up.ts';
import { LogCompaction } from './log-compaction.ts';
import { proposeMembershipChange, proposeSplit } from './admin-proposals.ts';
import { proposeCommitMerge, proposeFenceMerges, proposePrepareMerge, proposeRollbackMerge } from './merge-proposals.ts';
import { MergeDriver } from './merge-driver.ts';
import { MergeWaits } from './merge-waits.ts';
import type { MembershipChange } from './membership.ts';
import { Outbound } from './outbound.ts';
import type { Peer, ProposalOutcome } from './peer.ts';
import { AwakeGroups } from './awake-groups.ts';
import { readLeaseClock } from './read-lease.ts';
import { ReplicaLifecycle } from './replica-lifecycle.ts';
import { ReplicaRouter } from './replica-router.ts';
import { installIncomingSnapshot } from './snapshots.ts';
import { startCatchUpGate } from './start-catch-up.ts';

/**
 * The multi-raft host of one store. ONE ticker for all groups and ONE ready loop: each cycle
 * collects the Ready of every group that has one, sends the leaders' appends and heartbeats,
 * persists all their entries and hard states in ONE log-engine write (one fsync on an appender
 * worker; none when only commit indexes moved), then sends every other message (the transport
 * coalesces them per destination store), applies every group's committed entries in ONE KV
 * batch, and answers the clients waiting on them.
 */
export class MultiRaftHost implements InboundHandlers {
  readonly storeId: StoreId;
  /** The replicas here by region id; inbound messages go through it. */
  private readonly peers: ReplicaRouter;
  private readonly dirty = new Set<Peer>();
  private readonly random: SeededRandom;
  private ticker: NodeJS.Timeout | undefined;
  private cycleRunning = false;
  private cycleScheduled = false;
  private closed = false;
  private started = false;
  private failure: unknown;
  private counters = { ticks: 0, readyCycles: 0, snapshotsReceived: 0, replicationRefusedForDisk: 0 };
  /** The groups the ticker visits (awake-groups.ts). */
  private readonly awake: AwakeGroups;
  /** Received snapshots are installed one at a time, never during a ready cycle. */
  private snapshotInstall: Promise<void> = Promise.resolve();
  private installingSnapshot = false;
  private readonly cycleIdleWaiters: (() => void)[] = [];
  /** Replicas the cycle's entries removed or created (splits): destroyed or started at its end. */
  private readonly replicas: ReplicaLifecycle;
  private readonly events: HostEventLog;
  private observer: HostObserver | undefined;
  /** The cycle's apply step: committed entries to the KV engine, proposals settled. */
  private readonly applyStage: ApplyStage;
  /** Merge targets whose apply waits for their source replica here (merge-waits.ts). */
  private readonly merges: MergeWaits;
  /** Moves frozen merge sources led here on: commit in the target, or roll back. */
  private readonly mergeDriver: MergeDriver;
  /** Messages out to the transport (snapshots streamed, failures reported after a backoff). */
  private readonly outbound: Outbound;
  /** Log compaction and the KV syncs it needs. */
  private readonly compaction: LogCompaction;
  /** Every write to the log engine: the cycles' (persist) and the host's own. */
  private readonly logWrites: HostLogWrites;
  /** Watches the ticks keep pace with real time, for the leaders' read leases (undefined: leases off). */
  private readonly readLease: LeaseClock | undefined;
  /** Readiness after a restart: the replicas of the start caught up (set by start()). */
  private catchUp: CatchUpGate | null = null;
  /** What the peer stores said of their disks (disk-quorum.ts): the KV service and metrics read it. */
  readonly peerDisks: PeerDisks;

  constructor(private readonly options: HostOptions) {
    this.storeId = options.storeId;
    this.peerDisks = new PeerDisks(options.storeId);
    this.random = new SeededRandom(options.seed ?? options.storeId);
    this.events = options.events ?? SILENT_EVENTS;
    this.observer = options.observer;
    this.readLease = readLeaseClock(options.readLease ?? true, options.tickMs ?? limits.tickMs, () => {
      for (const peer of this.peers) peer.node.voidLease();
    });
    this.peers = new ReplicaRouter({
      storeId: this.storeId,
      log: options.log,
      random: this.random,
      hibernateAfterTicks: options.hibernateAfterTicks ?? limits.hibernateAfterTicks,
      markDirty: (peer) => this.markDirty(peer),
      accepting: () => !this.closed,
      ...(this.readLease ? { readLease: this.readLease } : {}),
    });
    this.awake = new AwakeGroups(this.peers, (peer) => this.markDirty(peer));
    // What applied entries ask of the host after the cycle (entry-commands.ts).
    const entryEffects: EntryEffects = {
      removed: (peer) => this.replicas.onRemoved(peer),
      split: (child, parentLeads) => this.replicas.onSplit(child, parentLeads),
      replica: (regionId) => this.peers.get(regionId),
      waitForSource: (target, source, merge) => this.merges.waitForSource(target, source, merge),
      events: this.events,
    };
    this.applyStage = new ApplyStage(options.kv, entryEffects, () => this.observer, options.applyBatchCommandsMax);
    this.logWrites = new HostLogWrites(options.log, () => this.observer, (err) => this.failStop(err));
    this.replicas = new ReplicaLifecycle({
      peers: this.peers,
      kv: options.kv,
      log: options.log,
      logWrites: this.logWrites,
      events: this.events,
      forget: (peer) => this.dirty.delete(peer),
      markDirty: (peer) => this.markDirty(peer),
    });
    this.outbound = new Outbound(
      {
        kv: options.kv,
        transport: options.transport,
        events: this.events,
        refusesReplication: (store) => this.peerDisks.refuses(store),
        isCurrent: (peer) => !this.closed && this.peers.isCurrent(peer),
        markDirty: (peer) => this.markDirty(peer),
      },
      this.random,
    );
    this.compaction = new LogCompaction(options.kv, options.log, options.compactAfterEntries);
    this.mergeDriver = new MergeDriver(this, this.events, options.mergeCommitWaitMs);
    this.merges = new MergeWaits(this.events, (regionId) => this.peers.get(regionId), (peer) => this.markDirty(peer));
  }

  // ------------------------------------------------------------ lifecycle

  /**
   * Loads every region the KV engine knows of (first bringing any log a crash left behind its
   * KV state up to it), starts the transport and the ticker.
   */
  async start(): Promise<void> {
    const resumed: RegionState[] = [];
    for (const state of this.options.kv.regions()) {
      if (state.status === 'tombstone') {
        const self = state.region.peers.find((p) => p.storeId === this.storeId);
        this.peers.rememberTombstone(state.region.id, self?.id ?? 0);
      }
      if (state.status === 'normal') resumed.push(state);
    }
    // A crash between two writes may have left a log behind its KV record, or the log of a
    // removed replica (log-catch-up.ts): the writes it cut off are made before any node starts.
    const { catchUp, destroy } = restartLogWrites(resumed, this.options.log, this.options.kv, this.events);
    await this.logWrites.writeInChunks(catchUp);
    await this.logWrites.writeInChunks(destroy);
    for (const state of resumed) this.peers.add(state.region, state.appliedIndex, state.confState).merging = state.merging;
    this.catchUp = startCatchUpGate(resumed.map((state) => state.region.id), this.peers, this.options.readyCatchUpWaitMaxMs ?? limits.readyCatchUpWaitMaxMs, this.events);
    await this.options.transport.start(this);
    this.readLease?.startTicking();
    this.ticker = setInterval(() => this.tick(), this.options.tickMs ?? limits.tickMs);
    this.ticker.unref();
    this.started = true;
  }

  /**
   * Whether the replicas this store had at its start have caught up with their leaders
   * (catch-up.ts): `/ready` waits for it, so that a rolling restart never has two stores
   * behind at once. True before start() too (the server checks the host's state first).
   */
  catchUpStatus(): CatchUpStatus {
    return this.catchUp?.status() ?? { caughtUp: true };
  }

  /** Lifecycle for readiness probes: 'new' until start(), then 'running' until close or failure. */
  get state(): 'new' | 'running' | 'stopped' | 'failed' {
    if (this.failure !== undefined) return 'failed';
    if (this.closed) return 'stopped';
    return this.started ? 'running' : 'new';
  }

  /**
   * Stops the host. By default it then waits for a ready cycle or snapshot install still
   * running; `{ waitForWork: false }` is for tests that model a crashed process, whose stuck
   * write never settles.
   */
  async close(options: { waitForWork?: boolean } = {}): Promise<void> {
    await this.stopServing();
    if (options.waitForWork === false) return;
    // The engines close after the host: a ready cycle or snapshot install still running must
    // finish first, or its writes meet closed engines (FLOTILLA_STORAGE_CLOSED, unhandled).
    while (this.cycleRunning) await new Promise<void>((resolve) => this.cycleIdleWaiters.push(resolve));
    await this.snapshotInstall;
    await this.logWrites.settled();
  }

  /** Stops ticking, fails what waits, closes the transport; a failing cycle calls it itself. */
  private async stopServing(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ticker) clearInterval(this.ticker);
    for (const peer of this.peers) peer.failAll({ code: 'FLOTILLA_REGION_NOT_FOUND', regionId: peer.regionId });
    await this.options.transport.close();
  }

  /**
   * Graceful shutdown's first step (leader-handover.ts): every region led here hands its
   * leadership to another store. Resolves with the regions still led here.
   */
  transferLeadersAway(deadlineMs: number): Promise<number> {
    const electionTimeoutMs = limits.electionTicks * (this.options.tickMs ?? limits.tickMs);
    return handOverLeaderships({ peers: () => this.peers, markDirty: (peer) => this.markDirty(peer), closed: () => this.closed }, electionTimeoutMs, deadlineMs);
  }

  /**
   * Creates a region on this store as one of its founding replicas (every founding store
   * does the same with the same metadata): log and KV start at the bootstrap snapshot.
   */
  bootstrapRegion(region: RegionMeta): Promise<void> {
    return this.bootstrapRegions([region]);
  }

  /**
   * Creates many founding regions at once: ONE log write (one fsync) and ONE KV batch for
   * all of them, so a store can be given thousands of regions in seconds. All or nothing:
   * every region is checked before anything is written.
   */
  async bootstrapRegions(regions: readonly RegionMeta[]): Promise<void> {
    if (regions.length > limits.bootstrapRegionsMax) {
      throw new StoreError('FLOTILLA_STORE_INVALID_REGION', `${regions.length} regions in one bootstrap; at most ${limits.bootstrapRegionsMax}`);
    }
    this.peers.checkRoomFor(regions.length);
    const ids = new Set<number>();
    for (const region of regions) {
      if (this.peers.get(region.id) !== undefined || ids.has(region.id)) throw new StoreError('FLOTILLA_STORE_REGION_EXISTS', `region ${region.id} already has a replica here`);
      // A region this store once held (removed: a tombstone) keeps its id forever: checked
      // here, or the KV engine would refuse it only after the log write.
      if (this.options.kv.region(region.id) !== null) throw new StoreError('FLOTILLA_STORE_REGION_EXISTS', `region ${region.id} existed on this store before (it was removed); region ids are never reused`);
      if (!region.peers.some((p) => p.storeId === this.storeId)) throw new StoreError('FLOTILLA_STORE_INVALID_REGION', `region ${region.id} has no replica on store ${this.storeId}`);
      ids.add(region.id);
    }
    // The log first, then the KV engine: a crash in between leaves a log no node ever started,
    // which bootstrapping the region again keeps (isUnstartedFounding).
    const log = this.options.log;
    const writes = regions.filter((region) => !(log.hasGroup(region.id) && isUnstartedFounding(log.group(region.id)))).map((region) => foundingLogWrite(region));
    if (writes.length > 0) await this.logWrites.write(writes);
    await this.options.kv.apply(regions.map(foundingApply));
    // Durable before any node runs: a power loss must not keep a log that moved on (votes,
    // entries) while losing the KV record, or the region would be founded over it again.
    await this.compaction.syncKv();
    for (const region of regions) this.peers.add(region, BOOTSTRAP_INDEX, foundingConfState(region));
    this.events.info({ regions: regions.length, first: regions[0]?.id }, 'bootstrapped founding regions');
  }

  peer(regionId: number): Peer | undefined {
    return this.peers.get(regionId);
  }

  /**
   * A region's admin proposals through its leader here (admin-proposals.ts, merge-proposals.ts):
   * membership changes, splits, and the merge steps — freeze a source to merge into its
   * neighbour, commit a frozen source in its target, roll it back, fence a target. Each settles
   * when its entry applied; the first three fail at once with DiskFull when too few of the
   * region's voters are on stores that take entries (disk-quorum.ts).
   */
  changeMembership(regionId: number, changes: readonly MembershipChange[], transition?: 'auto' | 'implicit' | 'explicit'): Promise<ProposalOutcome> {
    return proposeMembershipChange(this.peers, this.peerDisks, regionId, changes, transition);
  }

  split(regionId: number, splitKey: Uint8Array, newRegionId: number, newPeerIds: readonly number[]): Promise<ProposalOutcome> {
    return proposeSplit(this.peers, this.peerDisks, regionId, splitKey, newRegionId, newPeerIds);
  }

  prepareMerge(sourceId: number, targetId: number): Promise<ProposalOutcome> {
    return proposePrepareMerge(this.peers, this.peerDisks, sourceId, targetId);
  }

  commitMerge(sourceId: number): Promise<ProposalOutcome> {
    return proposeCommitMerge(this.peers, sourceId);
  }

  rollbackMerge(sourceId: number): Promise<ProposalOutcome> {
    return proposeRollbackMerge(this.peers, sourceId);
  }

  fenceMerges(targetId: number): Promise<ProposalOutcome> {
    return proposeFenceMerges(this.peers, targetId);
  }

  /** No ready cycle running, scheduled or owed: every group's work so far is done. */
  isIdle(): boolean {
    return !this.cycleRunning && !this.cycleScheduled && this.dirty.size === 0;
  }

  /**
   * Hands the region's leadership to `toPeerId` (the core catches the target up first, then
   * sends TimeoutNow). False when this store's replica does not lead the region.
   */
  transferLeader(regionId: number, toPeerId: number): boolean {
    const peer = this.peers.get(regionId);
    if (!peer || !peer.isLeader()) return false;
    peer.node.transferLeader(toPeerId);
    this.markDirty(peer);
    return true;
  }

  /** Makes this store's replica of the region campaign now (tests, and operators' tooling). */
  campaign(regionId: number): void {
    const peer = this.peers.get(regionId);
    if (!peer) return;
    peer.node.campaign();
    this.markDirty(peer);
  }

  stats(): HostStats {
    const { messagesSent, messagesDropped, snapshotsSent, withheldForDisk } = this.outbound;
    return { peers: this.peers.size, ...this.counters, groupTicks: this.awake.visits, logWrites: this.logWrites.count, applyBatches: this.applyStage.batches, messagesSent, messagesDropped, snapshotsSent, replicationWithheldForDisk: withheldForDisk, compactions: this.compaction.compactions, logSyncs: this.options.log.stats().syncs, readLeaseStalls: this.readLease?.stalls ?? 0 };
  }

  /** The KV engine's record of a region here, a tombstone included (the merge driver reads it). */
  regionState(regionId: number): RegionState | null {
    return this.options.kv.region(regionId);
  }

  /** Where the ready loop's timings go from now on (the server's metrics; HostOptions.observer). */
  setObserver(observer: HostObserver): void {
    this.observer = observer;
  }

  /** The replicas here by role and state (scrape time, not a hot path). */
  replicaCounts(): ReplicaCounts {
    return this.peers.counts();
  }

  // ------------------------------------------------------------ operators (admin-api.ts)

  /** This store's replica of the region (a placeholder too), or undefined without one. */
  regionStatus(regionId: number): ReplicaStatus | undefined {
    return this.peers.status(regionId);
  }

  /** Ids of the regions with a replica here, ascending, above `after`, at most `limit` (admin API pages). */
  regionIds(after: number, limit: number): number[] {
    return this.peers.ids(after, limit);
  }

  /**
   * Makes the region's applied state a durable snapshot point (hashicorp's Snapshot()): syncs
   * the KV engine, then discards the region's log up to the applied index, so a follower
   * behind it is caught up by a snapshot. Runs between ready cycles. Answers where the log
   * starts now (index and term of its last discarded entry), or null without a replica here.
   */
  async compactRegionLog(regionId: number): Promise<{ index: number; term: number } | null> {
    if (!this.peers.get(regionId) || this.closed) return null;
    return this.betweenCycles(async () => {
      const peer = this.peers.get(regionId);
      if (!peer || peer.placeholder || this.closed) return null;
      await this.compaction.syncKv();
      await this.compaction.compactLogs([peer], 0);
      const group = this.options.log.group(regionId);
      const index = group.truncatedIndex();
      return { index, term: group.term(index) };
    });
  }

  // ------------------------------------------------------------ inbound (transport)

  onRaftMessages(from: StoreId, messages: readonly RaftEnvelope[]): void {
    const refusing = this.options.refusesReplication?.() === true;
    for (const envelope of messages) {
      // Dropped like a lost packet: the leader retransmits once the disk has room (disk-guard.ts).
      if (refusing && envelope.message.type === 'append' && envelope.message.entries.length > 0) {
        this.counters.replicationRefusedForDisk++;
        continue;
      }
      this.peers.route(from, envelope.regionId, envelope.message);
    }
  }

  onHeartbeats(from: StoreId, beats: readonly Heartbeat[]): void {
    for (const beat of beats) this.peers.route(from, beat.regionId, expandHeartbeat(beat));
  }

  onHeartbeatResponses(from: StoreId, beats: readonly HeartbeatResponse[]): void {
    for (const beat of beats) this.peers.route(from, beat.regionId, expandHeartbeatResponse(beat));
  }

  /**
   * A snapshot streams in: checked before any data changes, installed into the KV engine
   * while no ready cycle runs, then stepped into the core (which persists its metadata).
   */
  onSnapshot(from: StoreId, envelope: RaftEnvelope, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const install = this.snapshotInstall.then(() => this.installSnapshot(from, envelope, chunks));
    this.snapshotInstall = install.catch(() => {});
    return install;
  }

  private async installSnapshot(from: StoreId, envelope: RaftEnvelope, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    if (this.closed || !envelope.message.snapshot) throw new StoreError('FLOTILLA_STORE_SNAPSHOT_REFUSED', `region ${envelope.regionId}: no snapshot to install`);
    if (this.options.refusesReplication?.() === true) {
      this.counters.replicationRefusedForDisk++;
      throw new StoreError('FLOTILLA_STORE_SNAPSHOT_REFUSED', `region ${envelope.regionId}: the data disk is critically short of space`);
    }
    this.installingSnapshot = true;
    try {
      while (this.cycleRunning) await new Promise<void>((resolve) => this.cycleIdleWaiters.push(resolve));
      const peer = this.peers.get(envelope.regionId) ?? this.peers.placeholderFor(from, envelope.regionId, envelope.message);
      if (!peer) throw new StoreError('FLOTILLA_STORE_SNAPSHOT_REFUSED', `region ${envelope.regionId} can't be created here`);
      const { state, absorbed } = await installIncomingSnapshot(peer, envelope.message, chunks, this.options, this.peers);
      for (const source of absorbed) await this.replicas.destroy(source);
      this.counters.snapshotsReceived++;
      this.events.info({ regionId: peer.regionId, fromStore: from, index: state.appliedIndex, epoch: state.region.epoch }, 'installed a region snapshot');
    } catch (err) {
      // The sender only learns "rejected": the reason is for this store's operators.
      this.events.warn({ regionId: envelope.regionId, fromStore: from, err: err instanceof Error ? err.message : String(err) }, 'refused a region snapshot');
      throw err;
    } finally {
      this.installingSnapshot = false;
      // Ready cycles waited for the install: resume them.
      const peer = this.peers.get(envelope.regionId);
      if (peer) this.markDirty(peer);
      this.markDirtyAll();
    }
  }

  /**
   * The log engine finished a disk read a group's raft core asked for (wire it as the
   * engine's `onFetched` hook): its committed entries can be applied, its sends resume.
   */
  onLogFetched(groupId: number): void {
    const peer = this.peers.get(groupId);
    if (!peer) return;
    peer.node.entriesAvailable();
    this.markDirty(peer);
  }

  onPeerDiskState(store: StoreId, report: DiskReport | null): void {
    this.peerDisks.update(store, report);
  }

  onPeerState(store: StoreId, state: 'up' | 'down'): void {
    if (state !== 'down') return;
    // Store-level liveness: wake the hibernating groups led from the store that went down.
    for (const peer of this.peers) {
      const status = peer.node.status();
      if (status.hibernating && peer.storeOf(status.leader) === store) {
        peer.node.wake();
        this.markDirty(peer);
      }
    }
  }

  private markDirtyAll(): void {
    for (const peer of this.peers) if (peer.node.hasReady()) this.markDirty(peer);
  }

  // ------------------------------------------------------------ ticker and ready loop

  private tick(): void {
    this.counters.ticks++;
    this.readLease?.onTick();
    this.merges.retryAll();
    if (this.counters.ticks % limits.mergeDriveTicks === 0) this.mergeDriver.drive(this.peers);
    this.awake.tick(this.counters.ticks);
  }

  markDirty(peer: Peer): void {
    // A replaced or destroyed peer (a split child's placeholder, a removed replica) may still
    // be woken by its timers or callbacks: its Ready must never reach the region's log again.
    if (!this.peers.isCurrent(peer)) return;
    this.awake.add(peer);
    this.dirty.add(peer);
    if (this.cycleScheduled || this.cycleRunning || this.closed) return;
    this.cycleScheduled = true;
    setImmediate(() => {
      this.cycleScheduled = false;
      void this.runCycles();
    });
  }

  private async runCycles(): Promise<void> {
    if (this.cycleRunning || this.closed || this.installingSnapshot) return;
    this.cycleRunning = true;
    try {
      while (this.dirty.size > 0 && !this.closed && !this.installingSnapshot) await this.cycle();
    } catch (err) {
      await this.failStop(err);
    } finally {
      this.cycleRunning = false;
      for (const wake of this.cycleIdleWaiters.splice(0)) wake();
    }
  }

  /** A failed fsync or a broken invariant: the store must stop, not limp on. The first error wins. */
  private async failStop(err: unknown): Promise<void> {
    if (this.failure !== undefined) return;
    this.failure = err;
    await this.stopServing(); // not close(): it would wait for the cycle that failed
    if (this.options.onFailure) this.options.onFailure(err);
    else throw err;
  }

  /** One turn of the ready loop over every group that has work. */
  private async cycle(): Promise<void> {
    const batch: { peer: Peer; rd: Ready }[] = [];
    for (const peer of this.dirty) {
      if (!this.peers.isCurrent(peer)) continue; // replaced or destroyed meanwhile
      try {
        // The turn's data writes to this region become one entry (peer.ts, ProposalBatch).
        peer.flushProposals();
        if (peer.node.hasReady()) batch.push({ peer, rd: peer.node.ready() });
      } catch (err) {
        throw new StoreError('FLOTILLA_STORE_INTERNAL', `region ${peer.regionId} (peer ${peer.peerId}${peer.placeholder ? ', placeholder' : ''}): ${(err as Error).message}`, { cause: err });
      }
    }
    this.dirty.clear();
    if (batch.length === 0) return;
    this.counters.readyCycles++;
    this.observer?.cycle(batch.length);
    // A leader's appends and heartbeats leave now: the followers write while the leader does
    // (its own copy counts towards the commit only at advance(), once durable). Every other
    // message states what this store persisted, and waits for the write.
    this.outbound.sendCycle(batch, 'early');
    // The log write runs on its appender thread while this one applies what is durable
    // already: a commit does not wait for the fsync of entries proposed after it.
    const persisted = this.logWrites.persist(batch);
    try {
      await this.applyStage.applyDurable(batch);
    } finally {
      await persisted;
    }
    this.outbound.sendCycle(batch, 'late');
    await this.applyStage.applyRest(batch);
    await this.compaction.compactDue(batch.map((b) => b.peer));
    for (const { peer, rd } of batch) {
      if (rd.softState && rd.softState.role !== 'leader') peer.onLeadershipLost();
      peer.onReadStates(rd.readStates);
      peer.node.advance(rd, this.applyStage.heldThrough(peer));
      peer.releaseReads();
      if (peer.node.hasReady()) this.dirty.add(peer);
    }
    this.applyStage.settleApplied();
    // A split child's log is founded, and a removed replica's log destroyed, only once the KV
    // batch that recorded the change is durable (the log's writes are synced; the KV engine's
    // are not). Else a power loss could keep the log write and lose the KV one: a child log
    // that moved on under a region the KV engine no longer knows, or a replica's vote history
    // gone while its region came back as 'normal' (which start() would found afresh).
    this.applyStage.endCycle();
    if (this.replicas.pending) await this.compaction.syncKv();
    await this.replicas.destroyRemoved();
    this.merges.retryReady();
    await this.replicas.startSplitChildren();
  }

  /**
   * Runs `work` while no ready cycle and no snapshot install runs, holding the loop meanwhile
   * (as a cycle would), so operator work on logs never interleaves with a cycle's writes. The
   * cycles owed meanwhile run right after.
   */
  private async betweenCycles<T>(work: () => Promise<T>): Promise<T> {
    for (;;) {
      if (this.installingSnapshot) await this.snapshotInstall;
      else if (this.cycleRunning) await new Promise<void>((resolve) => this.cycleIdleWaiters.push(resolve));
      else break;
    }
    this.cycleRunning = true;
    try {
      return await work();
    } finally {
      this.cycleRunning = false;
      for (const wake of this.cycleIdleWaiters.splice(0)) wake();
      if (this.dirty.size > 0) void this.runCycles();
    }
  }

  /** The error that stopped the host, if any (a failed write or a broken invariant). */
  get stoppedBy(): unknown {
    return this.failure;
  }
}
