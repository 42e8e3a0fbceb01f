/**
 * Request coalescing to one store. Operations of any calls and regions queue per store; once per
 * event-loop turn (setImmediate) everything queued goes out as one KvRequest (`POST /v1/kv`),
 * cut at batchOpsMax / batchBytesMax. Reads and writes never share a request, nor a connection:
 * - read requests are pipelined on their own pool (undici re-sends them if a connection breaks,
 *   which is harmless), at most readRequestsInFlightPerStoreMax in flight;
 * - write requests are sent `idempotent: false` on a pool with one connection per write in
 *   flight (writeRequestsInFlightPerStoreMax), so undici never pipelines them behind another
 *   request, never re-sends them, and never queues one waiting for a connection.
 * Operations queued while their kind is at its bound coalesce into the next request — which is
 * how batches grow with load. A request queued inside undici instead would have been cut while
 * few operations waited, and held them there.
 */
import { performance } from 'node:perf_hooks';
import { Pool, errors as undiciErrors } from 'undici';
import { tlsConnect, unauthenticated, untrustedServer, type ClientTls } from './client-tls.ts';
import { decodeKvResponse, encodeKvRequest, limits as wire, type KvError, type KvOp, type KvOpResult, type KvResponse } from '@flotilla/wire';
import { clientLimits } from './constants.ts';
import { ClientError } from './errors.ts';
import { exchange } from './http-exchange.ts';

/** What became of one operation sent to a store. */
export type OpOutcome =
  | { readonly kind: 'result'; readonly result: KvOpResult }
  /**
   * No answer for it. `maybeApplied`: a write of it may have reached the store (a broken
   * connection after sending, a 500); false: certainly not applied.
   */
  | { readonly kind: 'failed'; readonly error: ClientError; readonly maybeApplied: boolean; readonly connection: boolean };

export interface PendingOp {
  readonly op: KvOp;
  /** performance.now() by which the caller needs the answer. */
  readonly deadline: number;
  /** Set when the op leaves the queue for a request. */
  sent: boolean;
  /** Set when the op is answered or cancelled: nothing more happens to it. */
  done: boolean;
  readonly settle: (outcome: OpOutcome) => void;
}

export interface ChannelOptions {
  /** Counters to add to (shared by a client's channels). */
  readonly stats?: ChannelStats;
  readonly batchOpsMax?: number;
  readonly batchBytesMax?: number;
  readonly readRequestsInFlightMax?: number;
  readonly writeRequestsInFlightMax?: number;
  readonly queuedOpsMax?: number;
  readonly attemptTimeoutMsMax?: number;
}

/** Statistics of one channel (tests, diagnostics). */
export interface ChannelStats {
  requests: number;
  ops: number;
}

let nextRequestId = 1;

const MSGPACK = 'application/x-msgpack';

/** Estimated encoded bytes of an op (keys, values, framing). */
export function opBytes(op: KvOp): number {
  const FRAMING = 48;
  switch (op.op) {
    case 'get':
    case 'delete':
      return FRAMING + op.key.byteLength;
    case 'put':
      return FRAMING + op.key.byteLength + op.value.byteLength;
    case 'cas':
      return FRAMING + op.key.byteLength + (op.expected?.byteLength ?? 0) + (op.value?.byteLength ?? 0);
    case 'deleteRange':
    case 'scan':
      return FRAMING + op.start.byteLength + op.end.byteLength;
  }
}

export function isWriteOp(op: KvOp): boolean {
  return op.op !== 'get' && op.op !== 'scan';
}

export class StoreChannel {
  readonly stats: ChannelStats;
  /** "store N", as errors name the channel (kept: a call's race names it per operation). */
  readonly label: string;
  private retiring = false;
  private readonly readPool: Pool;
  private readonly writePool: Pool;
  private readonly reads: PendingOp[] = [];
  private readonly writes: PendingOp[] = [];
  private queued = 0;
  private readsInFlight = 0;
  private writesInFlight = 0;
  private flushScheduled = false;
  private closed = false;
  private readonly batchOpsMax: number;
  private readonly batchBytesMax: number;
  private readonly readRequestsInFlightMax: number;
  private readonly writeRequestsInFlightMax: number;
  private readonly queuedOpsMax: number;
  private readonly attemptTimeoutMsMax: number;

