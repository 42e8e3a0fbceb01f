/**
 * PD's HTTP server: JSON in and out, one route table (routes.ts), typed errors as
 * `{ error: { code, message, leader? } }` with the status of PD_ERROR_STATUS. A request that
 * needs the leader and reaches a follower is forwarded to the leader once (a header marks
 * forwarded requests, so two members that disagree about the leader never bounce a request
 * back and forth); if forwarding fails the caller gets NOT_LEADER with the leader's URL.
 * With `tls` (--api-tls-*) the API is HTTPS: every path but /health, /ready and /metrics needs a
 * client certificate signed by the CA (401 FLOTILLA_PD_UNAUTHENTICATED; @flotilla/store's
 * api-tls.ts), and forwarded requests present this member's own.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { apiTlsConnect, clientRefusal, createApiServer, type ApiServer, type TlsCredentials } from '@flotilla/store';
import { isWireError } from '@flotilla/wire';
import { Pool } from 'undici';
import { PD_ERROR_STATUS, PdError, isPdError } from '../errors.ts';

/** Bounds of the PD HTTP server. */
export const pdServerLimits = Object.freeze({
  /** A request body (the largest: 1,024 region heartbeats of 64 peers). */
  requestBodyBytesMax: 4 * 1024 * 1024,
  /** Requests served at once; more are answered SERVER_BUSY. */
  requestsInFlightMax: 256,
  /** How long a forwarded request may take at the leader. */
  forwardTimeoutMs: 10_000,
  /** Connections to the leader for forwarded requests. */
  forwardConnections: 8,
});

export const FORWARDED_HEADER = 'x-flotilla-pd-forwarded';

export interface PdRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  /** Path parameters of the route (`:id`). */
  readonly params: Readonly<Record<string, string>>;
  readonly body: unknown;
}

export interface PdAnswer {
  readonly status: number;
  /** JSON-ready (see pdJson), or a string sent as text/plain (metrics). */
  readonly body: unknown;
  readonly contentType?: string;
}

export interface Route {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** `/pd/api/v1/stores/:id`: segments starting with `:` are parameters. */
  readonly path: string;
  readonly handle: (request: PdRequest) => Promise<PdAnswer> | PdAnswer;
}

interface CompiledRoute extends Route {
  readonly segments: readonly string[];
}

export class PdHttpServer {
  private readonly api: ApiServer;
  private readonly routes: CompiledRoute[];
  private readonly forwardPools = new Map<string, Pool>();
  private inFlight = 0;

  constructor(
    routes: readonly Route[],
    private readonly log: { error(fields: object, message: string): void },
    /** HTTPS with client certificates; also this member's credentials towards the leader. */
    private tls: TlsCredentials | undefined = undefined,
  ) {
    this.routes = routes.map((r) => ({ ...r, segments: r.path.split('/').filter(Boolean) }));
    this.api = createApiServer(tls, {}, (req, res) => void this.serve(req, res));
  }

  private get server(): ApiServer['server'] {
    return this.api.server;
  }

