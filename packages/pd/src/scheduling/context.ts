/**
 * One scheduling pass: the view, per-store load including what running and newly made
 * operators will do (TiKV's "operator influence"), and which regions are already held.
 *
 * Without influence, every pass would see the same emptiest store and pile moves onto it;
 * with it, a move counts on both stores from the moment it is made until its heartbeat shows
 * it done (steps already visible in the region's heartbeat are not counted twice).
 */
import type { Operator, OperatorStep, RegionInfo, StoreInfo } from '../cluster/types.ts';
import type { ScheduleConfig } from './config.ts';
import { regionsHeldBy, stepDone } from './operators.ts';
import { REGION_WEIGHT_MIN_BYTES, canTakeReplica, isolationScore } from './placement.ts';
import { leaderStoreId, peerOnStore, regionById, storeById, type AllocateId, type SchedulingView } from './types.ts';

export interface StoreLoad {
  /** Sum of region weights (bytes, at least REGION_WEIGHT_MIN_BYTES each) of its replicas. */
  regionWeight: number;
  regionCount: number;
  leaderCount: number;
  /** Write bytes/s of hot regions it leads, and of hot regions it holds any replica of. */
  hotWriteLeader: number;
  hotWritePeer: number;
  hotReadLeader: number;
  /** Operators (running or new) that add or remove a peer here. */
  peerOperators: number;
}

export interface PlanContext {
  readonly view: SchedulingView;
  readonly config: ScheduleConfig;
  readonly allocateId: AllocateId;
  readonly stores: ReadonlyMap<number, StoreInfo>;
  readonly regions: ReadonlyMap<number, RegionInfo>;
  readonly load: Map<number, StoreLoad>;
  /** Each up store's capacity over the largest up store's (see capacityShare). */
  readonly capacityShares: ReadonlyMap<number, number>;
  /** Regions held by a running or new operator: one operator per region. */
  readonly busy: Set<number>;
  readonly made: Operator[];
}

export function regionWeight(region: RegionInfo): number {
  return Math.max(region.approximateBytes, REGION_WEIGHT_MIN_BYTES);
}

export function isWriteHot(region: RegionInfo, config: ScheduleConfig): boolean {
  return region.rates.writeBytes >= config.hotRegionWriteBytesPerSec;
}

export function isReadHot(region: RegionInfo, config: ScheduleConfig): boolean {
  return region.rates.readBytes >= config.hotRegionReadBytesPerSec;
}

function emptyLoad(): StoreLoad {
  return { regionWeight: 0, regionCount: 0, leaderCount: 0, hotWriteLeader: 0, hotWritePeer: 0, hotReadLeader: 0, peerOperators: 0 };
}

export function loadOf(ctx: PlanContext, storeId: number): StoreLoad {
  let load = ctx.load.get(storeId);
  if (load === undefined) {
    load = emptyLoad();
    ctx.load.set(storeId, load);
  }
  return load;
}

/** Adds (sign 1) or removes (sign -1) one replica of `region` on `storeId`, leader or not. */
function addReplicaLoad(ctx: PlanContext, region: RegionInfo, storeId: number, sign: 1 | -1): void {
  const load = loadOf(ctx, storeId);
  load.regionWeight += sign * regionWeight(region);
  load.regionCount += sign;
  if (isWriteHot(region, ctx.config)) load.hotWritePeer += sign * region.rates.writeBytes;
}

function addLeaderLoad(ctx: PlanContext, region: RegionInfo, storeId: number, sign: 1 | -1): void {
  const load = loadOf(ctx, storeId);
  load.leaderCount += sign;
  if (isWriteHot(region, ctx.config)) load.hotWriteLeader += sign * region.rates.writeBytes;
  if (isReadHot(region, ctx.config)) load.hotReadLeader += sign * region.rates.readBytes;
}

