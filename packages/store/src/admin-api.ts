import { BOOTSTRAP_INDEX, BOOTSTRAP_TERM } from '@flotilla/raft';
import { isStorageError, type KvEngine, type RegionSnapshotSource } from '@flotilla/storage';
import { isTransportError, type PeerTransport } from '@flotilla/transport';
import type { KvError } from '@flotilla/wire';
import {
  AdminInputError,
  leaderHint,
  parseBootstrap,
  parseJsonBody,
  parseMembers,
  parseNoBody,
  parseNoQuery,
  parsePathId,
  parseRegionsQuery,
  parseSplit,
  parseStoreAddress,
  parseTransfer,
  regionJson,
  regionStatusJson,
} from './admin-codec.ts';
import { API_ERROR_STATUS, apiErrorBody, type ApiErrorCode } from './api-errors.ts';
import { monotonicNowMs } from './clock.ts';
import { isStoreError } from './errors.ts';
import type { MultiRaftHost } from './host.ts';
import type { ReplicaStatus } from './host-types.ts';
import { membershipChangeProblem } from './membership.ts';
import type { ProposalOutcome } from './peer.ts';
import { storeMoment } from './replica-reads.ts';
import { adminLimits, serverLimits } from './server-limits.ts';
import { planSplit } from './split.ts';

/**
 * The store's admin API (the counterpart of hashicorp/raft's API, per region), served by
 * StoreServer under ADMIN_PATH_PREFIX with JSON bodies (see README "Admin API"). This module
 * routes and serves; the HTTP exchange (admission, bounded bodies, answers, metrics) stays
 * in server.ts, and JSON checking in admin-codec.ts.
 */
export const ADMIN_PATH_PREFIX = '/v1/admin/';

/** Every endpoint, as `METHOD path-template` (also the `endpoint` label of the admin metrics). */
export const ADMIN_ENDPOINTS = [
  'GET store',
  'PUT stores/:storeId',
  'DELETE stores/:storeId',
  'POST bootstrap',
  'GET regions',
  'GET regions/:regionId',
  'POST regions/:regionId/members',
  'POST regions/:regionId/transfer-leader',
  'POST regions/:regionId/split',
  'POST regions/:regionId/snapshot',
  'POST regions/:regionId/campaign',
  'GET regions/:regionId/backup',
] as const;
export type AdminEndpoint = (typeof ADMIN_ENDPOINTS)[number];

/** What the admin API uses of the host (tests may pass a wrapper). */
export type AdminHost = Pick<
  MultiRaftHost,
  'storeId' | 'state' | 'stats' | 'bootstrapRegions' | 'regionStatus' | 'regionIds' | 'changeMembership' | 'transferLeader' | 'split' | 'compactRegionLog' | 'campaign' | 'peer'
>;

/** What it uses of the transport: where stores listen. */
export type AdminTransport = Pick<PeerTransport, 'address' | 'setPeer' | 'removePeer'>;

/** What it uses of the KV engine: point-in-time region snapshots (backups). */
export type AdminKv = Pick<KvEngine, 'snapshot'>;

export interface AdminOptions {
  readonly host: AdminHost;
  readonly transport: AdminTransport;
  readonly kv: AdminKv;
}

/** Bounds of region backups (GET regions/:regionId/backup). */
export const backupLimits = Object.freeze({
  /**
   * Backups streaming from this store at once; past it: 503 FLOTILLA_SERVER_BUSY. Each holds a
   * point-in-time view of the KV engine (old data stays until it ends) and a request slot.
   */
  streamsMax: 2,
  /** How long the read barrier before a backup may take (as a linearizable read's deadline). */
  readBarrierMs: adminLimits.waitMsDefault,
});

/** The media type of a backup's body: the region's snapshot frames, back to back. */
export const BACKUP_CONTENT_TYPE = 'application/octet-stream';

/** A routed request: its endpoint, the id in its path (0 when none) and its query. */
export interface AdminCall {
  readonly endpoint: AdminEndpoint;
  readonly id: number;
  readonly query: URLSearchParams;
}

