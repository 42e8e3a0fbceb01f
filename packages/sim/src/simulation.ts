import {
  BOOTSTRAP_HARD_STATE,
  SeededRandom,
  bootstrapSnapshot,
  type ConfState,
  type InjectedFaults,
  type Message,
  type NodeId,
  type Ready,
  type Snapshot,
} from '@flotilla/raft';
import { InvariantChecker, type Violation } from './checker.ts';
import { ClientModel, type ClientActions } from './clients.ts';
import { SimDisk } from './disk.ts';
import { EventQueue } from './event-queue.ts';
import { FaultScheduler } from './faults.ts';
import { SimHost, type ClientRequest, type HostAnswer, type HostEnvironment, type HostOptions } from './host.ts';
import { kvModel } from './kv-model.ts';
import { checkLinearizability } from './linearizability.ts';
import { SimNetwork } from './network.ts';
import { TraceHash, messageTypeCode } from './trace.ts';

export interface SimulationOptions {
  readonly seed: number;
  readonly nodes: 3 | 5;
  /** Client operations recorded in the safety phase (the run goes on until this many). */
  readonly ops: number;
  /** Deliberately injected core bugs (teeth tests). */
  readonly faults?: InjectedFaults;
  /** Host bug: acknowledge writes before they are durable. */
  readonly ackBeforePersist?: boolean;
  /** Chance that a new leader is crashed right after winning; drawn per seed when absent. */
  readonly leaderChurnRate?: number;
  /** Turn fault injection off (for a calm baseline run, or a scripted scenario). */
  readonly calm?: boolean;
  /** Hosts tick on their own (default). Scripted scenarios turn it off and campaign by hand. */
  readonly autoTick?: boolean;
  /** Overrides of the per-seed host configuration (scripted scenarios). */
  readonly hostOverrides?: Partial<HostOptions>;
  /** Time budget for the linearizability check; running out is a failure. */
  readonly linearizabilityBudgetMs?: number;
}

export interface SimulationResult {
  readonly seed: number;
  readonly violations: readonly Violation[];
  readonly violationCount: number;
  readonly traceHash: string;
  readonly ops: number;
  readonly okOps: number;
  readonly unknownOps: number;
  readonly virtualMs: number;
  readonly events: number;
  readonly faultsInjected: number;
  readonly config: string;
}

export type SimEvent =
  | { readonly kind: 'tick'; readonly host: NodeId; readonly incarnation: number }
  | { readonly kind: 'deliver'; readonly message: Message }
  | { readonly kind: 'request'; readonly host: NodeId; readonly request: ClientRequest; readonly acceptAsFollower: boolean }
  | { readonly kind: 'answer'; readonly clientId: number; readonly seq: number; readonly from: NodeId; readonly answer: HostAnswer }
  | { readonly kind: 'clientTimeout'; readonly clientId: number; readonly seq: number }
  | { readonly kind: 'clientNext'; readonly clientId: number }
  | { readonly kind: 'sync'; readonly host: NodeId }
  | { readonly kind: 'persisted'; readonly host: NodeId; readonly incarnation: number }
  | { readonly kind: 'control'; readonly run: () => void };

const TICK_MS = 10;
/** Hosts' tick lengths spread over TICK_MS x [1 - spread/2, 1 + spread/2]. */
const CLOCK_SKEW_SPREAD = 0.04;
/** Bounds of one run: past them the run is reported as a liveness failure, never hangs. */
export const EVENTS_PER_RUN_MAX = 3_000_000;
export const SAFETY_PHASE_MS_MAX = 600_000;
const LIVENESS_ELECTION_TIMEOUTS_MAX = 40;
const LIVENESS_OPS_PER_CLIENT = 3;
const SYNC_DELAY_MS = 5;
/** An fsync of a Ready (asyncPersist) takes between these (network delays are comparable). */
const PERSIST_DELAY_MS_MIN = 0.2;
const PERSIST_DELAY_MS_MAX = 4;

