/**
 * PD's HTTP API (JSON; byte keys as lowercase hex):
 *
 *   GET  /health                              the process is up
 *   GET  /ready                               this member knows a serving leader (503 otherwise)
 *   GET  /metrics                             Prometheus text
 *   GET  /pd/api/v1/members                   PD's members, voters, learners and leader
 *   POST /pd/api/v1/members                   add a member {id, raftAddress, clientUrl} (a joining member calls it)
 *   DELETE /pd/api/v1/members/:id             remove a member
 *   POST /pd/api/v1/members/:id/leader        hand PD's leadership to that member
 *   GET  /pd/api/v1/cluster                   cluster id, bootstrap record, id allocator
 *   POST /pd/api/v1/join                      a store joins (JoinRequest → JoinResponse)
 *   POST /pd/api/v1/store-heartbeat           StoreHeartbeat → StoreHeartbeatResponse
 *   POST /pd/api/v1/region-heartbeats         RegionHeartbeatRequest → RegionHeartbeatResponse
 *   POST /pd/api/v1/alloc-ids                 {count} → {ids}
 *   POST /pd/api/v1/operator-watch            {storeId, timeoutMs} → {regionIds}: parked until an
 *                                             operator waits on a region the store leads
 *   GET  /pd/api/v1/stores                    every store with its state and statistics
 *   GET  /pd/api/v1/stores/:id
 *   POST /pd/api/v1/stores/:id/state          {state: offline | serving | tombstone}
 *   GET  /pd/api/v1/regions?start=&end=&limit= regions overlapping [start, end) in key order
 *   GET  /pd/api/v1/regions/:id
 *   GET  /pd/api/v1/region-by-key?key=        the region holding a key
 *
 * Everything under /pd/api/v1 but `GET members` is the leader's to answer; followers forward.
 */
import { pdJson, pdLimits, readJoinRequest, readOperatorWatch, readRegionHeartbeatRequest, readStoreHeartbeat, type RegionHeartbeatResponse } from '@flotilla/wire';
import type { Registry } from 'prom-client';
import type { StoreTiming } from '../cluster/cluster.ts';
import type { RegionInfo } from '../cluster/types.ts';
import { PdError } from '../errors.ts';
import type { Leadership } from '../member/leadership.ts';
import type { PdMember } from '../member/pd-member.ts';
import type { PdAnswer, PdRequest, Route } from './http-server.ts';

export const API = '/pd/api/v1';

/** Bounds of the API's paging and id allocation. */
export const apiLimits = Object.freeze({
  regionsPageMax: 10_000,
  regionsPageDefault: 1_000,
  allocIdsMax: 10_000,
});

/** What the region heartbeat route asks of the operator machinery (operators.ts). */
export interface RegionCommands {
  /** The steps to send back for these regions, after their heartbeats were recorded. */
  commandsFor(regionIds: readonly number[]): Promise<RegionHeartbeatResponse['commands']> | RegionHeartbeatResponse['commands'];
  /** Regions led on `storeId` whose operator waits for a heartbeat (at most `limit`). */
  waitingOn(storeId: number, limit: number): number[];
  /** The same, parked until there are some or `timeoutMs` passed. */
  watch(storeId: number, timeoutMs: number, limit: number): Promise<number[]>;
}

export interface RouteDeps {
  readonly member: PdMember;
  readonly leadership: Leadership;
  readonly registry: Registry;
  readonly timing: () => StoreTiming;
  readonly commands: RegionCommands;
  /** Counts heartbeats for /metrics. */
  readonly onHeartbeats: (kind: 'store' | 'region', count: number) => void;
}

const ok = (body: unknown, status = 200): PdAnswer => ({ status, body: pdJson(body) });

