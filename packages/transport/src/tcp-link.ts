/**
 * The outbound raft connection to one peer store: it carries OUR frames to it (the peer's frames
 * come on the connection it dials to us). A small state machine:
 *
 *   down ──start──▶ connecting ──reply ok──▶ up
 *                      ▲   │                  │
 *                timer │   │ fail/timeout     │ broken / stalled
 *                      │   ▼                  ▼
 *                    backoff ◀────────────────┘
 *
 * 'connecting' covers the dial and the handshake; only 'up' (the peer's reply checked) lets
 * frames out. While not up, messages stay queued (bounded: past the bound `send` answers
 * 'queueFull' and raft retransmits later). The n-th consecutive failure waits a full-jitter delay
 * below min(cap, base·2^(n-1)). The store hears `down` when an up connection breaks or the first
 * dial fails, and `up` when a handshake completes: transitions only, never repeats.
 *
 * Backpressure: when the socket's buffer is past its high-water mark after a flush, the link is
 * `blocked` until 'drain' — its queue grows (and then refuses) while every other peer flows. A
 * link blocked for writeStallTimeoutMs is closed: a peer that stopped reading is as good as dead.
 */
import type { Socket } from 'node:net';
import { backoffDelayMs } from './backoff.ts';
import { tcpKeepAliveInitialDelayMs } from './constants.ts';
import { TransportError } from './errors.ts';
import { HandshakeReader, encodeHandshake, type Handshake } from './handshake.ts';
import { Outbox } from './outbox.ts';
import { wrapSocketError, type PeerAddress, type TcpContext } from './tcp-context.ts';
import { dial } from './tcp-tls.ts';
import type { PeerStats, StoreId } from './types.ts';

/** One attempt's socket and what happened to it (a socket is never reused). */
interface Attempt {
  readonly socket: Socket;
  readonly reader: HandshakeReader;
  /** An error was already reported for this socket (don't report its close again). */
  reported: boolean;
  /** The socket's own 'error', if any (the cause of its close). */
  error: Error | null;
}

export class PeerLink {
  state: PeerStats['state'] = 'down';
  blocked = false;
  readonly outbox: Outbox;
  framesSent = 0;
  messagesSent = 0;
  bytesSent = 0;
  refusedQueueFull = 0;
  reconnects = 0;

  private attempt: Attempt | null = null;
  private failures = 0;
  private timer: NodeJS.Timeout | null = null;
  private stallTimer: NodeJS.Timeout | null = null;
  private reported: 'up' | 'down' | null = null;
  private everUp = false;
  private redialNow = false;
  private stopped = false;

  constructor(
    private readonly ctx: TcpContext,
    readonly store: StoreId,
    public address: PeerAddress,
    /** Called when the link may flush (it just came up or drained) and has something queued. */
    private readonly onFlushable: (link: PeerLink) => void,
  ) {
    this.outbox = new Outbox({ messagesMax: ctx.tuning.peerQueueMessagesMax, bytesMax: ctx.tuning.peerQueueBytesMax });
  }

  get writable(): boolean {
    return this.state === 'up' && !this.blocked;
  }

  /** Begins dialing (after the transport started listening). */
  start(): void {
    if (this.state === 'down' && !this.stopped) this.connect();
  }

  /** Points the link at a new address: redials at once, backoff forgotten. */
  setAddress(address: PeerAddress): void {
    if (address.host === this.address.host && address.port === this.address.port) return;
    this.address = address;
    this.failures = 0;
    if (this.state === 'backoff') {
      this.clearTimer();
      this.connect();
    } else if (this.attempt !== null) {
      this.redialNow = true;
      this.attempt.reported = true; // our decision, not a failure to log
      this.attempt.socket.destroy();
    }
  }

  /**
   * Stops for good (peer removed, transport closed). With `lingerMs`, an up connection is ended
   * politely so frames already written still arrive; otherwise it is destroyed.
   */
  stop(lingerMs: number | null): void {
    this.stopped = true;
    this.clearTimer();
    this.clearStallTimer();
    this.outbox.clear();
    const attempt = this.attempt;
    if (attempt === null) {
      this.state = 'down';
      return;
    }
    attempt.reported = true;
    if (lingerMs !== null && this.state === 'up') {
      const socket = attempt.socket;
      const timer = setTimeout(() => socket.destroy(), lingerMs);
      socket.once('close', () => clearTimeout(timer));
      socket.end();
    } else {
      attempt.socket.destroy();
    }
  }

