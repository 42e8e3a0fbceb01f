import {
  BOOTSTRAP_HARD_STATE,
  MemoryStorage,
  RawNode,
  SeededRandom,
  bootstrapSnapshot,
  decodeConfChange,
  isRaftError,
  resolveConfig,
  type ConfState,
  type Entry,
  type Message,
  type MessageType,
  type NodeId,
  type RaftConfig,
  type Snapshot,
  type StateRole,
} from '@flotilla/raft';
import { UsageError } from './args.ts';
import { describeConfChange, describeConfState, describeMessage, describeReady, describeSnapshot } from './format.ts';
import { Network } from './network.ts';
import { Output } from './output.ts';

/**
 * The cluster an interaction script drives (etcd-raft's InteractionEnv): RawNodes over
 * MemoryStorage, one shared queue of messages in flight, and a Network that may cut links.
 * Nothing happens unless a directive asks for it; every iteration is in node-id order.
 */

/** Rounds of `stabilize` (process every Ready, deliver every message) before giving up. */
export const STABILIZE_ROUNDS_MAX = 1000;
/** Messages in flight; a script that exceeds it is looping. */
export const QUEUE_MESSAGES_MAX = 100_000;

export type NodeConfig = Partial<Omit<RaftConfig, 'id' | 'storage' | 'random' | 'applied'>>;

/** How the host around a RawNode behaves (beyond the Ready contract). */
export interface HostOptions {
  /**
   * Snapshot the applied state at every applied conf change, so that a member added later is
   * sent a snapshot that names it (the core ignores snapshots that don't).
   */
  readonly snapshotOnConfChange: boolean;
}

/** A normal entry the node's state machine applied. */
export interface AppliedEntry {
  readonly index: number;
  readonly data: string;
}

interface Observed {
  readonly role: StateRole;
  readonly term: number;
  readonly lead: NodeId;
  readonly hibernating: boolean;
  readonly config: string;
}

export interface EnvNode {
  readonly id: NodeId;
  raw: RawNode;
  readonly storage: MemoryStorage;
  readonly config: NodeConfig;
  readonly host: HostOptions;
  readonly seed: number;
  /** What the host applied: persisted with the state machine, so it survives restarts. */
  appliedIndex: number;
  lastConfChangeIndex: number;
  stateMachine: AppliedEntry[];
  observed: Observed;
}

export interface Bootstrap {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Snapshot data is the applied entries as JSON: a node that installs it knows the state. */
export function encodeStateMachine(entries: readonly AppliedEntry[]): Uint8Array {
  return encoder.encode(JSON.stringify(entries.map((e) => [e.index, e.data])));
}

function decodeStateMachine(data: Uint8Array): AppliedEntry[] {
  if (data.byteLength === 0) return [];
  const parsed: unknown = JSON.parse(decoder.decode(data));
  if (!Array.isArray(parsed)) throw new Error('snapshot data is not a list');
  return parsed.map((pair: unknown) => {
    if (!Array.isArray(pair) || typeof pair[0] !== 'number' || typeof pair[1] !== 'string') throw new Error('bad snapshot entry');
    return { index: pair[0], data: pair[1] };
  });
}

function observe(raw: RawNode): Observed {
  const s = raw.status();
  return { role: s.role, term: s.term, lead: s.leader, hibernating: s.hibernating, config: describeConfState(s.config) };
}

/** A message in flight; `lost` when its link was cut as it was sent (it is dropped on delivery). */
interface InFlight {
  readonly message: Message;
  readonly lost: boolean;
}

export class InteractionEnv {
  readonly nodes = new Map<NodeId, EnvNode>();
  readonly network = new Network();
  readonly out = new Output();
  private queue: InFlight[] = [];

  node(id: NodeId): EnvNode {
    const n = this.nodes.get(id);
    if (!n) throw new UsageError(`no node ${id}`);
    return n;
  }

  /** The given nodes, or all of them, in id order. */
  select(ids: readonly NodeId[]): EnvNode[] {
    if (ids.length > 0) return ids.map((id) => this.node(id));
    return [...this.nodes.values()].sort((a, b) => a.id - b.id);
  }

  nextId(): NodeId {
    return this.nodes.size === 0 ? 1 : Math.max(...this.nodes.keys()) + 1;
  }

