/**
 * PD's scheduling API (JSON, leader only; followers forward):
 *
 *   GET    /pd/api/v1/operators                 running operators with their current step
 *   POST   /pd/api/v1/operators                 a manual operator, one of
 *            {type: "transferLeader", regionId, toStoreId}
 *            {type: "movePeer", regionId, fromStoreId, toStoreId}
 *            {type: "addPeer", regionId, storeId}       {type: "removePeer", regionId, storeId}
 *            {type: "split", regionId, keys: [hex…]}   (no keys: the store splits at the middle)
 *            {type: "merge", regionId, targetRegionId}
 *   DELETE /pd/api/v1/operators/:regionId       cancel the region's operator
 *   GET    /pd/api/v1/schedulers                every checker and scheduler, and whether it runs
 *   POST   /pd/api/v1/schedulers/:name/pause    (and /resume) switch one off or on (persisted)
 *   GET    /pd/api/v1/config                    the schedule config
 *   PUT    /pd/api/v1/config                    a partial config: validated, persisted, used
 *   GET    /pd/api/v1/history?limit=            what the schedulers did and why, newest first
 */
import { pdJson } from '@flotilla/wire';
import type { Operator, RegionInfo } from '../cluster/types.ts';
import { PdError } from '../errors.ts';
import type { Leadership } from '../member/leadership.ts';
import type { CheckerName, ScheduleConfig, SchedulerName } from '../scheduling/config.ts';
import { buildAddReplica, buildMerge, buildMovePeer, buildRemoveReplica, buildSplit, buildTransferLeader, leaderCandidates, type OperatorMeta } from '../scheduling/operators.ts';
import { PRIORITY, leaderStoreId } from '../scheduling/types.ts';
import type { SchedulingService } from '../service/scheduling-service.ts';
import type { PdAnswer, PdRequest, Route } from './http-server.ts';
import { API } from './routes.ts';

const HISTORY_PAGE_MAX = 4_096;
const CHECKERS: readonly CheckerName[] = ['replicaChecker', 'splitChecker', 'mergeChecker'];
const SCHEDULERS: readonly SchedulerName[] = ['balanceRegion', 'balanceLeader', 'hotRegion'];

const ok = (body: unknown, status = 200): PdAnswer => ({ status, body: pdJson(body) });

export function schedulingRoutes(service: SchedulingService, leadership: Leadership): Route[] {
  return [
    { method: 'GET', path: `${API}/operators`, handle: () => (leadership.serving(), ok({ operators: service.operators() })) },
    {
      method: 'POST',
      path: `${API}/operators`,
      handle: async (req) => {
        const { cluster } = leadership.serving();
        const spec = object(req.body);
        const region = cluster.regions.get(positive(spec, 'regionId'));
        if (!region) throw new PdError('FLOTILLA_PD_REGION_NOT_FOUND', `PD knows no region ${String(spec['regionId'])}`);
        const meta: OperatorMeta = { origin: 'admin', reason: `requested through the API: ${JSON.stringify(spec)}`, priority: PRIORITY.admin, nowMs: service.nowMs(), timeouts: service.currentConfig().operatorTimeoutMs };
        const op = await service.addOperator((allocateId) => manualOperator(spec, region, meta, allocateId, (id) => cluster.regions.get(id)));
        return ok({ operator: op }, 201);
      },
    },
    {
      method: 'DELETE',
      path: `${API}/operators/:regionId`,
      handle: (req) => (leadership.serving(), ok({ cancelled: service.cancel(idParam(req, 'regionId')) })),
    },
    {
      method: 'GET',
      path: `${API}/schedulers`,
      handle: () => {
        leadership.serving();
        const config = service.currentConfig();
        return ok({
          checkers: CHECKERS.map((name) => ({ name, enabled: config.checkers[name].enabled })),
          schedulers: SCHEDULERS.map((name) => ({ name, ...config.schedulers[name] })),
        });
      },
    },
    { method: 'POST', path: `${API}/schedulers/:name/pause`, handle: async (req) => ok(await switchScheduler(service, leadership, req, false)) },
    { method: 'POST', path: `${API}/schedulers/:name/resume`, handle: async (req) => ok(await switchScheduler(service, leadership, req, true)) },
    { method: 'GET', path: `${API}/config`, handle: () => (leadership.serving(), ok(service.currentConfig())) },
    { method: 'PUT', path: `${API}/config`, handle: async (req) => (leadership.serving(), ok(await service.patchConfig(req.body ?? {}))) },
    {
      method: 'GET',
      path: `${API}/history`,
      handle: (req) => {
        leadership.serving();
        const text = req.query.get('limit') ?? '100';
        const limit = /^\d+$/.test(text) ? Number(text) : NaN;
        if (!(limit >= 1 && limit <= HISTORY_PAGE_MAX)) throw new PdError('FLOTILLA_PD_INVALID_ARGUMENT', `limit: expected an integer in 1..${HISTORY_PAGE_MAX}`);
        return ok({ history: service.recentHistory(limit) });
      },
    },
  ];
}

