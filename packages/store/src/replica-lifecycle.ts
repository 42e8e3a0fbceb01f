/**
 * What a ready cycle's applied entries do to the replicas of this store, once the cycle is
 * over: a replica removed from its region is destroyed (its log dropped, its tombstone kept by
 * the router), and the region a split created starts its own raft group here. Both wait until
 * the KV batch that recorded the change is durable (MultiRaftHost.cycle syncs it first).
 */
import type { KvEngine, LogEngine, RegionMeta } from '@flotilla/storage';
import type { HostEventLog } from './host-types.ts';
import type { HostLogWrites } from './host-log-writes.ts';
import { logCatchUpWrite } from './log-catch-up.ts';
import type { Peer } from './peer.ts';
import type { ReplicaRouter } from './replica-router.ts';

export interface ReplicaLifecycleHost {
  readonly peers: ReplicaRouter;
  readonly kv: KvEngine;
  readonly log: LogEngine;
  readonly logWrites: HostLogWrites;
  readonly events: HostEventLog;
  /** The peer has no more work in the host's ready loop (replaced or destroyed). */
  forget(peer: Peer): void;
  markDirty(peer: Peer): void;
}

export class ReplicaLifecycle {
  /** Replicas the cycle's conf changes removed from this store. */
  private readonly removed: Peer[] = [];
  /** Regions the cycle's splits created. */
  private readonly splits: { readonly child: RegionMeta; readonly parentLeads: boolean }[] = [];

  constructor(private readonly host: ReplicaLifecycleHost) {}

  /** The applied entries removed `peer` from this store (entry-commands.ts). */
  onRemoved(peer: Peer): void {
    this.removed.push(peer);
  }

  /** A split created `child` (entry-commands.ts). */
  onSplit(child: RegionMeta, parentLeads: boolean): void {
    this.splits.push({ child, parentLeads });
  }

  /** The cycle changed some replica: its KV batch must be durable before the changes below. */
  get pending(): boolean {
    return this.removed.length > 0 || this.splits.length > 0;
  }

  async destroyRemoved(): Promise<void> {
    for (const peer of this.removed.splice(0)) await this.destroy(peer);
  }

  async startSplitChildren(): Promise<void> {
    for (const split of this.splits.splice(0)) await this.startSplitChild(split.child, split.parentLeads);
  }

  /** This store's replica left its region: forget it, drop its log, remember the tombstone. */
  async destroy(peer: Peer): Promise<void> {
    const host = this.host;
    host.peers.remove(peer);
    host.forget(peer);
    peer.failAll({ code: 'FLOTILLA_REGION_NOT_FOUND', regionId: peer.regionId });
    host.events.info({ regionId: peer.regionId, peerId: peer.peerId }, 'replica removed from this store');
    await host.logWrites.write([{ groupId: peer.regionId, destroy: true }]);
  }

  /**
   * The region a split created starts its own raft group here, over data already in place:
   * its log begins at the bootstrap snapshot, as a founding region's does. A placeholder that
   * a fast child replica elsewhere created first is replaced; a child already initialized by
   * a snapshot is kept. The parent's leader campaigns at once, so the child has a leader soon.
   *
   * The founding log write is the log catching up with the child's KV record, which the split's
   * apply batch wrote at the bootstrap index (log-catch-up.ts): the same write start() makes
   * when a crash came in between. A placeholder's hard state is kept (it may have voted in a
   * later term already: the term never moves back).
   */
  private async startSplitChild(child: RegionMeta, parentLeads: boolean): Promise<void> {
    const host = this.host;
    const existing = host.peers.get(child.id);
    if (existing && !existing.placeholder) return;
    const state = host.kv.region(child.id);
    // The KV engine refused the child's record: it holds a newer one (this replica of the
    // child was created by a snapshot and removed since). Nothing to start.
    if (state === null || state.status !== 'normal') return;
    const write = logCatchUpWrite(state, host.log.group(child.id));
    // While the founding write runs, the region's messages are dropped (ReplicaRouter.route).
    if (write !== null) await host.peers.whileFounding(child.id, () => host.logWrites.write([write]));
    // Only now is the placeholder replaced: until the peer is in the map, a message for the
    // region would create yet another placeholder.
    const replaced = host.peers.detach(child.id);
    if (replaced) host.forget(replaced);
    const peer = host.peers.add(state.region, state.appliedIndex, state.confState);
    if (parentLeads) {
      peer.node.campaign();
      host.markDirty(peer);
    }
  }
}