/**
 * An answer for the server to send: `body` as JSON, or `stream` when present (a backup).
 * `code` is `OK` or the error's (for metrics).
 */
export interface AdminAnswer {
  readonly status: number;
  readonly body: unknown;
  readonly code: 'OK' | ApiErrorCode;
  readonly headers: Readonly<Record<string, string>>;
  readonly stream?: AdminStream;
}

/**
 * A body sent as it is produced, with backpressure (the server pulls the next chunk only once
 * the connection took the last). The server iterates `chunks` at most once, stops early when
 * the client goes away, and calls `done()` exactly once when the answer ended, sent or not.
 */
export interface AdminStream {
  readonly contentType: string;
  readonly chunks: AsyncIterable<Uint8Array>;
  done(): void;
}

export type AdminRouting = { readonly call: AdminCall } | { readonly refused: AdminAnswer; readonly endpoint: AdminEndpoint | 'unknown' };

interface Route {
  readonly endpoint: AdminEndpoint;
  readonly method: string;
  readonly segments: readonly string[];
}

const ROUTES: readonly Route[] = ADMIN_ENDPOINTS.map((endpoint) => {
  const [method, template] = endpoint.split(' ') as [string, string];
  return { endpoint, method, segments: template.split('/') };
});

export class AdminApi {
  private readonly host: AdminHost;
  private readonly transport: AdminTransport;
  private readonly kv: AdminKv;
  /** Regions of the bootstraps under way (see bootstrap()). */
  private readonly bootstrapping = new Set<number>();
  /** Backups admitted and not yet ended (bounded by backupLimits.streamsMax). */
  private backupsStreaming = 0;

  constructor(options: AdminOptions) {
    this.host = options.host;
    this.transport = options.transport;
    this.kv = options.kv;
  }

  /** Finds the endpoint from the method and path alone (before any body is read). */
  route(method: string, path: string, search: string): AdminRouting {
    const segments = path.slice(ADMIN_PATH_PREFIX.length).split('/');
    const matching = ROUTES.filter((r) => r.segments.length === segments.length && r.segments.every((s, i) => s.startsWith(':') || s === segments[i]));
    if (matching.length === 0) return { refused: adminError('FLOTILLA_NOT_FOUND', `no admin endpoint ${path}`), endpoint: 'unknown' };
    const route = matching.find((r) => r.method === method);
    if (route === undefined) {
      const allow = matching.map((r) => r.method).join(', ');
      return { refused: adminError('FLOTILLA_METHOD_NOT_ALLOWED', `${path} takes ${allow}`, {}, { allow }), endpoint: 'unknown' };
    }
    try {
      const at = route.segments.findIndex((s) => s.startsWith(':'));
      const id = at === -1 ? 0 : parsePathId(segments[at]!, `${route.segments[at]!.slice(1)} in the path`);
      const query = new URLSearchParams(search);
      if (route.endpoint !== 'GET regions') parseNoQuery(query);
      return { call: { endpoint: route.endpoint, id, query } };
    } catch (err) {
      return { refused: errorAnswer(err), endpoint: route.endpoint };
    }
  }

  /** Serves a routed call with its body. Never throws: a bug is a 500 answer. */
  async serve(call: AdminCall, body: Buffer): Promise<AdminAnswer> {
    try {
      return await this.dispatch(call, parseJsonBody(body));
    } catch (err) {
      return errorAnswer(err);
    }
  }