  constructor(
    readonly storeId: number,
    /** "host:port" */
    readonly address: string,
    options: ChannelOptions = {},
    /** Told when a connection to the store failed (the client refreshes the address). */
    private readonly onConnectionFailure: (channel: StoreChannel) => void = () => {},
    /** HTTPS with these credentials (client-tls.ts); plain HTTP without. */
    tls?: ClientTls,
  ) {
    this.label = `store ${storeId}`;
    this.stats = options.stats ?? { requests: 0, ops: 0 };
    // Each bound may be lowered, never raised: the defaults are what the wire's bounds were
    // checked against (constants.ts), so a request can always be encoded and sent.
    this.batchOpsMax = channelBound('batchOpsMax', options.batchOpsMax, clientLimits.batchOpsMax);
    this.batchBytesMax = channelBound('batchBytesMax', options.batchBytesMax, clientLimits.batchBytesMax);
    this.readRequestsInFlightMax = channelBound('readRequestsInFlightMax', options.readRequestsInFlightMax, clientLimits.readRequestsInFlightPerStoreMax);
    this.writeRequestsInFlightMax = channelBound('writeRequestsInFlightMax', options.writeRequestsInFlightMax, clientLimits.writeRequestsInFlightPerStoreMax);
    this.queuedOpsMax = channelBound('queuedOpsMax', options.queuedOpsMax, clientLimits.queuedOpsPerStoreMax);
    this.attemptTimeoutMsMax = channelBound('attemptTimeoutMsMax', options.attemptTimeoutMsMax, clientLimits.attemptTimeoutMsMax);
    const origin = `${tls === undefined ? 'http' : 'https'}://${address}`;
    const connect = tls === undefined ? {} : { connect: tlsConnect(tls) };
    this.readPool = new Pool(origin, {
      ...connect,
      connections: clientLimits.readConnectionsPerStore,
      pipelining: clientLimits.pipeliningPerConnection,
      keepAliveTimeout: clientLimits.keepAliveTimeoutMs,
    });
    this.writePool = new Pool(origin, {
      ...connect,
      connections: this.writeRequestsInFlightMax,
      pipelining: 1,
      keepAliveTimeout: clientLimits.keepAliveTimeoutMs,
    });
  }

  /** Queues an op; its outcome comes through `op.settle`. */
  submit(op: PendingOp): void {
    if (this.closed) {
      op.done = true;
      op.settle({ kind: 'failed', error: new ClientError('FLOTILLA_STORE_UNAVAILABLE', `the channel to store ${this.storeId} is closed`), maybeApplied: false, connection: false });
      return;
    }
    if (this.retiring) {
      op.done = true;
      op.settle({ kind: 'failed', error: new ClientError('FLOTILLA_STORE_UNAVAILABLE', `the channel to store ${this.storeId} is retired`), maybeApplied: false, connection: true });
      return;
    }
    if (this.queued >= this.queuedOpsMax) {
      op.done = true;
      op.settle({ kind: 'failed', error: new ClientError('FLOTILLA_CLIENT_BUSY', `${this.queued} operations wait for store ${this.storeId}`), maybeApplied: false, connection: false });
      return;
    }
    (isWriteOp(op.op) ? this.writes : this.reads).push(op);
    this.queued++;
    this.schedule();
  }

  /**
   * The caller gave up on `op`. True when it was still queued: it is never sent, so it
   * certainly did not apply.
   */
  cancel(op: PendingOp): boolean {
    if (op.done) return false;
    op.done = true;
    if (op.sent) return false;
    this.queued--;
    return true;
  }

  /** Fails what is queued and closes the connections (in-flight requests are aborted). */
  async close(): Promise<void> {
    this.closed = true;
    for (const queue of [this.reads, this.writes]) {
      for (const op of queue.splice(0)) {
        if (op.done) continue;
        op.done = true;
        op.settle({ kind: 'failed', error: new ClientError('FLOTILLA_CLIENT_CLOSED', 'the client is closed'), maybeApplied: false, connection: false });
      }
    }
    this.queued = 0;
    await Promise.all([this.readPool.destroy(), this.writePool.destroy()]);
  }

