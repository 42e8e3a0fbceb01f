/**
 * An accepted connection: the handshake first (bounded in time; a refusal is answered and the
 * connection closed), then either
 * - a raft stream: frames of the dialing store's raft messages and heartbeats, each decoded,
 *   checked (from that store, to us) and handed to the host's handlers in order; or
 * - a snapshot stream (tcp-snapshot.ts).
 * Anything malformed closes THIS connection (a typed error to the hook); nothing is thrown out of
 * the transport, and no other connection is touched.
 */
import type { Socket } from 'node:net';
import { FrameDecoder, decodeFrame, type Frame, type WireMessage } from '@flotilla/wire';
import { storesMax } from './constants.ts';
import { TransportError } from './errors.ts';
import { HandshakeReader, encodeHandshake, type Handshake, type HandshakeStatus } from './handshake.ts';
import { describeRemote, endSocket, type TcpContext } from './tcp-context.ts';
import { SnapshotReceive, classify } from './tcp-snapshot.ts';
import { RAFT_STREAM_KINDS, diskReportOf } from './outbox.ts';
import type { StoreId } from './types.ts';

/** The transport's side of accepting: admission decisions and bookkeeping. */
export interface InboundRegistry {
  /** A raft stream from `store` is about to start; false: at the bound of distinct stores. */
  admitRaft(conn: InboundConnection): boolean;
  /** A snapshot stream is about to start; false: at snapshotReceivesMax. */
  admitSnapshot(): boolean;
  releaseSnapshot(): void;
  /** A frame from `store` was delivered (stats). */
  frameReceived(store: StoreId): void;
  /** The connection closed (after or before its handshake). */
  closed(conn: InboundConnection): void;
}

export class InboundConnection {
  private phase: 'handshake' | 'raft' | 'snapshot' | 'closed' = 'handshake';
  private readonly reader = new HandshakeReader();
  private decoder: FrameDecoder | null = null;
  private snapshot: SnapshotReceive | null = null;
  private handshakeTimer: NodeJS.Timeout | null;
  private failed = false;
  /** The dialing store, once its handshake was accepted. */
  store: StoreId | null = null;
  /** It carried a DiskState to the host, which forgets it when this connection goes. */
  carriedDiskState = false;

  constructor(
    private readonly ctx: TcpContext,
    private readonly registry: InboundRegistry,
    readonly socket: Socket,
  ) {
    socket.setNoDelay(true);
    this.handshakeTimer = setTimeout(() => {
      this.handshakeTimer = null;
      this.fail(new TransportError('FLOTILLA_TRANSPORT_HANDSHAKE_TIMEOUT', `no handshake from ${describeRemote(socket)} within ${ctx.tuning.handshakeTimeoutMs} ms`));
    }, ctx.tuning.handshakeTimeoutMs);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('error', () => {}); // 'close' follows; a reset peer is not news
    socket.on('close', () => this.onClose());
  }

  get awaitingHandshake(): boolean {
    return this.phase === 'handshake';
  }

  /** Closes the connection (a newer raft connection from the same store, or transport close). */
  destroy(): void {
    this.failed = true;
    this.socket.destroy();
  }

  private onData(chunk: Uint8Array): void {
    if (this.failed || this.ctx.closed) return;
    // Decode and check everything in the chunk first; hand the good frames to the host after.
    // So an exception from the host's handler (a bug on its side) never passes for a bad frame
    // from the peer, and frames before a bad one are still delivered, in order.
    const messages: WireMessage[] = [];
    let failure: TransportError | null = null;
    try {
      let rest = chunk;
      if (this.phase === 'handshake') {
        const result = this.reader.push(chunk);
        if (result === null) return;
        if (!this.accept(result.handshake)) return;
        rest = result.rest;
      }
      if (rest.length > 0) this.decoder!.push(rest, (frame) => this.onFrame(frame, messages));
    } catch (err) {
      failure = classify(err, this.store);
    }
    if (messages.length > 0) this.dispatch(messages);
    if (failure !== null) this.fail(failure);
  }