  private dispatch(call: AdminCall, body: unknown): AdminAnswer | Promise<AdminAnswer> {
    switch (call.endpoint) {
      case 'GET store':
        parseNoBody(body);
        return ok(this.store());
      case 'PUT stores/:storeId': {
        const address = parseStoreAddress(body);
        this.transport.setPeer(call.id, address);
        return ok({ storeId: call.id, ...address });
      }
      case 'DELETE stores/:storeId':
        parseNoBody(body);
        this.transport.removePeer(call.id);
        return ok({ storeId: call.id, removed: true });
      case 'POST bootstrap':
        return this.bootstrap(body);
      case 'GET regions':
        parseNoBody(body);
        return ok(this.regions(parseRegionsQuery(call.query)));
      case 'GET regions/:regionId': {
        parseNoBody(body);
        const status = this.host.regionStatus(call.id);
        return status === undefined ? regionNotFound(call.id) : ok(regionStatusJson(status));
      }
      case 'POST regions/:regionId/members':
        return this.changeMembers(call.id, body);
      case 'POST regions/:regionId/transfer-leader':
        return this.transferLeader(call.id, body);
      case 'POST regions/:regionId/split':
        return this.split(call.id, body);
      case 'POST regions/:regionId/snapshot':
        parseNoBody(body);
        return this.snapshot(call.id);
      case 'POST regions/:regionId/campaign':
        parseNoBody(body);
        return this.campaign(call.id);
      case 'GET regions/:regionId/backup':
        parseNoBody(body);
        return this.backup(call.id);
    }
  }

  private store(): unknown {
    let raftAddress: { host: string; port: number } | null;
    try {
      raftAddress = this.transport.address();
    } catch {
      raftAddress = null; // the transport does not listen yet (before host.start())
    }
    return { storeId: this.host.storeId, state: this.host.state, raftAddress, stats: this.host.stats() };
  }

  /**
   * Creates this store's founding replicas of regions (hashicorp's BootstrapCluster): one
   * region answers its status, many (one log write) their ids.
   */
  private async bootstrap(body: unknown): Promise<AdminAnswer> {
    const { regions, many } = parseBootstrap(body);
    // The host checks regions before its log write, but two requests could both pass that
    // check before either wrote: the later one is refused here.
    const busyId = regions.find((r) => this.bootstrapping.has(r.id))?.id;
    if (busyId !== undefined) return regionExists(busyId);
    for (const region of regions) this.bootstrapping.add(region.id);
    try {
      await this.host.bootstrapRegions(regions);
    } finally {
      for (const region of regions) this.bootstrapping.delete(region.id);
    }
    if (many) return ok({ regionIds: regions.map((r) => r.id) }, 201);
    const status = this.host.regionStatus(regions[0]!.id);
    return status === undefined ? regionNotFound(regions[0]!.id) : ok(regionStatusJson(status), 201);
  }

  private regions({ after, limit }: { after: number; limit: number }): unknown {
    // One more than asked tells whether another page follows.
    const ids = this.host.regionIds(after, limit + 1);
    const page = ids.slice(0, limit);
    const regions = page.flatMap((id) => {
      const status = this.host.regionStatus(id);
      return status === undefined ? [] : [regionStatusJson(status)];
    });
    return { regions, next: ids.length > limit ? page[page.length - 1]! : null };
  }

  /**
   * AddVoter / AddNonvoter / RemoveServer. Checked on the leader against its configuration
   * first (see membershipChangeProblem), then proposed; answers once applied (a joint change:
   * once the joint configuration is entered).
   */
  private async changeMembers(regionId: number, body: unknown): Promise<AdminAnswer> {
    const { changes, transition, timeoutMs } = parseMembers(body);
    const leading = this.leaderStatus(regionId);
    if (isAnswer(leading)) return leading;
    const problem = membershipChangeProblem(leading.region, leading.raft.config, changes);
    if (problem !== null) return adminError('FLOTILLA_CONFLICT', `region ${regionId}: ${problem}`);
    const outcome = await within(this.host.changeMembership(regionId, changes, transition), timeoutMs);
    if (outcome === TIMED_OUT) return timedOut(`region ${regionId}: the membership change did not apply within ${timeoutMs} ms; it may still apply`);
    if (outcome.kind === 'failed') return kvErrorAnswer(outcome.error);
    const after = this.host.regionStatus(regionId);
    // This store's replica removed itself (it led and was removed): it is gone or going.
    if (after === undefined || !after.region.peers.some((p) => p.id === after.peerId)) return ok({ id: regionId, removed: true });
    return ok(regionStatusJson(after));
  }