  /** New connections, and new forwarding pools, use these credentials (their files were renewed). */
  setTls(creds: TlsCredentials): void {
    this.api.setTls(creds);
    this.tls = creds;
    const pools = [...this.forwardPools.values()];
    this.forwardPools.clear();
    for (const pool of pools) void pool.close().catch(() => {});
  }

  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        const info = this.server.address() as AddressInfo;
        resolve({ host: info.address, port: info.port });
      });
    });
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    this.api.destroySockets();
    await closed;
    await Promise.all([...this.forwardPools.values()].map((pool) => pool.close()));
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let answer: PdAnswer;
    if (this.inFlight >= pdServerLimits.requestsInFlightMax) {
      answer = errorAnswer(new PdError('FLOTILLA_PD_SERVER_BUSY', `${this.inFlight} requests in flight, at most ${pdServerLimits.requestsInFlightMax}`));
      req.resume();
    } else {
      this.inFlight++;
      try {
        answer = await this.answer(req);
      } finally {
        this.inFlight--;
      }
    }
    send(res, answer);
  }

  private async answer(req: IncomingMessage): Promise<PdAnswer> {
    const url = new URL(req.url ?? '/', 'http://pd');
    const refusal = clientRefusal(req, url.pathname);
    if (refusal !== null) {
      req.resume();
      return errorAnswer(new PdError('FLOTILLA_PD_UNAUTHENTICATED', refusal));
    }
    let raw: Buffer | undefined;
    try {
      raw = await readBody(req);
      const match = this.match(req.method ?? 'GET', url.pathname);
      if (!match) return errorAnswer(new PdError('FLOTILLA_PD_INVALID_ARGUMENT', `no endpoint ${req.method} ${url.pathname}`), 404);
      const body = raw.length === 0 ? undefined : parseJson(raw);
      return await match.route.handle({ method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, params: match.params, body });
    } catch (err) {
      if (isPdError(err, 'FLOTILLA_PD_NOT_LEADER') && err.leader && req.headers[FORWARDED_HEADER] === undefined && raw !== undefined) {
        return this.forward(err.leader.url, req, url, raw).catch(() => errorAnswer(err));
      }
      if (isPdError(err)) return errorAnswer(err);
      if (isWireError(err)) return errorAnswer(new PdError('FLOTILLA_PD_INVALID_ARGUMENT', err.message));
      this.log.error({ err: { message: (err as Error).message, stack: (err as Error).stack } }, 'PD request failed (a bug)');
      return errorAnswer(new PdError('FLOTILLA_PD_INTERNAL', 'internal error; see the PD member\'s log'));
    }
  }

  private match(method: string, pathname: string): { route: CompiledRoute; params: Record<string, string> } | undefined {
    const segments = pathname.split('/').filter(Boolean);
    for (const route of this.routes) {
      if (route.method !== method || route.segments.length !== segments.length) continue;
      const params: Record<string, string> = {};
      const fits = route.segments.every((part, i) => {
        if (part.startsWith(':')) {
          params[part.slice(1)] = decodeURIComponent(segments[i]!);
          return true;
        }
        return part === segments[i];
      });
      if (fits) return { route, params };
    }
    return undefined;
  }

  private async forward(leaderUrl: string, req: IncomingMessage, url: URL, body: Buffer): Promise<PdAnswer> {
    let pool = this.forwardPools.get(leaderUrl);
    if (!pool) {
      const connect = this.tls !== undefined && leaderUrl.startsWith('https:') ? { connect: apiTlsConnect(this.tls) } : {};
      pool = new Pool(leaderUrl, { connections: pdServerLimits.forwardConnections, ...connect });
      this.forwardPools.set(leaderUrl, pool);
    }
    const res = await pool.request({
      method: (req.method ?? 'GET') as 'GET',
      path: url.pathname + url.search,
      headers: { 'content-type': 'application/json', [FORWARDED_HEADER]: '1' },
      ...(body.length > 0 ? { body } : {}),
      headersTimeout: pdServerLimits.forwardTimeoutMs,
      bodyTimeout: pdServerLimits.forwardTimeoutMs,
    });
    const text = await res.body.text();
    const contentType = String(res.headers['content-type'] ?? 'application/json');
    return { status: res.statusCode, body: contentType.startsWith('application/json') ? (JSON.parse(text) as unknown) : text, contentType };
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > pdServerLimits.requestBodyBytesMax) {
      req.resume();
      reject(tooLarge(declared));
      return;
    }
    const chunks: Buffer[] = [];
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > pdServerLimits.requestBodyBytesMax) {
        req.removeAllListeners('data');
        req.resume();
        reject(tooLarge(bytes));
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

function tooLarge(bytes: number): PdError {
  return new PdError('FLOTILLA_PD_REQUEST_TOO_LARGE', `request body of ${bytes} bytes, at most ${pdServerLimits.requestBodyBytesMax}`);
}

function parseJson(raw: Buffer): unknown {
  try {
    return JSON.parse(raw.toString('utf8')) as unknown;
  } catch {
    throw new PdError('FLOTILLA_PD_INVALID_ARGUMENT', 'the request body is not JSON');
  }
}

export function errorAnswer(err: PdError, status = PD_ERROR_STATUS[err.code]): PdAnswer {
  return { status, body: { error: { code: err.code, message: err.message, ...(err.leader ? { leader: err.leader } : {}) } } };
}

function send(res: ServerResponse, answer: PdAnswer): void {
  const isText = typeof answer.body === 'string';
  const payload = isText ? (answer.body as string) : JSON.stringify(answer.body);
  res.writeHead(answer.status, {
    'content-type': answer.contentType ?? (isText ? 'text/plain; charset=utf-8' : 'application/json'),
    'content-length': Buffer.byteLength(payload),
  });
  res.end(payload);
}
