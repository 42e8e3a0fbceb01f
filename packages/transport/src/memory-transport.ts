/**
 * MemoryTransport: the in-memory twin of TcpTransport, on a MemoryNetwork (memory-network.ts).
 * Same interface, same queue (Outbox: same bounds, same pushback, same frame splits), same
 * coalescing (one flush per network turn → one delivery per destination per turn), the same
 * store-level liveness reports, the same snapshot outcomes — without sockets or timers, so a
 * test drives it deterministically. Frames are really encoded and decoded.
 *
 * Differences, by design: no backoff or handshake (a link is up when its peer is attached at the
 * address it was given, is the store it should be, in the same cluster, and not partitioned);
 * snapshot streams pull one chunk at a time straight from the sender's iterable (a window of
 * one) and have no timeouts (partition or close the link to fail one). What a peer said of its
 * disk is forgotten when this side's link to it goes down (over TCP: when the connection that
 * carried it closes), and said again on the sender's next link up.
 */
import { collectPeerStats } from './peer-stats.ts';
import { FrameDecoder, decodeFrame, encodeFrame, type Heartbeat, type HeartbeatResponse, type RaftEnvelope, type WireMessage } from '@flotilla/wire';
import { limits as wire } from '@flotilla/wire';
import type { TransportTuning } from './constants.ts';
import { TransportError, invalidArgument, type TransportErrorHook } from './errors.ts';
import { MEMORY_HOST, type MemoryAddress, type MemoryNetwork } from './memory-network.ts';
import { Outbox, RAFT_STREAM_KINDS, checkDiskReport, checkEnvelope, checkSnapshotEnvelope, checkStore, diskReportOf } from './outbox.ts';
import { resolveTuning } from './tuning.ts';
import type { DiskReport, EnqueueRefusal, InboundHandlers, PeerStats, PeerTransport, SnapshotOutcome, StoreId } from './types.ts';

export interface MemoryTransportOptions {
  readonly localStore: StoreId;
  /** Default 1. Links to a transport of another cluster stay down. */
  readonly clusterId?: number;
  readonly onError?: TransportErrorHook;
  readonly tuning?: Partial<TransportTuning>;
}

class MemoryLink {
  state: PeerStats['state'] = 'down';
  readonly outbox: Outbox;
  framesSent = 0;
  messagesSent = 0;
  bytesSent = 0;
  refusedQueueFull = 0;
  reconnects = 0;
  everUp = false;
  reported: 'up' | 'down' | null = null;

  constructor(
    readonly store: StoreId,
    public address: MemoryAddress,
    tuning: TransportTuning,
  ) {
    this.outbox = new Outbox({ messagesMax: tuning.peerQueueMessagesMax, bytesMax: tuning.peerQueueBytesMax });
  }
}

export class MemoryTransport implements PeerTransport {
  readonly localStore: StoreId;
  readonly clusterId: number;
  private readonly tuning: TransportTuning;
  private readonly onError: TransportErrorHook;
  private handlers: InboundHandlers | null = null;
  private own: MemoryAddress | null = null;
  private closed = false;
  private readonly links = new Map<StoreId, MemoryLink>();
  private readonly framesReceived = new Map<StoreId, number>();
  /** What this store last announced of its disk (null: never), sent on every link up. */
  private diskReport: DiskReport | null = null;
  /** Peers whose disk state the host holds: forgotten (null to the host) when the link goes down. */
  private readonly diskStatesHeld = new Set<StoreId>();
  private snapshotSends = 0;
  private snapshotReceives = 0;
  private readonly abortSnapshots = new Set<(err: TransportError) => void>();

  constructor(
    private readonly network: MemoryNetwork,
    options: MemoryTransportOptions,
  ) {
    if (!Number.isSafeInteger(options.localStore) || options.localStore < 1) invalidArgument(`localStore must be a positive safe integer, got ${options.localStore}`);
    const clusterId = options.clusterId ?? 1;
    if (!Number.isSafeInteger(clusterId) || clusterId < 1) invalidArgument(`clusterId must be a positive safe integer, got ${clusterId}`);
    this.localStore = options.localStore;
    this.clusterId = clusterId;
    this.tuning = resolveTuning(options.tuning);
    this.onError = options.onError ?? (() => {});
  }