  /** Checks a hello; answers it; false when it was refused (the connection is closing). */
  private accept(hello: Handshake): boolean {
    this.clearHandshakeTimer();
    const remote = describeRemote(this.socket);
    if (hello.role !== 'hello') throw new TransportError('FLOTILLA_TRANSPORT_BAD_HANDSHAKE', `a handshake ${hello.role} from ${remote} where a hello was due`);
    if (hello.clusterId !== this.ctx.clusterId) {
      return this.refuse(hello, 'clusterMismatch', new TransportError('FLOTILLA_TRANSPORT_CLUSTER_MISMATCH', `store ${hello.fromStore} at ${remote} is in cluster ${hello.clusterId}, we are in ${this.ctx.clusterId}`, { store: hello.fromStore }));
    }
    if (hello.toStore !== this.ctx.localStore || hello.fromStore === this.ctx.localStore) {
      return this.refuse(hello, 'storeMismatch', new TransportError('FLOTILLA_TRANSPORT_STORE_MISMATCH', `store ${hello.fromStore} at ${remote} dialed store ${hello.toStore}; this is store ${this.ctx.localStore}`, { store: hello.fromStore }));
    }
    this.store = hello.fromStore;
    if (hello.purpose === 'raft') {
      if (!this.registry.admitRaft(this)) {
        return this.refuse(hello, 'busy', new TransportError('FLOTILLA_TRANSPORT_LIMIT_EXCEEDED', `raft connection from store ${hello.fromStore} refused: streams from ${storesMax} stores already`, { store: hello.fromStore }));
      }
      this.phase = 'raft';
      this.decoder = new FrameDecoder({ kinds: RAFT_STREAM_KINDS });
    } else {
      if (!this.registry.admitSnapshot()) {
        return this.refuse(hello, 'busy', new TransportError('FLOTILLA_TRANSPORT_LIMIT_EXCEEDED', `snapshot stream from store ${hello.fromStore} refused: ${this.ctx.tuning.snapshotReceivesMax} streams already`, { store: hello.fromStore }));
      }
      this.phase = 'snapshot';
      this.decoder = new FrameDecoder({ kinds: ['raftBatch', 'snapshotChunk'] });
      this.snapshot = new SnapshotReceive(this.ctx, this.socket, hello.fromStore, () => this.registry.releaseSnapshot());
    }
    this.socket.write(encodeHandshake(this.replyTo(hello, 'ok')));
    return true;
  }

  private refuse(hello: Handshake, status: HandshakeStatus, err: TransportError): false {
    this.failed = true;
    this.ctx.report(err);
    endSocket(this.socket, this.ctx.tuning.closeLingerMs, encodeHandshake(this.replyTo(hello, status)));
    return false;
  }

  private replyTo(hello: Handshake, status: HandshakeStatus): Handshake {
    return { purpose: hello.purpose, role: 'reply', status, clusterId: this.ctx.clusterId, fromStore: this.ctx.localStore, toStore: hello.fromStore };
  }

  /** Decodes and checks one frame; raft traffic is collected for `dispatch`, snapshot frames are handled here. */
  private onFrame(frame: Frame, out: WireMessage[]): void {
    const store = this.store!;
    const message: WireMessage = decodeFrame(frame);
    if (!('fromStore' in message.body)) {
      this.snapshot!.onMessage(message);
      return;
    }
    const body = message.body;
    if (body.fromStore !== store || body.toStore !== this.ctx.localStore) {
      throw new TransportError('FLOTILLA_TRANSPORT_PROTOCOL', `a ${message.kind} from store ${body.fromStore} to store ${body.toStore} on the connection of store ${store} to store ${this.ctx.localStore}`, { store });
    }
    if (this.snapshot !== null) {
      this.snapshot.onMessage(message);
      return;
    }
    if (!RAFT_STREAM_KINDS.includes(message.kind)) {
      throw new TransportError('FLOTILLA_TRANSPORT_PROTOCOL', `a ${message.kind} frame on a raft connection`, { store });
    }
    out.push(message);
  }

  /** Hands raft traffic to the host, in order. A handler that throws is the host's bug: it propagates. */
  private dispatch(messages: readonly WireMessage[]): void {
    const store = this.store!;
    const handlers = this.ctx.handlers;
    for (const message of messages) {
      if (this.ctx.closed) return;
      this.registry.frameReceived(store);
      switch (message.kind) {
        case 'raftBatch':
          handlers.onRaftMessages(store, message.body.messages);
          break;
        case 'heartbeatBatch':
          handlers.onHeartbeats(store, message.body.beats);
          break;
        case 'heartbeatResponseBatch':
          handlers.onHeartbeatResponses(store, message.body.beats);
          break;
        case 'diskState':
          this.carriedDiskState = true;
          handlers.onPeerDiskState?.(store, diskReportOf(message.body));
          break;
        default:
          throw new Error(`transport assertion failed: a ${message.kind} frame was collected for dispatch`);
      }
    }
  }

  private onEnd(): void {
    if (this.failed || this.decoder === null) return;
    try {
      this.decoder.end();
    } catch (err) {
      this.fail(classify(err, this.store));
      return;
    }
    if (this.snapshot !== null && !this.snapshot.isDone) {
      this.snapshot.abort(new TransportError('FLOTILLA_TRANSPORT_SNAPSHOT_ABORTED', `snapshot stream from store ${this.store} ended before its last chunk`, { store: this.store }));
    }
  }

  private fail(err: TransportError): void {
    if (this.failed) return;
    this.failed = true;
    this.ctx.report(err);
    this.snapshot?.abort(err);
    this.socket.destroy();
  }

  private onClose(): void {
    this.clearHandshakeTimer();
    this.phase = 'closed';
    this.snapshot?.abort(new TransportError('FLOTILLA_TRANSPORT_SNAPSHOT_ABORTED', `snapshot stream from store ${this.store} lost`, { store: this.store }));
    this.registry.closed(this);
  }

  private clearHandshakeTimer(): void {
    if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
  }
}
