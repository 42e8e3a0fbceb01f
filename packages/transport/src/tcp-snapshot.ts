/**
 * Snapshot streams over TCP: one connection per snapshot (purpose 'snapshot' in the handshake), so
 * a large image never sits in front of heartbeats on the raft connection.
 *
 *   sender                                             receiver
 *   hello(snapshot) ───────────────────────────────▶   checks, slot for a stream?
 *                   ◀───────────────────────────────   reply(ok | busy | …)
 *   RaftBatch[the snapshot message] ───────────────▶   onSnapshot(from, envelope, chunks) starts
 *   SnapshotChunk seq 0, 1, … (window) ────────────▶   buffered until the host takes each one
 *                   ◀───────────────────────────────   SnapshotAck received(seq) as it is taken
 *   SnapshotChunk seq n, last, empty (end) ────────▶
 *                   ◀───────────────────────────────   SnapshotAck applied | rejected (onSnapshot settled)
 *
 * One chunk carries exactly one item of the host's AsyncIterable (boundaries kept: storage's
 * snapshot frames are self-delimiting units); the end is an empty `last` chunk, so an empty
 * stream and empty items need no special case. The sender keeps at most `snapshotChunksInFlight`
 * chunks / `snapshotBytesInFlight` bytes unacknowledged (one chunk always); the receiver refuses
 * a sender past the protocol's ceilings. Timeouts: snapshotIdleTimeoutMs without progress (an ack
 * or drain the sender waits for; a chunk the receiving host waits for), snapshotApplyTimeoutMs
 * for the final answer.
 */
import type { Socket } from 'node:net';
import { FrameDecoder, decodeFrame, encodeFrame, isWireError, limits as wire, makeSnapshotChunk, type Frame, type RaftEnvelope, type SnapshotAck, type SnapshotAckStatus, type WireMessage } from '@flotilla/wire';
import { ChunkChannel } from './chunk-channel.ts';
import { snapshotBytesInFlightMax, snapshotChunksInFlightMax, tcpKeepAliveInitialDelayMs } from './constants.ts';
import { TransportError, isTransportError } from './errors.ts';
import { HandshakeReader, encodeHandshake } from './handshake.ts';
import { checkReply } from './tcp-link.ts';
import { endSocket, wrapSocketError, type PeerAddress, type TcpContext } from './tcp-context.ts';
import { dial } from './tcp-tls.ts';
import type { SnapshotOutcome, StoreId } from './types.ts';

// ---- Sending --------------------------------------------------------------------------------------------

/** One outgoing snapshot stream. `run()` never rejects: every failure is 'failed' (+ the hook). */
export class SnapshotSend {
  private socket: Socket | null = null;
  private failure: TransportError | null = null;
  private rejectFailed: (err: TransportError) => void = () => {};
  private readonly failed: Promise<never>;
  private wake: (() => void) | null = null;
  /** 'received' acks so far (chunks 0..acked-1 taken by the receiving host). */
  private acked = 0;
  /** Data chunks written (the end chunk not counted). */
  private sent = 0;
  /** Sizes of the data chunks written and not yet acknowledged, oldest first. */
  private readonly unackedSizes: number[] = [];
  private unackedBytes = 0;
  private handshakeDone = false;
  private final: 'applied' | 'rejected' | null = null;
  private endSent = false;

  constructor(
    private readonly ctx: TcpContext,
    readonly store: StoreId,
    private readonly address: PeerAddress,
    private readonly envelope: RaftEnvelope,
    private readonly chunks: AsyncIterable<Uint8Array>,
  ) {
    this.failed = new Promise<never>((_, reject) => {
      this.rejectFailed = reject;
    });
    this.failed.catch(() => {});
  }

  /** Stops the stream (transport closed, peer removed): `run()` answers 'failed'. */
  abort(err: TransportError): void {
    this.fail(err);
  }

