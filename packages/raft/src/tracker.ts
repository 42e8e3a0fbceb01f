import { JointConfig, type VoteResult } from './quorum.ts';
import { Progress } from './progress.ts';
import type { ConfState, NodeId } from './types.ts';

/** A membership configuration in its in-memory form. */
export interface TrackerConfig {
  readonly voters: JointConfig;
  readonly learners: ReadonlySet<NodeId>;
  readonly learnersNext: ReadonlySet<NodeId>;
  readonly autoLeave: boolean;
}

export const EMPTY_TRACKER_CONFIG: TrackerConfig = {
  voters: new JointConfig(new Set(), new Set()),
  learners: new Set(),
  learnersNext: new Set(),
  autoLeave: false,
};

export function toConfState(config: TrackerConfig): ConfState {
  const sorted = (ids: Iterable<NodeId>): NodeId[] => [...ids].sort((a, b) => a - b);
  return {
    voters: sorted(config.voters.incoming),
    votersOutgoing: sorted(config.voters.outgoing),
    learners: sorted(config.learners),
    learnersNext: sorted(config.learnersNext),
    autoLeave: config.autoLeave,
  };
}

export function confStatesEqual(a: ConfState, b: ConfState): boolean {
  const same = (x: readonly NodeId[], y: readonly NodeId[]): boolean => {
    const xs = [...x].sort((p, q) => p - q);
    const ys = [...y].sort((p, q) => p - q);
    return xs.length === ys.length && xs.every((v, i) => v === ys[i]);
  };
  return (
    same(a.voters, b.voters) &&
    same(a.votersOutgoing, b.votersOutgoing) &&
    same(a.learners, b.learners) &&
    same(a.learnersNext, b.learnersNext) &&
    a.autoLeave === b.autoLeave
  );
}

const NO_VOTES: ReadonlyMap<NodeId, boolean> = new Map();

/**
 * The leader's (and candidate's) view of the group: configuration, progress, votes. The votes
 * map exists only during an election (allocated by the first vote, dropped by resetVotes).
 */
export class ProgressTracker {
  config: TrackerConfig = EMPTY_TRACKER_CONFIG;
  progress = new Map<NodeId, Progress>();
  private votesMap: Map<NodeId, boolean> | null = null;

  constructor(
    readonly inflightMessagesMax: number,
    readonly inflightBytesMax: number,
  ) {}

  /** The voter ids of both halves of the configuration, sorted (deterministic iteration). */
  voterIds(): NodeId[] {
    return [...this.config.voters.ids()].sort((a, b) => a - b);
  }

  /**
   * Every member (voters and learners), sorted. Read-only and cached: a configuration change
   * replaces the progress map (confchange.ts copies it), which drops the cache; a term change
   * replaces entries under the same ids. Called for every append and heartbeat round.
   */
  memberIds(): readonly NodeId[] {
    if (this.memberIdsOf !== this.progress) {
      this.memberIdsCache = [...this.progress.keys()].sort((a, b) => a - b);
      this.memberIdsOf = this.progress;
    }
    return this.memberIdsCache;
  }

  private memberIdsOf: Map<NodeId, Progress> | null = null;
  private memberIdsCache: readonly NodeId[] = [];

  isSingleton(): boolean {
    return this.config.voters.incoming.size === 1 && this.config.voters.outgoing.size === 0;
  }

  /** The largest index acknowledged by a quorum (joint-aware). */
  committed(): number {
    return this.config.voters.committedIndex((id) => this.progress.get(id)?.match);
  }

  /** The largest leader tick a quorum has acknowledged a heartbeat of (for the read lease). */
  quorumAckedLeaderTick(selfId: NodeId, selfTick: number): number {
    return this.config.voters.committedIndex((id) => (id === selfId ? selfTick : this.progress.get(id)?.ackedLeaderTick));
  }

  /** True when a quorum was recently active (the leader counts itself). */
  quorumActive(selfId: NodeId): boolean {
    const votes = new Map<NodeId, boolean>();
    for (const [id, pr] of this.progress) {
      if (pr.isLearner) continue;
      votes.set(id, id === selfId || pr.recentActive);
    }
    return this.config.voters.voteResult(votes) === 'won';
  }

  get votes(): ReadonlyMap<NodeId, boolean> {
    return this.votesMap ?? NO_VOTES;
  }

  resetVotes(): void {
    this.votesMap = null;
  }

  recordVote(id: NodeId, granted: boolean): void {
    this.votesMap ??= new Map();
    if (!this.votesMap.has(id)) this.votesMap.set(id, granted);
  }

  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const [id, pr] of this.progress) {
      if (pr.isLearner) continue;
      const vote = this.votes.get(id);
      if (vote === undefined) continue;
      if (vote) granted++;
      else rejected++;
    }
    return { granted, rejected, result: this.config.voters.voteResult(this.votes) };
  }

  newProgress(next: number, isLearner: boolean): Progress {
    return new Progress(next, this.inflightMessagesMax, this.inflightBytesMax, isLearner);
  }
}
