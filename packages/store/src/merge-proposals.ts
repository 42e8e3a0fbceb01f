import type { PeerDisks } from './disk-quorum.ts';
import type { ProposalOutcome, Peer } from './peer.ts';
import type { ReplicaLookup } from './replica-router.ts';
import { adjacent, sameStores } from './merge.ts';

/**
 * The proposals of region merge (merge.ts has the protocol), through this store's leaders:
 * each checks what it can here, proposes one admin entry and settles when it applied.
 */

/**
 * Freezes region `sourceId` (led here) to be merged into its neighbour `targetId`, whose
 * replica here gives the epoch the merge is prepared against (merge.ts). Settles when the
 * prepare entry applied; EpochNotMatch when the regions don't fit or a replica refused it;
 * DiskFull at once when too few of the source's voters are on stores that take entries (the
 * driver's later steps wait instead: they must finish). The merge driver (merge-driver.ts) then
 * commits it in the target, or rolls it back.
 */
export async function proposePrepareMerge(peers: ReplicaLookup, disks: PeerDisks, sourceId: number, targetId: number): Promise<ProposalOutcome> {
  const source = peers.get(sourceId);
  const target = peers.get(targetId);
  if (!source || source.placeholder) return { kind: 'failed', error: { code: 'FLOTILLA_REGION_NOT_FOUND', regionId: sourceId } };
  const refused = disks.refusedProposal(source);
  if (refused !== null) return refused;
  if (!target || target.placeholder) return { kind: 'failed', error: { code: 'FLOTILLA_REGION_NOT_FOUND', regionId: targetId } };
  const mismatch: ProposalOutcome = { kind: 'failed', error: { code: 'FLOTILLA_EPOCH_NOT_MATCH', regionId: sourceId, currentRegions: [source.region, target.region] } };
  if (source.merging !== undefined || target.merging !== undefined || !adjacent(source.region, target.region) || !sameStores(source.region, target.region)) return mismatch;
  const outcome = await source.propose([{ op: 'prepareMerge', targetRegionId: targetId, targetEpoch: target.region.epoch, epoch: source.region.epoch }]);
  return outcome.kind === 'applied' && outcome.results[0]?.op !== 'putRegion' ? mismatch : outcome;
}

/**
 * Proposes the CommitMerge of the frozen source `sourceId` in its target, whose leader must be
 * this store's replica. Settles when it applied: merged, or EpochNotMatch if the target refused.
 */
export async function proposeCommitMerge(peers: ReplicaLookup, sourceId: number): Promise<ProposalOutcome> {
  const source = peers.get(sourceId);
  const merging = source?.merging;
  if (!source || !merging) return { kind: 'failed', error: { code: 'FLOTILLA_REGION_NOT_FOUND', regionId: sourceId } };
  const target = peers.get(merging.targetRegionId);
  if (!target || target.placeholder) return { kind: 'failed', error: { code: 'FLOTILLA_REGION_NOT_FOUND', regionId: merging.targetRegionId } };
  const { prepareIndex, prepareTerm, targetEpoch } = merging;
  const outcome = await target.propose([{ op: 'commitMerge', source: source.region, prepareIndex, prepareTerm, targetEpoch }]);
  if (outcome.kind === 'applied' && outcome.results[0]?.op !== 'putRegion') {
    return { kind: 'failed', error: { code: 'FLOTILLA_EPOCH_NOT_MATCH', regionId: target.regionId, currentRegions: [target.region] } };
  }
  return outcome;
}

/** Thaws the frozen source `sourceId` (led here); the driver asks only once no commit can apply. */
export function proposeRollbackMerge(peers: ReplicaLookup, sourceId: number): Promise<ProposalOutcome> {
  const source = peers.get(sourceId);
  if (!source?.merging) return Promise.resolve({ kind: 'failed', error: { code: 'FLOTILLA_REGION_NOT_FOUND', regionId: sourceId } });
  return source.propose([{ op: 'rollbackMerge', epoch: source.region.epoch }]);
}

/** Moves the version of region `targetId` (led here) on: merges prepared against its epoch can't commit (merge.ts). */
export function proposeFenceMerges(peers: ReplicaLookup, targetId: number): Promise<ProposalOutcome> {
  const target = peers.get(targetId);
  if (!target || target.placeholder) return Promise.resolve({ kind: 'failed', error: { code: 'FLOTILLA_REGION_NOT_FOUND', regionId: targetId } });
  return target.propose([{ op: 'fenceMerges', epoch: target.region.epoch }]);
}