  async run(): Promise<SnapshotOutcome> {
    const { tuning } = this.ctx;
    let iterator: AsyncIterator<Uint8Array> | null = null;
    let sourceDone = false;
    try {
      this.dial();
      await this.until(() => this.handshakeDone, tuning.connectTimeoutMs, 'handshake');
      this.write({ kind: 'raftBatch', body: { fromStore: this.ctx.localStore, toStore: this.store, messages: [this.envelope] } });
      iterator = this.chunks[Symbol.asyncIterator]();
      for (;;) {
        const pending = iterator.next();
        pending.catch(() => {}); // if the stream fails first, a later rejection of the source is not news
        const next = await Promise.race([pending, this.failed]);
        if (next.done === true) {
          sourceDone = true;
          break;
        }
        const data: unknown = next.value;
        if (!(data instanceof Uint8Array) || data.length > wire.snapshotChunkDataBytesMax) {
          throw new TransportError('FLOTILLA_TRANSPORT_SNAPSHOT_ABORTED', `snapshot source yielded ${data instanceof Uint8Array ? `a chunk of ${data.length} bytes (at most ${wire.snapshotChunkDataBytesMax})` : 'a non-Uint8Array'}`, { store: this.store });
        }
        await this.until(() => this.hasWindow(), tuning.snapshotIdleTimeoutMs, 'window');
        this.write({ kind: 'snapshotChunk', body: makeSnapshotChunk({ regionId: this.envelope.regionId, snapshotId: this.snapshotId, seq: this.sent, last: false, data }) });
        this.sent++;
        this.unackedSizes.push(data.length);
        this.unackedBytes += data.length;
        await this.until(() => !this.needsDrain(), tuning.snapshotIdleTimeoutMs, 'drain');
      }
      this.write({ kind: 'snapshotChunk', body: makeSnapshotChunk({ regionId: this.envelope.regionId, snapshotId: this.snapshotId, seq: this.sent, last: true, data: new Uint8Array(0) }) });
      this.endSent = true;
      await this.until(() => this.final !== null, tuning.snapshotApplyTimeoutMs, 'apply');
      if (this.final === 'applied') return 'finished';
      this.ctx.report(new TransportError('FLOTILLA_TRANSPORT_SNAPSHOT_REJECTED', `store ${this.store} rejected snapshot ${this.snapshotId} of region ${this.envelope.regionId}`, { store: this.store }));
      return 'failed';
    } catch (err) {
      if (this.failure === null) {
        const wrapped = isTransportError(err) ? err : new TransportError('FLOTILLA_TRANSPORT_SNAPSHOT_ABORTED', `snapshot ${this.snapshotId} of region ${this.envelope.regionId} to store ${this.store}: the source failed`, { store: this.store, cause: err });
        this.fail(wrapped);
      }
      return 'failed';
    } finally {
      this.failure ??= new TransportError('FLOTILLA_TRANSPORT_SNAPSHOT_ABORTED', 'stream over', { store: this.store });
      this.socket?.destroy();
      if (iterator !== null && !sourceDone) {
        // Let the source release what it holds (a storage iterator); its own errors are not ours.
        void Promise.resolve()
          .then(() => iterator?.return?.())
          .catch(() => {});
      }
    }
  }

  private get snapshotId(): number {
    return this.envelope.snapshotId ?? 0;
  }

  private hasWindow(): boolean {
    const { tuning } = this.ctx;
    const chunks = this.sent - this.acked;
    return chunks === 0 || (chunks < tuning.snapshotChunksInFlight && this.unackedBytes < tuning.snapshotBytesInFlight);
  }

  private needsDrain(): boolean {
    return this.socket !== null && this.socket.writableNeedDrain;
  }

