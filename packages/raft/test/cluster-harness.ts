import {
  MemoryStorage,
  RawNode,
  SeededRandom,
  bootstrapSnapshot,
  BOOTSTRAP_HARD_STATE,
  decodeConfChange,
  type ConfState,
  type Message,
  type NodeId,
  type RaftConfig,
  type ReadState,
  type Snapshot,
} from '@flotilla/raft';

/**
 * A tiny synchronous cluster for unit tests: every node persists to MemoryStorage, messages
 * go to a shared queue delivered on demand, and filters can drop traffic. (The deterministic
 * simulator in @flotilla/sim is the full-featured version.)
 *
 * The host it plays is a faithful one: it persists snapshot, entries and hard state before
 * sending, applies conf changes through applyConfChange, takes a snapshot of its applied state
 * at every conf change (so a member added later can be sent one that names it), reports the
 * outcome of every snapshot message it sent, and restores `applied` from received snapshots.
 */
export interface TestNode {
  readonly id: NodeId;
  node: RawNode;
  storage: MemoryStorage;
  /** Payloads of applied normal entries (restored from snapshot data on InstallSnapshot). */
  applied: Uint8Array[];
  readStates: ReadState[];
  /** Every configuration this node switched to, in order (from conf changes and snapshots). */
  confStates: ConfState[];
}

export type Options = Partial<Omit<RaftConfig, 'id' | 'storage' | 'random'>>;

/** Bounds of the harness itself (a full queue or endless loop is a test bug, not a hang). */
const QUEUE_MESSAGES_MAX = 1_000_000;

export class TestCluster {
  readonly nodes = new Map<NodeId, TestNode>();
  queue: Message[] = [];
  /** Return false to drop a message. */
  filter: (m: Message) => boolean = () => true;
  /** Every message any node emitted (in Ready order), for counting; cleared with clearSent(). */
  sent: Message[] = [];
  /** Take a snapshot of the applied state whenever a conf change is applied. */
  snapshotOnConfChange = true;

  constructor(
    voters: NodeId[],
    readonly options: Options = {},
    learners: NodeId[] = [],
    seed = 1,
  ) {
    const random = new SeededRandom(seed);
    for (const id of [...voters, ...learners]) {
      const storage = new MemoryStorage();
      storage.applySnapshot(bootstrapSnapshot({ voters, learners, votersOutgoing: [], learnersNext: [], autoLeave: false }));
      storage.setHardState(BOOTSTRAP_HARD_STATE);
      this.add(id, storage, random);
    }
  }

  add(id: NodeId, storage: MemoryStorage, random = new SeededRandom(id)): TestNode {
    const node = new RawNode({ id, storage, random, ...this.options });
    const tn: TestNode = { id, node, storage, applied: [], readStates: [], confStates: [] };
    this.nodes.set(id, tn);
    return tn;
  }

  /** Adds a node with an empty log and no configuration (a member added by a conf change). */
  addEmpty(id: NodeId, options: Options = {}): TestNode {
    const storage = new MemoryStorage();
    const node = new RawNode({ id, storage, random: new SeededRandom(id), ...this.options, ...options });
    const tn: TestNode = { id, node, storage, applied: [], readStates: [], confStates: [] };
    this.nodes.set(id, tn);
    return tn;
  }

  get(id: NodeId): TestNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** Processes every node's Ready once; returns true if anything happened. */
  processReady(): boolean {
    let any = false;
    for (const tn of this.nodes.values()) {
      if (this.processReadyOf(tn)) any = true;
    }
    return any;
  }

  /** Processes one node's Ready (if it has one), as its host would. */
  processReadyOf(tn: TestNode): boolean {
    if (!tn.node.hasReady()) return false;
    const rd = tn.node.ready();
    if (rd.snapshot) {
      tn.storage.applySnapshot(rd.snapshot);
      tn.applied = decodeApplied(rd.snapshot.data);
      tn.confStates.push(rd.snapshot.metadata.confState);
    }
    tn.storage.append(rd.entries);
    if (rd.hardState) tn.storage.setHardState(rd.hardState);
    for (const m of rd.messages) {
      if (this.queue.length >= QUEUE_MESSAGES_MAX) throw new Error('harness queue overflow');
      this.queue.push(m);
      this.sent.push(m);
    }
    for (const e of rd.committedEntries) {
      if (e.type === 'confChange') {
        const cs = tn.node.applyConfChange(decodeConfChange(e.data));
        tn.storage.setConfState(cs, e.index);
        tn.confStates.push(cs);
        if (this.snapshotOnConfChange) tn.storage.createSnapshot(e.index, cs, encodeApplied(tn.applied));
      } else if (e.data.byteLength > 0) {
        tn.applied.push(e.data);
      }
    }
    for (const rs of rd.readStates) tn.readStates.push(rs);
    tn.node.advance(rd);
    return true;
  }

