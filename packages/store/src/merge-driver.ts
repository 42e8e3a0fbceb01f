import { monotonicNowMs } from './clock.ts';
import { limits } from './constants.ts';
import type { HostEventLog } from './host-types.ts';
import type { RegionState } from '@flotilla/storage';
import { targetMovedOn } from './merge.ts';
import type { Peer, ProposalOutcome } from './peer.ts';

/** What the driver needs of the host. */
export interface MergeDriverHost {
  peer(regionId: number): Peer | undefined;
  /** The KV engine's record of a region here (a tombstone stays after its replica left). */
  regionState(regionId: number): RegionState | null;
  commitMerge(sourceId: number): Promise<ProposalOutcome>;
  rollbackMerge(sourceId: number): Promise<ProposalOutcome>;
  fenceMerges(targetId: number): Promise<ProposalOutcome>;
  transferLeader(regionId: number, toPeerId: number): boolean;
}

/** What a frozen source led here does next (see MergeDriver). */
export type MergeStep =
  | { readonly kind: 'rollback' }
  | { readonly kind: 'commit' }
  | { readonly kind: 'moveLeader'; readonly toPeerId: number }
  | { readonly kind: 'wait'; readonly why: string; readonly replicaBehind?: boolean };

/**
 * After PrepareMerge, the source's leader moves the merge on by itself (TiKV's merge check
 * tick), whether or not PD still watches: PD's operator ends once the source froze.
 *
 * - The target's epoch moved past the prepared one (target here shows it): roll back. So
 *   when the target here was merged away itself (its tombstone keeps its merge state): a
 *   frozen target takes nothing, and had it taken this source first, this replica would be
 *   gone, so no commit of this merge ever applied or ever will.
 * - The target is frozen for a merge of its own: wait (its commit would be refused).
 * - The target is led on another store: hand the source's leadership there, so one store
 *   leads both and proposes the commit locally (no store-to-store RPC is needed).
 * - Every source replica holds the prepare entry (match >= prepare index): commit in the
 *   target. A replica without it could never apply it once its peers merged away. One that
 *   does not get it for limits.mergeCommitWaitMs (its store is down, say) must not keep the
 *   source frozen for as long: the driver fences the target (FenceMerges), then rolls back.
 */
export function nextMergeStep(source: Peer, target: Peer | undefined, targetState: RegionState | null = null): MergeStep {
  const merging = source.merging;
  if (merging === undefined) return { kind: 'wait', why: 'not frozen' };
  if (target === undefined && targetState?.status === 'tombstone' && targetState.merging !== undefined) return { kind: 'rollback' };
  if (target === undefined || target.placeholder) return { kind: 'wait', why: `no replica of target ${merging.targetRegionId} here` };
  if (targetMovedOn(target.region, merging)) return { kind: 'rollback' };
  if (target.merging !== undefined) return { kind: 'wait', why: `target ${merging.targetRegionId} is frozen for a merge of its own` };
  if (!target.isLeader()) {
    const leaderStore = target.storeOf(target.node.leader);
    const there = leaderStore === undefined ? undefined : source.region.peers.find((p) => p.storeId === leaderStore && p.role === 'voter');
    if (there === undefined || there.id === source.peerId) return { kind: 'wait', why: 'the target has no leader with a source voter beside it' };
    return { kind: 'moveLeader', toPeerId: there.id };
  }
  const progress = source.node.status().progress;
  const behind = source.region.peers.find((p) => p.id !== source.peerId && (progress.get(p.id)?.match ?? 0) < merging.prepareIndex);
  if (behind !== undefined) return { kind: 'wait', why: `source replica ${behind.id} does not hold the prepare entry yet`, replicaBehind: true };
  return { kind: 'commit' };
}

export class MergeDriver {
  /** Source regions with a commit, rollback or fence in flight. */
  private readonly inFlight = new Set<number>();
  /** Frozen sources led here whose commit waits for a replica -> since when (rebuilt each pass). */
  private behindSince = new Map<number, number>();

  constructor(
    private readonly host: MergeDriverHost,
    private readonly events: HostEventLog,
    private readonly commitWaitMs: number = limits.mergeCommitWaitMs,
  ) {}

  /** Looks at every frozen source led here (a property check per peer: cheap even at peersMax). */
  drive(peers: Iterable<Peer>, nowMs = monotonicNowMs()): void {
    const behind = new Map<number, number>();
    for (const source of peers) {
      if (source.merging === undefined || source.mergedAway || !source.isLeader() || this.inFlight.has(source.regionId)) continue;
      if (this.inFlight.size >= limits.mergesInFlightMax) break;
      const targetId = source.merging.targetRegionId;
      const target = this.host.peer(targetId);
      const step = nextMergeStep(source, target, target === undefined ? this.host.regionState(targetId) : null);
      if (step.kind === 'moveLeader') this.host.transferLeader(source.regionId, step.toPeerId);
      else if (step.kind !== 'wait') this.run(source.regionId, step.kind, () => this.host[step.kind === 'commit' ? 'commitMerge' : 'rollbackMerge'](source.regionId));
      else if (step.replicaBehind) {
        const since = this.behindSince.get(source.regionId) ?? nowMs;
        behind.set(source.regionId, since);
        if (nowMs - since < this.commitWaitMs) continue;
        this.events.warn({ regionId: source.regionId, targetRegionId: source.merging.targetRegionId, waitedMs: nowMs - since, why: step.why }, 'region merge can not commit: fencing the target to roll it back');
        this.run(source.regionId, 'fence', () => this.host.fenceMerges(targetId));
      }
    }
    this.behindSince = behind;
  }

  private run(sourceId: number, kind: 'commit' | 'rollback' | 'fence', propose: () => Promise<ProposalOutcome>): void {
    this.inFlight.add(sourceId);
    const work = propose();
    void work
      .then((outcome) => {
        if (outcome.kind === 'failed') this.events.info({ regionId: sourceId, step: kind, error: outcome.error.code }, 'region merge step did not apply; retried');
      })
      .catch((err: unknown) => this.events.warn({ regionId: sourceId, step: kind, err: String(err) }, 'region merge step failed'))
      .finally(() => this.inFlight.delete(sourceId));
  }
}
