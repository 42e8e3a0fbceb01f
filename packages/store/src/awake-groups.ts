/**
 * Which raft groups a tick visits. A hibernating group's tick does nothing, so the host keeps
 * the set of groups not known to hibernate and ticks only those: an idle store's ticks cost
 * O(awake groups), not O(replicas) (10,000 idle regions: ~4% of a core per store before,
 * ~2% after; benchmarks/RESULTS.md). The host's markDirty adds a group — waking always changes
 * a group's soft state, so it always leaves work and passes there — and a round drops a group
 * it finds hibernating. Every limits.tickSweepTicks rounds, a round visits every replica: a
 * group woken by a path that forgot markDirty still ticks, at worst that much slower.
 */
import { limits } from './constants.ts';
import type { Peer } from './peer.ts';
import type { ReplicaRouter } from './replica-router.ts';

export class AwakeGroups {
  private readonly ticking = new Set<Peer>();
  /** Groups ticked, summed over the rounds (HostStats.groupTicks). */
  visits = 0;

  constructor(
    private readonly peers: ReplicaRouter,
    /** The host's: a group with work after its tick gets a place in the next ready cycle. */
    private readonly markDirty: (peer: Peer) => void,
  ) {}

  /** A group with work: it may have just woken, so it ticks from the next round on. */
  add(peer: Peer): void {
    this.ticking.add(peer);
  }

  /** Tick round `round` (1, 2, …). */
  tick(round: number): void {
    // Two loops, each over one kind of iterator: one loop over either would call a polymorphic
    // next() that allocates a result object per group (the sweep's 10,000 a second, idle).
    if (round % limits.tickSweepTicks === 0) for (const peer of this.peers) this.visit(peer, true);
    else for (const peer of this.ticking) this.visit(peer, false);
  }

  private visit(peer: Peer, sweep: boolean): void {
    if (!this.peers.isCurrent(peer)) {
      this.ticking.delete(peer); // replaced or removed since it was marked
      return;
    }
    this.visits++;
    const node = peer.node;
    node.tick();
    // A tick that left a group nothing to do (a follower counting towards its election
    // timeout) costs no place in the ready cycle.
    if (node.hasReady()) this.markDirty(peer);
    else if (node.hibernating) this.ticking.delete(peer);
    else if (sweep) this.ticking.add(peer);
  }
}