  /** Adds a node: bootstrapped from the group's first snapshot when `boot` is given, else empty. */
  addNode(id: NodeId, config: NodeConfig, host: HostOptions, seed: number, boot: Bootstrap | null): EnvNode {
    const storage = new MemoryStorage();
    if (boot) {
      const cs: ConfState = { voters: boot.voters, learners: boot.learners, votersOutgoing: [], learnersNext: [], autoLeave: false };
      storage.applySnapshot(bootstrapSnapshot(cs));
      storage.setHardState(BOOTSTRAP_HARD_STATE);
    }
    const appliedIndex = storage.snapshot().metadata.index;
    const raw = this.newRawNode(id, storage, config, seed, appliedIndex);
    const n: EnvNode = {
      id, raw, storage, config, host, seed, appliedIndex,
      lastConfChangeIndex: appliedIndex,
      stateMachine: [],
      observed: observe(raw),
    };
    this.nodes.set(id, n);
    const from = boot ? `snapshot ${describeSnapshot(storage.snapshot())}` : 'empty storage';
    this.out.line(`INFO ${id} started from ${from}`);
    return n;
  }

  private newRawNode(id: NodeId, storage: MemoryStorage, config: NodeConfig, seed: number, applied: number): RawNode {
    return new RawNode({ ...config, id, storage, random: new SeededRandom(seed * 1000 + id), applied });
  }

  /** Recreates the RawNode from storage: volatile state (role, leader, progress, unstable log) is lost. */
  restart(n: EnvNode): void {
    n.raw = this.newRawNode(n.id, n.storage, n.config, n.seed, n.appliedIndex);
    const s = n.raw.status();
    this.out.line(`INFO ${n.id} restarted: term=${s.term} vote=${s.vote} commit=${s.commit} applied=${s.applied} last=${s.lastIndex}`);
    this.observeChanges(n);
  }

  electionTicks(n: EnvNode): number {
    return resolveConfig({ ...n.config, id: n.id, storage: n.storage, random: new SeededRandom(0) }).electionTicks;
  }

  heartbeatTicks(n: EnvNode): number {
    return resolveConfig({ ...n.config, id: n.id, storage: n.storage, random: new SeededRandom(0) }).heartbeatTicks;
  }

  /** Prints how the node's role, term, leader, hibernation and configuration changed. */
  observeChanges(n: EnvNode): void {
    const before = n.observed;
    const now = observe(n.raw);
    n.observed = now;
    if (before.role !== now.role || before.term !== now.term || before.lead !== now.lead) {
      this.out.line(`INFO ${n.id} became ${now.role} at term ${now.term}, lead=${now.lead}`);
    }
    if (before.hibernating !== now.hibernating) this.out.line(`INFO ${n.id} ${now.hibernating ? 'hibernates' : 'woke up'}`);
    if (before.config !== now.config) this.out.line(`INFO ${n.id} switched to configuration ${now.config}`);
  }

  /** Runs an action against a node; RaftErrors are printed (the host would handle them). */
  act(n: EnvNode, action: (raw: RawNode) => void): void {
    try {
      action(n.raw);
    } catch (err) {
      if (!isRaftError(err)) throw err;
      this.out.line(`error: ${err.code}: ${err.message}`);
    }
    this.observeChanges(n);
  }

  tick(n: EnvNode, count: number): void {
    for (let i = 0; i < count; i++) this.act(n, (raw) => raw.tick());
  }

  // ---------------------------------------------------------------- Ready

  processReady(n: EnvNode): void {
    if (!n.raw.hasReady()) {
      this.out.line('<empty Ready>');
      return;
    }
    const rd = n.raw.ready();
    for (const line of describeReady(rd)) this.out.line(line);
    if (rd.snapshot) this.installSnapshot(n, rd.snapshot);
    n.storage.append(rd.entries);
    if (rd.hardState) n.storage.setHardState(rd.hardState);
    this.enqueue(rd.messages);
    for (const entry of rd.committedEntries) this.apply(n, entry);
    n.raw.advance(rd);
    this.observeChanges(n);
  }

  private enqueue(messages: readonly Message[]): void {
    if (this.queue.length + messages.length > QUEUE_MESSAGES_MAX) throw new Error(`more than ${QUEUE_MESSAGES_MAX} messages in flight`);
    for (const m of messages) this.queue.push({ message: m, lost: this.network.blocked(m.from, m.to) });
  }

  private installSnapshot(n: EnvNode, snapshot: Snapshot): void {
    n.storage.applySnapshot(snapshot);
    n.stateMachine = decodeStateMachine(snapshot.data);
    n.appliedIndex = snapshot.metadata.index;
    n.lastConfChangeIndex = snapshot.metadata.index;
  }

