/**
 * Which replica serves a client's stale reads of a region: the same one for every stale read of
 * the region, as long as it answers. A replica's applied state only moves forward, so the
 * client's stale reads of a region are monotonic (never an older state after a newer one) until
 * that replica fails or leaves the region; a retry, or a store that just failed, moves the region
 * on to the next replica on a store not suspected.
 *
 * The first choice is a replica near the client when it gave its location (`labels`, e.g.
 * `{ zone: 'z1' }`): one on a store whose location labels (the store's `--labels`, from PD)
 * include every one of the client's, as TiKV's clients match labels for replica reads. Among
 * several, or when none is near (or no labels were given), the client's offset plus the region
 * id picks, so clients and regions spread over the replicas (and off the leader). A failover
 * also prefers the near replicas left.
 */
import { isWireError, readLocationLabels, type RegionPeer } from '@flotilla/wire';
import { ClientError } from './errors.ts';
import type { CachedRegion } from './region-cache.ts';
import type { StoreChannels } from './store-channels.ts';

export type Labels = Readonly<Record<string, string>>;

export class StaleReplicas {
  private readonly labels: readonly (readonly [string, string])[];

  constructor(
    private readonly channels: StoreChannels,
    /** Where this client's first choice is counted from (random per client: spreads clients). */
    private readonly offset: number,
    labels: Labels | undefined,
  ) {
    this.labels = Object.entries(checkLabels(labels ?? {}));
  }

  /**
   * Whether the region's first choice must wait for its stores' labels (asked of PD once per
   * store: StoreChannels.learnLabels). Only with labels, and only before the choice is made.
   */
  needsLabels(region: CachedRegion): boolean {
    return this.labels.length > 0 && region.staleStoreId === null && region.meta.peers.some((p) => this.channels.labelsOf(p.storeId) === undefined);
  }

  /** The replica for this attempt of a stale read of `region` (which has peers). */
  pick(region: CachedRegion, attempt: number): RegionPeer {
    const peers = region.meta.peers;
    let at = region.staleStoreId === null ? -1 : peers.findIndex((p) => p.storeId === region.staleStoreId);
    if (at < 0) at = this.first(region);
    if (attempt > 0 || this.channels.isSuspect(peers[at]!.storeId)) at = this.next(peers, at);
    const peer = peers[at]!;
    region.staleStoreId = peer.storeId;
    return peer;
  }

  /** A near replica if there is one (spread by offset and region id), else any (the same way). */
  private first(region: CachedRegion): number {
    const peers = region.meta.peers;
    const spread = this.offset + region.meta.id;
    const near: number[] = [];
    for (let i = 0; i < peers.length; i++) if (this.isNear(peers[i]!)) near.push(i);
    return near.length > 0 ? near[spread % near.length]! : spread % peers.length;
  }

  /** The first replica after `at` on a store not suspected, a near one first (the one right after `at` if all are suspected). */
  private next(peers: readonly RegionPeer[], at: number): number {
    for (const nearOnly of this.labels.length > 0 ? [true, false] : [false]) {
      for (let k = 1; k < peers.length; k++) {
        const i = (at + k) % peers.length;
        const peer = peers[i]!;
        if (!this.channels.isSuspect(peer.storeId) && (!nearOnly || this.isNear(peer))) return i;
      }
    }
    return (at + 1) % peers.length;
  }

  /** The replica's store has every one of the client's labels (a store not known to PD is not near). */
  private isNear(peer: RegionPeer): boolean {
    if (this.labels.length === 0) return false;
    const store = this.channels.labelsOf(peer.storeId);
    return store !== undefined && this.labels.every(([name, value]) => store[name] === value);
  }
}

/** The client's `labels`, by the rules of a store's (wire's readLocationLabels): FLOTILLA_INVALID_ARGUMENT otherwise. */
function checkLabels(labels: Labels): Labels {
  try {
    return readLocationLabels(labels);
  } catch (err) {
    if (!isWireError(err)) throw err;
    throw new ClientError('FLOTILLA_INVALID_ARGUMENT', `labels: ${err.message}`);
  }
}
