/**
 * Runs the operator steps PD answers region heartbeats with, on the region's leader here:
 * membership changes, leadership transfers, splits and merges, through the same host calls as the
 * admin API. A step PD repeats while it is still running is not started twice; a step that
 * fails is logged and left to PD, which asks again on the next heartbeat or times it out.
 */
import type { KvEngine } from '@flotilla/storage';
import type { PdOperatorStep, RegionCommand } from '@flotilla/wire';
import type { HostEventLog } from '../host-types.ts';
import type { MultiRaftHost } from '../host.ts';
import { membershipChangeProblem, type MembershipChange } from '../membership.ts';
import { isPending } from './peer-health.ts';
import { middleKey } from './region-size.ts';

/** Steps running at once (each holds a region's proposal or a split scan). */
export const operatorStepsInFlightMax = 256;

export class OperatorRunner {
  /** Region id -> the step running there (operator id and step type). */
  private readonly inFlight = new Map<number, string>();

  constructor(
    private readonly host: MultiRaftHost,
    private readonly kv: KvEngine,
    private readonly events: HostEventLog,
  ) {}

  /** Starts the command's step unless it runs already; never throws. */
  run(command: RegionCommand): void {
    const tag = `${command.operatorId}:${command.step.type}`;
    if (this.inFlight.get(command.regionId) === tag || this.inFlight.size >= operatorStepsInFlightMax) return;
    this.inFlight.set(command.regionId, tag);
    void this.execute(command)
      .then((problem) => {
        if (problem) this.events.warn({ regionId: command.regionId, operatorId: command.operatorId, step: command.step.type, problem }, 'PD operator step not run');
      })
      .catch((err: unknown) => this.events.warn({ regionId: command.regionId, operatorId: command.operatorId, err: String(err) }, 'PD operator step failed'))
      .finally(() => this.inFlight.delete(command.regionId));
  }

  get running(): number {
    return this.inFlight.size;
  }

  /** Runs the step; answers why it could not run, or null. */
  private async execute(command: RegionCommand): Promise<string | null> {
    const peer = this.host.peer(command.regionId);
    if (!peer || !peer.isLeader()) return 'this store does not lead the region any more';
    const step = command.step;
    switch (step.type) {
      case 'addLearner':
        // PD repeats the step until the learner has caught up: once it is a member, nothing to do.
        if (peer.region.peers.some((p) => p.id === step.peerId && p.storeId === step.storeId)) return null;
        return this.changeMembership(command.regionId, [{ type: 'addLearner', peerId: step.peerId, storeId: step.storeId }]);
      case 'changeVoters': {
        const done = step.promote.every((p) => peer.region.peers.some((q) => q.id === p.peerId && q.role === 'voter')) && step.remove.every((p) => !peer.region.peers.some((q) => q.id === p.peerId));
        if (done) return null;
        const behind = step.promote.find((p) => !this.caughtUp(command.regionId, p.peerId));
        if (behind) return `learner ${behind.peerId} has not caught up yet: promoting it would make a voter without the data`;
        return this.changeMembership(command.regionId, [
          ...step.promote.map((p): MembershipChange => ({ type: 'addVoter', peerId: p.peerId, storeId: p.storeId })),
          ...step.remove.map((p): MembershipChange => ({ type: 'remove', peerId: p.peerId })),
        ]);
      }
      case 'removePeer':
        return this.changeMembership(command.regionId, [{ type: 'remove', peerId: step.peerId }]);
      case 'transferLeader': {
        const target = peer.region.peers.find((p) => p.storeId === step.toStoreId && p.role === 'voter');
        if (!target) return `store ${step.toStoreId} holds no voter of the region`;
        this.host.transferLeader(command.regionId, target.id);
        return null;
      }
      case 'split':
        return this.split(command, step);
      case 'merge':
        return this.merge(command, step);
    }
  }

