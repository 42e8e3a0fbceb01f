/**
 * A whole PD member process: the metadata group (PdMember), the leadership watch, the
 * schedulers that run while this member leads, and the HTTP API — started in that order,
 * stopped in the reverse one. `main.ts` runs one per process; tests start real processes of it.
 */
import { API_TLS, RAFT_TLS, apiTlsConnect, errorFields, followFaultControl, monotonicNowMs, type Logger, type TlsCredentials, type TlsWatch } from '@flotilla/store';
import { FaultSwitch } from '@flotilla/transport';
import { Agent, request } from 'undici';
import { PdError } from '../errors.ts';
import { Leadership } from '../member/leadership.ts';
import { PdMember } from '../member/pd-member.ts';
import type { MemberRecord } from '../meta/records.ts';
import { PdHttpServer } from '../server/http-server.ts';
import { PdMetrics } from '../server/metrics.ts';
import { API, pdRoutes } from '../server/routes.ts';
import { schedulingRoutes } from '../server/scheduling-routes.ts';
import { SchedulingService } from '../service/scheduling-service.ts';
import type { PdConfig } from './config.ts';

/** Backoff of a joining member's requests to the member it joins through. */
const JOIN_RETRY_MS = { first: 100, max: 2_000 };

export class PdProcess {
  private stopping: Promise<void> | null = null;
  private joined: Promise<void> | null = null;
  /** The fault-injection control file's watcher (tests only, --fault-control). */
  private faultControl: { stop(): void } | null = null;
  /** The TLS credential files' watchers (--raft-tls-*, --api-tls-*). */
  private readonly tlsWatches: TlsWatch[] = [];
  /** With --api-tls-*: how this member calls other members' HTTPS APIs (joining, announcing itself). */
  private callAgent: Agent | undefined;

  private constructor(
    readonly config: PdConfig,
    private readonly logger: Logger,
    readonly member: PdMember,
    readonly leadership: Leadership,
    readonly server: PdHttpServer,
    readonly clientUrl: string,
  ) {}

  static async start(config: PdConfig, logger: Logger, onFailure: (err: unknown) => void): Promise<PdProcess> {
    // Before anything opens: a credential file that is missing or does not load stops the start.
    const apiTls = config.apiTls === undefined ? undefined : await API_TLS.load(config.apiTls, (message) => new PdError('FLOTILLA_PD_INVALID_CONFIG', message));
    let clientUrl = config.advertiseClientUrl ?? '';
    const faults = config.faultControl === undefined ? undefined : new FaultSwitch();
    const member = await PdMember.open(config, logger, () => clientUrl, onFailure, faults);
    let metrics: PdMetrics | undefined;
    const scheduling = new SchedulingService(member.meta, logger, {
      scheduleIntervalMs: config.scheduleIntervalMs,
      onEvent: (entry) => metrics?.operators.inc({ origin: entry.origin, outcome: entry.event }),
    });
    const leadership = new Leadership(member, config.clusterId, logger, scheduling);
    metrics = new PdMetrics(leadership, () => scheduling.timing(), () => scheduling.currentConfig().maxReplicas, () => member.transport.tlsCertificateExpiry());
    const routes = pdRoutes({
      member,
      leadership,
      registry: metrics.registry,
      timing: () => scheduling.timing(),
      commands: scheduling,
      onHeartbeats: (kind, count) => metrics.heartbeats.inc({ kind }, count),
    });
    const server = new PdHttpServer([...routes, ...schedulingRoutes(scheduling, leadership)], logger, apiTls);
    const api = await server.listen(config.clientListen.host, config.clientListen.port);
    clientUrl ||= `${apiTls === undefined ? 'http' : 'https'}://${api.host.includes(':') ? `[${api.host}]` : api.host}:${api.port}`;
    const pd = new PdProcess(config, logger, member, leadership, server, clientUrl);
    if (apiTls !== undefined) pd.callAgent = callAgent(apiTls);
    if (faults && config.faultControl !== undefined) pd.faultControl = followFaultControl(config.faultControl, faults, logger);
    if (config.raftTls !== undefined) pd.tlsWatches.push(RAFT_TLS.watch(config.raftTls, (creds) => member.transport.setTls(creds), logger));
    if (config.apiTls !== undefined) pd.tlsWatches.push(API_TLS.watch(config.apiTls, (creds) => pd.renewApiTls(creds), logger));
    member.watchMembers();
    await pd.enterGroup();
    leadership.start();
    logger.info({ memberId: config.memberId, raftAddress: member.transport.address(), clientUrl, raftTls: config.raftTls !== undefined, apiTls: config.apiTls !== undefined }, 'pd member started');
    return pd;
  }