  address(): { host: string; port: number } {
    if (this.own === null) throw new TransportError('FLOTILLA_TRANSPORT_NOT_STARTED', 'address() before start()');
    return { host: this.own.host, port: this.own.port };
  }

  start(handlers: InboundHandlers): Promise<void> {
    if (this.handlers !== null || this.closed) throw new TransportError('FLOTILLA_TRANSPORT_NOT_STARTED', this.closed ? 'start() after close()' : 'start() called twice');
    this.handlers = handlers;
    this.own = this.network.attach(this);
    for (const link of this.links.values()) link.state = 'connecting';
    return Promise.resolve();
  }

  setPeer(store: StoreId, address: { host: string; port: number }): void {
    checkStore(store, this.localStore);
    if (address.host !== MEMORY_HOST || !Number.isSafeInteger(address.port) || address.port < 1) invalidArgument(`not a memory address: ${JSON.stringify(address)}`);
    if (this.closed) return;
    const link = this.links.get(store);
    if (link !== undefined) {
      const moved = link.address.host !== address.host || link.address.port !== address.port;
      link.address = { host: address.host, port: address.port };
      // A new address is a new connection, as over TCP (which redials): down now, up when reached.
      if (moved && link.state === 'up') {
        link.state = 'connecting';
        this.announce(link, 'down');
      }
    } else {
      const created = new MemoryLink(store, { host: address.host, port: address.port }, this.tuning);
      if (this.handlers !== null) created.state = 'connecting';
      this.links.set(store, created);
    }
    this.network.schedule();
  }

  removePeer(store: StoreId): void {
    const link = this.links.get(store);
    if (link === undefined) return;
    link.outbox.clear();
    this.links.delete(store);
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
    if (this.closed) return;
    this.diskReport = checked;
    for (const link of this.links.values()) link.outbox.setDiskReport(checked);
    this.network.schedule();
  }

  /** The twin's network delivers once per network turn whatever the sender does: nothing to hurry. */
  flush(): void {}

  async sendSnapshot(to: StoreId, envelope: RaftEnvelope, chunks: AsyncIterable<Uint8Array>): Promise<SnapshotOutcome> {
    checkSnapshotEnvelope(envelope);
    const link = this.links.get(to);
    if (this.closed || link === undefined || this.handlers === null) return 'failed';
    if (this.snapshotSends >= this.tuning.snapshotSendsMax) {
      this.report(new TransportError('FLOTILLA_TRANSPORT_LIMIT_EXCEEDED', `snapshot to store ${to} not started: ${this.tuning.snapshotSendsMax} streams already`, { store: to }));
      return 'failed';
    }
    this.snapshotSends++;
    try {
      return await this.streamSnapshot(link, envelope, chunks);
    } finally {
      this.snapshotSends--;
    }
  }

  stats(): ReadonlyMap<StoreId, PeerStats> {
    return collectPeerStats(this.links.values(), this.framesReceived, this.closed);
  }

