/**
 * The admin proposals of a region led here — a membership change, a split — checked first:
 * the region exists here, is not frozen for a merge (membership), and a quorum of its voters'
 * stores take entries (disk-quorum.ts: FLOTILLA_DISK_FULL at once otherwise, nothing proposed).
 * Each settles when its entry applied. Merges have theirs in merge-proposals.ts.
 */
import { limits } from './constants.ts';
import type { PeerDisks } from './disk-quorum.ts';
import { toConfChange, type MembershipChange } from './membership.ts';
import type { ProposalOutcome } from './peer.ts';
import type { ReplicaLookup } from './replica-router.ts';

/** Add a learner, promote to voter, remove; several at once go through joint consensus. */
export function proposeMembershipChange(peers: ReplicaLookup, disks: PeerDisks, regionId: number, changes: readonly MembershipChange[], transition?: 'auto' | 'implicit' | 'explicit'): Promise<ProposalOutcome> {
  const peer = peers.get(regionId);
  if (!peer || peer.placeholder) return Promise.resolve({ kind: 'failed', error: { code: 'FLOTILLA_REGION_NOT_FOUND', regionId } });
  // A frozen merge source changes no membership (its replicas must stay where the target's are).
  if (peer.merging) return Promise.resolve({ kind: 'failed', error: { code: 'FLOTILLA_SERVER_BUSY', retryAfterMs: limits.mergingRetryAfterMs } });
  const refused = disks.refusedProposal(peer);
  return refused !== null ? Promise.resolve(refused) : peer.proposeConfChange(toConfChange(changes, transition));
}

/**
 * Splits at `splitKey`: the new region gets `newRegionId` and one new peer id per current member
 * (in the region's peer order); ids come from the placement driver. EpochNotMatch when every
 * replica refused it.
 */
export async function proposeSplit(peers: ReplicaLookup, disks: PeerDisks, regionId: number, splitKey: Uint8Array, newRegionId: number, newPeerIds: readonly number[]): Promise<ProposalOutcome> {
  const peer = peers.get(regionId);
  if (!peer || peer.placeholder) return { kind: 'failed', error: { code: 'FLOTILLA_REGION_NOT_FOUND', regionId } };
  const refused = disks.refusedProposal(peer);
  if (refused !== null) return refused;
  const outcome = await peer.propose([{ op: 'split', splitKey, newRegionId, newPeerIds, epoch: peer.region.epoch }]);
  // An accepted split applies as putRegion commands; a refused one as a noop.
  if (outcome.kind === 'applied' && outcome.results[0]?.op !== 'putRegion') {
    return { kind: 'failed', error: { code: 'FLOTILLA_EPOCH_NOT_MATCH', regionId, currentRegions: [peer.region] } };
  }
  return outcome;
}
