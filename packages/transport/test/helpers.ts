/**
 * Test helpers: waiting on conditions (never sleeping), recording handlers, message builders, and
 * the two fixtures the shared suite runs on.
 */
import net from 'node:net';
import { SeededRandom, message, type Message } from '@flotilla/raft';
import type { Heartbeat, HeartbeatResponse, RaftEnvelope } from '@flotilla/wire';
import {
  MemoryNetwork,
  MemoryTransport,
  TcpTransport,
  type DiskReport,
  type InboundHandlers,
  type PeerTransport,
  type StoreId,
  type TransportError,
  type TransportTls,
  type TransportTuning,
} from '../src/index.ts';
import { waitFor } from '../../../test/support/wait.ts';

export { waitFor };

/** One event-loop turn (lets a transport flush). */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export type SnapshotHandler = (from: StoreId, envelope: RaftEnvelope, chunks: AsyncIterable<Uint8Array>) => Promise<void>;

/** Records everything a transport delivers, in order. */
export class Recorder implements InboundHandlers {
  readonly raftCalls: { from: StoreId; messages: readonly RaftEnvelope[] }[] = [];
  readonly beatCalls: { from: StoreId; beats: readonly Heartbeat[] }[] = [];
  readonly responseCalls: { from: StoreId; beats: readonly HeartbeatResponse[] }[] = [];
  readonly peerStates: [StoreId, 'up' | 'down'][] = [];
  readonly diskStates: [StoreId, DiskReport | null][] = [];
  snapshotHandler: SnapshotHandler = async (_from, _envelope, chunks) => {
    for await (const _ of chunks) {
      // accept everything
    }
  };

  onRaftMessages(from: StoreId, messages: readonly RaftEnvelope[]): void {
    this.raftCalls.push({ from, messages });
  }

  onHeartbeats(from: StoreId, beats: readonly Heartbeat[]): void {
    this.beatCalls.push({ from, beats });
  }

  onHeartbeatResponses(from: StoreId, beats: readonly HeartbeatResponse[]): void {
    this.responseCalls.push({ from, beats });
  }

  onSnapshot(from: StoreId, envelope: RaftEnvelope, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    return this.snapshotHandler(from, envelope, chunks);
  }

  onPeerState(store: StoreId, state: 'up' | 'down'): void {
    this.peerStates.push([store, state]);
  }

  onPeerDiskState(store: StoreId, report: DiskReport | null): void {
    this.diskStates.push([store, report]);
  }

  /** What `store` last said of its disk: undefined if never, null once forgotten. */
  lastDisk(store: StoreId): DiskReport | null | undefined {
    for (let i = this.diskStates.length - 1; i >= 0; i--) if (this.diskStates[i]![0] === store) return this.diskStates[i]![1];
    return undefined;
  }

  /** Raft messages received from `from`, flattened in delivery order. */
  messagesFrom(from: StoreId): RaftEnvelope[] {
    return this.raftCalls.filter((c) => c.from === from).flatMap((c) => c.messages);
  }

  beatsFrom(from: StoreId): Heartbeat[] {
    return this.beatCalls.filter((c) => c.from === from).flatMap((c) => c.beats);
  }

  lastState(store: StoreId): 'up' | 'down' | undefined {
    for (let i = this.peerStates.length - 1; i >= 0; i--) if (this.peerStates[i]![0] === store) return this.peerStates[i]![1];
    return undefined;
  }
}

/** An appendResponse-shaped raft message carrying a sequence number in `index` (no entries). */
export function seqMessage(regionId: number, seq: number): RaftEnvelope {
  const m: Message = message({ type: 'appendResponse', from: regionId * 10 + 1, to: regionId * 10 + 2, term: 3, index: seq });
  return { regionId, fromPeer: m.from, toPeer: m.to, message: m };
}

/** An append with one entry of `bytes` bytes (a busy group's turn). */
export function appendMessage(regionId: number, index: number, bytes: number): RaftEnvelope {
  const data = new Uint8Array(bytes).fill(index & 0xff);
  const m: Message = message({ type: 'append', from: regionId * 10 + 1, to: regionId * 10 + 2, term: 7, index, logTerm: 7, commit: index, entries: [{ index: index + 1, term: 7, type: 'normal', data }] });
  return { regionId, fromPeer: m.from, toPeer: m.to, regionEpoch: { version: 1, confVer: 1 }, message: m };
}

export function beat(regionId: number, commit: number): Heartbeat {
  return { regionId, fromPeer: regionId * 10 + 1, toPeer: regionId * 10 + 2, term: 3, commit, leaderTick: commit };
}

