/**
 * Terse builders of cluster states for the scheduling tests, and a one-line rendering of
 * operators so expected outputs read like scripts:
 *
 *   r1 replica-checker: addLearner p1000@s4 > changeVoters +p1000@s4 -p103@s3
 *
 * Conventions: peer id = region id × 100 + store id; region i spans [key(i), key(i+1)), the
 * last one to the end; ids allocated by `allocator()` start at 1000.
 */
import type { ClusterView, FlowRates, Operator, OperatorStep, RegionInfo, StoreInfo, StoreState } from '../src/cluster/types.ts';
import { ZERO_RATES } from '../src/cluster/types.ts';
import type { RegionTimes, SchedulingView } from '../src/scheduling/types.ts';

export const GIB = 1024 * 1024 * 1024;
export const MIB = 1024 * 1024;
export const NOW = 10_000_000;

export interface StoreOpts {
  readonly zone?: string;
  readonly host?: string;
  readonly state?: StoreState;
  readonly capacity?: number;
  readonly available?: number;
  /** ms since the last heartbeat (0: heartbeating now). */
  readonly silentMs?: number;
  /** The store reports its disk below its reserve (its leaders refuse puts). */
  readonly refusingWrites?: boolean;
}

export function store(id: number, opts: StoreOpts = {}): StoreInfo {
  const labels: Record<string, string> = {};
  if (opts.zone !== undefined) labels.zone = opts.zone;
  labels.host = opts.host ?? `h${id}`;
  const capacity = opts.capacity ?? 100 * GIB;
  const available = opts.available ?? 80 * GIB;
  return {
    id,
    raftAddress: `127.0.0.1:${20160 + id}`,
    apiAddress: `127.0.0.1:${20180 + id}`,
    labels,
    state: opts.state ?? 'up',
    capacityBytes: capacity,
    availableBytes: available,
    usedBytes: capacity - available,
    regionCount: 0,
    leaderCount: 0,
    rates: ZERO_RATES,
    refusingWrites: opts.refusingWrites ?? false,
    lastHeartbeatMs: NOW - (opts.silentMs ?? 0),
  };
}

/** Stores 1..n, all up, no zones. */
export function stores(n: number): StoreInfo[] {
  return Array.from({ length: n }, (_, i) => store(i + 1));
}

export function key(i: number): Uint8Array {
  return i === 0 ? new Uint8Array() : Uint8Array.from(Buffer.from(`k${String(i).padStart(4, '0')}`));
}

export interface RegionOpts {
  /** Store ids of voters; the first one leads unless `leader` says otherwise. */
  readonly voters: readonly number[];
  readonly learners?: readonly number[];
  /** Store id of the leader; 0: unknown. */
  readonly leader?: number;
  readonly bytes?: number;
  readonly keys?: number;
  readonly version?: number;
  readonly confVer?: number;
  /** Store ids whose peers the leader reports down / pending. */
  readonly down?: readonly number[];
  readonly pending?: readonly number[];
  readonly write?: number;
  readonly read?: number;
  /** Key range as indexes into `key()`; default [id-1, id) with `last` meaning unbounded. */
  readonly start?: number;
  readonly end?: number;
  readonly last?: boolean;
}

export const peerId = (regionId: number, storeId: number): number => regionId * 100 + storeId;

export function region(id: number, opts: RegionOpts): RegionInfo {
  const peers = [
    ...opts.voters.map((s) => ({ id: peerId(id, s), storeId: s, role: 'voter' as const })),
    ...(opts.learners ?? []).map((s) => ({ id: peerId(id, s), storeId: s, role: 'learner' as const })),
  ];
  const leader = opts.leader ?? opts.voters[0] ?? 0;
  const rates: FlowRates = { ...ZERO_RATES, writeBytes: opts.write ?? 0, readBytes: opts.read ?? 0 };
  const start = opts.start ?? id - 1;
  const end = opts.last === true ? 0 : (opts.end ?? id);
  return {
    meta: { id, startKey: key(start), endKey: key(end), epoch: { version: opts.version ?? 1, confVer: opts.confVer ?? 1 }, peers },
    leaderPeerId: leader === 0 ? 0 : peerId(id, leader),
    downPeerIds: (opts.down ?? []).map((s) => peerId(id, s)),
    pendingPeerIds: (opts.pending ?? []).map((s) => peerId(id, s)),
    approximateBytes: opts.bytes ?? 50 * MIB,
    approximateKeys: opts.keys ?? 500_000,
    rates,
    lastHeartbeatMs: NOW,
  };
}

export function view(storeList: readonly StoreInfo[], regionList: readonly RegionInfo[], running: readonly Operator[] = [], nowMs = NOW): ClusterView {
  return { nowMs, stores: storeList, regions: regionList, running };
}

/** A view whose regions all changed version `agoMs` ago and are not hot (unless listed in `hotForMs`). */
export function withTimes(v: ClusterView, agoMs: number, hotForMs: ReadonlyMap<number, number> = new Map()): SchedulingView {
  const times = new Map<number, RegionTimes>();
  for (const r of v.regions) {
    const hot = hotForMs.get(r.meta.id);
    times.set(r.meta.id, { version: r.meta.epoch.version, versionSinceMs: v.nowMs - agoMs, hotSinceMs: hot === undefined ? null : v.nowMs - hot });
  }
  return { ...v, regionTimes: times };
}

export function allocator(first = 1000): () => number {
  let next = first;
  return () => next++;
}

function renderStep(step: OperatorStep): string {
  switch (step.type) {
    case 'addLearner':
      return `addLearner p${step.peerId}@s${step.storeId}`;
    case 'changeVoters':
      return ['changeVoters', ...step.promote.map((p) => `+p${p.peerId}@s${p.storeId}`), ...step.remove.map((p) => `-p${p.peerId}@s${p.storeId}`)].join(' ');
    case 'transferLeader':
      return `transferLeader s${step.fromStoreId}->s${step.toStoreId}`;
    case 'removePeer':
      return `removePeer p${step.peerId}@s${step.storeId}`;
    case 'split':
      return step.keys.length === 0 ? 'split middle' : `split ${step.keys.map((k) => Buffer.from(k).toString()).join(',')}`;
    case 'merge':
      return `merge into r${step.targetRegionId}`;
  }
}

export function render(op: Operator): string {
  return `r${op.regionId} ${op.origin}: ${op.steps.map(renderStep).join(' > ')}`;
}

export function renderAll(ops: readonly Operator[]): string[] {
  return ops.map(render);
}