  /**
   * No new ops will come (the store moved, or its connection failed): the queued ones are
   * still sent, then the connections close.
   */
  retire(): void {
    this.retiring = true;
    this.closeIfIdle();
  }

  private closeIfIdle(): void {
    if (this.retiring && !this.closed && this.readsInFlight + this.writesInFlight === 0 && this.queued === 0) {
      this.closed = true;
      void this.readPool.close().catch(() => {});
      void this.writePool.close().catch(() => {});
    }
  }

  private schedule(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (!this.closed) {
      const batch =
        (this.writesInFlight < this.writeRequestsInFlightMax ? this.take(this.writes) : undefined) ??
        (this.readsInFlight < this.readRequestsInFlightMax ? this.take(this.reads) : undefined);
      if (!batch) return;
      if (batch.write) this.writesInFlight++;
      else this.readsInFlight++;
      void this.send(batch.ops, batch.write).finally(() => {
        if (batch.write) this.writesInFlight--;
        else this.readsInFlight--;
        if (this.reads.length > 0 || this.writes.length > 0) this.schedule();
        else this.closeIfIdle();
      });
    }
  }

  /** The next batch of live ops of one queue, within the bounds. */
  private take(queue: PendingOp[]): { ops: PendingOp[]; write: boolean } | undefined {
    const ops: PendingOp[] = [];
    let bytes = 0;
    let taken = 0;
    for (; taken < queue.length && ops.length < this.batchOpsMax; taken++) {
      const op = queue[taken]!;
      if (op.done) continue;
      const size = opBytes(op.op);
      if (ops.length > 0 && bytes + size > this.batchBytesMax) break;
      bytes += size;
      op.sent = true;
      ops.push(op);
    }
    queue.splice(0, taken);
    this.queued -= ops.length;
    if (ops.length === 0) return undefined;
    return { ops, write: queue === this.writes };
  }

