/**
 * Placement rules: which stores may take a replica, which replicas must leave, and how
 * isolated a replica is from the others (TiKV's location-aware "distinct score").
 */
import type { StoreInfo } from '../cluster/types.ts';
import type { ScheduleConfig } from './config.ts';

/**
 * Weight of a difference at one label level over the next narrower one. It exceeds the most
 * replicas a region can have (CONFIG_BOUNDS.maxReplicas), so one replica in another zone
 * outweighs any number of replicas on other hosts of the same zone.
 */
export const ISOLATION_LEVEL_WEIGHT = 100;

/** Regions smaller than this count as this big when balancing (empty regions still cost a peer). */
export const REGION_WEIGHT_MIN_BYTES = 1024 * 1024;

/**
 * How isolated `store` is from `others`: for each other store, find the widest label level at
 * which they differ; a difference at level i of n adds WEIGHT^(n-1-i). Same values everywhere
 * (or no labels configured) adds 0. A label a store lacks counts as the empty value.
 */
export function isolationScore(labels: readonly string[], store: StoreInfo, others: readonly StoreInfo[]): number {
  let score = 0;
  for (const other of others) {
    if (other.id === store.id) continue;
    const level = labels.findIndex((label) => (store.labels[label] ?? '') !== (other.labels[label] ?? ''));
    if (level >= 0) score += ISOLATION_LEVEL_WEIGHT ** (labels.length - 1 - level);
  }
  return score;
}

/** Free space is known and above the low-space ratio. */
export function hasSpace(store: StoreInfo, config: ScheduleConfig): boolean {
  // Capacity 0 means no store heartbeat yet: space unknown, so not a target.
  if (store.capacityBytes <= 0) return false;
  return store.availableBytes / store.capacityBytes >= config.lowSpaceRatio;
}

/** A store that may receive a new replica (operator-level limits aside). */
export function canTakeReplica(store: StoreInfo, config: ScheduleConfig): boolean {
  return store.state === 'up' && hasSpace(store, config);
}

/** How long the store has been without heartbeats, counted only in the disconnected/down states. */
export function downForMs(store: StoreInfo, nowMs: number): number {
  if (store.state !== 'down' && store.state !== 'disconnected') return 0;
  return Math.max(0, nowMs - store.lastHeartbeatMs);
}

/**
 * Why replicas on this store must be replaced, or null. The down threshold is judged from the
 * heartbeat time (not only the state label), so a server that has not yet relabelled a long
 * silent store does not delay repair; a store labelled down but silent for less is left alone.
 */
export function mustLeaveReason(store: StoreInfo | undefined, storeId: number, config: ScheduleConfig, nowMs: number): string | null {
  if (store === undefined) return `store ${storeId} is unknown`;
  if (store.state === 'offline') return `store ${storeId} is offline`;
  if (store.state === 'tombstone') return `store ${storeId} is a tombstone`;
  const down = downForMs(store, nowMs);
  if (down >= config.storeDownMs) return `store ${storeId} down for ${formatDuration(down)}`;
  return null;
}

export function formatDuration(ms: number): string {
  if (ms >= 3_600_000) return `${(ms / 3_600_000).toFixed(1)} h`;
  if (ms >= 60_000) return `${Math.floor(ms / 60_000)} min`;
  return `${Math.floor(ms / 1000)} s`;
}
