import {
  MemoryStorage,
  RawNode,
  SeededRandom,
  bootstrapSnapshot,
  BOOTSTRAP_HARD_STATE,
  decodeConfChange,
  type Message,
  type NodeId,
  type RaftConfig,
  type ReadState,
} from '@flotilla/raft';

/**
 * A tiny synchronous cluster for unit tests: every node persists to MemoryStorage, messages
 * go to a shared queue delivered on demand, and filters can drop traffic. (The deterministic
 * simulator in @flotilla/sim is the full-featured version.)
 */
export interface TestNode {
  readonly id: NodeId;
  node: RawNode;
  storage: MemoryStorage;
  applied: Uint8Array[];
  readStates: ReadState[];
}

export type Options = Partial<Omit<RaftConfig, 'id' | 'storage' | 'random'>>;

export class TestCluster {
  readonly nodes = new Map<NodeId, TestNode>();
  queue: Message[] = [];
  /** Return false to drop a message. */
  filter: (m: Message) => boolean = () => true;

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
    const tn: TestNode = { id, node, storage, applied: [], readStates: [] };
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
      if (!tn.node.hasReady()) continue;
      any = true;
      const rd = tn.node.ready();
      if (rd.snapshot) tn.storage.applySnapshot(rd.snapshot);
      tn.storage.append(rd.entries);
      if (rd.hardState) tn.storage.setHardState(rd.hardState);
      for (const m of rd.messages) this.queue.push(m);
      for (const e of rd.committedEntries) {
        if (e.type === 'confChange') {
          const cs = tn.node.applyConfChange(decodeConfChange(e.data));
          tn.storage.setConfState(cs);
        } else if (e.data.byteLength > 0) {
          tn.applied.push(e.data);
        }
      }
      for (const rs of rd.readStates) tn.readStates.push(rs);
      tn.node.advance(rd);
    }
    return any;
  }

  deliver(): boolean {
    const batch = this.queue;
    this.queue = [];
    for (const m of batch) {
      if (!this.filter(m)) continue;
      const to = this.nodes.get(m.to);
      if (!to) continue;
      try {
        to.node.step(m);
      } catch (err) {
        if (!(err instanceof Error) || !('code' in err)) throw err;
      }
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
}

export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
export const text = (b: Uint8Array): string => new TextDecoder().decode(b);