  /** Writes one flush's frames with one writev (cork/uncork). */
  write(frames: readonly Uint8Array[], messages: number): void {
    const attempt = this.attempt;
    if (attempt === null || !this.writable) throw new Error('transport assertion failed: write to a link that is not writable');
    const socket = attempt.socket;
    let bytes = 0;
    socket.cork();
    for (const frame of frames) {
      socket.write(frame);
      bytes += frame.length;
    }
    socket.uncork();
    this.framesSent += frames.length;
    this.messagesSent += messages;
    this.bytesSent += bytes;
    if (socket.writableNeedDrain) {
      this.blocked = true;
      this.stallTimer = setTimeout(() => {
        this.stallTimer = null;
        this.fail(attempt, new TransportError('FLOTILLA_TRANSPORT_WRITE_STALLED', `store ${this.store} did not read for ${this.ctx.tuning.writeStallTimeoutMs} ms: connection closed`, { store: this.store }));
      }, this.ctx.tuning.writeStallTimeoutMs);
    }
  }

  private connect(): void {
    this.state = 'connecting';
    const socket = dial(this.address, this.ctx.tls);
    this.ctx.track(socket);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, tcpKeepAliveInitialDelayMs);
    const attempt: Attempt = { socket, reader: new HandshakeReader(), reported: false, error: null };
    this.attempt = attempt;
    const hello: Handshake = { purpose: 'raft', role: 'hello', status: 'ok', clusterId: this.ctx.clusterId, fromStore: this.ctx.localStore, toStore: this.store };
    socket.write(encodeHandshake(hello));
    this.timer = setTimeout(() => {
      this.timer = null;
      this.fail(attempt, new TransportError('FLOTILLA_TRANSPORT_CONNECT_FAILED', `store ${this.store} at ${this.address.host}:${this.address.port}: no handshake within ${this.ctx.tuning.connectTimeoutMs} ms`, { store: this.store }));
    }, this.ctx.tuning.connectTimeoutMs);
    socket.on('data', (chunk: Buffer) => this.onData(attempt, chunk));
    socket.on('drain', () => this.onDrain(attempt));
    socket.on('error', (err) => {
      attempt.error = err;
    });
    socket.on('close', () => this.onClose(attempt));
  }

  private onData(attempt: Attempt, chunk: Uint8Array): void {
    if (attempt !== this.attempt || this.stopped) return;
    if (this.state !== 'connecting') {
      this.fail(attempt, new TransportError('FLOTILLA_TRANSPORT_PROTOCOL', `store ${this.store} wrote after its handshake reply on a raft connection`, { store: this.store }));
      return;
    }
    let result;
    try {
      result = attempt.reader.push(chunk);
    } catch (err) {
      this.fail(attempt, err instanceof TransportError ? withStore(err, this.store) : new TransportError('FLOTILLA_TRANSPORT_BAD_HANDSHAKE', String(err), { store: this.store }));
      return;
    }
    if (result === null) return;
    const refusal = checkReply(result.handshake, this.ctx, this.store, 'raft');
    if (refusal !== null) {
      this.fail(attempt, refusal);
      return;
    }
    if (result.rest.length > 0) {
      this.fail(attempt, new TransportError('FLOTILLA_TRANSPORT_PROTOCOL', `store ${this.store} wrote after its handshake reply on a raft connection`, { store: this.store }));
      return;
    }
    this.clearTimer();
    this.state = 'up';
    this.failures = 0;
    if (this.everUp) this.reconnects++;
    this.everUp = true;
    this.announce('up');
    // The peer forgot what we said of our disk with the connection that carried it.
    if (this.ctx.diskReport !== null) this.outbox.setDiskReport(this.ctx.diskReport);
    if (!this.outbox.isEmpty) this.onFlushable(this);
  }

  private onDrain(attempt: Attempt): void {
    if (attempt !== this.attempt || !this.blocked) return;
    this.blocked = false;
    this.clearStallTimer();
    if (!this.outbox.isEmpty && this.writable) this.onFlushable(this);
  }

  private fail(attempt: Attempt, err: TransportError): void {
    if (attempt.reported) {
      attempt.socket.destroy();
      return;
    }
    attempt.reported = true;
    this.ctx.report(err);
    attempt.socket.destroy();
  }

  private onClose(attempt: Attempt): void {
    if (attempt !== this.attempt) return;
    this.attempt = null;
    const wasUp = this.state === 'up';
    this.clearTimer();
    this.clearStallTimer();
    this.blocked = false;
    if (this.stopped || this.ctx.closed) {
      this.state = 'down';
      return;
    }
    if (!attempt.reported) {
      attempt.reported = true;
      const where = `store ${this.store} at ${this.address.host}:${this.address.port}`;
      this.ctx.report(wasUp ? wrapSocketError('FLOTILLA_TRANSPORT_CONNECTION_LOST', `connection to ${where} lost`, this.store, attempt.error) : wrapSocketError('FLOTILLA_TRANSPORT_CONNECT_FAILED', `dial to ${where} failed`, this.store, attempt.error, attempt.socket));
    }
    if (this.redialNow) {
      this.redialNow = false;
      if (wasUp) this.announce('down');
      this.connect();
      return;
    }
    this.announce('down');
    this.failures++;
    const delay = backoffDelayMs(this.failures, this.ctx.tuning.reconnectBackoffBaseMs, this.ctx.tuning.reconnectBackoffMaxMs, this.ctx.random);
    this.state = 'backoff';
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!this.stopped && !this.ctx.closed) this.connect();
    }, delay);
  }

  /** Reports a transition of store-level liveness (never the same state twice in a row). */
  private announce(state: 'up' | 'down'): void {
    if (this.reported === state) return;
    this.reported = state;
    this.ctx.handlers.onPeerState?.(this.store, state);
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private clearStallTimer(): void {
    if (this.stallTimer !== null) clearTimeout(this.stallTimer);
    this.stallTimer = null;
  }
}

