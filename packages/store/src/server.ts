import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { PeerStats, StoreId } from '@flotilla/transport';
import { decodeKvRequest, encodeKvResponse, isWireError, limits as wireLimits, type KvError, type KvRequest, type KvResponse } from '@flotilla/wire';
import { ADMIN_PATH_PREFIX, AdminApi, adminError, busy, type AdminAnswer, type AdminEndpoint, type AdminOptions } from './admin-api.ts';
import { sendStream } from './admin-stream.ts';
import { API_ERROR_STATUS, encodeApiError, type ApiErrorCode } from './api-errors.ts';
import { clientRefusal, createApiServer, type ApiServer } from './api-tls.ts';
import type { CatchUpStatus } from './catch-up.ts';
import { monotonicNowMs } from './clock.ts';
import type { HostObserver, HostStats, ReplicaCounts } from './host-types.ts';
import type { MultiRaftHost } from './host.ts';
import type { DiskStatus } from './disk-guard.ts';
import { StoreMetrics, requestKind, type RequestKind } from './metrics.ts';
import type { TlsCredentials } from './process/tls-files.ts';
import { serverLimits } from './server-limits.ts';

/** The client API endpoint: POST a msgpack KvRequest, get a msgpack KvResponse. */
export const KV_PATH = '/v1/kv';
export const MSGPACK_CONTENT_TYPE = 'application/x-msgpack';
const JSON_CONTENT_TYPE = 'application/json';

/** What serves a decoded request (KvService; tests may wrap it). */
export interface KvHandler {
  handle(request: KvRequest): Promise<KvResponse>;
}

export interface StoreServerOptions {
  readonly service: KvHandler;
  /** Readiness reads `stoppedBy`; metrics read `stats()` at scrape time. */
  readonly host: { stats(): HostStats; readonly stoppedBy: unknown; readonly state: MultiRaftHost['state']; replicaCounts?(): ReplicaCounts; setObserver?(observer: HostObserver): void; catchUpStatus?(): CatchUpStatus };
  /** Readiness: `address()` answers once the transport listens. Metrics read `stats()`. */
  readonly transport: { address(): { host: string; port: number }; stats(): ReadonlyMap<StoreId, PeerStats> };
  /** Default 127.0.0.1 and port 0 (any free port: see address()). */
  readonly listenHost?: string;
  readonly port?: number;
  /** Lower bounds than serverLimits' (tests); never higher. */
  readonly requestBodyBytesMax?: number;
  readonly requestsInFlightMax?: number;
  readonly bodyBytesInFlightMax?: number;
  readonly drainTimeoutMs?: number;
  /** Where bugs surfacing as 500 answers are reported (a pino logger fits). */
  readonly log?: { error(fields: object, message: string): void };
  /** Node process metrics on this store's registry (default true). */
  readonly defaultMetrics?: boolean;
  /** Serves the admin API under /v1/admin/ (admin-api.ts); without it those paths answer 404. */
  readonly admin?: AdminOptions;
  /** The data disk's guard, for its metrics (disk-guard.ts). */
  readonly disk?: () => DiskStatus;
  /** HTTPS with client certificates (api-tls.ts); without it plain HTTP. */
  readonly tls?: TlsCredentials;
}

export interface ServerStats {
  readonly connections: number;
  /** Admitted requests (KV and admin) whose response is not written yet. */
  readonly requestsInFlight: number;
  /** Body bytes of those requests, held by the server. */
  readonly bodyBytesInFlight: number;
  /** Bodies refused at the byte bound (413 while streaming or from Content-Length). */
  readonly refusedTooLarge: number;
  /** Requests refused with 503 by the server itself (bounds, or stopping). */
  readonly refusedBusy: number;
  /** Most body bytes held at once (never past bodyBytesInFlightMax). */
  readonly bodyBytesInFlightPeak: number;
  /** Most requests outstanding at once on one connection (> 1: the client pipelines). */
  readonly pipelinedMax: number;
}

export type Readiness = { readonly ready: true } | { readonly ready: false; readonly reason: string };