  private dial(): void {
    const socket = dial(this.address, this.ctx.tls);
    this.socket = socket;
    this.ctx.track(socket);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, tcpKeepAliveInitialDelayMs);
    socket.write(encodeHandshake({ purpose: 'snapshot', role: 'hello', status: 'ok', clusterId: this.ctx.clusterId, fromStore: this.ctx.localStore, toStore: this.store }));
    const reader = new HandshakeReader();
    const decoder = new FrameDecoder({ kinds: ['snapshotAck'] });
    let socketError: Error | null = null;
    socket.on('data', (chunk: Buffer) => {
      if (this.failure !== null) return;
      try {
        let rest: Uint8Array = chunk;
        if (!this.handshakeDone) {
          const result = reader.push(chunk);
          if (result === null) return;
          const refusal = checkReply(result.handshake, this.ctx, this.store, 'snapshot');
          if (refusal !== null) throw refusal;
          this.handshakeDone = true;
          this.poke();
          rest = result.rest;
        }
        if (rest.length > 0) decoder.push(rest, (frame) => this.onFrame(frame));
      } catch (err) {
        this.fail(classify(err, this.store));
      }
    });
    socket.on('drain', () => this.poke());
    socket.on('error', (err) => {
      socketError = err;
    });
    socket.on('close', () => {
      if (this.final !== null || this.failure !== null) return; // the answer came first: a normal end
      const what = `snapshot stream to store ${this.store} at ${this.address.host}:${this.address.port}`;
      this.fail(this.handshakeDone ? wrapSocketError('FLOTILLA_TRANSPORT_CONNECTION_LOST', `${what} lost`, this.store, socketError) : wrapSocketError('FLOTILLA_TRANSPORT_CONNECT_FAILED', `${what}: dial failed`, this.store, socketError, socket));
    });
  }

  private onFrame(frame: Frame): void {
    const message = decodeFrame(frame);
    if (message.kind !== 'snapshotAck') throw protocol(`a ${message.kind} frame on a snapshot stream`, this.store);
    const ack: SnapshotAck = message.body;
    if (ack.regionId !== this.envelope.regionId || ack.snapshotId !== this.snapshotId) throw protocol(`an ack for snapshot ${ack.snapshotId} of region ${ack.regionId} on the stream of snapshot ${this.snapshotId} of region ${this.envelope.regionId}`, this.store);
    if (this.final !== null) throw protocol('an ack after the final answer', this.store);
    if (ack.status === 'received') {
      if (ack.seq < this.acked || ack.seq >= this.sent) throw protocol(`ack of chunk ${ack.seq}; chunks ${this.acked}..${this.sent - 1} are unacknowledged`, this.store);
      while (this.acked <= ack.seq) {
        this.unackedBytes -= this.unackedSizes.shift() ?? 0;
        this.acked++;
      }
    } else {
      this.final = ack.status;
      if (!this.endSent) {
        // Answered before the end: the receiving host refused the stream early.
        this.fail(new TransportError('FLOTILLA_TRANSPORT_SNAPSHOT_REJECTED', `store ${this.store} rejected snapshot ${this.snapshotId} of region ${this.envelope.regionId} before its end`, { store: this.store }));
        return;
      }
    }
    this.poke();
  }

  private write(message: WireMessage): void {
    if (this.failure !== null || this.socket === null) throw this.failure ?? new TransportError('FLOTILLA_TRANSPORT_SNAPSHOT_ABORTED', 'no connection', { store: this.store });
    this.socket.write(encodeFrame(message));
  }

  /** Resolves when `condition` holds; rejects on failure or when `timeoutMs` pass without progress. */
  private async until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
    while (!condition()) {
      if (this.failure !== null) throw this.failure;
      const timer = { handle: null as NodeJS.Timeout | null };
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        timer.handle = setTimeout(() => {
          this.fail(new TransportError('FLOTILLA_TRANSPORT_SNAPSHOT_TIMEOUT', `snapshot ${this.snapshotId} of region ${this.envelope.regionId} to store ${this.store}: no progress (${what}) within ${timeoutMs} ms`, { store: this.store }));
        }, timeoutMs);
      });
      if (timer.handle !== null) clearTimeout(timer.handle);
    }
    if (this.failure !== null) throw this.failure;
  }

  private poke(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  private fail(err: TransportError): void {
    if (this.failure !== null) return;
    this.failure = err;
    this.ctx.report(err);
    this.rejectFailed(err);
    this.socket?.destroy();
    this.poke();
  }
}

// ---- Receiving --------------------------------------------------------------------------------------------

