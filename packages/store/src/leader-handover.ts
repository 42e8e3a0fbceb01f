import { monotonicNowMs } from './clock.ts';
import { limits } from './constants.ts';
import type { Peer } from './peer.ts';

/** What the hand-over needs of the host. */
export interface HandoverHost {
  peers(): Iterable<Peer>;
  markDirty(peer: Peer): void;
  closed(): boolean;
}

/**
 * Graceful shutdown's first step: every region led here hands its leadership to its most
 * caught-up voter on another store, so clients see NotLeader with a live hint instead of an
 * election timeout. Resolves with the regions still led here once none can move (no other
 * voter is active) or the deadline passes.
 */
export async function handOverLeaderships(host: HandoverHost, electionTimeoutMs: number, deadlineMs: number): Promise<number> {
  const started = monotonicNowMs();
  const until = started + deadlineMs;
  // The core abandons a transfer after an election timeout: ask again after that long.
  const askedAt = new Map<number, number>();
  for (;;) {
    let leading = 0;
    let moving = 0;
    for (const peer of host.peers()) {
      if (!peer.isLeader()) continue;
      leading++;
      if (monotonicNowMs() - (askedAt.get(peer.regionId) ?? -Infinity) < electionTimeoutMs) {
        moving++;
        continue;
      }
      peer.node.wake(); // a hibernated leader learns which followers are active
      host.markDirty(peer); // its heartbeats leave now, and it ticks again (awake-groups.ts)
      const target = transferTarget(peer);
      if (target === undefined) {
        // Followers prove themselves active within an election timeout (after waking).
        if (monotonicNowMs() - started < electionTimeoutMs) moving++;
        continue;
      }
      askedAt.set(peer.regionId, monotonicNowMs());
      peer.node.transferLeader(target); // marked dirty above: its TimeoutNow leaves with the cycle
      moving++;
    }
    if (moving === 0 || monotonicNowMs() >= until || host.closed()) return leading;
    await new Promise((resolve) => setTimeout(resolve, limits.leaderTransferPollMs));
  }
}

/** The voter on another store the leader knows to be most caught up, if any is active. */
function transferTarget(peer: Peer): number | undefined {
  let best: number | undefined;
  let bestMatch = -1;
  for (const [id, progress] of peer.node.status().progress) {
    if (id === peer.peerId || progress.isLearner || !progress.recentActive) continue;
    if (progress.match > bestMatch) {
      best = id;
      bestMatch = progress.match;
    }
  }
  return best;
}
