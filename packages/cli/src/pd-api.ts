/**
 * PD's JSON API for the CLI: tries the given members in turn, follows a NOT_LEADER answer to the
 * leader's URL, waits out a leader election within the command's deadline, and turns every
 * failure into a one-line CliError. With `tls` (--tls-*) it speaks HTTPS, presenting the
 * client's certificate; a 401 (the certificate refused) or a server certificate that does not
 * verify fails the call at once: asking again does not heal either.
 */
import { Agent, request } from 'undici';
import { refusedCertificateMessage, tlsConnect, untrustedServer, untrustedServerMessage, type ClusterTls } from './cluster-tls.ts';
import { clusterError, describeNetworkError } from './errors.ts';

/** Bounds of one API call. */
export const pdApiLimits = Object.freeze({
  /** Members (and leader hints) tried per round. */
  hopsPerRoundMax: 8,
  /** Pause between rounds while PD has no leader or no member answers. */
  retryPauseMs: 200,
  /** Connect timeout of one attempt (the call's deadline bounds the rest). */
  connectTimeoutMs: 3_000,
  /** Answers larger than this are refused (the biggest is a page of 10,000 regions). */
  bodyBytesMax: 64 * 1024 * 1024,
});

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

interface ErrorBody {
  readonly error?: { readonly code?: string; readonly message?: string; readonly leader?: { readonly url?: string } };
}

/** Errors worth waiting out (an election, a busy leader) within the deadline. */
const TRANSIENT = new Set(['FLOTILLA_PD_NO_LEADER', 'FLOTILLA_PD_NOT_LEADER', 'FLOTILLA_PD_SERVER_BUSY', 'FLOTILLA_PD_META_WRITE_FAILED']);

export class PdApi {
  private readonly agent: Agent;
  /** The member that answered last: tried first next time. */
  private preferred: string;

  constructor(
    readonly urls: readonly string[],
    /** Deadline of one call, retries included. */
    private readonly timeoutMs: number,
    /** The client's credentials for a cluster whose APIs are HTTPS (--tls-*); what else talks to the cluster uses them too. */
    readonly tls: ClusterTls | undefined = undefined,
  ) {
    if (urls.length === 0) throw new Error('PdApi needs at least one URL');
    this.preferred = urls[0]!;
    const connect = tls === undefined ? { timeout: pdApiLimits.connectTimeoutMs } : { ...tlsConnect(tls), timeout: pdApiLimits.connectTimeoutMs };
    this.agent = new Agent({ connect, keepAliveTimeout: 1_000, connections: 4 });
  }

  get<T>(path: string): Promise<T> {
    return this.call<T>('GET', path);
  }

  post<T>(path: string, body: unknown): Promise<T> {
    return this.call<T>('POST', path, body);
  }

  /** One call to the leader (or any member for what any member answers); 2xx or a CliError. */
  async call<T>(method: Method, path: string, body?: unknown): Promise<T> {
    const deadline = performance.now() + this.timeoutMs;
    let lastProblem = '';
    for (;;) {
      const queue = [this.preferred, ...this.urls.filter((u) => u !== this.preferred)];
      const tried = new Set<string>();
      for (let hop = 0; hop < pdApiLimits.hopsPerRoundMax && queue.length > 0; hop++) {
        const url = queue.shift()!;
        if (tried.has(url)) continue;
        tried.add(url);
        const remaining = Math.ceil(deadline - performance.now()); // whole ms: timers and undici take integers
        if (remaining <= 0) break;
        const answer = await this.attempt(url, method, path, body, remaining);
        if (answer.kind === 'ok') {
          this.preferred = url;
          return answer.body as T;
        }
        if (answer.kind === 'refused') throw clusterError(answer.message);
        lastProblem = answer.message;
        if (answer.leaderUrl !== undefined && !tried.has(answer.leaderUrl)) queue.unshift(answer.leaderUrl);
      }
      if (performance.now() + pdApiLimits.retryPauseMs >= deadline) break;
      await new Promise((resolve) => setTimeout(resolve, pdApiLimits.retryPauseMs));
    }
    throw clusterError(`cannot reach the placement driver (${this.urls.join(', ')}) within ${this.timeoutMs} ms: ${lastProblem} (check --pd or FLOTILLA_PD)`);
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  private async attempt(
    url: string,
    method: Method,
    path: string,
    body: unknown,
    timeoutMs: number,
  ): Promise<{ kind: 'ok'; body: unknown } | { kind: 'refused'; message: string } | { kind: 'retry'; message: string; leaderUrl?: string }> {
    let res;
    try {
      res = await request(`${url}${path}`, {
        dispatcher: this.agent,
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      const untrusted = untrustedServer(err);
      if (untrusted !== undefined) return { kind: 'refused', message: untrustedServerMessage(`PD member ${url}`, untrusted) };
      return { kind: 'retry', message: `${url}: ${describeNetworkError(err, timeoutMs)}` };
    }
    let text: string;
    try {
      const length = Number(res.headers['content-length'] ?? 0);
      if (length > pdApiLimits.bodyBytesMax) {
        await res.body.dump();
        return { kind: 'refused', message: `${url}${path}: answer of ${length} bytes is over the CLI's bound` };
      }
      text = await res.body.text();
    } catch (err) {
      return { kind: 'retry', message: `${url}: ${describeNetworkError(err, timeoutMs)}` };
    }
    let parsed: unknown;
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {
      return { kind: 'refused', message: `${url}${path} answered ${res.statusCode} with something other than JSON: is ${url} a Flotilla PD?` };
    }
    if (res.statusCode >= 200 && res.statusCode <= 299) return { kind: 'ok', body: parsed };
    const error = (parsed as ErrorBody | null)?.error;
    const code = error?.code ?? `HTTP ${res.statusCode}`;
    const message = `${error?.message ?? `${method} ${path} answered ${res.statusCode}`} (${code})`;
    if (res.statusCode === 401) return { kind: 'refused', message: refusedCertificateMessage(`PD member ${url}`, message, this.tls !== undefined) };
    if (TRANSIENT.has(code) || res.statusCode === 421 || res.statusCode === 503) {
      const leaderUrl = error?.leader?.url;
      return { kind: 'retry', message: `${url}: ${message}`, ...(leaderUrl ? { leaderUrl } : {}) };
    }
    if (res.statusCode === 404 && error === undefined) return { kind: 'refused', message: `${url} has no ${path}: is it a Flotilla PD?` };
    return { kind: 'refused', message: `PD: ${message}` };
  }
}

/** PD's JSON shapes the CLI reads (keys are lowercase hex). */
export interface PdStoreJson {
  readonly id: number;
  readonly raftAddress: string;
  readonly apiAddress: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly state: string;
  readonly capacityBytes: number;
  readonly availableBytes: number;
  readonly usedBytes: number;
  readonly regionCount: number;
  readonly leaderCount: number;
  /** The store's disk is below its reserve: it refuses puts to the regions it leads. */
  readonly refusingWrites?: boolean;
  readonly lastHeartbeatMs: number;
}

export interface PdPeerJson {
  readonly id: number;
  readonly storeId: number;
  readonly role: 'voter' | 'learner';
}

export interface PdRegionJson {
  readonly id: number;
  readonly startKey: string;
  readonly endKey: string;
  readonly epoch: { readonly version: number; readonly confVer: number };
  readonly peers: readonly PdPeerJson[];
  readonly leader: { readonly peerId: number; readonly storeId: number } | null;
  readonly downPeerIds?: readonly number[];
  readonly pendingPeerIds?: readonly number[];
  readonly approximateBytes?: number;
  readonly approximateKeys?: number;
}