export function pdRoutes(deps: RouteDeps): Route[] {
  const { member, leadership } = deps;
  const cluster = (): ReturnType<Leadership['serving']>['cluster'] => leadership.serving().cluster;
  return [
    { method: 'GET', path: '/health', handle: () => ok({ status: 'ok', memberId: member.config.memberId }) },
    {
      method: 'GET',
      path: '/ready',
      handle: () => {
        try {
          leadership.serving();
          return ok({ ready: true, leader: member.config.memberId });
        } catch (err) {
          const leader = err instanceof PdError ? err.leader : undefined;
          return leader ? ok({ ready: true, leader: leader.memberId }) : ok({ ready: false }, 503);
        }
      },
    },
    { method: 'GET', path: '/metrics', handle: async () => ({ status: 200, body: await deps.registry.metrics(), contentType: deps.registry.contentType }) },
    {
      method: 'GET',
      path: `${API}/members`,
      handle: () => {
        const leadershipNow = member.leadership();
        return ok({ memberId: member.config.memberId, leader: leadershipNow.leaderPeerId || null, term: leadershipNow.term, ...member.groupConfig(), members: member.memberList() });
      },
    },
    {
      method: 'POST',
      path: `${API}/members`,
      handle: async (req) => {
        leadership.serving();
        const record = readMember(req.body);
        await member.addMember(record);
        return ok({ members: member.memberList(), ...member.groupConfig() });
      },
    },
    {
      method: 'DELETE',
      path: `${API}/members/:id`,
      handle: async (req) => {
        leadership.serving();
        await member.removeMember(idParam(req, 'id'));
        return ok({ members: member.memberList(), ...member.groupConfig() });
      },
    },
    {
      method: 'POST',
      path: `${API}/members/:id/leader`,
      handle: (req) => {
        leadership.serving();
        const to = idParam(req, 'id');
        if (!member.groupConfig().voters.includes(to)) throw new PdError('FLOTILLA_PD_INVALID_ARGUMENT', `member ${to} is not a voter of PD's group`);
        member.transferLeadership(to);
        return ok({ transferringTo: to }, 202);
      },
    },
    {
      method: 'GET',
      path: `${API}/cluster`,
      handle: () => {
        const c = cluster();
        return ok({ clusterId: c.clusterId, bootstrap: c.bootstrapped, highestReservedId: c.ids.highestReserved, stores: c.storeAddresses().length, regions: c.regions.size });
      },
    },
    { method: 'POST', path: `${API}/join`, handle: async (req) => ok(await cluster().join(readJoinRequest(req.body))) },
    {
      method: 'POST',
      path: `${API}/store-heartbeat`,
      handle: (req) => {
        const heartbeat = readStoreHeartbeat(req.body);
        const stores = cluster().storeHeartbeat(heartbeat);
        deps.onHeartbeats('store', 1);
        return ok({ stores, operatorRegionIds: deps.commands.waitingOn(heartbeat.storeId, pdLimits.regionHeartbeatsPerRequestMax) });
      },
    },
    {
      method: 'POST',
      path: `${API}/region-heartbeats`,
      handle: async (req) => {
        const request = readRegionHeartbeatRequest(req.body);
        const c = cluster();
        const reports = await c.regionHeartbeats(request.storeId, request.heartbeats);
        deps.onHeartbeats('region', request.heartbeats.length);
        const fresh = request.heartbeats.filter((_, i) => reports[i]!.kind !== 'stale').map((b) => b.region.id);
        return ok({ commands: await deps.commands.commandsFor(fresh) });
      },
    },
    {
      method: 'POST',
      path: `${API}/operator-watch`,
      handle: async (req) => {
        const watch = readOperatorWatch(req.body);
        cluster().storeInfo(watch.storeId, deps.timing());
        return ok({ regionIds: await deps.commands.watch(watch.storeId, watch.timeoutMs, pdLimits.regionHeartbeatsPerRequestMax) });
      },
    },
    {
      method: 'POST',
      path: `${API}/alloc-ids`,
      handle: async (req) => {
        const count = readCount(req.body);
        return ok({ ids: await cluster().ids.allocate(count) });
      },
    },
    { method: 'GET', path: `${API}/stores`, handle: () => ok({ stores: cluster().storeInfos(deps.timing()) }) },
    { method: 'GET', path: `${API}/stores/:id`, handle: (req) => ok(cluster().storeInfo(idParam(req, 'id'), deps.timing())) },
    {
      method: 'POST',
      path: `${API}/stores/:id/state`,
      handle: async (req) => {
        const state = (req.body as { state?: unknown } | undefined)?.state;
        if (state !== 'offline' && state !== 'serving' && state !== 'tombstone') throw new PdError('FLOTILLA_PD_INVALID_ARGUMENT', 'state: expected "offline", "serving" or "tombstone"');
        const id = idParam(req, 'id');
        await cluster().setStoreAdminState(id, state);
        return ok(cluster().storeInfo(id, deps.timing()));
      },
    },
    {
      method: 'GET',
      path: `${API}/regions`,
      handle: (req) => {
        const limit = queryInt(req, 'limit', apiLimits.regionsPageDefault, 1, apiLimits.regionsPageMax);
        const regions = cluster().regions.inRange(hexQuery(req, 'start'), hexQuery(req, 'end'), limit + 1);
        return ok({ regions: regions.slice(0, limit).map(regionView), more: regions.length > limit });
      },
    },
    {
      method: 'GET',
      path: `${API}/regions/:id`,
      handle: (req) => {
        const id = idParam(req, 'id');
        const region = cluster().regions.get(id);
        if (!region) throw new PdError('FLOTILLA_PD_REGION_NOT_FOUND', `PD knows no region ${id}`);
        return ok(regionView(region));
      },
    },
    {
      method: 'GET',
      path: `${API}/region-by-key`,
      handle: (req) => {
        const key = hexQuery(req, 'key');
        const region = cluster().regions.byKey(key);
        if (!region) throw new PdError('FLOTILLA_PD_REGION_NOT_FOUND', `PD knows no region holding key ${Buffer.from(key).toString('hex')} (not bootstrapped, or a gap while a split is reported)`);
        return ok(regionView(region));
      },
    },
  ];
}