/** Per-seed configuration, drawn from the seed so every run explores a different corner. */
function drawConfig(random: SeededRandom, options: SimulationOptions): HostOptions & { clockSkew: number[]; leaderChurnRate: number } {
  const electionTicks = 10;
  const drawn: HostOptions & { clockSkew: number[]; leaderChurnRate: number } = {
    electionTicks,
    preVote: true,
    checkQuorum: true,
    // 1..3: the store runs 3 (constants.ts); the skip of heartbeats after appends needs 2x < election.
    heartbeatTicks: 1 + random.nextInt(3),
    readOnlyOption: random.chance(0.5) ? 'leaseBased' : 'safe',
    maxClockDriftTicks: 2,
    hibernateAfterTicks: random.chance(0.3) ? 5 + random.nextInt(20) : 0,
    compactAfterEntries: 20 + random.nextInt(200),
    faults: options.faults ?? {},
    ackBeforePersist: options.ackBeforePersist === true,
    // Mostly as the store persists; sometimes all in one step, the order the core also allows.
    asyncPersist: random.chance(0.8),
    sendAllBeforePersist: false,
    pendingRequestsMax: 256,
    // Small appends and windows make followers acknowledge partial logs: the corner where
    // commit rules (figure 8) and flow control break.
    appendBytesMax: random.chance(0.4) ? 1 : 1024 * 1024,
    inflightMessagesMax: random.chance(0.4) ? 1 + random.nextInt(4) : 256,
    leaderChurnRate: options.leaderChurnRate ?? (random.chance(0.3) ? 0.4 : 0),
    // Tick rates differ by up to ±2% (well within maxClockDriftTicks over an election timeout).
    clockSkew: Array.from({ length: 64 }, () => 1 + (random.next() - 0.5) * CLOCK_SKEW_SPREAD),
    tickMsRange: { min: TICK_MS * (1 - CLOCK_SKEW_SPREAD / 2), max: TICK_MS * (1 + CLOCK_SKEW_SPREAD / 2) },
    leaseTickGuard: true,
  };
  return { ...drawn, ...options.hostOverrides };
}

export class Simulation implements HostEnvironment, ClientActions {
  readonly random: SeededRandom;
  readonly queue = new EventQueue<SimEvent>();
  readonly network: SimNetwork;
  readonly hosts = new Map<NodeId, SimHost>();
  /** Hosts removed from the group for good (tombstones): never restarted. */
  readonly removed = new Set<NodeId>();
  readonly checker: InvariantChecker;
  readonly clients: ClientModel;
  readonly trace = new TraceHash();
  readonly config: ReturnType<typeof drawConfig>;
  private readonly faultScheduler: FaultScheduler;
  private readonly incarnations = new Map<NodeId, number>();
  private readonly dirty = new Set<SimHost>();
  now = 0;
  events = 0;
  nextNodeId: NodeId;