interface Connection {
  readonly socket: Socket;
  /** Requests received on it whose responses have not finished. */
  outstanding: number;
}

/**
 * How one kind of request body is read (readBody) and refused: KV requests answer msgpack
 * KvResponses, admin requests JSON.
 */
interface BodyPolicy {
  readonly bytesMax: number;
  /** The media type is acceptable (decided from the headers, before the body is read). */
  readonly mediaTypeOk: boolean;
  readonly refuseTooLarge: () => void;
  readonly refuseBusy: () => void;
  readonly refuseMediaType: () => void;
  readonly serve: (body: Buffer) => Promise<void>;
}

/**
 * The store's client API over HTTP/1.1 (node:http, keep-alive, no framework):
 *
 * - `POST /v1/kv`: a msgpack KvRequest body → a msgpack KvResponse from the KV service. Bodies
 *   are bounded while they stream (413, and the rest is never read); the requests and body
 *   bytes in flight are bounded (503 + Retry-After). Pipelined requests are answered in order
 *   (node:http queues responses per connection), so undici's pipelining works.
 * - `GET /health` (liveness), `GET /ready` (readiness), `GET /metrics` (Prometheus text).
 * - `/v1/admin/…` when given `admin`: the admin API (admin-api.ts), JSON both ways. Its requests
 *   share the in-flight bounds and the draining of KV requests; their bodies are bounded by
 *   serverLimits.adminBodyBytesMax.
 *
 * With `tls`, HTTPS only; every path but /health, /ready and /metrics needs a client certificate
 * signed by the CA (401 FLOTILLA_UNAUTHENTICATED otherwise; api-tls.ts).
 *
 * Status codes: 200 (a KvResponse, whose per-operation results may be errors), 413 and 503
 * (a KvResponse whose whole-request error says why), 400/401/404/405/408/415/431/500 (a JSON
 * ApiError body: the exchange itself was wrong; see api-errors.ts).
 */
export class StoreServer {
  readonly metrics: StoreMetrics;
  private readonly api: ApiServer;
  private readonly connections = new Map<Duplex, Connection>();
  /** The connection of each response (a pipelined response has no socket until its turn). */
  private readonly connectionOf = new WeakMap<ServerResponse, Connection>();
  private readonly bodyBytesMax: number;
  private readonly inFlightMax: number;
  private readonly bodyBytesInFlightMax: number;
  private readonly drainTimeoutMs: number;
  private readonly admin: AdminApi | null;
  private inFlight = 0;
  private bodyBytesInFlight = 0;
  private bodyBytesInFlightPeak = 0;
  private refusedTooLarge = 0;
  private refusedBusy = 0;
  private pipelinedMax = 0;
  /** Refusing new KV requests (503, retryable): from markStopping() on. */
  private stopping = false;
  /** Set by close(): from then on connections are closed (stopping only refuses, on open ones). */
  private closing: Promise<void> | null = null;
  /** Woken when a request is answered or a connection closes (drain waits on them). */
  private waiters: (() => void)[] = [];