  /** Hands leadership to `toPeerId` and waits until it leads (as seen here) or the deadline. */
  private async transferLeader(regionId: number, body: unknown): Promise<AdminAnswer> {
    const { toPeerId, timeoutMs } = parseTransfer(body);
    const deadline = monotonicNowMs() + timeoutMs;
    const leading = this.leaderStatus(regionId);
    if (isAnswer(leading)) return leading;
    const { raft } = leading;
    if (toPeerId === leading.peerId) return ok(regionStatusJson(leading));
    // The core silently ignores a target that can't vote: say so instead of timing out.
    if (!raft.config.voters.includes(toPeerId) && !raft.config.votersOutgoing.includes(toPeerId)) {
      return adminError('FLOTILLA_CONFLICT', `region ${regionId}: peer ${toPeerId} is not a voter`);
    }
    if (!this.host.transferLeader(regionId, toPeerId)) return notLeader(this.host.regionStatus(regionId), regionId);
    for (;;) {
      const now = this.host.regionStatus(regionId);
      if (now === undefined) return regionNotFound(regionId);
      if (now.raft.leader === toPeerId) return ok(regionStatusJson(now));
      if (now.raft.role === 'leader' && now.raft.leadTransferee !== toPeerId) {
        return timedOut(`region ${regionId}: the leader gave up the transfer to peer ${toPeerId} (not caught up within an election timeout); a TimeoutNow already sent may still make it lead`);
      }
      if (now.raft.role !== 'leader' && now.raft.leader !== 0) return notLeader(now, regionId);
      const left = deadline - monotonicNowMs();
      if (left <= 0) return timedOut(`region ${regionId}: peer ${toPeerId} does not lead after ${timeoutMs} ms; it may still`);
      await sleep(Math.min(adminLimits.transferPollMs, left));
    }
  }

  /** Splits through the leader here; answers both regions' metadata as applied. */
  private async split(regionId: number, body: unknown): Promise<AdminAnswer> {
    const { splitKey, newRegionId, newPeerIds, timeoutMs } = parseSplit(body);
    const before = this.leaderStatus(regionId);
    if (isAnswer(before)) return before;
    // The host trusts the placement driver's ids; a region hosted here already would be overwritten.
    if (this.host.regionStatus(newRegionId) !== undefined) return regionExists(newRegionId);
    const command = { op: 'split', splitKey, newRegionId, newPeerIds, epoch: before.region.epoch } as const;
    const outcome = await within(this.host.split(regionId, splitKey, newRegionId, newPeerIds), timeoutMs);
    if (outcome === TIMED_OUT) return timedOut(`region ${regionId}: the split did not apply within ${timeoutMs} ms; it may still apply`);
    if (outcome.kind === 'failed') return kvErrorAnswer(outcome.error);
    // Applied means the region still had the epoch it was proposed with, so the plan every
    // replica computed is this one (planSplit is deterministic).
    const plan = planSplit(before.region, before.raft.config, command, BOOTSTRAP_INDEX, BOOTSTRAP_TERM);
    if (plan === null) return adminError('FLOTILLA_INTERNAL', `region ${regionId}: the split applied but does not plan again`);
    return ok({ parent: regionJson(plan.parent), child: regionJson(plan.child) });
  }

  /** hashicorp's Snapshot(): the applied state becomes the log's start (see compactRegionLog). */
  private async snapshot(regionId: number): Promise<AdminAnswer> {
    const point = await this.host.compactRegionLog(regionId);
    return point === null ? regionNotFound(regionId) : ok(point);
  }

  private campaign(regionId: number): AdminAnswer {
    const status = this.host.regionStatus(regionId);
    if (status === undefined || status.placeholder) return regionNotFound(regionId);
    this.host.campaign(regionId);
    return ok(regionStatusJson(this.host.regionStatus(regionId) ?? status), 202);
  }

