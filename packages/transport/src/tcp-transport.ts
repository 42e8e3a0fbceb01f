/**
 * TcpTransport: the real PeerTransport on node:net.
 *
 * - One outbound raft connection per peer store carries every group's messages to it (tcp-link.ts);
 *   the peer's traffic to us arrives on the connection it dials (tcp-inbound.ts). Connections are
 *   kept while idle; a peer is dialed as soon as it is known (setPeer), so liveness is known too.
 * - Coalescing: send / sendHeartbeat / sendHeartbeatResponse only queue (outbox.ts). ONE
 *   setImmediate per event-loop turn flushes every writable peer: its queue becomes one RaftBatch,
 *   one HeartbeatBatch and one HeartbeatResponseBatch frame (more only past wire's bounds),
 *   written with one writev. A sender that knows its batch is complete calls flush() instead.
 * - Snapshots stream on a connection of their own (tcp-snapshot.ts).
 */
import { collectPeerStats } from './peer-stats.ts';
import type { AddressInfo, Server, Socket } from 'node:net';
import type { RandomSource } from '@flotilla/raft';
import { encodeFrame, type Heartbeat, type HeartbeatResponse, type RaftEnvelope } from '@flotilla/wire';
import { mathRandom } from './backoff.ts';
import { inboundPendingMax, storesMax, type TransportTuning } from './constants.ts';
import { TransportError, invalidArgument, type TransportErrorHook } from './errors.ts';
import type { FaultSwitch } from './fault-switch.ts';
import { checkDiskReport, checkEnvelope, checkSnapshotEnvelope, checkStore, type Outbox } from './outbox.ts';
import { describeRemote, type TcpContext } from './tcp-context.ts';
import { InboundConnection, type InboundRegistry } from './tcp-inbound.ts';
import { PeerLink } from './tcp-link.ts';
import { SnapshotSend } from './tcp-snapshot.ts';
import { certificateNotAfter, checkTls, listener, renewListener, type TransportTls } from './tcp-tls.ts';
import { resolveTuning } from './tuning.ts';
import type { DiskReport, EnqueueRefusal, InboundHandlers, PeerStats, PeerTransport, SnapshotOutcome, StoreId } from './types.ts';

export interface TcpTransportOptions {
  readonly localStore: StoreId;
  /** Every store of a cluster shares it; connections from another cluster are refused. */
  readonly clusterId: number;
  /** Where to listen. Default: 127.0.0.1, port 0 (any free port; see address()). */
  readonly listen?: { readonly host?: string; readonly port?: number };
  /** The host peers should dial, when it differs from the listening one (e.g. listening on 0.0.0.0). */
  readonly advertiseHost?: string;
  /** Jitter of reconnect delays; inject a seeded one (raft's SeededRandom) for reproducible runs. */
  readonly random?: RandomSource;
  /** Operating errors, already handled (connections refused or closed, streams failed): for logs. */
  readonly onError?: TransportErrorHook;
  readonly tuning?: Partial<TransportTuning>;
  /** Tests only (fault-switch.ts): drops traffic to and from the stores it names. */
  readonly faults?: FaultSwitch;
  /** Mutual TLS on every connection, both ways (tcp-tls.ts). Default: plain TCP. */
  readonly tls?: TransportTls;
}

const NO_HANDLERS: InboundHandlers = {
  onRaftMessages: () => {},
  onHeartbeats: () => {},
  onHeartbeatResponses: () => {},
  onSnapshot: () => Promise.reject(new Error('not started')),
};