  deliver(): boolean {
    const batch = this.queue;
    this.queue = [];
    for (const m of batch) {
      const passes = this.filter(m);
      const to = this.nodes.get(m.to);
      if (passes && to) {
        try {
          to.node.step(m);
        } catch (err) {
          if (!(err instanceof Error) || !('code' in err)) throw err;
        }
      }
      // The sender's transport reports how a snapshot send went (etcd's ReportSnapshot).
      if (m.type === 'snapshot') this.nodes.get(m.from)?.node.reportSnapshot(m.to, passes && to ? 'finished' : 'failed');
    }
    return batch.length > 0;
  }

  /** Process and deliver until nothing moves (bounded). */
  stabilize(roundsMax = 1000): void {
    for (let i = 0; i < roundsMax; i++) {
      const a = this.processReady();
      const b = this.deliver();
      if (!a && !b) return;
    }
    throw new Error('cluster did not stabilize');
  }

  tickAll(times = 1): void {
    for (let i = 0; i < times; i++) {
      for (const tn of this.nodes.values()) tn.node.tick();
      this.stabilize();
    }
  }

  /** Ticks only the given nodes (each once per round), stabilizing after every round. */
  tick(ids: readonly NodeId[], times = 1): void {
    for (let i = 0; i < times; i++) {
      for (const id of ids) this.get(id).node.tick();
      this.stabilize();
    }
  }

  /**
   * Stabilizes, then lets `leaderId` send heartbeat rounds until every follower heard the
   * commit index. A leader sends no append just to carry a new commit index: followers learn
   * it from the next append or heartbeat, and a heartbeat round skips a replicating follower
   * that got an append since the previous round (the append did the heartbeat's work). So two
   * rounds: the first may skip the followers that just got the last append, the second
   * reaches them.
   */
  heartbeatRound(leaderId: NodeId): void {
    this.stabilize();
    this.tick([leaderId], 2 * (this.options.heartbeatTicks ?? 1));
  }

  leader(): TestNode | undefined {
    return [...this.nodes.values()].find((tn) => tn.node.status().role === 'leader');
  }

  /** Ticks until a leader exists, bounded. */
  electLeader(ticksMax = 200): TestNode {
    for (let i = 0; i < ticksMax; i++) {
      const l = this.leader();
      if (l) return l;
      this.tickAll();
    }
    throw new Error('no leader elected');
  }

  /** Makes `id` campaign now and settles the cluster; throws if it did not win. */
  campaign(id: NodeId): TestNode {
    const tn = this.get(id);
    tn.node.campaign();
    this.stabilize();
    if (tn.node.status().role !== 'leader') throw new Error(`node ${id} did not win its election`);
    return tn;
  }

  /** Drops every message to or from any of `ids` (replaces the filter). */
  isolate(...ids: NodeId[]): void {
    const cut = new Set(ids);
    this.filter = (m) => !cut.has(m.from) && !cut.has(m.to);
  }

  /** Only messages within one group pass (replaces the filter). */
  partition(...groups: NodeId[][]): void {
    const side = new Map<NodeId, number>();
    groups.forEach((g, i) => g.forEach((id) => side.set(id, i)));
    this.filter = (m) => side.get(m.from) === side.get(m.to);
  }

  heal(): void {
    this.filter = () => true;
  }

  clearSent(): void {
    this.sent = [];
  }

  /**
   * Snapshots `id`'s applied state at its applied index and compacts its log up to there
   * (what a host does to bound its log).
   */
  compact(id: NodeId): Snapshot {
    const tn = this.get(id);
    const status = tn.node.status();
    const snapshot = tn.storage.createSnapshot(status.applied, status.config, encodeApplied(tn.applied));
    tn.storage.compact(status.applied);
    return snapshot;
  }
}

/** Snapshot data of the harness state machine: the applied payloads, length-prefixed. */
export function encodeApplied(applied: readonly Uint8Array[]): Uint8Array {
  let size = 0;
  for (const a of applied) size += 4 + a.byteLength;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let at = 0;
  for (const a of applied) {
    view.setUint32(at, a.byteLength, true);
    out.set(a, at + 4);
    at += 4 + a.byteLength;
  }
  return out;
}

export function decodeApplied(data: Uint8Array): Uint8Array[] {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out: Uint8Array[] = [];
  let at = 0;
  while (at < data.byteLength) {
    const length = view.getUint32(at, true);
    out.push(data.slice(at + 4, at + 4 + length));
    at += 4 + length;
  }
  return out;
}

/** Every entry in [firstIndex, lastIndex] of a node's durable log. */
export function storedEntries(tn: TestNode): { index: number; term: number }[] {
  const first = tn.storage.firstIndex();
  const last = tn.storage.lastIndex();
  if (last < first) return [];
  return tn.storage.entries(first, last + 1, Number.POSITIVE_INFINITY).map((e) => ({ index: e.index, term: e.term }));
}

export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
export const text = (b: Uint8Array): string => new TextDecoder().decode(b);

/** A settled cluster of 3 with node 1 leading and every follower in the replicate state. */
export function settledCluster(options: Options = {}): TestCluster {
  const c = new TestCluster([1, 2, 3], options);
  c.campaign(1);
  c.tickAll(2);
  for (const [id, pr] of c.get(1).node.status().progress) {
    if (pr.state !== 'replicate') throw new Error(`follower ${id} is in ${pr.state}, not replicate`);
  }
  return c;
}