  private async send(ops: PendingOp[], write: boolean): Promise<void> {
    const now = performance.now();
    let latest = 0;
    for (const op of ops) latest = Math.max(latest, op.deadline - now);
    const timeoutMs = Math.max(1, Math.min(Math.ceil(latest), this.attemptTimeoutMsMax, wire.kvTimeoutMsMax));
    const requestId = nextRequestId;
    nextRequestId = nextRequestId >= Number.MAX_SAFE_INTEGER ? 1 : nextRequestId + 1;
    this.stats.requests++;
    this.stats.ops += ops.length;
    let body: Uint8Array;
    try {
      body = encodeKvRequest({ requestId, timeoutMs, ops: ops.map((o) => o.op) });
    } catch (err) {
      // Refused before anything was sent (an operation the wire format can't carry): the
      // store is not at fault and no write of it can have applied.
      const error = new ClientError('FLOTILLA_INVALID_ARGUMENT', `a request to store ${this.storeId} could not be encoded: ${(err as Error).message}`, { cause: err });
      this.settleAll(ops, { kind: 'failed', error, maybeApplied: false, connection: false });
      return;
    }
    let status: number;
    let contentType: string;
    let payload: Buffer;
    try {
      ({ status, contentType, payload } = await exchange(write ? this.writePool : this.readPool, {
        method: 'POST',
        path: '/v1/kv',
        headers: { 'content-type': MSGPACK },
        body,
        idempotent: !write,
        blocking: write,
        headersTimeout: timeoutMs + clientLimits.answerGraceMs,
        bodyTimeout: timeoutMs + clientLimits.answerGraceMs,
      }, wire.kvResponsePayloadBytesMax, () => new ClientError('FLOTILLA_STORE_PROTOCOL', `store ${this.storeId}: an answer of more than ${wire.kvResponsePayloadBytesMax} bytes (the wire's bound on a KvResponse)`)));
    } catch (err) {
      if (err instanceof ClientError) {
        // The answer was refused before it was read whole (too large): what the store did is unknown.
        this.settleAll(ops, { kind: 'failed', error: err, maybeApplied: write, connection: false });
        return;
      }
      if (untrustedServer(err)) {
        // The TLS handshake failed: nothing was sent, and asking again will not help.
        const error = unauthenticated(`store ${this.storeId} at ${this.address}`, `its TLS certificate is not trusted (${(err as Error).message})`, err);
        this.settleAll(ops, { kind: 'failed', error, maybeApplied: false, connection: false });
        return;
      }
      const notSent = neverSent(err);
      if (!(err instanceof undiciErrors.RequestAbortedError)) this.onConnectionFailure(this);
      const error = new ClientError('FLOTILLA_STORE_UNAVAILABLE', `store ${this.storeId} at ${this.address}: ${(err as Error).message}`, { cause: err });
      this.settleAll(ops, { kind: 'failed', error, maybeApplied: write && !notSent, connection: true });
      return;
    }
    if (!contentType.startsWith(MSGPACK)) {
      // A JSON ApiError: the exchange itself was refused.
      const text = payload.toString('utf8').slice(0, 512);
      if (status === 401) {
        this.settleAll(ops, { kind: 'failed', error: unauthenticated(`store ${this.storeId}`, `refused this client's TLS certificate: ${text}`), maybeApplied: false, connection: false });
        return;
      }
      const maybeApplied = write && status >= 500;
      const code = status === 408 ? 'FLOTILLA_STORE_UNAVAILABLE' : 'FLOTILLA_STORE_PROTOCOL';
      this.settleAll(ops, { kind: 'failed', error: new ClientError(code, `store ${this.storeId} answered ${status}: ${text}`), maybeApplied, connection: false });
      return;
    }
    let response: KvResponse;
    try {
      response = decodeKvResponse(payload);
    } catch (err) {
      const error = new ClientError('FLOTILLA_STORE_PROTOCOL', `store ${this.storeId}: an undecodable KvResponse: ${(err as Error).message}`, { cause: err });
      this.settleAll(ops, { kind: 'failed', error, maybeApplied: write, connection: false });
      return;
    }
    if ('error' in response) {
      // The whole request was refused: no operation of it ran.
      if (response.requestId !== requestId && response.requestId !== 0) return this.protocol(ops, write, `requestId ${response.requestId}, sent ${requestId}`);
      const error: KvError = response.error;
      this.settleAll(ops, { kind: 'result', result: { op: 'error', error } });
      return;
    }
    if (response.requestId !== requestId) return this.protocol(ops, write, `requestId ${response.requestId}, sent ${requestId}`);
    if (response.results.length !== ops.length) return this.protocol(ops, write, `${response.results.length} results for ${ops.length} operations`);
    ops.forEach((op, i) => this.settle(op, { kind: 'result', result: response.results[i]! }));
  }

  private protocol(ops: PendingOp[], write: boolean, what: string): void {
    this.settleAll(ops, { kind: 'failed', error: new ClientError('FLOTILLA_STORE_PROTOCOL', `store ${this.storeId}: ${what}`), maybeApplied: write, connection: false });
  }

  private settleAll(ops: readonly PendingOp[], outcome: OpOutcome): void {
    for (const op of ops) this.settle(op, outcome);
  }

  private settle(op: PendingOp, outcome: OpOutcome): void {
    if (op.done) return;
    op.done = true;
    op.settle(outcome);
  }

  /** Statistics: what is queued and in flight now. */
  load(): { queued: number; inFlight: number } {
    return { queued: this.queued, inFlight: this.readsInFlight + this.writesInFlight };
  }
}

/** A lowered bound within 1..the default; the default when none is given. */
function channelBound(name: string, value: number | undefined, max: number): number {
  if (value === undefined) return max;
  if (!Number.isSafeInteger(value) || value < 1 || value > max) throw new ClientError('FLOTILLA_INVALID_ARGUMENT', `channel.${name}: an integer in 1..${max}, got ${value}`);
  return value;
}

/** Errors raised before a request was written: it certainly did not reach the store. */
function neverSent(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ECONNREFUSED' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'EADDRNOTAVAIL';
}
