/**
 * Types the scheduling code adds to the shared cluster types, and small read-only helpers over
 * a region's peers.
 */
import type { ClusterView, OperatorOrigin, RegionInfo, RegionPeer, StoreInfo } from '../cluster/types.ts';

/** Allocates a cluster-unique id (PD's id allocator); used for new peers and for operators. */
export type AllocateId = () => number;

/** What the coordinator remembers about a region between runs (see `observeRegions`). */
export interface RegionTimes {
  /** The epoch version last seen. */
  readonly version: number;
  /** PD clock when `version` was first seen: the last split/merge, or when PD first saw the region. */
  readonly versionSinceMs: number;
  /** PD clock since when the region has been continuously hot, or null when it is not hot. */
  readonly hotSinceMs: number | null;
}

/**
 * The cluster view plus what only time reveals: when each region's version last changed and
 * how long it has been hot. The merge and split checkers need it; `observeRegions` makes it.
 * A region missing from `regionTimes` counts as changed just now (no merge, no load split).
 */
export interface SchedulingView extends ClusterView {
  readonly regionTimes: ReadonlyMap<number, RegionTimes>;
}

/** Higher runs first when limits allow only some (replica repair > admin > balance). */
export const PRIORITY = {
  replicaRepair: 100,
  replicaAdjust: 80,
  admin: 60,
  merge: 40,
  split: 40,
  hotRegion: 30,
  balance: 20,
} as const;

/** Which operator limit of the config an origin counts against; admin operators count against none. */
export type LimitName =
  | 'replicaScheduleLimit'
  | 'regionScheduleLimit'
  | 'leaderScheduleLimit'
  | 'mergeScheduleLimit'
  | 'hotRegionScheduleLimit'
  | 'splitScheduleLimit';

export const LIMIT_OF_ORIGIN: Readonly<Record<OperatorOrigin, LimitName | null>> = {
  'replica-checker': 'replicaScheduleLimit',
  'split-checker': 'splitScheduleLimit',
  'merge-checker': 'mergeScheduleLimit',
  'balance-region': 'regionScheduleLimit',
  'balance-leader': 'leaderScheduleLimit',
  'hot-region': 'hotRegionScheduleLimit',
  admin: null,
};

export function voters(region: RegionInfo): RegionPeer[] {
  return region.meta.peers.filter((p) => p.role === 'voter');
}

export function learners(region: RegionInfo): RegionPeer[] {
  return region.meta.peers.filter((p) => p.role === 'learner');
}

export function peerOnStore(region: RegionInfo, storeId: number): RegionPeer | undefined {
  return region.meta.peers.find((p) => p.storeId === storeId);
}

/** The leader's peer, or undefined when PD does not know it. */
export function leaderPeer(region: RegionInfo): RegionPeer | undefined {
  if (region.leaderPeerId === 0) return undefined;
  return region.meta.peers.find((p) => p.id === region.leaderPeerId);
}

export function leaderStoreId(region: RegionInfo): number {
  return leaderPeer(region)?.storeId ?? 0;
}

/** A peer the leader reports down or far behind: it can't take leadership or vouch for a move. */
export function isPeerUnhealthy(region: RegionInfo, peerId: number): boolean {
  return region.downPeerIds.includes(peerId) || region.pendingPeerIds.includes(peerId);
}

/** No down or pending peers, no learners, a known leader: safe to move, merge or balance. */
export function isRegionHealthy(region: RegionInfo): boolean {
  return region.downPeerIds.length === 0 && region.pendingPeerIds.length === 0 && learners(region).length === 0 && leaderPeer(region) !== undefined;
}

export function storeById(stores: readonly StoreInfo[]): Map<number, StoreInfo> {
  return new Map(stores.map((s) => [s.id, s]));
}

export function regionById(regions: readonly RegionInfo[]): Map<number, RegionInfo> {
  return new Map(regions.map((r) => [r.meta.id, r]));
}

/** A bug in the scheduling code: stops the process rather than emit a wrong operator. */
export function assert(condition: unknown, what: string): asserts condition {
  if (!condition) throw new Error(`pd scheduling assertion failed: ${what}`);
}
