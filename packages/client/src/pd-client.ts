/**
 * The SDK's routing client of the placement driver: JSON GETs to whichever PD member answers.
 * A follower forwards to its leader itself; when it cannot it answers 421 with the leader's URL,
 * tried next; 503 (no leader yet) and network failures move on to the next member. Concurrent
 * identical look-ups share one request.
 */
import { Pool } from 'undici';
import { isWireError, readLocationLabels, readRegionJson, type RegionMeta } from '@flotilla/wire';
import { tlsConnect, unauthenticated, untrustedServer, type ClientTls } from './client-tls.ts';
import { clientLimits } from './constants.ts';
import { ClientError } from './errors.ts';
import { exchange } from './http-exchange.ts';
import type { CallContext } from './backoff.ts';
import { hexOf } from './keys.ts';

const API = '/pd/api/v1';

/** A region as PD routes it: its metadata and the leader its last heartbeat named. */
export interface RoutedRegion {
  readonly meta: RegionMeta;
  readonly leader: { readonly peerId: number; readonly storeId: number } | null;
}

export interface StoreRecord {
  readonly id: number;
  /** "host:port" of the store's client API. */
  readonly apiAddress: string;
  readonly state: string;
  /** The store's location labels (its `--labels`, e.g. `{ zone: 'z1', host: 'h7' }`); `{}` when it has none. */
  readonly labels: Readonly<Record<string, string>>;
}

/** What the region cache and the client need of PD (a fake in unit tests). */
export interface RegionSource {
  /** Up to `limit` regions overlapping [start, end) in key order. */
  regions(start: Uint8Array, end: Uint8Array, limit: number, ctx: CallContext): Promise<{ regions: RoutedRegion[]; more: boolean }>;
  store(storeId: number, ctx: CallContext): Promise<StoreRecord>;
  close(): Promise<void>;
}

interface Answer {
  readonly status: number;
  readonly body: unknown;
}

export class PdRouting implements RegionSource {
  private readonly pools = new Map<string, Pool>();
  private readonly inFlight = new Map<string, Promise<Answer>>();
  private preferred: string;
  private closed = false;

  constructor(
    private readonly endpoints: readonly string[],
    /** PD members are HTTPS with these credentials (client-tls.ts). */
    private readonly tls: ClientTls | undefined = undefined,
  ) {
    if (endpoints.length === 0 || endpoints.length > clientLimits.pdEndpointsMax) {
      throw new ClientError('FLOTILLA_INVALID_ARGUMENT', `pd: 1..${clientLimits.pdEndpointsMax} endpoints, got ${endpoints.length}`);
    }
    for (const e of endpoints) {
      if (!/^https?:\/\/[^/]+\/?$/.test(e)) throw new ClientError('FLOTILLA_INVALID_ARGUMENT', `pd: expected http://host:port, got "${e}"`);
      if (tls !== undefined && !e.startsWith('https:')) throw new ClientError('FLOTILLA_INVALID_ARGUMENT', `pd: with tls, PD members are https:// URLs, got "${e}"`);
    }
    this.endpoints = endpoints.map((e) => e.replace(/\/$/, ''));
    this.preferred = this.endpoints[0]!;
  }

  async regions(start: Uint8Array, end: Uint8Array, limit: number, ctx: CallContext): Promise<{ regions: RoutedRegion[]; more: boolean }> {
    const answer = await this.get(`${API}/regions?start=${hexOf(start)}&end=${hexOf(end)}&limit=${limit}`, ctx);
    const body = answer.body as { regions?: unknown; more?: unknown } | null;
    if (!body || !Array.isArray(body.regions) || typeof body.more !== 'boolean') throw protocol('regions: not {regions, more}');
    return { regions: body.regions.map((r, i) => routedRegion(r, `regions[${i}]`)), more: body.more };
  }

  async store(storeId: number, ctx: CallContext): Promise<StoreRecord> {
    const answer = await this.get(`${API}/stores/${storeId}`, ctx);
    if (answer.status === 404) throw new ClientError('FLOTILLA_STORE_UNAVAILABLE', `PD knows no store ${storeId}`);
    const body = answer.body as { id?: unknown; apiAddress?: unknown; state?: unknown; labels?: unknown } | null;
    if (!body || body.id !== storeId || typeof body.apiAddress !== 'string' || typeof body.state !== 'string') throw protocol(`stores/${storeId}: not a store record`);
    return { id: storeId, apiAddress: body.apiAddress, state: body.state, labels: storeLabels(body.labels, storeId) };
  }