function stepInfluence(ctx: PlanContext, region: RegionInfo, step: OperatorStep, touched: Set<number>): void {
  switch (step.type) {
    case 'addLearner':
      addReplicaLoad(ctx, region, step.storeId, 1);
      touched.add(step.storeId);
      return;
    case 'removePeer':
      addReplicaLoad(ctx, region, step.storeId, -1);
      touched.add(step.storeId);
      return;
    case 'changeVoters':
      for (const removed of step.remove) {
        addReplicaLoad(ctx, region, removed.storeId, -1);
        touched.add(removed.storeId);
      }
      return;
    case 'transferLeader':
      addLeaderLoad(ctx, region, step.fromStoreId, -1);
      addLeaderLoad(ctx, region, step.toStoreId, 1);
      return;
    case 'split':
    case 'merge':
      return;
  }
}

/** Counts what the operator's not-yet-visible steps will do to store loads. */
function applyInfluence(ctx: PlanContext, op: Operator): void {
  const region = ctx.regions.get(op.regionId);
  if (region === undefined) return;
  const leader = leaderStoreId(region);
  const touched = new Set<number>();
  for (const step of op.steps) {
    if (!stepDone(step, region, leader, op.regionEpoch)) stepInfluence(ctx, region, step, touched);
  }
  for (const storeId of touched) loadOf(ctx, storeId).peerOperators++;
}

function baseLoad(ctx: PlanContext): void {
  for (const store of ctx.view.stores) loadOf(ctx, store.id);
  for (const region of ctx.view.regions) {
    for (const peer of region.meta.peers) addReplicaLoad(ctx, region, peer.storeId, 1);
    const leader = leaderStoreId(region);
    if (leader !== 0) addLeaderLoad(ctx, region, leader, 1);
  }
}

export function newContext(view: SchedulingView, config: ScheduleConfig, allocateId: AllocateId): PlanContext {
  // Built on first use: only operators (running or new) look regions up by id, and a quiet
  // pass has none — at 100,000 regions the map cost ~14 ms of every pass.
  let regions: Map<number, RegionInfo> | undefined;
  let load: Map<number, StoreLoad> | undefined;
  let shares: Map<number, number> | undefined;
  const ctx: PlanContext = {
    view,
    config,
    allocateId,
    stores: storeById(view.stores),
    get regions(): ReadonlyMap<number, RegionInfo> {
      return (regions ??= regionById(view.regions));
    },
    // Counted on first use too (loadOf is the only reader): the stores' loads from every
    // region, then the running operators' influence. A pass whose checkers find nothing and
    // whose schedulers are not due never needs them (~13 ms at 100,000 regions).
    get load(): Map<number, StoreLoad> {
      if (load === undefined) {
        load = new Map();
        baseLoad(ctx);
        for (const op of view.running) applyInfluence(ctx, op);
      }
      return load;
    },
    get capacityShares(): ReadonlyMap<number, number> {
      return (shares ??= capacitySharesOf(view.stores));
    },
    busy: new Set(),
    made: [],
  };
  for (const op of view.running) for (const held of regionsHeldBy(op)) ctx.busy.add(held);
  return ctx;
}

/**
 * Capacity shares: every up store's capacity over the largest up store's (1 for the largest).
 * While any up store has not reported its capacity (0: no store heartbeat yet), every share is
 * 1 — balance by bytes alone — rather than guess.
 */
function capacitySharesOf(stores: readonly StoreInfo[]): Map<number, number> {
  const up = stores.filter((s) => s.state === 'up');
  const largest = Math.max(0, ...up.map((s) => s.capacityBytes));
  const known = up.every((s) => s.capacityBytes > 0);
  return new Map(up.map((s) => [s.id, known ? s.capacityBytes / largest : 1]));
}

/** The store's capacity share (1 for a store that is not up, or while capacities are unknown). */
export function capacityShare(ctx: PlanContext, storeId: number): number {
  return ctx.capacityShares.get(storeId) ?? 1;
}