  constructor(readonly options: SimulationOptions) {
    this.random = new SeededRandom(options.seed);
    this.config = drawConfig(this.random, options);
    this.network = new SimNetwork(this.random);
    const voters = Array.from({ length: options.nodes }, (_, i) => i + 1);
    const confState: ConfState = { voters, learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
    this.checker = new InvariantChecker(() => this.hosts, confState);
    for (const id of voters) this.createHost(id, bootstrapSnapshot(confState, new Uint8Array(0)));
    this.nextNodeId = options.nodes + 1;
    this.clients = new ClientModel(
      { clients: options.nodes === 5 ? 8 : 5, keys: 4 + this.random.nextInt(12), requestTimeoutMs: 400, readThroughLogRate: 0.2, misdirectRate: 0.1 },
      this.random,
      this,
    );
    this.faultScheduler = new FaultScheduler(this);
  }

  // ------------------------------------------------------------ hosts

  /** Creates and starts a host; `bootstrap` for founding members, none for nodes added later. */
  createHost(id: NodeId, bootstrap?: Snapshot): SimHost {
    const disk = new SimDisk();
    if (bootstrap) {
      disk.write({ kind: 'snapshot', snapshot: bootstrap }, true);
      disk.write({ kind: 'hardState', hardState: BOOTSTRAP_HARD_STATE }, true);
    }
    const host = new SimHost(id, disk, this.config, new SeededRandom(this.options.seed * 1000 + id), this);
    this.hosts.set(id, host);
    this.startHost(host);
    return host;
  }

  startHost(host: SimHost): void {
    const incarnation = (this.incarnations.get(host.id) ?? 0) + 1;
    this.incarnations.set(host.id, incarnation);
    this.checker.onRestart(host.id);
    host.start();
    if (this.options.autoTick !== false) this.scheduleTick(host, incarnation, this.random.next() * TICK_MS);
  }

  crashHost(host: SimHost): void {
    host.crash();
    this.dirty.delete(host);
  }

  /**
   * The host's process stops for `ms` (a long GC, SIGSTOP, a paused VM): no tick, message or
   * request runs meanwhile; then what arrived runs in a random order (the requests may come
   * before the messages that depose a paused leader), before its next tick. Its fsyncs still
   * complete meanwhile (the kernel writes while the process is stopped: the write is durable),
   * but the process learns of it only when it runs again: the rest of the Ready (its messages,
   * applies, advance) waits with the held events.
   */
  pauseHost(host: SimHost, ms: number): void {
    if (host.paused || !host.alive) return;
    host.paused = true;
    const pause = ++host.pauses;
    this.schedule(ms, () => {
      if (host.pauses !== pause || !host.paused) return; // crashed meanwhile: what it held is lost
      host.paused = false;
      const held = host.held.splice(0);
      for (let i = held.length - 1; i > 0; i--) {
        const j = this.random.nextInt(i + 1);
        [held[i], held[j]] = [held[j]!, held[i]!];
      }
      // Queued now, in that order (ties keep insertion order): each runs as its own event,
      // followed by the Ready it makes, as if it had just arrived.
      for (const event of held) this.queue.push(this.now, event);
      this.dirty.add(host); // flushDirty passed over it while it was stopped
    });
  }

  /** One tick of a host's timer, in ms. */
  get tickMs(): number {
    return TICK_MS;
  }

  /** Hosts of the group that are running, sorted by id. */
  aliveHosts(): SimHost[] {
    return [...this.hosts.values()].filter((h) => h.alive && !this.removed.has(h.id)).sort((a, b) => a.id - b.id);
  }

  leader(): SimHost | undefined {
    let best: SimHost | undefined;
    for (const h of this.aliveHosts()) {
      const s = h.node.status();
      if (s.role === 'leader' && (!best || s.term > best.node.status().term)) best = h;
    }
    return best;
  }

  private scheduleTick(host: SimHost, incarnation: number, afterMs: number): void {
    this.queue.push(this.now + afterMs, { kind: 'tick', host: host.id, incarnation });
  }

  schedule(afterMs: number, run: () => void): void {
    this.queue.push(this.now + afterMs, { kind: 'control', run });
  }

  // ------------------------------------------------------------ HostEnvironment

  simTimeMs(): number {
    return this.now;
  }

  send(m: Message): void {
    const delays = this.network.deliveries(m.from, m.to);
    for (const delay of delays) this.queue.push(this.now + delay, { kind: 'deliver', message: m });
    // Snapshots travel on a stream whose end the sender sees (as the real transport reports
    // it): tell the leader whether it arrived, so a lost one is retried.
    if (m.type === 'snapshot') this.reportSnapshotOutcome(m, delays);
  }

  private reportSnapshotOutcome(m: Message, delays: readonly number[]): void {
    const delivered = delays.length > 0;
    const after = (delivered ? Math.min(...delays) : 5) + 1;
    const sender = this.hosts.get(m.from);
    if (!sender) return;
    const incarnation = this.incarnations.get(m.from);
    this.schedule(after, () => {
      if (!sender.alive || this.incarnations.get(m.from) !== incarnation) return;
      sender.node.reportSnapshot(m.to, delivered && this.hosts.get(m.to)?.alive === true ? 'finished' : 'failed');
      this.dirty.add(sender);
    });
  }

  answer(host: SimHost, request: ClientRequest, answer: HostAnswer): void {
    // Answers cross the network too: a partitioned client link loses them (timeouts follow).
    const delay = 0.5 + this.random.next();
    this.queue.push(this.now + delay, { kind: 'answer', clientId: request.clientId, seq: request.seq, from: host.id, answer });
  }

  onPersisted(host: SimHost, rd: Ready, readyTerm: number): void {
    this.checker.now = this.now;
    this.checker.onPersisted(host, rd, readyTerm);
    if (rd.softState?.role === 'leader') this.faultScheduler.onLeaderElected(host);
  }

  incarnationOf(id: NodeId): number {
    return this.incarnations.get(id) ?? 0;
  }

  onApplied(host: SimHost, index: number, term: number, data: Uint8Array): void {
    this.trace.mix(1, host.id, index, term, data.byteLength);
    this.checker.onApplied(host, index, term, data);
  }

  onConfApplied(host: SimHost, index: number): void {
    this.trace.mix(2, host.id, index);
    this.checker.onConfApplied(host, index);
    this.faultScheduler.onConfApplied(host);
  }

  onSnapshotInstalled(host: SimHost, snapshot: Snapshot, adopted: ConfState): void {
    this.trace.mix(3, host.id, snapshot.metadata.index, snapshot.metadata.term);
    this.checker.onSnapshotInstalled(host, snapshot, adopted);
  }

  onAdvanced(host: SimHost): void {
    this.checker.now = this.now; // an advance may run inside an event, before flushDirty sets it
    this.checker.onLeaderState(host);
  }

  scheduleSync(host: SimHost): void {
    this.queue.push(this.now + SYNC_DELAY_MS, { kind: 'sync', host: host.id });
  }

  schedulePersisted(host: SimHost): void {
    const after = PERSIST_DELAY_MS_MIN + this.random.next() * (PERSIST_DELAY_MS_MAX - PERSIST_DELAY_MS_MIN);
    this.queue.push(this.now + after, { kind: 'persisted', host: host.id, incarnation: this.incarnationOf(host.id) });
  }

  // ------------------------------------------------------------ ClientActions

  pickNode(preferred: NodeId): NodeId | undefined {
    const alive = this.aliveHosts();
    if (alive.length === 0) return undefined;
    if (preferred !== 0 && alive.some((h) => h.id === preferred)) return preferred;
    return this.random.pick(alive).id;
  }

  scheduleTimeout(clientId: number, seq: number, afterMs: number): void {
    this.queue.push(this.now + afterMs, { kind: 'clientTimeout', clientId, seq });
  }

  scheduleNext(clientId: number, afterMs: number): void {
    this.queue.push(this.now + afterMs, { kind: 'clientNext', clientId });
  }

  onWriteAcknowledged(target: NodeId, index: number): void {
    const host = this.hosts.get(target);
    if (host) this.checker.onWriteAcknowledged(host, index);
  }

  /** Clients reach a node with a short delay; the node may have crashed by then (then: silence). */
  sendRequest(target: NodeId, request: ClientRequest): void {
    const acceptAsFollower = this.random.chance(0.1);
    this.queue.push(this.now + 0.5 + this.random.next(), { kind: 'request', host: target, request, acceptAsFollower });
  }

  // ------------------------------------------------------------ the loop

  private dispatch(event: SimEvent): void {
    switch (event.kind) {
      case 'tick': {
        const host = this.hosts.get(event.host);
        if (!host || !host.alive || this.incarnations.get(host.id) !== event.incarnation) return;
        // A paused host's timer does not fire: its ticks are lost, as a stalled setInterval's.
        if (!host.paused) host.tick();
        this.dirty.add(host);
        this.scheduleTick(host, event.incarnation, TICK_MS * this.config.clockSkew[host.id % 64]!);
        return;
      }
      case 'deliver': {
        const m = event.message;
        const host = this.hosts.get(m.to);
        if (!host || !host.alive || this.removed.has(m.to)) return;
        if (!this.network.canReach(m.from, m.to)) return; // cut while in flight
        if (host.paused) {
          host.held.push(event);
          return;
        }
        this.trace.mix(4, m.from, m.to, messageTypeCode(m.type), m.term, m.index);
        host.step(m);
        this.dirty.add(host);
        return;
      }
      case 'request': {
        const host = this.hosts.get(event.host);
        if (!host || !host.alive || this.removed.has(host.id)) return;
        if (host.paused) {
          host.held.push(event);
          return;
        }
        host.handleRequest(event.request, event.acceptAsFollower);
        this.dirty.add(host);
        return;
      }
      case 'answer':
        this.trace.mix(5, event.clientId, event.seq, event.answer.kind === 'ok' ? 1 : 0);
        this.clients.onAnswer(event.clientId, event.seq, event.from, event.answer, this.now);
        return;
      case 'clientTimeout': {
        const request = this.clients.onTimeout(event.clientId, event.seq, this.now);
        if (request) for (const h of this.hosts.values()) h.forget(request);
        return;
      }
      case 'clientNext':
        this.clients.next(event.clientId, this.now);
        return;
      case 'sync':
        this.hosts.get(event.host)?.disk.sync();
        return;
      case 'persisted': {
        const host = this.hosts.get(event.host);
        if (!host || !host.alive || this.incarnations.get(host.id) !== event.incarnation) return;
        if (host.paused) {
          host.disk.sync(); // durable now; the stopped process sees it complete on resume
          host.held.push(event);
          return;
        }
        host.persisted();
        this.dirty.add(host);
        return;
      }
      case 'control':
        event.run();
        return;
    }
  }

  /** Runs events until `done()` or `untilMs`; returns false if the time ran out. */
  runUntil(done: () => boolean, untilMs: number): boolean {
    while (!done()) {
      const next = this.queue.pop();
      if (!next) return false;
      if (next.at > untilMs) {
        this.queue.push(next.at, next.event);
        this.now = untilMs;
        return false;
      }
      if (++this.events > EVENTS_PER_RUN_MAX) throw new Error(`event budget of ${EVENTS_PER_RUN_MAX} exhausted`);
      this.now = next.at;
      this.dispatch(next.event);
      this.flushDirty();
    }
    return true;
  }

  /** Scripted scenarios: act on a host's node now and handle the Ready it produces. */
  drive(host: SimHost, action: (node: SimHost['node']) => void): void {
    action(host.node);
    this.checker.onLeaderState(host);
    host.processReady();
  }

  private flushDirty(): void {
    this.checker.now = this.now;
    for (const host of this.dirty) {
      // A stopped process runs nothing: its resume marks it dirty again.
      if (!host.alive || host.paused) continue;
      this.checker.onLeaderState(host);
      host.processReady();
    }
    this.dirty.clear();
  }

  run(): SimulationResult {
    this.clients.startAll(this.now);
    if (!this.options.calm) this.faultScheduler.start();
    const safetyDone = this.runUntil(() => this.clients.recordedOps >= this.options.ops, SAFETY_PHASE_MS_MAX);
    this.checker.now = this.now;
    if (!safetyDone) this.checker.report('progress', `only ${this.clients.recordedOps} of ${this.options.ops} operations in ${SAFETY_PHASE_MS_MAX} ms`);
    this.faultScheduler.stop();
    this.healAll();
    this.checkLiveness();
    this.clients.finish(this.now);
    this.checkHistory();
    return this.result();
  }

  result(): SimulationResult {
    return {
      seed: this.options.seed,
      violations: this.checker.violations,
      violationCount: this.checker.violationCount,
      traceHash: this.trace.value,
      ops: this.clients.recordedOps,
      okOps: this.clients.okCount,
      unknownOps: this.clients.unknownCount,
      virtualMs: Math.round(this.now),
      events: this.events,
      faultsInjected: this.faultScheduler.injected,
      config: `nodes=${this.options.nodes} read=${this.config.readOnlyOption} hibernate=${this.config.hibernateAfterTicks} compact=${this.config.compactAfterEntries} append=${this.config.appendBytesMax} inflight=${this.config.inflightMessagesMax} churn=${this.config.leaderChurnRate}`,
    };
  }

  /** Ends every fault: network healed, crashed hosts restarted, hibernating groups woken. */
  healAll(): void {
    this.network.heal();
    for (const host of this.hosts.values()) {
      if (!host.alive && !this.removed.has(host.id)) this.startHost(host);
    }
    for (const host of this.aliveHosts()) host.node.wake();
  }

  private checkLiveness(): void {
    const electionMs = this.config.electionTicks * TICK_MS;
    const deadline = this.now + LIVENESS_ELECTION_TIMEOUTS_MAX * electionMs;
    this.clients.issuing = false;
    const elected = this.runUntil(() => this.leader() !== undefined && this.clients.inFlightCount === 0, deadline);
    if (!elected) {
      this.checker.report('liveness', `no leader (or requests still pending) ${LIVENESS_ELECTION_TIMEOUTS_MAX} election timeouts after healing`);
      return;
    }
    this.clients.requireCompletions(LIVENESS_OPS_PER_CLIENT, this.now);
    const finished = this.runUntil(() => this.clients.outstandingCompletions === 0, this.now + LIVENESS_ELECTION_TIMEOUTS_MAX * electionMs);
    if (!finished) {
      this.checker.report('liveness', `${this.clients.outstandingCompletions} client operations did not finish after healing`);
    }
    this.clients.issuing = false;
  }

  private checkHistory(): void {
    const result = checkLinearizability(kvModel, this.clients.history, { timeBudgetMs: this.options.linearizabilityBudgetMs ?? 10_000 });
    if (result.verdict === 'illegal') {
      this.checker.report('linearizability', result.illegalPartition.description);
    } else if (result.verdict === 'timeout') {
      this.checker.report('linearizability', `checker ran out of its time budget on key ${result.timedOutKey}`);
    }
  }
}

/**
 * Runs one seed. A broken assertion inside the core or a host (a bug: "it must never happen")
 * ends the run and is reported as a violation, with the seed to replay it.
 */
export function runSimulation(options: SimulationOptions): SimulationResult {
  const sim = new Simulation(options);
  try {
    return sim.run();
  } catch (err) {
    sim.checker.now = sim.now;
    sim.checker.report('assertion', err instanceof Error ? (err.stack ?? err.message) : String(err));
    return sim.result();
  }
}
