import {
  LeaseClock,
  RawNode,
  decodeConfChange,
  maxTickGapMs,
  isRaftError,
  type ConfState,
  type InjectedFaults,
  type Message,
  type NodeId,
  type RaftStorage,
  type RandomSource,
  type ReadOnlyOption,
  type Ready,
  type Snapshot,
  sendableBeforePersist,
} from '@flotilla/raft';
import type { SimDisk } from './disk.ts';
import type { SimEvent } from './simulation.ts';
import type { KvInput, KvOutput } from './kv-model.ts';
import { KvStateMachine, decodeCommand, encodeCommand } from './kv-state-machine.ts';

/** How a simulated node runs: Raft options plus the host's own policies. */
export interface HostOptions {
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly readOnlyOption: ReadOnlyOption;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly maxClockDriftTicks: number;
  readonly hibernateAfterTicks: number;
  /** Applied entries kept in the log beyond the last snapshot before compacting. */
  readonly compactAfterEntries: number;
  readonly faults: InjectedFaults;
  /** Host bug for the teeth test: entries are written unsynced and messages leave at once. */
  readonly ackBeforePersist: boolean;
  /**
   * Persist as the store does: a Ready that must be synced is written, and completes (the rest
   * of its messages sent, its entries applied, advance) only when the fsync returns, a random
   * moment later; the leader's appends and heartbeats leave at once (sendableBeforePersist),
   * and the node steps messages meanwhile. A crash in between loses the write. Off: each Ready
   * is persisted, sent, applied and advanced in one step.
   */
  readonly asyncPersist: boolean;
  /** Host bug for a teeth test (asyncPersist): every message leaves before the fsync, responses too. */
  readonly sendAllBeforePersist: boolean;
  /** Bound on client requests a host tracks at once; beyond it requests are refused. */
  readonly pendingRequestsMax: number;
  readonly appendBytesMax: number;
  readonly inflightMessagesMax: number;
  /** The real time one tick of a host takes, over every host (their clocks are skewed). */
  readonly tickMsRange: { readonly min: number; readonly max: number };
  /**
   * The host bounds the gaps between its ticks for its lease (the core's LeaseClock, as the
   * store does). Off: a host bug for a teeth test — a paused host's lease outlives its ticks.
   */
  readonly leaseTickGuard: boolean;
}

export interface ClientRequest {
  readonly clientId: number;
  readonly seq: number;
  readonly input: KvInput;
  /** For reads: go through the log instead of ReadIndex. */
  readonly readThroughLog: boolean;
}

/** What a host answers. 'rejected' means definitely not applied (safe to drop from history). */
export type HostAnswer =
  | { readonly kind: 'ok'; readonly output: KvOutput; readonly index: number }
  | { readonly kind: 'rejected'; readonly reason: string; readonly leaderHint: NodeId };

/** The cluster around a host: how it sends, answers and reports what it did. */
export interface HostEnvironment {
  send(m: Message): void;
  answer(host: SimHost, request: ClientRequest, answer: HostAnswer): void;
  /**
   * Called with every Ready between persisting and sending (for invariant checks). `readyTerm`:
   * the node's term when it made the Ready (it may have moved on by the fsync's end).
   */
  onPersisted(host: SimHost, rd: Ready, readyTerm: number): void;
  onApplied(host: SimHost, index: number, term: number, data: Uint8Array): void;
  onConfApplied(host: SimHost, index: number): void;
  /**
   * The host installed the Ready's snapshot. `adopted`: the configuration the node ran when
   * it made that Ready (later messages, stepped while the write was in flight, may have moved
   * it on: a newer snapshot).
   */
  onSnapshotInstalled(host: SimHost, snapshot: Snapshot, adopted: ConfState): void;
  /**
   * The node advanced a Ready: a leader's commit may have moved (its own write counts at
   * advance), to be checked with the configuration of this moment, before the next Ready
   * applies a conf change.
   */
  onAdvanced(host: SimHost): void;
  scheduleSync(host: SimHost): void;
  /** Calls host.persisted() a random moment later, unless the host crashed meanwhile. */
  schedulePersisted(host: SimHost): void;
  /** The simulated time (ms). */
  simTimeMs(): number;
}

interface PendingWrite {
  readonly request: ClientRequest;
  /** Where the leader put it; an applied entry at this index that isn't it means it is lost. */
  readonly index: number | undefined;
  readonly term: number | undefined;
}