/** A region as the API shows it: its metadata plus what the leader's last heartbeat said. */
export function regionView(region: RegionInfo): unknown {
  const leader = region.meta.peers.find((p) => p.id === region.leaderPeerId);
  return {
    ...region.meta,
    leader: leader ? { peerId: leader.id, storeId: leader.storeId } : null,
    downPeerIds: region.downPeerIds,
    pendingPeerIds: region.pendingPeerIds,
    approximateBytes: region.approximateBytes,
    approximateKeys: region.approximateKeys,
    rates: region.rates,
    lastHeartbeatMs: region.lastHeartbeatMs,
  };
}

function readMember(body: unknown): { id: number; raftAddress: string; clientUrl: string } {
  const o = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const id = o['id'];
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0) throw new PdError('FLOTILLA_PD_INVALID_ARGUMENT', 'id: expected a positive integer');
  for (const field of ['raftAddress', 'clientUrl']) {
    const value = o[field];
    if (typeof value !== 'string' || value.length === 0 || value.length > 256) throw new PdError('FLOTILLA_PD_INVALID_ARGUMENT', `${field}: expected a string of 1..256 characters`);
  }
  return { id, raftAddress: o['raftAddress'] as string, clientUrl: o['clientUrl'] as string };
}

function readCount(body: unknown): number {
  const count = (typeof body === 'object' && body !== null ? (body as Record<string, unknown>)['count'] : undefined) ?? 1;
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 1 || count > apiLimits.allocIdsMax) {
    throw new PdError('FLOTILLA_PD_INVALID_ARGUMENT', `count: expected an integer in 1..${apiLimits.allocIdsMax}`);
  }
  return count;
}

function idParam(req: PdRequest, name: string): number {
  const text = req.params[name] ?? '';
  const id = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(id) || id <= 0) throw new PdError('FLOTILLA_PD_INVALID_ARGUMENT', `${name}: expected a positive integer, got "${text}"`);
  return id;
}

function queryInt(req: PdRequest, name: string, fallback: number, min: number, max: number): number {
  const text = req.query.get(name);
  if (text === null) return fallback;
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new PdError('FLOTILLA_PD_INVALID_ARGUMENT', `${name}: expected an integer in ${min}..${max}, got "${text}"`);
  return n;
}

function hexQuery(req: PdRequest, name: string): Uint8Array {
  const text = req.query.get(name) ?? '';
  if (text.length % 2 !== 0 || !/^[0-9a-f]*$/.test(text)) throw new PdError('FLOTILLA_PD_INVALID_ARGUMENT', `${name}: expected lowercase hex`);
  return new Uint8Array(Buffer.from(text, 'hex'));
}