  /**
   * Founds PD's group (static members), asks a running member to add this one (join), or —
   * a restart — tells the leader this member's addresses in case they changed (port 0, a new
   * pod IP): the others dial whatever the metadata says.
   */
  private async enterGroup(): Promise<void> {
    if (this.config.initialMembers) await this.member.foundStatic(this.config.initialMembers);
    if (this.member.hasReplica()) {
      this.joined = this.askToBeAdded(() => this.member.memberList().filter((m) => m.id !== this.config.memberId).map((m) => m.clientUrl), 'announced this member\'s addresses');
      return;
    }
    if (this.config.initialMembers) return;
    if (!this.config.join) throw new PdError('FLOTILLA_PD_INVALID_CONFIG', 'this member holds no PD data: give --initial-members (to found PD) or --join URL (to join a running PD)');
    const through = this.config.join;
    // Joining waits on the group's leader, which may be electing: retry in the background.
    this.joined = this.askToBeAdded(() => [through], 'joined PD');
  }

  /**
   * POSTs this member's record to `/members` through the first of `urls` that answers, until
   * one succeeds (the leader adds the member, or just records new addresses). Before each
   * attempt it learns where the members are (any member answers that from its replica), so
   * this member can answer the leader's first messages.
   */
  private async askToBeAdded(urls: () => string[], done: string): Promise<void> {
    let wait = JOIN_RETRY_MS.first;
    while (!this.stopping) {
      for (const url of urls()) {
        try {
          const known = await callJson<{ members?: MemberRecord[] }>(this.callAgent, `${url}${API}/members`, 'GET');
          if (known.body.members) this.member.learnMembers(known.body.members);
          const added = await callJson<{ members?: MemberRecord[]; error?: { code: string; message: string } }>(this.callAgent, `${url}${API}/members`, 'POST', this.member.selfRecord());
          if (added.status === 200 && added.body.members) {
            this.member.learnMembers(added.body.members);
            this.logger.info({ through: url, members: added.body.members.map((m) => m.id) }, done);
            return;
          }
          this.logger.warn({ through: url, status: added.status, error: added.body.error }, `${done}: not yet; retrying`);
        } catch (err) {
          this.logger.warn({ ...errorFields(err), through: url }, `${done}: unreachable; retrying`);
        }
      }
      await new Promise((resolve) => setTimeout(resolve, wait));
      wait = Math.min(wait * 2, JOIN_RETRY_MS.max);
    }
  }

  /** SIGTERM: stop serving, hand PD's leadership to another voter, close everything. Idempotent. */
  shutdown(reason: string): Promise<void> {
    this.stopping ??= this.stop(reason);
    return this.stopping;
  }

  private async stop(reason: string): Promise<void> {
    const started = monotonicNowMs();
    this.logger.info({ reason }, 'shutting down');
    this.faultControl?.stop();
    for (const watch of this.tlsWatches) watch.stop();
    this.leadership.stop();
    const stillLeading = await this.member.host.transferLeadersAway(this.config.shutdownTimeoutMs / 2);
    this.logger.info({ stillLeading, ms: Math.round(monotonicNowMs() - started) }, 'PD leadership handed over');
    await this.server.close();
    await this.joined?.catch(() => {});
    await this.member.close();
    await this.callAgent?.close();
    this.logger.info({ ms: Math.round(monotonicNowMs() - started) }, 'stopped');
  }

  /** The API TLS files changed and load: the server, forwarded requests and this member's own calls use them from now on. */
  private renewApiTls(creds: TlsCredentials): void {
    this.server.setTls(creds);
    const old = this.callAgent;
    this.callAgent = callAgent(creds);
    void old?.close().catch(() => {});
  }
}

/** Connections to other members' HTTPS APIs: their certificates checked against the CA, this member's presented. */
function callAgent(creds: TlsCredentials): Agent {
  return new Agent({ connect: apiTlsConnect(creds) });
}

async function callJson<T>(agent: Agent | undefined, url: string, method: 'GET' | 'POST', body?: unknown): Promise<{ status: number; body: T }> {
  const dispatch = agent === undefined ? {} : { dispatcher: agent };
  const res = await request(url, { method, headers: { 'content-type': 'application/json' }, ...dispatch, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  return { status: res.statusCode, body: (await res.body.json()) as T };
}