interface PendingRead {
  readonly request: ClientRequest;
  readIndex: number | undefined;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const requestKey = (r: { clientId: number; seq: number }): string => `${r.clientId}:${r.seq}`;

export class SimHost {
  node!: RawNode;
  kv = new KvStateMachine();
  applied = 0;
  alive = false;
  /** The process is stopped (Simulation.pauseHost): messages, requests and fsync completions wait in `held`. */
  paused = false;
  readonly held: SimEvent[] = [];
  /** Counts pauses, so a resume never ends a later pause. */
  pauses = 0;
  /** The Ready whose write is being fsynced (asyncPersist): no other Ready until it completes. */
  private persisting: Ready | null = null;
  /** The node's term when it made the Ready being persisted. */
  private persistingTerm = 0;
  /** The configuration the node ran when it made the Ready being persisted, if it has a snapshot. */
  private persistingConf: ConfState | null = null;
  /** Watches this host's ticks for its leases (lease-based reads with the guard on). */
  private leaseClock: LeaseClock | undefined;
  private pendingWrites = new Map<string, PendingWrite>();
  private pendingReads = new Map<string, PendingRead>();
  private readonly storageView: RaftStorage;

  constructor(
    readonly id: NodeId,
    readonly disk: SimDisk,
    private readonly options: HostOptions,
    private readonly random: RandomSource,
    private readonly env: HostEnvironment,
  ) {
    this.storageView = this.makeStorageView();
  }

  /** Starts (or restarts after a crash) from what the disk durably holds. */
  start(): void {
    const snapshot = this.disk.live.snapshot();
    this.kv = KvStateMachine.restore(snapshot.data);
    this.applied = snapshot.metadata.index;
    this.pendingWrites = new Map();
    this.pendingReads = new Map();
    this.persisting = null;
    this.node = new RawNode({
      id: this.id,
      storage: this.storageView,
      random: this.random,
      applied: this.applied,
      electionTicks: this.options.electionTicks,
      heartbeatTicks: this.options.heartbeatTicks,
      readOnlyOption: this.options.readOnlyOption,
      preVote: this.options.preVote,
      checkQuorum: this.options.checkQuorum,
      maxClockDriftTicks: this.options.maxClockDriftTicks,
      beforeLeaseUse: () => this.leaseClock?.beforeLeaseUse(),
      hibernateAfterTicks: this.options.hibernateAfterTicks,
      appendBytesMax: this.options.appendBytesMax,
      inflightMessagesMax: this.options.inflightMessagesMax,
      inflightBytesMax: 0,
      faults: this.options.faults,
    });
    this.leaseClock = this.makeLeaseClock();
    this.alive = true;
  }

  private makeLeaseClock(): LeaseClock | undefined {
    const o = this.options;
    if (o.readOnlyOption !== 'leaseBased' || !o.leaseTickGuard) return undefined;
    const gapMs = maxTickGapMs({ tickMs: o.tickMsRange.max, voterTickMsMin: o.tickMsRange.min, electionTicks: o.electionTicks, driftTicks: o.maxClockDriftTicks });
    return gapMs > 0 ? new LeaseClock(gapMs, () => this.node.voidLease(), () => this.env.simTimeMs()) : undefined;
  }

  /** Times this incarnation's tick gaps voided its leases. */
  get leaseStalls(): number {
    return this.leaseClock?.stalls ?? 0;
  }

  /** One tick of the host's timer. */
  tick(): void {
    this.leaseClock?.onTick();
    this.node.tick();
  }

  crash(): void {
    this.alive = false;
    this.paused = false;
    this.held.length = 0;
    this.persisting = null;
    this.disk.crash();
  }

  /**
   * The core reads the live disk through this view; snapshot() makes a fresh snapshot at the
   * applied index on demand (as TiKV generates one per lagging peer), so a new member always
   * receives a snapshot whose configuration includes it.
   */
  private makeStorageView(): RaftStorage {
    const live = (): RaftStorage => this.disk.live;
    return {
      initialState: () => live().initialState(),
      entries: (lo, hi, maxBytes) => live().entries(lo, hi, maxBytes),
      term: (index) => live().term(index),
      firstIndex: () => live().firstIndex(),
      lastIndex: () => live().lastIndex(),
      snapshot: () => this.snapshotForSending(),
    };
  }

