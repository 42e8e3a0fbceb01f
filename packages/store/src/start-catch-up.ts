import { performance } from 'node:perf_hooks';
import type { ReadConsistency } from '@flotilla/wire';
import { CatchUpGate, type CatchUpRelease, type CatchUpReplica } from './catch-up.ts';
import { limits } from './constants.ts';
import type { HostEventLog } from './host-types.ts';
import { storeMoment } from './replica-reads.ts';
import type { ReplicaLookup } from './replica-router.ts';

/** The consistency of the reads that tell a restarted replica it caught up. */
const LINEARIZABLE: ReadConsistency = { level: 'linearizable' };

/**
 * The readiness gate (catch-up.ts) over the replicas a host resumed at its start, built from
 * its peers: their catch-up reads arrive at this moment. `waitMaxMs`: the longest /ready waits
 * (HostOptions.readyCatchUpWaitMaxMs). What the gate stops waiting for is logged as a warning.
 */
export function startCatchUpGate(regionIds: readonly number[], peers: ReplicaLookup, waitMaxMs: number, events: HostEventLog): CatchUpGate {
  const start = storeMoment();
  const replica = (regionId: number): CatchUpReplica | undefined => {
    const peer = peers.get(regionId);
    if (peer === undefined) return undefined;
    return {
      leader: peer.node.leader,
      safeTimeMs: peer.safeTimeMs(),
      // A linearizable read that arrived at the start: ready once everything committed before it is applied.
      confirm: async () => (await peer.readyToRead(LINEARIZABLE, start, performance.now() + limits.readyCatchUpRoundMs)) === null,
    };
  };
  const options = { startMs: start.ms, waitMaxMs, leaderlessMaxMs: limits.readyLeaderlessMaxMs, now: () => performance.now() };
  return new CatchUpGate(regionIds, replica, options, (release) => reportRelease(release, events));
}

function reportRelease(release: CatchUpRelease, events: HostEventLog): void {
  const why = release.reason === 'noLeader' ? 'know no leader' : 'were still behind when the wait ran out';
  events.warn({ regions: release.regionIds.length, example: release.regionIds[0], reason: release.reason }, `readiness does not wait for replicas that ${why}`);
}