  private apply(n: EnvNode, entry: Entry): void {
    n.appliedIndex = entry.index;
    if (entry.type === 'normal') {
      if (entry.data.byteLength > 0) n.stateMachine.push({ index: entry.index, data: decoder.decode(entry.data) });
      return;
    }
    const cc = decodeConfChange(entry.data);
    n.lastConfChangeIndex = entry.index;
    let cs: ConfState;
    try {
      cs = n.raw.applyConfChange(cc);
    } catch (err) {
      if (!isRaftError(err)) throw err;
      this.out.line(`error applying ${entry.term}/${entry.index} confChange ${describeConfChange(cc)}: ${err.code}: ${err.message}`);
      return;
    }
    n.storage.setConfState(cs, entry.index);
    if (n.host.snapshotOnConfChange) n.storage.createSnapshot(entry.index, cs, this.stateMachineData(n, entry.index));
  }

  private stateMachineData(n: EnvNode, index: number): Uint8Array {
    return encodeStateMachine(n.stateMachine.filter((e) => e.index <= index));
  }

  // ---------------------------------------------------------------- messages

  /**
   * Delivers (or, with `drop`, discards) the queued messages to `id`, optionally only those of
   * one type. A message is lost if its link was cut when it was sent or is cut now.
   * Returns how many were taken.
   */
  deliverTo(id: NodeId, drop: boolean, type: MessageType | undefined): number {
    const taken = this.queue.filter((f) => f.message.to === id && (type === undefined || f.message.type === type));
    if (taken.length === 0) return 0;
    this.queue = this.queue.filter((f) => !taken.includes(f));
    const n = this.nodes.get(id);
    for (const { message: m, lost } of taken) {
      if (drop) this.out.line(`dropped: ${describeMessage(m)}`);
      else if (lost || this.network.blocked(m.from, m.to)) this.out.line(`dropped (partition): ${describeMessage(m)}`);
      else if (!n) this.out.line(`dropped (no node ${id}): ${describeMessage(m)}`);
      else this.step(n, m);
      if (m.type === 'snapshot') this.reportSnapshot(m, n !== undefined && !drop && !lost && !this.network.blocked(m.from, m.to));
    }
    return taken.length;
  }

  /** The sender's transport reports how a snapshot send went (etcd's ReportSnapshot). */
  private reportSnapshot(m: Message, delivered: boolean): void {
    const sender = this.nodes.get(m.from);
    if (!sender) return;
    const outcome = delivered ? 'finished' : 'failed';
    this.out.line(`report-snapshot ${m.from}->${m.to} ${outcome}`);
    this.act(sender, (raw) => raw.reportSnapshot(m.to, outcome));
  }

  private step(n: EnvNode, m: Message): void {
    this.out.line(describeMessage(m));
    this.act(n, (raw) => raw.step(m));
  }

  /** After links were cut: what is in flight on them is lost (even if they heal before delivery). */
  loseCutMessages(): void {
    this.queue = this.queue.map((f) => (f.lost || !this.network.blocked(f.message.from, f.message.to) ? f : { ...f, lost: true }));
  }

  hasMessagesFor(id: NodeId): boolean {
    return this.queue.some((f) => f.message.to === id);
  }

  /** etcd's stabilize: handle every Ready, then deliver every message, until nothing moves. */
  stabilize(nodes: readonly EnvNode[]): void {
    for (let round = 0; round < STABILIZE_ROUNDS_MAX; round++) {
      let done = true;
      for (const n of nodes) {
        if (!n.raw.hasReady()) continue;
        done = false;
        this.out.line(`> ${n.id} handling Ready`);
        this.out.indented(() => this.processReady(n));
      }
      for (const n of nodes) {
        if (!this.hasMessagesFor(n.id)) continue;
        done = false;
        this.out.line(`> ${n.id} receiving messages`);
        this.out.indented(() => this.deliverTo(n.id, false, undefined));
      }
      if (done) return;
    }
    throw new Error(`no quiescence after ${STABILIZE_ROUNDS_MAX} rounds of stabilize`);
  }

  // ---------------------------------------------------------------- snapshots

  /** Snapshots the node's state machine at `index` (applied) and compacts its log up to it. */
  compact(n: EnvNode, index: number): void {
    if (index > n.appliedIndex) throw new UsageError(`compact ${n.id} ${index}: only ${n.appliedIndex} is applied`);
    if (index < n.lastConfChangeIndex) {
      throw new UsageError(`compact ${n.id} ${index}: a conf change was applied at ${n.lastConfChangeIndex}; the snapshot would carry the wrong configuration`);
    }
    const current = n.storage.snapshot().metadata.index;
    if (index < current) throw new UsageError(`compact ${n.id} ${index}: there is a snapshot at ${current} already`);
    if (index > current) n.storage.createSnapshot(index, n.raw.confState(), this.stateMachineData(n, index));
    const snapshot = n.storage.snapshot();
    n.storage.compact(index);
    this.out.line(`INFO ${n.id} created snapshot ${describeSnapshot(snapshot)}; log now ${n.storage.firstIndex()}..${n.storage.lastIndex()}`);
  }
}