  /**
   * Freezes the source (this region) to merge into its neighbour. Prepared where the target is
   * led too, so the target's epoch it records is current and the commit is proposed locally:
   * if the target is led elsewhere, the source's leadership moves there first and PD sends the
   * step to the new leader. Once frozen, the host's merge driver finishes it (merge-driver.ts).
   */
  private async merge(command: RegionCommand, step: Extract<PdOperatorStep, { type: 'merge' }>): Promise<string | null> {
    const source = this.host.peer(command.regionId);
    if (!source) return 'no replica here';
    if (source.merging !== undefined) return null; // frozen already: the merge driver goes on
    if (source.region.epoch.version !== command.regionEpoch.version) {
      return `the region's version is ${source.region.epoch.version}, the operator was made at ${command.regionEpoch.version}: it split or merged since`;
    }
    const target = this.host.peer(step.targetRegionId);
    if (!target || target.placeholder) return `no replica of target region ${step.targetRegionId} on this store: the two regions are not on the same stores`;
    if (!target.isLeader()) {
      const leaderStore = target.storeOf(target.node.leader);
      const there = source.region.peers.find((p) => p.storeId === leaderStore && p.role === 'voter');
      if (!there) return `target region ${step.targetRegionId} has no leader beside a voter of this region yet`;
      this.host.transferLeader(command.regionId, there.id);
      return `moving this region's leadership to store ${leaderStore}, where target region ${step.targetRegionId} is led`;
    }
    const outcome = await this.host.prepareMerge(command.regionId, step.targetRegionId);
    return outcome.kind === 'failed' ? `prepare merge failed: ${outcome.error.code}` : null;
  }

  /** Whether the leader's view of `peerId` shows it replicating, past any snapshot, near the log's end. */
  private caughtUp(regionId: number, peerId: number): boolean {
    const status = this.host.peer(regionId)?.node.status();
    const progress = status?.progress.get(peerId);
    if (!status || !progress) return false;
    return progress.state === 'replicate' && !isPending(progress, status.firstIndex, status.lastIndex);
  }

  private async changeMembership(regionId: number, changes: MembershipChange[]): Promise<string | null> {
    const peer = this.host.peer(regionId);
    if (!peer) return 'no replica here';
    const config = peer.node.confState();
    // A joint configuration left over from an earlier change is left first; PD asks again.
    if (config.votersOutgoing.length > 0) changes = [];
    const problem = membershipChangeProblem(peer.region, config, changes);
    if (problem) return problem;
    const outcome = await this.host.changeMembership(regionId, changes);
    return outcome.kind === 'failed' ? `membership change failed: ${outcome.error.code}` : null;
  }

  /**
   * Splits at PD's keys (or the region's middle key), one region per key with the ids PD sent
   * (1 + members per piece). Keys are cut from the highest down, so each lies inside what the
   * region still holds; each split waits for the one before to apply.
   */
  private async split(command: RegionCommand, step: Extract<PdOperatorStep, { type: 'split' }>): Promise<string | null> {
    const peer = this.host.peer(command.regionId);
    if (!peer) return 'no replica here';
    if (peer.region.epoch.version !== command.regionEpoch.version) {
      return `the region's version is ${peer.region.epoch.version}, the operator was made at ${command.regionEpoch.version}: it split or merged since (a repeated step)`;
    }
    const perPiece = 1 + peer.region.peers.length;
    const keys = step.keys.length > 0 ? step.keys : [await middleKey(this.kv, peer.region)];
    if (keys[0] === null || keys[0] === undefined) return 'the region has fewer than two keys: nothing to split';
    const ids = command.newIds ?? [];
    if (ids.length < keys.length * perPiece) return `PD sent ${ids.length} new ids, a split of this region at ${keys.length} keys needs ${keys.length * perPiece}`;
    for (let i = keys.length - 1; i >= 0; i--) {
      const piece = ids.slice(i * perPiece, (i + 1) * perPiece);
      const outcome = await this.host.split(command.regionId, keys[i]!, piece[0]!, piece.slice(1));
      if (outcome.kind === 'failed') return `split at key ${i + 1} of ${keys.length} failed: ${outcome.error.code}`;
    }
    return null;
  }

}