export class TcpTransport implements PeerTransport {
  readonly localStore: StoreId;
  private readonly ctx: TcpContext & { closed: boolean; handlers: InboundHandlers; diskReport: DiskReport | null; tls: TransportTls | null };
  private readonly listenHost: string;
  private readonly listenPort: number;
  private readonly advertiseHost: string | undefined;
  private readonly faults: FaultSwitch | undefined;
  private server: Server | null = null;
  private started = false;
  private readonly links = new Map<StoreId, PeerLink>();
  /** Links with something queued, to look at in the next flush. */
  private readonly dirty = new Set<PeerLink>();
  private flushScheduled: NodeJS.Immediate | null = null;
  private readonly inbound = new Set<InboundConnection>();
  private readonly raftInbound = new Map<StoreId, InboundConnection>();
  private readonly framesReceived = new Map<StoreId, number>();
  private readonly snapshotSends = new Set<SnapshotSend>();
  private snapshotReceives = 0;
  private readonly sockets = new Set<Socket>();
  /** With TLS: every accepted TCP connection, handshaking or not (close() ends those that never finished). */
  private readonly accepted = new Set<Socket>();
  private allClosed: (() => void) | null = null;
  private closing: Promise<void> | null = null;

  constructor(options: TcpTransportOptions) {
    if (!Number.isSafeInteger(options.localStore) || options.localStore < 1) invalidArgument(`localStore must be a positive safe integer, got ${options.localStore}`);
    if (!Number.isSafeInteger(options.clusterId) || options.clusterId < 1) invalidArgument(`clusterId must be a positive safe integer, got ${options.clusterId}`);
    this.localStore = options.localStore;
    this.listenHost = options.listen?.host ?? '127.0.0.1';
    this.listenPort = options.listen?.port ?? 0;
    this.advertiseHost = options.advertiseHost;
    this.faults = options.faults;
    const onError = options.onError ?? (() => {});
    const sockets = this.sockets;
    this.ctx = {
      localStore: options.localStore,
      clusterId: options.clusterId,
      tuning: resolveTuning(options.tuning),
      random: options.random ?? mathRandom,
      closed: false,
      diskReport: null,
      tls: options.tls === undefined ? null : checkTls(options.tls),
      handlers: NO_HANDLERS,
      report: (err) => {
        if (!this.ctx.closed) onError(err);
      },
      track: (socket) => {
        sockets.add(socket);
        socket.once('close', () => {
          sockets.delete(socket);
          if (sockets.size === 0) this.allClosed?.();
        });
      },
    };
  }

  address(): { host: string; port: number } {
    const info = this.server?.address();
    if (info === undefined || info === null || typeof info === 'string') throw new TransportError('FLOTILLA_TRANSPORT_NOT_STARTED', 'address() before start()');
    return { host: this.advertiseHost ?? (info as AddressInfo).address, port: (info as AddressInfo).port };
  }