function withStore(err: TransportError, store: StoreId): TransportError {
  return err.store === store ? err : new TransportError(err.code, err.message, { store, cause: err.cause });
}

/** Checks an acceptor's reply on a connection we dialed; null when it accepts us. */
export function checkReply(reply: Handshake, ctx: TcpContext, store: StoreId, purpose: Handshake['purpose']): TransportError | null {
  const at = { store };
  if (reply.role !== 'reply' || reply.purpose !== purpose) return new TransportError('FLOTILLA_TRANSPORT_BAD_HANDSHAKE', `store ${store} answered a ${purpose} hello with a ${reply.purpose} ${reply.role}`, at);
  switch (reply.status) {
    case 'ok':
      break;
    case 'clusterMismatch':
      return new TransportError('FLOTILLA_TRANSPORT_CLUSTER_MISMATCH', `the store at the address of store ${store} refused us: not in its cluster (ours: ${ctx.clusterId}, its: ${reply.clusterId})`, at);
    case 'storeMismatch':
      return new TransportError('FLOTILLA_TRANSPORT_STORE_MISMATCH', `the store at the address of store ${store} is store ${reply.fromStore} (stale address?)`, at);
    case 'busy':
      return new TransportError('FLOTILLA_TRANSPORT_LIMIT_EXCEEDED', `store ${store} refused a ${purpose} connection: at its limit`, at);
  }
  if (reply.clusterId !== ctx.clusterId) return new TransportError('FLOTILLA_TRANSPORT_CLUSTER_MISMATCH', `the store at the address of store ${store} is in cluster ${reply.clusterId}, we are in ${ctx.clusterId}`, at);
  if (reply.fromStore !== store || reply.toStore !== ctx.localStore) return new TransportError('FLOTILLA_TRANSPORT_STORE_MISMATCH', `dialed store ${store}, reached store ${reply.fromStore} (answering store ${reply.toStore})`, at);
  return null;
}