  constructor(private readonly options: StoreServerOptions) {
    this.bodyBytesMax = bounded('requestBodyBytesMax', options.requestBodyBytesMax, serverLimits.requestBodyBytesMax);
    this.inFlightMax = bounded('requestsInFlightMax', options.requestsInFlightMax, serverLimits.requestsInFlightMax);
    this.bodyBytesInFlightMax = bounded('bodyBytesInFlightMax', options.bodyBytesInFlightMax, serverLimits.bodyBytesInFlightMax);
    this.drainTimeoutMs = bounded('drainTimeoutMs', options.drainTimeoutMs, serverLimits.drainTimeoutMs);
    this.admin = options.admin ? new AdminApi(options.admin) : null;
    this.metrics = new StoreMetrics(
      { host: options.host, transport: options.transport, server: () => this.stats(), ...(options.disk ? { disk: options.disk } : {}) },
      { defaultMetrics: options.defaultMetrics ?? true },
    );
    options.host.setObserver?.(this.metrics.hostObserver);
    this.api = createApiServer(
      options.tls,
      {
        keepAliveTimeout: serverLimits.keepAliveTimeoutMs,
        headersTimeout: serverLimits.headersTimeoutMs,
        requestTimeout: serverLimits.requestReceiveTimeoutMs,
        maxHeaderSize: serverLimits.headerBytesMax,
        noDelay: true,
      },
      (req, res) => this.onRequest(req, res),
    );
    const server = this.api.server;
    server.maxConnections = serverLimits.connectionsMax;
    server.on(this.api.connectionEvent, (socket: Socket) => {
      this.connections.set(socket, { socket, outstanding: 0 });
      socket.once('close', () => {
        this.connections.delete(socket);
        this.wake();
      });
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.onClientError(err, socket));
  }

  /** New connections use these credentials (their files were renewed); only a server started with `tls`. */
  setTls(creds: TlsCredentials): void {
    this.api.setTls(creds);
  }

  private get server(): ApiServer['server'] {
    return this.api.server;
  }

  /** Starts listening; resolves with the address (port 0 picks a free one). */
  async listen(): Promise<{ host: string; port: number }> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host: this.options.listenHost ?? '127.0.0.1', port: this.options.port ?? 0 }, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return this.address();
  }

  address(): { host: string; port: number } {
    const info = this.server.address();
    if (info === null || typeof info === 'string') throw new Error('StoreServer.address() before listen()');
    return { host: (info as AddressInfo).address, port: (info as AddressInfo).port };
  }

  stats(): ServerStats {
    return {
      connections: this.connections.size,
      requestsInFlight: this.inFlight,
      bodyBytesInFlight: this.bodyBytesInFlight,
      bodyBytesInFlightPeak: this.bodyBytesInFlightPeak,
      refusedTooLarge: this.refusedTooLarge,
      refusedBusy: this.refusedBusy,
      pipelinedMax: this.pipelinedMax,
    };
  }

  /**
   * Ready to serve: the host started (its transport listens), it did not fail, the store is not
   * stopping, and the replicas it started with caught up with their leaders (catch-up.ts).
   */
  readiness(): Readiness {
    if (this.stopping) return { ready: false, reason: 'the store is stopping' };
    const failure = this.options.host.stoppedBy;
    if (failure !== undefined) return { ready: false, reason: `the host stopped: ${failure instanceof Error ? failure.message : String(failure)}` };
    const state = this.options.host.state;
    if (state === 'new') return { ready: false, reason: 'the host is not started' };
    if (state === 'stopped') return { ready: false, reason: 'the host is stopped' };
    try {
      this.options.transport.address();
    } catch {
      return { ready: false, reason: 'the transport is not listening' };
    }
    const catchUp = this.options.host.catchUpStatus?.();
    if (catchUp !== undefined && !catchUp.caughtUp) {
      return { ready: false, reason: `${catchUp.waiting} of the ${catchUp.of} replicas this store started with have not caught up with their leaders yet (region ${catchUp.example} is one); a store waits for it after a start, at most --ready-catch-up-max-ms` };
    }
    return { ready: true };
  }

  /**
   * Readiness turns to 503 and every later KV request is refused (503, retryable); requests
   * already admitted are still served. Connections stay open meanwhile: a client pipelines
   * several requests per connection, and one the server closed under them loses the requests
   * already on the wire ("other side closed": their outcome unknown to the client, once in a
   * rolling restart). Refused, the client goes elsewhere and its connections fall quiet by
   * close(). A shutdown calls this first, then moves leaderships away, then close().
   */
  markStopping(): void {
    this.stopping = true;
  }

  /**
   * Drains: stops accepting connections, refuses new requests on open ones, waits (at most
   * drainTimeoutMs) for the admitted ones to be answered and their connections to close, then
   * closes every connection that is left.
   */
  close(): Promise<void> {
    this.closing ??= this.drain();
    return this.closing;
  }

  private async drain(): Promise<void> {
    this.stopping = true;
    // Stops listening and closes the connections node:http sees as idle.
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    // The others close once their last outstanding response is flushed (see onRequest).
    for (const connection of this.connections.values()) if (connection.outstanding === 0) connection.socket.end();
    const deadline = monotonicNowMs() + this.drainTimeoutMs;
    const timer = setTimeout(() => this.wake(), this.drainTimeoutMs);
    try {
      while (monotonicNowMs() < deadline && (this.inFlight > 0 || this.connections.size > 0)) {
        await new Promise<void>((resolve) => this.waiters.push(resolve));
      }
    } finally {
      clearTimeout(timer);
    }
    this.server.closeAllConnections();
    this.api.destroySockets();
    await closed;
  }

  private wake(): void {
    if (this.waiters.length === 0) return;
    for (const wake of this.waiters.splice(0)) wake();
  }

  // ------------------------------------------------------------ routing

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    const connection = this.connections.get(req.socket);
    if (connection) {
      this.connectionOf.set(res, connection);
      connection.outstanding++;
      if (connection.outstanding > this.pipelinedMax) this.pipelinedMax = connection.outstanding;
      res.once('close', () => {
        connection.outstanding--;
        // Draining: a connection closes once its last answer is flushed (FIN after the data).
        if (this.closing !== null && connection.outstanding === 0) connection.socket.end();
        this.wake();
      });
    }
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    const path = query === -1 ? url : url.slice(0, query);
    const refusal = clientRefusal(req, path);
    if (refusal !== null) return this.refuseUnauthenticated(res, path, refusal, started);
    switch (path) {
      case KV_PATH:
        if (req.method !== 'POST') return this.refuseApi(res, 'FLOTILLA_METHOD_NOT_ALLOWED', `${KV_PATH} takes POST`, { allow: 'POST' });
        return this.serveKv(req, res, started);
      case '/health':
        if (req.method !== 'GET') return this.refuseApi(res, 'FLOTILLA_METHOD_NOT_ALLOWED', '/health takes GET', { allow: 'GET' });
        return this.sendJson(res, 200, { status: 'ok' });
      case '/ready': {
        if (req.method !== 'GET') return this.refuseApi(res, 'FLOTILLA_METHOD_NOT_ALLOWED', '/ready takes GET', { allow: 'GET' });
        const readiness = this.readiness();
        return this.sendJson(res, readiness.ready ? 200 : 503, readiness);
      }
      case '/metrics':
        if (req.method !== 'GET') return this.refuseApi(res, 'FLOTILLA_METHOD_NOT_ALLOWED', '/metrics takes GET', { allow: 'GET' });
        return void this.serveMetrics(res);
      default:
        if (path.startsWith(ADMIN_PATH_PREFIX)) return this.serveAdmin(req, res, path, query === -1 ? '' : url.slice(query + 1), started);
        return this.refuseApi(res, 'FLOTILLA_NOT_FOUND', `no endpoint ${path}`);
    }
  }

  /** 401: counted with the admin requests or the KV ones, as the path says. */
  private refuseUnauthenticated(res: ServerResponse, path: string, refusal: string, started: number): void {
    if (!path.startsWith(ADMIN_PATH_PREFIX)) return this.refuseApi(res, 'FLOTILLA_UNAUTHENTICATED', refusal, {}, started);
    this.metrics.recordAdmin('unknown', 'FLOTILLA_UNAUTHENTICATED', seconds(started));
    this.refuseApi(res, 'FLOTILLA_UNAUTHENTICATED', refusal);
  }

  private async serveMetrics(res: ServerResponse): Promise<void> {
    try {
      const text = await this.metrics.metrics();
      this.send(res, 200, this.metrics.contentType, text);
    } catch (err) {
      this.refuseApi(res, 'FLOTILLA_INTERNAL', `metrics: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  // ------------------------------------------------------------ bodies

  /**
   * Admits, reads and serves one request with a body. The body is counted as it streams: past
   * the bound the request is refused at once and the rest of its body is never read (the
   * connection is closed after the answer). A request refused for being busy or of the wrong
   * media type has its body read and dropped (never held), so its connection stays usable.
   */
  private readBody(req: IncomingMessage, res: ServerResponse, policy: BodyPolicy): void {
    if (this.stopping) return this.refuseBusy(policy);
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > policy.bytesMax) return this.refuseTooLarge(req, res, policy);

    let refusal: 'busy' | 'mediaType' | null = null;
    if (!policy.mediaTypeOk) refusal = 'mediaType';
    else if (this.inFlight >= this.inFlightMax) refusal = 'busy';

    let admitted = refusal === null;
    let held = 0;
    let received = 0;
    let chunks: Buffer[] = [];
    if (admitted) this.inFlight++;
    const release = (): void => {
      if (!admitted) return;
      admitted = false;
      this.inFlight--;
      this.bodyBytesInFlight -= held;
      held = 0;
      chunks = [];
      this.wake();
    };

    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (received > policy.bytesMax) {
        req.off('data', onData);
        req.off('end', onEnd);
        req.pause(); // stop reading: the rest of the body stays on the wire, the connection closes
        release();
        this.refuseTooLarge(req, res, policy);
        return;
      }
      if (!admitted) return; // refused: dropped as it comes
      if (this.bodyBytesInFlight + chunk.length > this.bodyBytesInFlightMax) {
        release();
        refusal = 'busy';
        return;
      }
      chunks.push(chunk);
      held += chunk.length;
      this.bodyBytesInFlight += chunk.length;
      if (this.bodyBytesInFlight > this.bodyBytesInFlightPeak) this.bodyBytesInFlightPeak = this.bodyBytesInFlight;
    };
    const onEnd = (): void => {
      if (refusal === 'busy') return this.refuseBusy(policy);
      if (refusal === 'mediaType') return policy.refuseMediaType();
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, held);
      void policy.serve(body).finally(release);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    // The client went away before the body ended: nothing will be served.
    req.once('close', () => {
      if (!req.complete) release();
    });
  }

  /** 413 before the body is read past the bound; the connection closes after the answer. */
  private refuseTooLarge(req: IncomingMessage, res: ServerResponse, policy: BodyPolicy): void {
    this.refusedTooLarge++;
    req.pause();
    res.setHeader('connection', 'close');
    policy.refuseTooLarge();
  }

  private refuseBusy(policy: BodyPolicy): void {
    this.refusedBusy++;
    policy.refuseBusy();
  }

  // ------------------------------------------------------------ /v1/admin/

  /**
   * Routes from the method and path first (404, 405 and a bad id in the path are answered
   * without reading the body), then reads the JSON body under the admin bound, as KV bodies
   * are read, and lets the admin API serve it.
   */
  private serveAdmin(req: IncomingMessage, res: ServerResponse, path: string, search: string, started: number): void {
    if (this.admin === null) return this.refuseApi(res, 'FLOTILLA_NOT_FOUND', `no endpoint ${path} (this server has no admin API)`);
    const admin = this.admin;
    const routing = admin.route(req.method ?? '', path, search);
    if ('refused' in routing) return void this.sendAdmin(res, started, routing.endpoint, routing.refused);
    const { call } = routing;
    const contentType = req.headers['content-type'];
    // A body must be JSON; a request without one may omit the media type.
    const bodyless = contentType === undefined && (req.headers['content-length'] ?? '0') === '0' && req.headers['transfer-encoding'] === undefined;
    this.readBody(req, res, {
      bytesMax: serverLimits.adminBodyBytesMax,
      mediaTypeOk: bodyless || isMediaType(contentType, JSON_CONTENT_TYPE),
      refuseTooLarge: () =>
        this.sendAdmin(res, started, call.endpoint, adminError('FLOTILLA_REQUEST_TOO_LARGE', `an admin body is at most ${serverLimits.adminBodyBytesMax} bytes`)),
      refuseBusy: () => this.sendAdmin(res, started, call.endpoint, busy(this.stopping ? 'the store is stopping' : 'too many requests or body bytes in flight')),
      refuseMediaType: () => this.sendAdmin(res, started, call.endpoint, adminError('FLOTILLA_UNSUPPORTED_MEDIA_TYPE', `an admin body is ${JSON_CONTENT_TYPE}`)),
      serve: async (body) => this.sendAdmin(res, started, call.endpoint, await admin.serve(call, body)),
    });
  }

  /** Sends an admin answer; a streamed one (a backup) settles once its body ended, sent or not. */
  private sendAdmin(res: ServerResponse, started: number, endpoint: AdminEndpoint | 'unknown', answer: AdminAnswer): Promise<void> | void {
    this.metrics.recordAdmin(endpoint, answer.code, seconds(started));
    if (answer.code === 'FLOTILLA_INTERNAL') this.options.log?.error({ endpoint, answer: answer.body }, 'admin request failed on a bug');
    if (answer.stream !== undefined) return sendStream(res, answer.status, answer.stream, answer.headers, () => this.closeIfDraining(res), this.options.log);
    this.send(res, answer.status, JSON_CONTENT_TYPE, JSON.stringify(answer.body), answer.headers);
  }

  // ------------------------------------------------------------ POST /v1/kv

  private serveKv(req: IncomingMessage, res: ServerResponse, started: number): void {
    this.readBody(req, res, {
      bytesMax: this.bodyBytesMax,
      mediaTypeOk: isMediaType(req.headers['content-type'], MSGPACK_CONTENT_TYPE),
      refuseTooLarge: () => this.sendKvError(res, started, 'none', this.tooLargeError()),
      refuseBusy: () => this.sendKvError(res, started, 'none', { code: 'FLOTILLA_SERVER_BUSY', retryAfterMs: serverLimits.busyRetryAfterMs }),
      refuseMediaType: () => this.refuseApi(res, 'FLOTILLA_UNSUPPORTED_MEDIA_TYPE', `a KvRequest body is ${MSGPACK_CONTENT_TYPE}`, {}, started),
      serve: (body) => this.handleKv(body, res, started),
    });
  }

  private async handleKv(body: Buffer, res: ServerResponse, started: number): Promise<void> {
    let request: KvRequest;
    try {
      request = decodeKvRequest(body);
    } catch (err) {
      // Too many operations, or a key or value over the wire's bounds: split the request.
      if (isWireError(err, 'FLOTILLA_WIRE_LIMIT_EXCEEDED')) return this.sendKvError(res, started, 'none', this.tooLargeError());
      if (isWireError(err)) return this.refuseApi(res, 'FLOTILLA_MALFORMED_REQUEST', `not a KvRequest: ${err.code}: ${err.message}`, {}, started);
      // The decoder throws only WireErrors: anything else is a bug in it.
      return this.refuseApi(res, 'FLOTILLA_INTERNAL', `decoding a KvRequest: ${err instanceof Error ? err.message : String(err)}`, {}, started);
    }
    const kind = requestKind(request.ops);
    let response: KvResponse;
    let payload: Uint8Array;
    try {
      response = await this.options.service.handle(request);
      payload = encodeKvResponse(response);
    } catch (err) {
      // A bug (the service answers every operation, with a typed error if need be): the
      // outcome of the request's writes is unknown, like a timeout's.
      return this.refuseApi(res, 'FLOTILLA_INTERNAL', `serving request ${request.requestId}: ${err instanceof Error ? err.message : String(err)}`, {}, started, kind);
    }
    if ('error' in response) {
      this.metrics.recordRequest(kind, response.error.code, seconds(started));
      return this.send(res, kvErrorStatus(response.error), MSGPACK_CONTENT_TYPE, payload, retryAfter(response.error));
    }
    this.metrics.recordRequest(kind, 'OK', seconds(started), request.ops, response.results);
    this.send(res, 200, MSGPACK_CONTENT_TYPE, payload);
  }

  // ------------------------------------------------------------ refusals

  private tooLargeError(): KvError {
    return { code: 'FLOTILLA_REQUEST_TOO_LARGE', requestBytesMax: this.bodyBytesMax, opsMax: wireLimits.kvRequestOpsMax };
  }

  /** A whole-request KvError for a request that was not decoded (requestId 0). */
  private sendKvError(res: ServerResponse, started: number, kind: RequestKind, error: KvError): void {
    this.metrics.recordRequest(kind, error.code, seconds(started));
    this.send(res, kvErrorStatus(error), MSGPACK_CONTENT_TYPE, encodeKvResponse({ requestId: 0, error }), retryAfter(error));
  }

  private refuseApi(res: ServerResponse, code: ApiErrorCode, message: string, headers: Record<string, string> = {}, started?: number, kind: RequestKind = 'none'): void {
    if (started !== undefined) this.metrics.recordRequest(kind, code, seconds(started));
    // A 500 is a bug: operators must see it. Refusals of bad input are counted in /metrics.
    if (code === 'FLOTILLA_INTERNAL') this.options.log?.error({ code, kind }, message);
    this.send(res, API_ERROR_STATUS[code], JSON_CONTENT_TYPE, encodeApiError(code, message), headers);
  }

  private sendJson(res: ServerResponse, status: number, value: unknown): void {
    this.send(res, status, JSON_CONTENT_TYPE, JSON.stringify(value));
  }

  /**
   * Every answer goes out here, whole (one write). While draining, the last outstanding
   * answer of a connection says Connection: close (node:http then closes it once flushed); an
   * earlier pipelined one must not, or the answers queued behind it would be lost.
   */
  private send(res: ServerResponse, status: number, contentType: string, body: string | Uint8Array, headers: Record<string, string> = {}): void {
    if (res.headersSent) {
      res.destroy(); // never two answers to one request
      return;
    }
    this.closeIfDraining(res);
    const length = typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
    res.writeHead(status, { ...headers, 'content-type': contentType, 'content-length': length });
    res.end(body);
  }

  private closeIfDraining(res: ServerResponse): void {
    if (this.closing !== null && (this.connectionOf.get(res)?.outstanding ?? 0) <= 1) res.setHeader('connection', 'close');
  }

  /**
   * Bad HTTP (node:http's parser refused it, or a timeout): answer with a JSON error when no
   * response is under way on the connection (else it would interleave), then close it.
   */
  private onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    const busy = (this.connections.get(socket)?.outstanding ?? 0) > 0;
    if (err.code === 'ECONNRESET' || !socket.writable || busy) {
      socket.destroy();
      return;
    }
    const code: ApiErrorCode =
      err.code === 'HPE_HEADER_OVERFLOW' ? 'FLOTILLA_HEADERS_TOO_LARGE' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'FLOTILLA_REQUEST_TIMEOUT' : 'FLOTILLA_MALFORMED_REQUEST';
    const status = API_ERROR_STATUS[code];
    const body = encodeApiError(code, `bad HTTP: ${err.code ?? err.message}`);
    socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: ${JSON_CONTENT_TYPE}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  }
}

function bounded(what: string, value: number | undefined, max: number): number {
  if (value === undefined) return max;
  if (!Number.isSafeInteger(value) || value < 1 || value > max) throw new RangeError(`StoreServer: ${what} must be an integer in [1, ${max}], got ${value}`);
  return value;
}

function isMediaType(contentType: string | undefined, expected: string): boolean {
  if (contentType === undefined) return false;
  const semicolon = contentType.indexOf(';');
  return (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase() === expected;
}

function kvErrorStatus(error: KvError): number {
  switch (error.code) {
    case 'FLOTILLA_SERVER_BUSY':
      return 503;
    case 'FLOTILLA_REQUEST_TOO_LARGE':
      return 413;
    default:
      return 200; // the KvResponse carries it; HTTP itself went fine
  }
}

function retryAfter(error: KvError): Record<string, string> {
  if (error.code !== 'FLOTILLA_SERVER_BUSY') return {};
  return { 'retry-after': String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))) };
}

function seconds(started: number): number {
  return (performance.now() - started) / 1000;
}