  private snapshotForSending(): Snapshot {
    const current = this.disk.live.snapshot();
    if (this.applied > current.metadata.index) this.takeSnapshot();
    return this.disk.live.snapshot();
  }

  private takeSnapshot(): void {
    this.disk.write({ kind: 'createSnapshot', index: this.applied, confState: this.node.confState(), data: this.kv.snapshot() }, true);
  }

  // ------------------------------------------------------------ ready loop

  /** Handles every Ready the node has: persist, send, apply, advance. */
  processReady(): void {
    let rounds = 0;
    while (this.alive && this.persisting === null && this.node.hasReady()) {
      if (++rounds > 100) throw new Error(`host ${this.id}: Ready loop does not settle`);
      const term = this.node.status().term;
      this.handleReady(this.node.ready(), term);
    }
    this.maybeCompact();
  }

  private handleReady(rd: Ready, term: number): void {
    if (this.options.asyncPersist && !this.options.ackBeforePersist && (rd.mustSync || rd.snapshot)) {
      this.startPersist(rd, term);
      return;
    }
    const synced = !this.options.ackBeforePersist;
    if (rd.snapshot) this.disk.write({ kind: 'snapshot', snapshot: rd.snapshot }, true);
    if (rd.entries.length > 0) this.disk.write({ kind: 'entries', entries: rd.entries }, synced && rd.mustSync);
    if (rd.hardState) this.disk.write({ kind: 'hardState', hardState: rd.hardState }, synced && rd.mustSync);
    if (!synced && this.disk.hasUnsynced) this.env.scheduleSync(this);
    this.completeReady(rd, rd.messages, term, rd.snapshot ? this.node.confState() : null);
  }

  /** asyncPersist: the write goes to the page cache now; the leader's appends leave at once. */
  private startPersist(rd: Ready, term: number): void {
    if (rd.snapshot) this.disk.write({ kind: 'snapshot', snapshot: rd.snapshot }, false);
    if (rd.entries.length > 0) this.disk.write({ kind: 'entries', entries: rd.entries }, false);
    if (rd.hardState) this.disk.write({ kind: 'hardState', hardState: rd.hardState }, false);
    for (const m of rd.messages) if (this.options.sendAllBeforePersist || sendableBeforePersist(m)) this.env.send(m);
    this.persisting = rd;
    this.persistingTerm = term;
    this.persistingConf = rd.snapshot ? this.node.confState() : null;
    this.env.schedulePersisted(this);
  }

  /** The fsync of the Ready being persisted returned: complete it, then take the next ones. */
  persisted(): void {
    const rd = this.persisting;
    if (!this.alive || rd === null) return;
    this.persisting = null;
    this.disk.sync();
    this.completeReady(
      rd,
      this.options.sendAllBeforePersist ? [] : rd.messages.filter((m) => !sendableBeforePersist(m)),
      this.persistingTerm,
      this.persistingConf,
    );
    this.processReady();
  }

  /** A persisted Ready: send (what is left of) its messages, apply, advance. */
  private completeReady(rd: Ready, messages: readonly Message[], term: number, adopted: ConfState | null): void {
    this.env.onPersisted(this, rd, term);
    for (const m of messages) this.env.send(m);
    if (rd.snapshot) this.installSnapshot(rd.snapshot, adopted!);
    for (const entry of rd.committedEntries) this.applyEntry(entry.index, entry.term, entry.type, entry.data);
    for (const rs of rd.readStates) {
      const read = this.pendingReads.get(decoder.decode(rs.context));
      if (read) read.readIndex = rs.index;
    }
    this.node.advance(rd);
    this.env.onAdvanced(this);
    this.serveReads();
  }

  private installSnapshot(snapshot: Snapshot, adopted: ConfState): void {
    this.kv = KvStateMachine.restore(snapshot.data);
    this.applied = snapshot.metadata.index;
    // Whether proposals inside the snapshot applied is unknown here: leave them to time out.
    for (const [key, pending] of this.pendingWrites) {
      if (pending.index !== undefined && pending.index <= snapshot.metadata.index) this.pendingWrites.delete(key);
    }
    this.env.onSnapshotInstalled(this, snapshot, adopted);
  }