  /**
   * A point-in-time copy of one region (`flotilla ctl backup`): the KV engine's snapshot frames
   * (header with the region and its applied index, data chunks, trailer; each starts with its
   * u32 length and carries a crc32c), streamed as they are read. Only the leader serves it,
   * after a ReadIndex round started once the request arrived has applied here — the copy holds
   * every write acknowledged before the request, as a linearizable read would.
   */
  private async backup(regionId: number): Promise<AdminAnswer> {
    const arrival = storeMoment();
    const leading = this.leaderStatus(regionId);
    if (isAnswer(leading)) return leading;
    const peer = this.host.peer(regionId);
    if (peer === undefined) return regionNotFound(regionId);
    if (peer.merging) return busy(`region ${regionId} is being merged into region ${peer.merging.targetRegionId}; back up the merged region instead`);
    if (this.backupsStreaming >= backupLimits.streamsMax) return busy(`${this.backupsStreaming} backups are streaming from this store (at most ${backupLimits.streamsMax} at once)`);
    this.backupsStreaming++;
    let admitted = false;
    try {
      const stale = await peer.readyToRead({ level: 'linearizable' }, arrival, arrival.ms + backupLimits.readBarrierMs);
      if (stale !== null) return kvErrorAnswer(stale);
      // The wait let other work run: the replica may have been replaced meanwhile.
      if (this.host.peer(regionId) !== peer) return regionNotFound(regionId);
      const source = this.snapshotSource(regionId);
      if (isAnswer(source)) return source;
      admitted = true;
      const done = (): void => {
        this.backupsStreaming--;
        void source.close().catch(() => {}); // the client may have gone before the first frame
      };
      const stream: AdminStream = { contentType: BACKUP_CONTENT_TYPE, chunks: source.frames(), done };
      return { ...ok(null), stream };
    } finally {
      if (!admitted) this.backupsStreaming--;
    }
  }

  private snapshotSource(regionId: number): RegionSnapshotSource | AdminAnswer {
    try {
      return this.kv.snapshot(regionId);
    } catch (err) {
      if (isStorageError(err, 'FLOTILLA_STORAGE_REGION_NOT_FOUND')) return regionNotFound(regionId);
      if (isStorageError(err, 'FLOTILLA_STORAGE_REGION_BUSY')) return busy(`region ${regionId}: a snapshot is being installed here`);
      throw err;
    }
  }

  /** The replica's status when it leads; else the answer (not found, or NotLeader). */
  private leaderStatus(regionId: number): ReplicaStatus | AdminAnswer {
    const status = this.host.regionStatus(regionId);
    if (status === undefined || status.placeholder) return regionNotFound(regionId);
    if (status.raft.role !== 'leader') return notLeader(status, regionId);
    return status;
  }
}

function isAnswer<T extends object>(value: T | AdminAnswer): value is AdminAnswer {
  return 'code' in value && 'status' in value;
}

// ------------------------------------------------------------ answers

function ok(body: unknown, status = 200): AdminAnswer {
  return { status, body, code: 'OK', headers: {} };
}

/** An error answer: the JSON error body (api-errors.ts) with its status. */
export function adminError(code: ApiErrorCode, message: string, details: Readonly<Record<string, unknown>> = {}, headers: Readonly<Record<string, string>> = {}): AdminAnswer {
  return { status: API_ERROR_STATUS[code], body: apiErrorBody(code, message, details), code, headers };
}

/** 503 with the back-off hint, in the body and as Retry-After (whole seconds). */
export function busy(message: string, retryAfterMs: number = serverLimits.busyRetryAfterMs): AdminAnswer {
  const hint = Math.max(retryAfterMs, serverLimits.busyRetryAfterMs);
  return adminError('FLOTILLA_SERVER_BUSY', message, { retryAfterMs: hint }, { 'retry-after': String(Math.max(1, Math.ceil(hint / 1000))) });
}