export function beatResponse(regionId: number, tick: number): HeartbeatResponse {
  return { regionId, fromPeer: regionId * 10 + 2, toPeer: regionId * 10 + 1, term: 3, leaderTick: tick };
}

/** The snapshot message that opens a stream (metadata only; the image streams as chunks). */
export function snapshotEnvelope(regionId: number, snapshotId: number): RaftEnvelope {
  const m: Message = message({
    type: 'snapshot',
    from: regionId * 10 + 1,
    to: regionId * 10 + 2,
    term: 5,
    snapshot: { metadata: { index: 100, term: 5, confState: { voters: [regionId * 10 + 1, regionId * 10 + 2], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false } }, data: new Uint8Array([1, 2, 3]) },
  });
  return { regionId, fromPeer: m.from, toPeer: m.to, snapshotId, message: m };
}

/** Deterministic pseudo-random bytes. */
export function bytesOf(length: number, seed: number): Uint8Array {
  const random = new SeededRandom(seed);
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = random.nextInt(256);
  return out;
}

export async function* chunksOf(data: Uint8Array, chunkBytes: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < data.length; at += chunkBytes) yield data.subarray(at, Math.min(data.length, at + chunkBytes));
}

// ---- fixtures ---------------------------------------------------------------------------------------------

export interface CreateOptions {
  readonly tuning?: Partial<TransportTuning>;
  readonly clusterId?: number;
  /** TcpTransport only: this transport's TLS credentials (the fixture's by default). */
  readonly tls?: TransportTls;
}

/** What the shared suite needs from an implementation. */
export interface TransportFixture {
  readonly kind: 'tcp' | 'memory';
  /** A transport for `store` (not started); closed by dispose() if the test does not. */
  create(store: StoreId, options?: CreateOptions): PeerTransport;
  /** Operating errors every transport of this fixture reported. */
  readonly errors: TransportError[];
  /** An address where no store answers. */
  deadAddress(): Promise<{ host: string; port: number }>;
  dispose(): Promise<void>;
}

/** Tuning for tests: millisecond backoff so reconnects happen within a test's patience. */
const TEST_TUNING: Partial<TransportTuning> = { reconnectBackoffBaseMs: 2, reconnectBackoffMaxMs: 20, connectTimeoutMs: 2_000 };

/** `tls`: every transport it creates uses these credentials unless told otherwise (mutual TLS). */
export function tcpFixture(tls?: TransportTls): TransportFixture {
  const transports: PeerTransport[] = [];
  const errors: TransportError[] = [];
  return {
    kind: 'tcp',
    errors,
    create(store, options = {}) {
      const creds = options.tls ?? tls;
      const t = new TcpTransport({
        localStore: store,
        clusterId: options.clusterId ?? 7,
        random: new SeededRandom(store),
        onError: (err) => errors.push(err),
        tuning: { ...TEST_TUNING, ...options.tuning },
        ...(creds === undefined ? {} : { tls: creds }),
      });
      transports.push(t);
      return t;
    },
    async deadAddress() {
      const server = net.createServer();
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as net.AddressInfo;
      await new Promise<void>((resolve) => server.close(() => resolve()));
      return { host: '127.0.0.1', port };
    },
    async dispose() {
      await Promise.all(transports.map((t) => t.close()));
    },
  };
}

export function memoryFixture(): TransportFixture {
  const network = new MemoryNetwork({ seed: 42 });
  const transports: PeerTransport[] = [];
  const errors: TransportError[] = [];
  return {
    kind: 'memory',
    errors,
    create(store, options = {}) {
      const t = new MemoryTransport(network, { localStore: store, clusterId: options.clusterId ?? 7, onError: (err) => errors.push(err), tuning: { ...TEST_TUNING, ...options.tuning } });
      transports.push(t);
      return t;
    },
    deadAddress() {
      return Promise.resolve({ host: 'memory', port: 1_000_000 });
    },
    async dispose() {
      await Promise.all(transports.map((t) => t.close()));
    },
  };
}

export interface Node {
  readonly store: StoreId;
  readonly t: PeerTransport;
  readonly rec: Recorder;
}

/** Starts `stores` (fresh transports), points each at all the others, and waits until all are up. */
export async function cluster(fixture: TransportFixture, stores: readonly StoreId[], options: CreateOptions = {}): Promise<Node[]> {
  const nodes: Node[] = [];
  for (const store of stores) {
    const rec = new Recorder();
    const t = fixture.create(store, options);
    await t.start(rec);
    nodes.push({ store, t, rec });
  }
  for (const a of nodes) for (const b of nodes) if (a !== b) a.t.setPeer(b.store, b.t.address());
  await waitFor('every link up', () => nodes.every((a) => nodes.every((b) => a === b || a.t.stats().get(b.store)?.state === 'up')));
  return nodes;
}