/** The receiving side of one snapshot connection, after its handshake. */
export class SnapshotReceive {
  private phase: 'envelope' | 'chunks' | 'applying' | 'done' = 'envelope';
  private channel: ChunkChannel | null = null;
  private envelope: RaftEnvelope | null = null;
  private nextSeq = 0;
  private idleTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly ctx: TcpContext,
    private readonly socket: Socket,
    readonly store: StoreId,
    /** Called once when the stream is over, however it ended (frees the receive slot). */
    private readonly onDone: () => void,
  ) {
    this.armIdle(true);
  }

  get isDone(): boolean {
    return this.phase === 'done';
  }

  /** A frame on the connection (decoded; store ids already checked by the caller). */
  onMessage(message: WireMessage): void {
    switch (this.phase) {
      case 'done':
        return; // answered already (an early rejection): the sender stops on our answer
      case 'envelope':
        return this.onEnvelope(message);
      case 'chunks':
        return this.onChunk(message);
      default:
        throw protocol(`a ${message.kind} frame after the end of the snapshot stream`, this.store);
    }
  }

  /** The connection ended or broke before the stream was over. */
  abort(err: TransportError): void {
    if (this.phase === 'done') return;
    this.finish();
    this.channel?.fail(err);
  }

  private onEnvelope(message: WireMessage): void {
    if (message.kind !== 'raftBatch' || message.body.messages.length !== 1) throw protocol('a snapshot stream starts with a RaftBatch of exactly the snapshot message', this.store);
    const envelope = message.body.messages[0]!;
    if (envelope.message.type !== 'snapshot' || envelope.snapshotId === undefined) throw protocol(`a snapshot stream opened by a ${envelope.message.type} message`, this.store);
    this.envelope = envelope;
    this.phase = 'chunks';
    this.armIdle(false); // from now on, only while the host waits for a chunk
    const channel = new ChunkChannel(
      { chunksMax: snapshotChunksInFlightMax, bytesMax: snapshotBytesInFlightMax + wire.snapshotChunkDataBytesMax },
      (taken) => this.ack('received', taken - 1),
      (waiting) => this.armIdle(waiting),
    );
    this.channel = channel;
    let outcome: Promise<void>;
    try {
      outcome = Promise.resolve(this.ctx.handlers.onSnapshot(this.store, envelope, channel));
    } catch (err) {
      outcome = Promise.reject(err);
    }
    outcome.then(
      () => this.settle('applied'),
      () => this.settle('rejected'),
    );
  }

  private onChunk(message: WireMessage): void {
    const envelope = this.envelope!;
    const channel = this.channel!;
    if (message.kind !== 'snapshotChunk') throw protocol(`a ${message.kind} frame inside a snapshot stream`, this.store);
    const chunk = message.body;
    if (chunk.regionId !== envelope.regionId || chunk.snapshotId !== envelope.snapshotId) throw protocol(`a chunk of snapshot ${chunk.snapshotId} of region ${chunk.regionId} in the stream of snapshot ${envelope.snapshotId} of region ${envelope.regionId}`, this.store);
    if (chunk.seq !== this.nextSeq) throw protocol(`chunk ${chunk.seq}, expected ${this.nextSeq}`, this.store);
    this.nextSeq++;
    if (chunk.last) {
      if (chunk.data.length !== 0) throw protocol('the end chunk carries data', this.store);
      this.phase = 'applying';
      this.armIdle(false);
      channel.end();
      return;
    }
    if (!channel.push(chunk.data)) throw protocol(`the sender went past the window (${snapshotChunksInFlightMax} chunks, ${snapshotBytesInFlightMax} bytes)`, this.store);
  }

  private settle(status: 'applied' | 'rejected'): void {
    if (this.phase === 'done') return;
    const envelope = this.envelope!;
    if (status === 'applied' && this.channel?.complete !== true) {
      // The host returned without reading every chunk: not an install anyone can vouch for.
      status = 'rejected';
      this.ctx.report(new TransportError('FLOTILLA_TRANSPORT_SNAPSHOT_REJECTED', `snapshot ${envelope.snapshotId} of region ${envelope.regionId} from store ${this.store}: onSnapshot returned before reading every chunk`, { store: this.store }));
    }
    this.finish();
    this.ack(status, Math.max(0, this.nextSeq - 1), envelope);
    endSocket(this.socket, this.ctx.tuning.closeLingerMs);
  }

  private ack(status: SnapshotAckStatus, seq: number, envelope: RaftEnvelope | null = this.envelope): void {
    if (envelope === null || this.socket.destroyed || !this.socket.writable) return;
    this.socket.write(encodeFrame({ kind: 'snapshotAck', body: { regionId: envelope.regionId, snapshotId: envelope.snapshotId ?? 0, seq, status } }));
  }

  /** Runs the idle timer while we wait on the sender (the host waits for a chunk, or no envelope yet). */
  private armIdle(waiting: boolean): void {
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    if (!waiting || this.phase === 'done' || this.phase === 'applying') return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      const err = new TransportError('FLOTILLA_TRANSPORT_SNAPSHOT_TIMEOUT', `snapshot stream from store ${this.store}: nothing received for ${this.ctx.tuning.snapshotIdleTimeoutMs} ms`, { store: this.store });
      this.ctx.report(err);
      this.abort(err);
      this.socket.destroy();
    }, this.ctx.tuning.snapshotIdleTimeoutMs);
  }

  private finish(): void {
    if (this.phase === 'done') return;
    this.phase = 'done';
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    this.onDone();
  }
}

function protocol(what: string, store: StoreId): TransportError {
  return new TransportError('FLOTILLA_TRANSPORT_PROTOCOL', what, { store });
}

/** A failure while reading a connection: a wire error is a bad frame; ours stay as they are. */
export function classify(err: unknown, store: StoreId | null): TransportError {
  if (isTransportError(err)) return err;
  if (isWireError(err)) return new TransportError('FLOTILLA_TRANSPORT_BAD_FRAME', `bad frame from ${store === null ? 'an unidentified peer' : `store ${store}`}: ${err.message}`, { store, cause: err });
  throw err; // not an operating error: a bug (or the host's handler threw), let it surface
}