function regionNotFound(regionId: number): AdminAnswer {
  return adminError('FLOTILLA_REGION_NOT_FOUND', `no replica of region ${regionId} on this store`, { regionId });
}

function regionExists(regionId: number): AdminAnswer {
  return adminError('FLOTILLA_REGION_EXISTS', `region ${regionId} already has a replica on this store`, { regionId });
}

function notLeader(status: ReplicaStatus | undefined, regionId: number): AdminAnswer {
  const leader = status === undefined ? null : leaderHint(status);
  const where = leader === null ? 'the leader is not known here' : `peer ${leader.peerId} on store ${leader.storeId} leads`;
  return adminError('FLOTILLA_NOT_LEADER', `region ${regionId}: this replica does not lead; ${where}`, { regionId, leader });
}

function timedOut(message: string): AdminAnswer {
  return adminError('FLOTILLA_TIMEOUT', message);
}

/** A proposal's failure, with the same code and details as the client API's KvError. */
function kvErrorAnswer(error: KvError): AdminAnswer {
  switch (error.code) {
    case 'FLOTILLA_NOT_LEADER': {
      const where = error.leader === null ? 'the leader is not known here' : `peer ${error.leader.peerId} on store ${error.leader.storeId} leads`;
      return adminError('FLOTILLA_NOT_LEADER', `region ${error.regionId}: this replica does not lead; ${where}`, { regionId: error.regionId, leader: error.leader });
    }
    case 'FLOTILLA_EPOCH_NOT_MATCH':
      return adminError('FLOTILLA_EPOCH_NOT_MATCH', `region ${error.regionId} changed (stale epoch or key); see currentRegions`, {
        regionId: error.regionId,
        currentRegions: error.currentRegions.map(regionJson),
      });
    case 'FLOTILLA_REGION_NOT_FOUND':
      return regionNotFound(error.regionId);
    case 'FLOTILLA_SERVER_BUSY':
      return busy('the region is busy (another membership change pending, or a leader transfer under way)', error.retryAfterMs);
    case 'FLOTILLA_TIMEOUT':
      return timedOut('not done in time; it may still happen');
    case 'FLOTILLA_DISK_FULL':
      return adminError('FLOTILLA_DISK_FULL', `store ${error.storeId} is critically short of disk space (${error.availableBytes} bytes free, reserve ${error.reserveBytes}), and too few of the region's voters are on stores with room to commit the change; nothing was proposed`, {
        storeId: error.storeId,
        availableBytes: error.availableBytes,
        reserveBytes: error.reserveBytes,
      });
    default:
      return adminError('FLOTILLA_INTERNAL', `unexpected ${error.code}`);
  }
}

/** A thrown error: a refused input is a 400, a known store or transport refusal its code, the rest a bug. */
function errorAnswer(err: unknown): AdminAnswer {
  if (err instanceof AdminInputError) return adminError('FLOTILLA_MALFORMED_REQUEST', err.message, { field: err.field });
  if (isStoreError(err, 'FLOTILLA_STORE_REGION_EXISTS')) return adminError('FLOTILLA_REGION_EXISTS', err.message);
  if (isStoreError(err, 'FLOTILLA_STORE_INVALID_REGION')) return adminError('FLOTILLA_MALFORMED_REQUEST', err.message);
  if (isStoreError(err, 'FLOTILLA_STORE_TOO_MANY_PEERS')) return busy(err.message);
  if (isTransportError(err, 'FLOTILLA_TRANSPORT_INVALID_ARGUMENT')) return adminError('FLOTILLA_MALFORMED_REQUEST', err.message);
  return adminError('FLOTILLA_INTERNAL', err instanceof Error ? err.message : String(err));
}

// ------------------------------------------------------------ waiting

const TIMED_OUT = Symbol('timed out');

/** The work's result, or TIMED_OUT once `ms` passed (the work itself goes on). */
async function within(work: Promise<ProposalOutcome>, ms: number): Promise<ProposalOutcome | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