  /**
   * Leaves the network. Like TCP's close: one last flush of what is queued for reachable,
   * unblocked peers (delivered in the next turn); the rest is dropped; snapshot streams fail.
   */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.own !== null) this.flushTurn();
    this.closed = true;
    for (const link of this.links.values()) link.outbox.clear();
    for (const abort of this.abortSnapshots) abort(new TransportError('FLOTILLA_TRANSPORT_SNAPSHOT_ABORTED', 'transport closed', { store: null }));
    if (this.own !== null) this.network.detach(this.own);
    return Promise.resolve();
  }

  // ---- driven by the network -----------------------------------------------------------------------------

  /** Step 1 of a turn: which peers are reachable; transitions are reported like TCP's. */
  refreshLinks(): void {
    if (this.closed || this.handlers === null) return;
    for (const link of this.links.values()) {
      const up = this.reachable(link);
      if (up && link.state !== 'up') {
        link.state = 'up';
        if (link.everUp) link.reconnects++;
        link.everUp = true;
        this.announce(link, 'up');
        if (this.diskReport !== null) link.outbox.setDiskReport(this.diskReport);
      } else if (!up && link.state !== 'down') {
        const wasUp = link.state === 'up';
        link.state = 'down';
        this.report(new TransportError(wasUp ? 'FLOTILLA_TRANSPORT_CONNECTION_LOST' : 'FLOTILLA_TRANSPORT_CONNECT_FAILED', `store ${link.store} at ${link.address.host}:${link.address.port} unreachable`, { store: link.store }));
        this.announce(link, 'down');
        if (this.diskStatesHeld.delete(link.store)) this.handlers.onPeerDiskState?.(link.store, null);
      }
    }
  }

  /** Step 2 of a turn: every writable peer's queue becomes its frames. */
  flushTurn(): void {
    if (this.closed) return;
    for (const link of this.links.values()) {
      if (link.outbox.isEmpty || link.state !== 'up' || this.network.isBlocked(this.localStore, link.store)) continue;
      const target = this.network.resolve(link.address);
      if (target === undefined) continue;
      const taken = link.outbox.take(this.localStore, link.store);
      link.messagesSent += taken.messages;
      for (const message of taken.frames) {
        // encodeFrame views msgpackr's scratch memory; a delayed frame must own its bytes.
        const frame = encodeFrame(message).slice();
        link.framesSent++;
        link.bytesSent += frame.length;
        this.network.carry(this, target, frame);
      }
    }
  }

  /** Step 3 of a turn: a frame from `from`, decoded and handed to the handlers. */
  receiveFrame(from: StoreId, frame: Uint8Array): void {
    const handlers = this.handlers;
    if (this.closed || handlers === null) return;
    this.framesReceived.set(from, (this.framesReceived.get(from) ?? 0) + 1);
    const messages: WireMessage[] = [];
    new FrameDecoder({ kinds: RAFT_STREAM_KINDS }).push(frame, (f) => messages.push(decodeFrame(f)));
    for (const message of messages) {
      // A handler that throws is the host's bug: it propagates, as over TCP.
      switch (message.kind) {
        case 'raftBatch':
          handlers.onRaftMessages(from, message.body.messages);
          break;
        case 'heartbeatBatch':
          handlers.onHeartbeats(from, message.body.beats);
          break;
        case 'heartbeatResponseBatch':
          handlers.onHeartbeatResponses(from, message.body.beats);
          break;
        case 'diskState':
          this.diskStatesHeld.add(from);
          handlers.onPeerDiskState?.(from, diskReportOf(message.body));
          break;
        default:
          throw new Error(`transport assertion failed: a ${message.kind} frame on a memory raft link`);
      }
    }
  }

  // ---- internals -------------------------------------------------------------------------------------------

  private reachable(link: MemoryLink): boolean {
    const target = this.network.resolve(link.address);
    return target !== undefined && target.localStore === link.store && target.clusterId === this.clusterId && !this.network.isPartitioned(this.localStore, link.store);
  }

  private enqueue(to: StoreId, offer: (outbox: Outbox) => boolean): EnqueueRefusal | null {
    if (this.closed) return 'closed';
    const link = this.links.get(to);
    if (link === undefined) return 'peerUnknown';
    if (!offer(link.outbox)) {
      link.refusedQueueFull++;
      return 'queueFull';
    }
    this.network.schedule();
    return null;
  }

  private announce(link: MemoryLink, state: 'up' | 'down'): void {
    if (link.reported === state) return;
    link.reported = state;
    this.handlers?.onPeerState?.(link.store, state);
  }

  private report(err: TransportError): void {
    if (!this.closed) this.onError(err);
  }

  /** Receiving side of a stream: admission (snapshotReceivesMax). */
  private admitSnapshot(): boolean {
    if (this.closed || this.snapshotReceives >= this.tuning.snapshotReceivesMax) return false;
    this.snapshotReceives++;
    return true;
  }

  private releaseSnapshot(): void {
    this.snapshotReceives--;
  }

  private streamSnapshot(link: MemoryLink, envelope: RaftEnvelope, chunks: AsyncIterable<Uint8Array>): Promise<SnapshotOutcome> {
    const from = this.localStore;
    const to = link.store;
    // The snapshot message crosses the wire like any other (a fresh, checked copy).
    const copies: RaftEnvelope[] = [];
    new FrameDecoder({ kinds: ['raftBatch'] }).push(encodeFrame({ kind: 'raftBatch', body: { fromStore: from, toStore: to, messages: [envelope] } }), (f) => {
      const m = decodeFrame(f);
      if (m.kind === 'raftBatch') copies.push(...m.body.messages);
    });
    const message = copies[0];
    if (message === undefined || copies.length !== 1) throw new Error('transport assertion failed: a snapshot envelope survives its round trip');
    return new Promise<SnapshotOutcome>((resolve) => {
      let settled = false;
      const finish = (outcome: SnapshotOutcome, err: TransportError | null): void => {
        if (settled) return;
        settled = true;
        this.abortSnapshots.delete(abort);
        if (err !== null) this.report(err);
        resolve(outcome);
      };
      let aborted: TransportError | null = null;
      const abort = (err: TransportError): void => {
        aborted ??= err;
        finish('failed', err);
      };
      this.abortSnapshots.add(abort);
      this.network.startSnapshot(() => {
        const target = this.network.resolve(link.address);
        if (settled) return;
        if (this.closed || target === undefined || !this.reachable(link)) {
          finish('failed', new TransportError('FLOTILLA_TRANSPORT_CONNECT_FAILED', `snapshot to store ${to}: unreachable`, { store: to }));
          return;
        }
        if (!target.admitSnapshot()) {
          finish('failed', new TransportError('FLOTILLA_TRANSPORT_LIMIT_EXCEEDED', `store ${to} refused a snapshot stream: at its limit`, { store: to }));
          return;
        }
        let complete = false;
        const check = (): void => {
          if (aborted !== null) throw aborted;
          if (this.closed || target.closed || this.network.resolve(link.address) !== target || this.network.isPartitioned(from, to)) {
            throw (aborted = new TransportError('FLOTILLA_TRANSPORT_SNAPSHOT_ABORTED', `snapshot stream from store ${from} to store ${to} lost`, { store: to }));
          }
        };
        async function* pull(): AsyncGenerator<Uint8Array> {
          check();
          try {
            for await (const data of chunks) {
              check();
              if (!(data instanceof Uint8Array) || data.length > wire.snapshotChunkDataBytesMax) {
                throw (aborted = new TransportError('FLOTILLA_TRANSPORT_SNAPSHOT_ABORTED', `snapshot source yielded an invalid chunk (at most ${wire.snapshotChunkDataBytesMax} bytes)`, { store: to }));
              }
              yield data.slice();
            }
          } catch (err) {
            // As over TCP, the receiver sees the stream break, never the sender's own error.
            if (err === aborted) throw err;
            throw (aborted = new TransportError('FLOTILLA_TRANSPORT_SNAPSHOT_ABORTED', `snapshot stream from store ${from}: the source failed`, { store: to, cause: err }));
          }
          check();
          complete = true;
        }
        let outcome: Promise<void>;
        try {
          outcome = Promise.resolve(target.handlers!.onSnapshot(from, message, pull()));
        } catch (err) {
          outcome = Promise.reject(err);
        }
        outcome.then(
          () => {
            target.releaseSnapshot();
            if (aborted !== null) finish('failed', aborted);
            else if (complete) finish('finished', null);
            else finish('failed', new TransportError('FLOTILLA_TRANSPORT_SNAPSHOT_REJECTED', `store ${to}: onSnapshot returned before reading every chunk`, { store: to }));
          },
          () => {
            target.releaseSnapshot();
            finish('failed', aborted ?? new TransportError('FLOTILLA_TRANSPORT_SNAPSHOT_REJECTED', `store ${to} rejected snapshot ${envelope.snapshotId} of region ${envelope.regionId}`, { store: to }));
          },
        );
      });
    });
  }
}