  async close(): Promise<void> {
    this.closed = true;
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.destroy()));
  }

  /** A GET answered 200 or 404 (other answers throw), shared by concurrent identical calls. */
  private get(path: string, ctx: CallContext): Promise<Answer> {
    let shared = this.inFlight.get(path);
    if (!shared) {
      shared = this.getFromAnyMember(path);
      if (this.inFlight.size < clientLimits.pdLookupsInFlightMax) {
        this.inFlight.set(path, shared);
        const forget = (): void => void this.inFlight.delete(path);
        shared.then(forget, forget);
      }
    }
    return ctx.race(shared, `the placement driver (GET ${path})`);
  }

  private async getFromAnyMember(path: string): Promise<Answer> {
    const tried: string[] = [];
    let next: string | undefined = this.preferred;
    let lastProblem = 'no PD member answered';
    // A member that refused our certificate, or whose own we do not trust: the others are still
    // asked (one misconfigured member), and if none answers, that is the error.
    let refusal: ClientError | undefined;
    while (next !== undefined && tried.length < clientLimits.pdAttemptsPerRequestMax) {
      if (this.closed) throw new ClientError('FLOTILLA_CLIENT_CLOSED', 'the client is closed');
      const url: string = next;
      tried.push(url);
      let answer: Answer;
      try {
        answer = await this.request(url, path);
      } catch (err) {
        if (untrustedServer(err)) refusal = unauthenticated(`PD member ${url}`, `its TLS certificate is not trusted (${(err as Error).message})`, err);
        lastProblem = `${url}: ${(err as Error).message}`;
        next = this.endpoints.find((e) => !tried.includes(e));
        continue;
      }
      const error = (answer.body as { error?: { code?: unknown; message?: unknown; leader?: { url?: unknown } } } | null)?.error;
      if (answer.status === 200 || (answer.status === 404 && (error?.code === 'FLOTILLA_PD_REGION_NOT_FOUND' || error?.code === 'FLOTILLA_PD_STORE_NOT_FOUND'))) {
        this.preferred = url;
        return answer;
      }
      lastProblem = `${url}: ${answer.status} ${String(error?.code ?? '')} ${String(error?.message ?? '')}`.trim();
      if (answer.status === 401) {
        refusal = unauthenticated(`PD member ${url}`, `refused this client's TLS certificate: ${lastProblem}`);
        next = this.endpoints.find((e) => !tried.includes(e));
        continue;
      }
      if (answer.status === 421 || answer.status === 502 || answer.status === 503 || answer.status === 504) {
        const hint = typeof error?.leader?.url === 'string' ? error.leader.url.replace(/\/$/, '') : undefined;
        next = hint !== undefined && !tried.includes(hint) ? hint : this.endpoints.find((e) => !tried.includes(e));
        continue;
      }
      throw new ClientError('FLOTILLA_PD_ERROR', `PD refused GET ${path}: ${lastProblem}`);
    }
    throw refusal ?? new ClientError('FLOTILLA_PD_UNAVAILABLE', `PD did not answer GET ${path} (tried ${tried.join(', ')}): ${lastProblem}`);
  }

  private async request(url: string, path: string): Promise<Answer> {
    let pool = this.pools.get(url);
    if (!pool) {
      if (this.pools.size >= clientLimits.pdEndpointsMax * 2) {
        // Leader hints can name members we were not given: keep the map bounded.
        const [oldest, stale] = this.pools.entries().next().value as [string, Pool];
        this.pools.delete(oldest);
        void stale.close();
      }
      const connect = this.tls === undefined ? {} : { connect: tlsConnect(this.tls) };
      pool = new Pool(url, { ...connect, connections: clientLimits.pdConnectionsPerMember, keepAliveTimeout: clientLimits.keepAliveTimeoutMs });
      this.pools.set(url, pool);
    }
    const answer = await exchange(pool, { method: 'GET', path, headersTimeout: clientLimits.pdRequestTimeoutMs, bodyTimeout: clientLimits.pdRequestTimeoutMs }, clientLimits.pdAnswerBytesMax, () =>
      protocol(`GET ${path}: answer over ${clientLimits.pdAnswerBytesMax} bytes`),
    );
    let body: unknown = null;
    try {
      body = JSON.parse(answer.payload.toString('utf8'));
    } catch {
      body = null;
    }
    return { status: answer.status, body };
  }
}

function routedRegion(value: unknown, what: string): RoutedRegion {
  let meta: RegionMeta;
  try {
    meta = readRegionJson(value, what);
  } catch (err) {
    throw protocol(`${what}: ${(err as Error).message}`);
  }
  const leader = (value as { leader?: unknown }).leader;
  if (leader === null || leader === undefined) return { meta, leader: null };
  const l = leader as { peerId?: unknown; storeId?: unknown };
  if (typeof l.peerId !== 'number' || typeof l.storeId !== 'number') throw protocol(`${what}.leader: not {peerId, storeId}`);
  return { meta, leader: { peerId: l.peerId, storeId: l.storeId } };
}

function protocol(message: string): ClientError {
  return new ClientError('FLOTILLA_PD_ERROR', `PD answered badly: ${message}`);
}

/** A store record's labels: absent (a PD that does not send them) is none; anything else must be PD's shape. */
function storeLabels(value: unknown, storeId: number): Readonly<Record<string, string>> {
  if (value === undefined) return {};
  try {
    return readLocationLabels(value);
  } catch (err) {
    if (!isWireError(err)) throw err;
    throw protocol(`stores/${storeId}: ${err.message}`);
  }
}
