/**
 * The store's client of the placement driver: JSON over HTTP (undici) to whichever PD member
 * answers, following the leader. A follower forwards requests to its leader itself; when it
 * cannot, it answers 421 with the leader's URL, which this client tries next. Every answer is
 * read through @flotilla/wire's PD protocol readers, so a bad answer is a typed error too.
 * PD members at `https://` URLs are called with the store's API TLS credentials (api-tls.ts).
 */
import { Pool } from 'undici';
import {
  pdJson,
  readJoinResponse,
  readOperatorWatchResponse,
  readRegionHeartbeatResponse,
  readStoreHeartbeatResponse,
  type JoinRequest,
  type JoinResponse,
  type OperatorWatchResponse,
  type RegionHeartbeatRequest,
  type RegionHeartbeatResponse,
  type StoreHeartbeat,
  type StoreHeartbeatResponse,
} from '@flotilla/wire';
import { apiTlsConnect } from '../api-tls.ts';
import { StoreError } from '../errors.ts';
import type { TlsCredentials } from '../process/tls-files.ts';

const API = '/pd/api/v1';

/** Bounds of the PD client. */
export const pdClientLimits = Object.freeze({
  /** One request, from sending to the whole answer. */
  requestTimeoutMs: 10_000,
  /** Members (given plus learned leaders) tried for one request before it fails. */
  attemptsMax: 8,
  /** PD endpoints a store may be given. */
  endpointsMax: 16,
  /** One for a parked operator watch, the rest for heartbeats. */
  connectionsPerMember: 3,
});

export class PdClient {
  private readonly pools = new Map<string, Pool>();
  private closed = false;
  /** The member that answered last: asked first next time. */
  private preferred: string;

  constructor(
    private readonly endpoints: readonly string[],
    /** For `https://` members: the CA that signs PD's certificates, and this store's client certificate. */
    private tls: TlsCredentials | undefined = undefined,
  ) {
    if (endpoints.length === 0 || endpoints.length > pdClientLimits.endpointsMax) {
      throw new StoreError('FLOTILLA_STORE_INVALID_CONFIG', `PD endpoints: 1..${pdClientLimits.endpointsMax}, got ${endpoints.length}`);
    }
    this.preferred = endpoints[0]!;
  }

  async join(request: JoinRequest): Promise<JoinResponse> {
    return readJoinResponse(await this.post('/join', request));
  }

  async storeHeartbeat(heartbeat: StoreHeartbeat): Promise<StoreHeartbeatResponse> {
    return readStoreHeartbeatResponse(await this.post('/store-heartbeat', heartbeat));
  }

  async regionHeartbeats(request: RegionHeartbeatRequest): Promise<RegionHeartbeatResponse> {
    return readRegionHeartbeatResponse(await this.post('/region-heartbeats', request));
  }

  /** Parks at PD until an operator waits on a region this store leads (or `timeoutMs`). */
  async watchOperators(storeId: number, timeoutMs: number): Promise<OperatorWatchResponse> {
    return readOperatorWatchResponse(await this.post('/operator-watch', { storeId, timeoutMs }, timeoutMs));
  }

  /**
   * Aborts what is in flight (a parked watch would otherwise hold the close for its timeout)
   * and refuses every request after it: a request aborted here must not try the next member
   * on a fresh pool and park there again (a SIGTERM'd store waited 20 s for that).
   */
  /**
   * New requests use these credentials (their files were renewed): the pools made with the old
   * ones close once their requests are answered.
   */
  setTls(creds: TlsCredentials): void {
    this.tls = creds;
    const old = [...this.pools.values()];
    this.pools.clear();
    for (const pool of old) void pool.close().catch(() => {});
  }

  async close(): Promise<void> {
    this.closed = true;
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((pool) => pool.destroy()));
  }

  /** POSTs to the preferred member, then to leader hints and the other endpoints. */
  private async post(path: string, body: unknown, parkedMs = 0): Promise<unknown> {
    const tried: string[] = [];
    let next: string | undefined = this.preferred;
    let lastProblem = 'no PD member answered';
    while (next !== undefined && tried.length < pdClientLimits.attemptsMax) {
      const url: string = next;
      tried.push(url);
      try {
        const answer = await this.request(url, path, body, parkedMs);
        if (answer.status === 200) {
          this.preferred = url;
          return answer.body;
        }
        const error = (answer.body as { error?: { code?: string; message?: string; leader?: { url?: string } } } | null)?.error;
        lastProblem = `${url}: ${answer.status} ${error?.code ?? ''} ${error?.message ?? ''}`.trim();
        const hint = error?.leader?.url;
        if (!retryable(answer.status)) throw new StoreError('FLOTILLA_STORE_PD_REFUSED', `PD refused ${path}: ${lastProblem}`);
        next = hint && !tried.includes(hint) ? hint : this.untried(tried);
      } catch (err) {
        if (err instanceof StoreError) throw err;
        if (this.closed) throw closedError();
        lastProblem = `${url}: ${(err as Error).message}`;
        next = this.untried(tried);
      }
    }
    throw new StoreError('FLOTILLA_STORE_PD_UNAVAILABLE', `PD did not answer ${path} (tried ${tried.join(', ')}): ${lastProblem}`);
  }

  private untried(tried: readonly string[]): string | undefined {
    return this.endpoints.find((e) => !tried.includes(e));
  }

  private async request(url: string, path: string, body: unknown, parkedMs: number): Promise<{ status: number; body: unknown }> {
    if (this.closed) throw closedError();
    let pool = this.pools.get(url);
    if (!pool) {
      const connect = this.tls !== undefined && url.startsWith('https:') ? { connect: apiTlsConnect(this.tls) } : {};
      pool = new Pool(url, { connections: pdClientLimits.connectionsPerMember, ...connect });
      this.pools.set(url, pool);
    }
    const res = await pool.request({
      method: 'POST',
      path: `${API}${path}`,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(pdJson(body)),
      headersTimeout: pdClientLimits.requestTimeoutMs + parkedMs,
      bodyTimeout: pdClientLimits.requestTimeoutMs,
    });
    const text = await res.body.text();
    let parsed: unknown = null;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
    return { status: res.statusCode, body: parsed };
  }
}

/** Leader changes, elections, overload: worth asking again (elsewhere). */
function retryable(status: number): boolean {
  return status === 421 || status === 503 || status === 502 || status === 504;
}

function closedError(): StoreError {
  return new StoreError('FLOTILLA_STORE_PD_UNAVAILABLE', 'the PD client is closed');
}
