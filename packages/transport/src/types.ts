import type { Heartbeat, HeartbeatResponse, RaftEnvelope } from '@flotilla/wire';

/**
 * The contract between a store's multi-raft host and the network. The host never builds
 * frames or manages connections: it hands over raft messages as it produces them (from every
 * group's Ready) and the transport coalesces them per destination store into one frame per
 * event-loop turn. Implementations: TcpTransport (real sockets) and MemoryTransport (the
 * in-memory twin for tests and the simulator), which behave the same through this interface.
 */
export type StoreId = number;

/** Why a message could not be queued; the host treats it like a lost message (Raft retries). */
export type EnqueueRefusal = 'queueFull' | 'peerUnknown' | 'closed';

/**
 * This store's data disk as it tells its peers (wire's DiskState without the store ids): a
 * leader fails the writes of a region with too few voters on stores that take entries.
 */
export interface DiskReport {
  /** Critically short of space: raft appends with entries, and snapshots, are dropped. */
  readonly refusesReplication: boolean;
  readonly availableBytes: number;
  readonly reserveBytes: number;
}

/** Outcome of streaming one snapshot, reported to the leader's raft (`reportSnapshot`). */
export type SnapshotOutcome = 'finished' | 'failed';

export interface InboundHandlers {
  /** Raft messages of many groups from one store, in the order the sender queued them. */
  onRaftMessages(from: StoreId, messages: readonly RaftEnvelope[]): void;
  onHeartbeats(from: StoreId, beats: readonly Heartbeat[]): void;
  onHeartbeatResponses(from: StoreId, beats: readonly HeartbeatResponse[]): void;
  /**
   * A snapshot arrives as a stream of chunks; the receiver returns when it has stored them
   * (backpressure), and throws to reject the snapshot (the sender then reports 'failed').
   */
  onSnapshot(from: StoreId, envelope: RaftEnvelope, chunks: AsyncIterable<Uint8Array>): Promise<void>;
  /** Store-level liveness: the connection to `store` broke, or came back. */
  onPeerState?(store: StoreId, state: 'up' | 'down'): void;
  /**
   * What `store` last said of its disk (announceDiskState); null once the connection that
   * carried it is gone — unknown again, until the store says it anew on its next connection.
   */
  onPeerDiskState?(store: StoreId, report: DiskReport | null): void;
}

export interface PeerTransport {
  readonly localStore: StoreId;
  /** Where peers reach this store (after start()). */
  address(): { host: string; port: number };
  start(handlers: InboundHandlers): Promise<void>;
  /** Adds or changes a peer's address (from the placement driver). */
  setPeer(store: StoreId, address: { host: string; port: number }): void;
  removePeer(store: StoreId): void;
  /**
   * Queues a raft message for the current turn's frame to `to`. Heartbeats and their
   * responses should go through the heartbeat methods (coalesced per store pair).
   * Returns null when queued, or why not: a full queue pushes back (bounded per peer).
   */
  send(to: StoreId, envelope: RaftEnvelope): EnqueueRefusal | null;
  sendHeartbeat(to: StoreId, beat: Heartbeat): EnqueueRefusal | null;
  sendHeartbeatResponse(to: StoreId, beat: HeartbeatResponse): EnqueueRefusal | null;
  /**
   * Hands everything queued so far to the network now instead of at the end of the turn (still
   * one frame per destination): for a sender that knows its batch is complete — the host after
   * a ready cycle's sends, whose followers then start their log writes a turn earlier.
   */
  flush(): void;
  /**
   * Tells every peer this store's disk state now (one small frame each, ahead of the turn's
   * raft traffic), and again on each new connection from then on. Never called: nothing is
   * sent, so peers of an older version, which do not know the frame, never see one.
   */
  announceDiskState(report: DiskReport): void;
  /** Streams a snapshot on a separate connection, so it never delays heartbeats. */
  sendSnapshot(to: StoreId, envelope: RaftEnvelope, chunks: AsyncIterable<Uint8Array>): Promise<SnapshotOutcome>;
  /** Per-peer counters for metrics and tests. */
  stats(): ReadonlyMap<StoreId, PeerStats>;
  close(): Promise<void>;
}

export interface PeerStats {
  readonly state: 'connecting' | 'up' | 'backoff' | 'down';
  readonly framesSent: number;
  readonly messagesSent: number;
  readonly bytesSent: number;
  readonly framesReceived: number;
  readonly queuedMessages: number;
  readonly refusedQueueFull: number;
  readonly reconnects: number;
}