async function switchScheduler(service: SchedulingService, leadership: Leadership, req: PdRequest, enabled: boolean): Promise<ScheduleConfig> {
  leadership.serving();
  const name = req.params['name'] ?? '';
  if ((CHECKERS as readonly string[]).includes(name)) return service.patchConfig({ checkers: { [name]: { enabled } } });
  if ((SCHEDULERS as readonly string[]).includes(name)) return service.patchConfig({ schedulers: { [name]: { enabled } } });
  throw new PdError('FLOTILLA_PD_INVALID_ARGUMENT', `no checker or scheduler "${name}"; there are ${[...CHECKERS, ...SCHEDULERS].join(', ')}`);
}

/** Builds the requested operator; a request the builders' invariants refuse is a 400, not a bug. */
export function manualOperator(spec: Record<string, unknown>, region: RegionInfo, meta: OperatorMeta, allocateId: () => number, regionOf: (id: number) => RegionInfo | undefined): Operator {
  const onStore = (storeId: number): boolean => region.meta.peers.some((p) => p.storeId === storeId);
  const refuse = (why: string): never => {
    throw new PdError('FLOTILLA_PD_INVALID_ARGUMENT', why);
  };
  const leaderTo = (leaving: number): number | undefined => leaderCandidates(region, leaving)[0];
  switch (spec['type']) {
    case 'transferLeader': {
      const to = positive(spec, 'toStoreId');
      if (!region.meta.peers.some((p) => p.storeId === to && p.role === 'voter')) refuse(`store ${to} holds no voter of region ${region.meta.id}`);
      // Both can change between a client's read of the region and this request: a 400, not a broken assertion.
      const from = leaderStoreId(region);
      if (from === 0) refuse(`region ${region.meta.id} has no known leader right now; try again`);
      if (from === to) refuse(`store ${to} leads region ${region.meta.id} already`);
      return buildTransferLeader(region, to, meta, allocateId);
    }
    case 'movePeer': {
      const from = positive(spec, 'fromStoreId');
      const to = positive(spec, 'toStoreId');
      if (!onStore(from)) refuse(`store ${from} holds no replica of region ${region.meta.id}`);
      if (onStore(to)) refuse(`store ${to} holds a replica of region ${region.meta.id} already`);
      return buildMovePeer(region, from, to, meta, allocateId, leaderTo(from));
    }
    case 'addPeer': {
      const to = positive(spec, 'storeId');
      if (onStore(to)) refuse(`store ${to} holds a replica of region ${region.meta.id} already`);
      return buildAddReplica(region, to, meta, allocateId);
    }
    case 'removePeer': {
      const from = positive(spec, 'storeId');
      if (!onStore(from)) refuse(`store ${from} holds no replica of region ${region.meta.id}`);
      return buildRemoveReplica(region, from, meta, allocateId, leaderTo(from)) ?? refuse(`the leader on store ${from} has no healthy voter to hand over to`);
    }
    case 'split': {
      const keys = Array.isArray(spec['keys']) ? spec['keys'].map(hexKey) : [];
      const inside = keys.every((k) => Buffer.compare(k, region.meta.startKey) > 0 && (region.meta.endKey.length === 0 || Buffer.compare(k, region.meta.endKey) < 0));
      const ascending = keys.every((k, i) => i === 0 || Buffer.compare(keys[i - 1]!, k) < 0);
      if (!inside || !ascending) refuse('split keys must ascend and lie strictly inside the region');
      return buildSplit(region, keys, meta, allocateId);
    }
    case 'merge': {
      const target = regionOf(positive(spec, 'targetRegionId'));
      if (!target) return refuse(`PD knows no region ${String(spec['targetRegionId'])}`);
      const adjacent = Buffer.compare(region.meta.endKey, target.meta.startKey) === 0 || Buffer.compare(target.meta.endKey, region.meta.startKey) === 0;
      if (!adjacent || target.meta.id === region.meta.id) refuse(`regions ${region.meta.id} and ${target.meta.id} are not neighbours`);
      return buildMerge(region, target, meta, allocateId);
    }
    default:
      return refuse('type: expected transferLeader, movePeer, addPeer, removePeer, split or merge');
  }
}

function object(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new PdError('FLOTILLA_PD_INVALID_ARGUMENT', 'expected a JSON object');
  return body as Record<string, unknown>;
}

function positive(spec: Record<string, unknown>, field: string): number {
  const value = spec[field];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) throw new PdError('FLOTILLA_PD_INVALID_ARGUMENT', `${field}: expected a positive integer`);
  return value;
}

function idParam(req: PdRequest, name: string): number {
  return positive({ [name]: /^\d+$/.test(req.params[name] ?? '') ? Number(req.params[name]) : NaN }, name);
}

function hexKey(value: unknown): Uint8Array {
  if (typeof value !== 'string' || value.length % 2 !== 0 || !/^[0-9a-f]*$/.test(value)) throw new PdError('FLOTILLA_PD_INVALID_ARGUMENT', 'keys: expected lowercase hex strings');
  return new Uint8Array(Buffer.from(value, 'hex'));
}