  async start(handlers: InboundHandlers): Promise<void> {
    if (this.started || this.ctx.closed) throw new TransportError('FLOTILLA_TRANSPORT_NOT_STARTED', this.started ? 'start() called twice' : 'start() after close()');
    this.started = true;
    this.ctx.handlers = this.faults?.filterInbound(handlers) ?? handlers;
    const server = listener(this.ctx.tls, this.ctx.tuning.connectTimeoutMs, (socket) => this.onConnection(socket), (err, socket) => {
      this.ctx.report(new TransportError('FLOTILLA_TRANSPORT_TLS_REFUSED', `connection from ${describeRemote(socket)} refused: ${err.message}`, { cause: err }));
    });
    if (this.ctx.tls !== null) {
      server.on('connection', (raw: Socket) => {
        this.accepted.add(raw);
        raw.once('close', () => this.accepted.delete(raw));
      });
    }
    server.maxConnections = storesMax + inboundPendingMax + this.ctx.tuning.snapshotReceivesMax;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.listenHost, port: this.listenPort }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.ctx.report(new TransportError('FLOTILLA_TRANSPORT_CONNECTION_LOST', `listener error: ${err.message}`, { cause: err })));
    for (const link of this.links.values()) link.start();
  }

  /**
   * New TLS credentials (certificate rotation): connections made or accepted from now on use
   * them; established ones keep theirs. Only for a transport created with `tls`.
   */
  setTls(creds: TransportTls): void {
    if (this.ctx.tls === null) invalidArgument('setTls on a transport created without tls');
    const checked = checkTls(creds);
    this.ctx.tls = checked;
    if (this.server !== null) renewListener(this.server, checked);
  }

  /** With TLS: when the certificate in use expires, in Unix seconds (for an expiry alert); null without TLS. */
  tlsCertificateExpiry(): number | null {
    return this.ctx.tls === null ? null : certificateNotAfter(this.ctx.tls);
  }

  setPeer(store: StoreId, address: { host: string; port: number }): void {
    checkStore(store, this.localStore);
    if (typeof address.host !== 'string' || !Number.isInteger(address.port) || address.port < 1 || address.port > 0xffff) invalidArgument(`bad address for store ${store}: ${JSON.stringify(address)}`);
    if (this.ctx.closed) return;
    const existing = this.links.get(store);
    if (existing !== undefined) {
      existing.setAddress({ host: address.host, port: address.port });
      return;
    }
    if (this.links.size >= storesMax) invalidArgument(`more than storesMax (${storesMax}) peers`);
    const link = new PeerLink(this.ctx, store, { host: address.host, port: address.port }, (l) => this.markDirty(l));
    this.links.set(store, link);
    if (this.started) link.start();
  }

  removePeer(store: StoreId): void {
    const link = this.links.get(store);
    if (link === undefined) return;
    this.links.delete(store);
    this.dirty.delete(link);
    link.stop(null);
    for (const send of this.snapshotSends) {
      if (send.store === store) send.abort(new TransportError('FLOTILLA_TRANSPORT_SNAPSHOT_ABORTED', `store ${store} was removed`, { store }));
    }
  }

  send(to: StoreId, envelope: RaftEnvelope): EnqueueRefusal | null {
    const bytes = checkEnvelope(envelope);
    return this.enqueue(to, (outbox) => outbox.offerRaft(envelope, bytes));
  }

  sendHeartbeat(to: StoreId, beat: Heartbeat): EnqueueRefusal | null {
    return this.enqueue(to, (outbox) => outbox.offerHeartbeat(beat));
  }

  sendHeartbeatResponse(to: StoreId, beat: HeartbeatResponse): EnqueueRefusal | null {
    return this.enqueue(to, (outbox) => outbox.offerHeartbeatResponse(beat));
  }

  announceDiskState(report: DiskReport): void {
    const checked = checkDiskReport(report);
    if (this.ctx.closed) return;
    this.ctx.diskReport = checked;
    // Queued on every link, up or not: one that is down sends it when it comes up (tcp-link.ts).
    for (const link of this.links.values()) {
      link.outbox.setDiskReport(checked);
      this.markDirty(link);
    }
  }

  async sendSnapshot(to: StoreId, envelope: RaftEnvelope, chunks: AsyncIterable<Uint8Array>): Promise<SnapshotOutcome> {
    checkSnapshotEnvelope(envelope);
    if (this.ctx.closed) return 'failed';
    const link = this.links.get(to);
    if (link === undefined || !this.started || this.faults?.dropsOutbound(to)) return 'failed';
    if (this.snapshotSends.size >= this.ctx.tuning.snapshotSendsMax) {
      this.ctx.report(new TransportError('FLOTILLA_TRANSPORT_LIMIT_EXCEEDED', `snapshot to store ${to} not started: ${this.ctx.tuning.snapshotSendsMax} streams already`, { store: to }));
      return 'failed';
    }
    const send = new SnapshotSend(this.ctx, to, link.address, envelope, chunks);
    this.snapshotSends.add(send);
    try {
      return await send.run();
    } finally {
      this.snapshotSends.delete(send);
    }
  }

  stats(): ReadonlyMap<StoreId, PeerStats> {
    return collectPeerStats(this.links.values(), this.framesReceived, this.ctx.closed);
  }

  /**
   * Stops everything. What is queued for up, unblocked peers is flushed and their connections
   * ended politely (closeLingerMs at most); everything else is closed at once. Pending snapshot
   * sends answer 'failed'; received streams abort. Resolves when every socket is closed.
   */
  close(): Promise<void> {
    if (this.closing !== null) return this.closing;
    this.flush();
    this.ctx.closed = true;
    this.dirty.clear();
    for (const link of this.links.values()) link.stop(this.ctx.tuning.closeLingerMs);
    for (const send of this.snapshotSends) send.abort(new TransportError('FLOTILLA_TRANSPORT_SNAPSHOT_ABORTED', 'transport closed', { store: send.store }));
    for (const conn of this.inbound) conn.destroy();
    for (const raw of this.accepted) raw.destroy();
    const server = this.server;
    this.closing = (async () => {
      if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
      if (this.sockets.size > 0) await new Promise<void>((resolve) => (this.allClosed = resolve));
    })();
    return this.closing;
  }

  // ---- internals ------------------------------------------------------------------------------------

  private enqueue(to: StoreId, offer: (outbox: Outbox) => boolean): EnqueueRefusal | null {
    if (this.ctx.closed) return 'closed';
    const link = this.links.get(to);
    if (link === undefined) return 'peerUnknown';
    // Injected partition: accepted and lost, as on a network that drops everything.
    if (this.faults?.dropsOutbound(to)) return null;
    if (!offer(link.outbox)) {
      link.refusedQueueFull++;
      return 'queueFull';
    }
    this.markDirty(link);
    return null;
  }

  private markDirty(link: PeerLink): void {
    this.dirty.add(link);
    if (this.flushScheduled === null && !this.ctx.closed) this.flushScheduled = setImmediate(() => this.flush());
  }

  /**
   * The flush of the turn (or an earlier one the sender asked for): every writable peer's
   * queue becomes its frames, one writev each.
   */
  flush(): void {
    if (this.flushScheduled !== null) {
      clearImmediate(this.flushScheduled);
      this.flushScheduled = null;
    }
    for (const link of this.dirty) {
      // A link that is not writable is looked at again when it comes up or drains (onFlushable).
      if (!link.writable || link.outbox.isEmpty) continue;
      const taken = link.outbox.take(this.localStore, link.store);
      const frames = taken.frames.map(encodeFrame);
      link.write(frames, taken.messages);
    }
    this.dirty.clear();
  }

  private onConnection(socket: Socket): void {
    this.ctx.track(socket);
    if (this.ctx.closed) {
      socket.destroy();
      return;
    }
    let pending = 0;
    for (const conn of this.inbound) if (conn.awaitingHandshake) pending++;
    if (pending >= inboundPendingMax) {
      this.ctx.report(new TransportError('FLOTILLA_TRANSPORT_LIMIT_EXCEEDED', `connection from ${describeRemote(socket)} refused: ${inboundPendingMax} handshakes pending`));
      socket.destroy();
      return;
    }
    this.inbound.add(new InboundConnection(this.ctx, this.registry, socket));
  }

  private readonly registry: InboundRegistry = {
    admitRaft: (conn) => {
      const store = conn.store!;
      const previous = this.raftInbound.get(store);
      if (previous === undefined && this.raftInbound.size >= storesMax) return false;
      // The dialer keeps one raft connection to us: an older one is stale (it is redialing).
      if (previous !== undefined) {
        this.forgetDiskState(previous);
        previous.destroy();
      }
      this.raftInbound.set(store, conn);
      return true;
    },
    admitSnapshot: () => {
      if (this.snapshotReceives >= this.ctx.tuning.snapshotReceivesMax) return false;
      this.snapshotReceives++;
      return true;
    },
    releaseSnapshot: () => {
      this.snapshotReceives--;
    },
    frameReceived: (store) => {
      this.framesReceived.set(store, (this.framesReceived.get(store) ?? 0) + 1);
    },
    closed: (conn) => {
      this.inbound.delete(conn);
      if (conn.store !== null && this.raftInbound.get(conn.store) === conn) {
        this.raftInbound.delete(conn.store);
        this.forgetDiskState(conn);
      }
    },
  };

  /** What a store said of its disk lives as long as the connection that carried it. */
  private forgetDiskState(conn: InboundConnection): void {
    if (!conn.carriedDiskState || conn.store === null || this.ctx.closed) return;
    conn.carriedDiskState = false;
    this.ctx.handlers.onPeerDiskState?.(conn.store, null);
  }
}