/**
 * How full a store is by the data PD placed there: its region weight over its capacity share,
 * in bytes as if every store had the largest one's capacity. With equal capacities it is the
 * region weight itself; a store with half the disk reaches the same fill with half the bytes
 * (TiKV's region score also rises as a store's space shrinks).
 */
export function fillScore(ctx: PlanContext, storeId: number): number {
  return loadOf(ctx, storeId).regionWeight / capacityShare(ctx, storeId);
}

/**
 * The fill gap above which moving a region of `weight` bytes from `sourceId` to `targetId`
 * balances: tolerantSizeRatio × what the move changes on both sides (weight / share each).
 * After such a move the source is still at least as full as the target, less (1 - ratio) × the
 * same change — so with ratio ≥ 0.5 the reverse move never passes this bound.
 */
export function moveThreshold(ctx: PlanContext, weight: number, sourceId: number, targetId: number): number {
  return ctx.config.tolerantSizeRatio * weight * (1 / capacityShare(ctx, sourceId) + 1 / capacityShare(ctx, targetId));
}

/** Records a new operator: its regions become busy, its influence counts from now on. */
export function accept(ctx: PlanContext, op: Operator): void {
  for (const held of regionsHeldBy(op)) ctx.busy.add(held);
  applyInfluence(ctx, op);
  ctx.made.push(op);
}

export function isBusy(ctx: PlanContext, regionIds: readonly number[]): boolean {
  return regionIds.some((id) => ctx.busy.has(id));
}

/** A store that may take a new replica now: up, with space, under its operator limit. */
export function isTargetStore(ctx: PlanContext, store: StoreInfo): boolean {
  return canTakeReplica(store, ctx.config) && loadOf(ctx, store.id).peerOperators < ctx.config.storeOperatorLimit;
}

/** A store whose replica may be moved or removed now (its operator limit counts too). */
export function isSourceStore(ctx: PlanContext, storeId: number): boolean {
  return loadOf(ctx, storeId).peerOperators < ctx.config.storeOperatorLimit;
}

export function storesOf(ctx: PlanContext, storeIds: readonly number[]): StoreInfo[] {
  return storeIds.flatMap((id) => {
    const store = ctx.stores.get(id);
    return store === undefined ? [] : [store];
  });
}

export interface Candidate {
  readonly store: StoreInfo;
  readonly isolation: number;
}

/**
 * The stores that may take a replica of `region`, best first: most isolated from `others`
 * (the stores of the replicas that stay), then the least full (fillScore), then lowest id.
 */
export function rankTargets(ctx: PlanContext, region: RegionInfo, others: readonly number[]): Candidate[] {
  const otherStores = storesOf(ctx, others);
  const candidates = ctx.view.stores
    .filter((s) => peerOnStore(region, s.id) === undefined && isTargetStore(ctx, s))
    .map((store) => ({ store, isolation: isolationScore(ctx.config.locationLabels, store, otherStores) }));
  return candidates.sort(
    (a, b) =>
      b.isolation - a.isolation ||
      fillScore(ctx, a.store.id) - fillScore(ctx, b.store.id) ||
      a.store.id - b.store.id,
  );
}

/** Of `candidates` (store ids), the up store with the fewest leaders (then lowest id); stores refusing writes last. */
export function bestLeaderStore(ctx: PlanContext, candidates: readonly number[]): number | undefined {
  const up = candidates.filter((id) => ctx.stores.get(id)?.state === 'up');
  up.sort((a, b) => Number(refusesWrites(ctx, a)) - Number(refusesWrites(ctx, b)) || loadOf(ctx, a).leaderCount - loadOf(ctx, b).leaderCount || a - b);
  return up[0];
}

/** The store reports its disk below its reserve: a leader there refuses puts (FLOTILLA_DISK_FULL). */
export function refusesWrites(ctx: PlanContext, storeId: number): boolean {
  return ctx.stores.get(storeId)?.refusingWrites === true;
}