  private applyEntry(index: number, term: number, type: 'normal' | 'confChange', data: Uint8Array): void {
    this.applied = index;
    if (type === 'confChange') {
      // Not persisted on its own: this host restarts from its snapshot and re-applies the log
      // after it, so the durable configuration is the snapshot's (see MemoryStorage).
      this.node.applyConfChange(decodeConfChange(data));
      this.env.onConfApplied(this, index);
      return;
    }
    this.env.onApplied(this, index, term, data);
    if (data.byteLength === 0) return;
    const cmd = decodeCommand(data);
    const outcome = this.kv.apply(cmd);
    const key = requestKey(cmd);
    const pending = this.pendingWrites.get(key);
    if (pending && outcome.kind === 'applied') {
      this.pendingWrites.delete(key);
      this.env.answer(this, pending.request, { kind: 'ok', output: outcome.output, index });
    }
    this.failWritesDisplacedAt(index, key);
  }

  /** A proposal whose slot was taken by another entry can never apply: answer it for sure. */
  private failWritesDisplacedAt(index: number, appliedKey: string): void {
    for (const [key, pending] of this.pendingWrites) {
      if (pending.index === undefined || pending.index > index || key === appliedKey) continue;
      this.pendingWrites.delete(key);
      this.env.answer(this, pending.request, { kind: 'rejected', reason: 'proposal lost its log slot', leaderHint: this.node.status().leader });
    }
  }

  private serveReads(): void {
    for (const [key, read] of this.pendingReads) {
      if (read.readIndex === undefined || read.readIndex > this.applied) continue;
      this.pendingReads.delete(key);
      if (read.request.input.kind !== 'get') continue;
      const value = this.kv.read(read.request.input.key);
      this.env.answer(this, read.request, { kind: 'ok', output: { kind: 'get', value }, index: read.readIndex });
    }
  }

  private maybeCompact(): void {
    if (!this.alive) return;
    const live = this.disk.live;
    if (this.applied - live.firstIndex() < this.options.compactAfterEntries) return;
    if (this.applied > live.snapshot().metadata.index) this.takeSnapshot();
    const keep = Math.floor(this.options.compactAfterEntries / 2);
    const compactTo = this.applied - keep;
    if (compactTo >= live.firstIndex()) this.disk.write({ kind: 'compact', index: compactTo }, true);
  }

  // ------------------------------------------------------------ requests

  /** A client request arrives. Writes are taken by the leader (and sometimes forwarded). */
  handleRequest(request: ClientRequest, acceptAsFollower: boolean): void {
    const status = this.node.status();
    const isLeader = status.role === 'leader';
    if (!isLeader && !acceptAsFollower) {
      this.env.answer(this, request, { kind: 'rejected', reason: 'not leader', leaderHint: status.leader });
      return;
    }
    if (this.pendingWrites.size + this.pendingReads.size >= this.options.pendingRequestsMax) {
      this.env.answer(this, request, { kind: 'rejected', reason: 'server busy', leaderHint: status.leader });
      return;
    }
    if (request.input.kind === 'get' && !request.readThroughLog) this.startRead(request);
    else this.startWrite(request);
  }

  private startRead(request: ClientRequest): void {
    const key = requestKey(request);
    // As the store does: a leader's lease answers at once (no request, no Ready), else a round.
    const leaseIndex = this.node.leaseReadIndex();
    this.pendingReads.set(key, { request, readIndex: leaseIndex });
    if (leaseIndex === undefined) this.node.readIndex(encoder.encode(key));
    else this.serveReads();
  }

  private startWrite(request: ClientRequest): void {
    try {
      const position = this.node.propose([encodeCommand(request)]);
      this.pendingWrites.set(requestKey(request), { request, index: position?.firstIndex, term: position?.term });
    } catch (err) {
      if (!isRaftError(err, 'FLOTILLA_RAFT_PROPOSAL_DROPPED')) throw err;
      this.env.answer(this, request, { kind: 'rejected', reason: err.message, leaderHint: this.node.status().leader });
    }
  }

  /** The client gave up on a request: forget it (its entry may still apply, unanswered). */
  forget(request: ClientRequest): void {
    this.pendingWrites.delete(requestKey(request));
    this.pendingReads.delete(requestKey(request));
  }

  step(m: Message): void {
    try {
      this.node.step(m);
    } catch (err) {
      // A response from a removed member, or a dropped forwarded proposal: nothing to do.
      if (!isRaftError(err)) throw err;
    }
  }
}
