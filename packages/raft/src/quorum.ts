import type { NodeId } from './types.ts';

/** Quorum arithmetic for majority and joint configurations (etcd-raft's quorum package). */

export type VoteResult = 'pending' | 'lost' | 'won';

/** Returns the index a member has acknowledged, or undefined when unknown. */
export type AckedIndexer = (id: NodeId) => number | undefined;

/**
 * The largest index acknowledged by a majority of `voters`. An empty configuration commits
 * everything (Infinity) so that it is neutral inside a joint configuration.
 */
export function majorityCommittedIndex(voters: ReadonlySet<NodeId>, acked: AckedIndexer): number {
  const n = voters.size;
  if (n === 0) return Number.POSITIVE_INFINITY;
  if (n === 3) {
    // The common group (three voters), once per ack: the median, without an array or a sort.
    const it = voters.values();
    const a = acked(it.next().value!) ?? 0;
    const b = acked(it.next().value!) ?? 0;
    const c = acked(it.next().value!) ?? 0;
    return Math.max(Math.min(a, b), Math.min(Math.max(a, b), c));
  }
  const indexes: number[] = [];
  for (const id of voters) indexes.push(acked(id) ?? 0);
  indexes.sort((a, b) => b - a);
  return indexes[Math.floor(n / 2)]!;
}

export function majorityVoteResult(voters: ReadonlySet<NodeId>, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.size === 0) return 'won';
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const vote = votes.get(id);
    if (vote === undefined) missing++;
    else if (vote) granted++;
  }
  const quorum = Math.floor(voters.size / 2) + 1;
  if (granted >= quorum) return 'won';
  if (granted + missing >= quorum) return 'pending';
  return 'lost';
}

/** A joint configuration: the incoming and (while joint) the outgoing voter sets. */
export class JointConfig {
  constructor(
    readonly incoming: ReadonlySet<NodeId>,
    readonly outgoing: ReadonlySet<NodeId>,
  ) {}

  get isJoint(): boolean {
    return this.outgoing.size > 0;
  }

  /** Union of both voter sets. */
  ids(): Set<NodeId> {
    const all = new Set(this.incoming);
    for (const id of this.outgoing) all.add(id);
    return all;
  }

  committedIndex(acked: AckedIndexer): number {
    return Math.min(majorityCommittedIndex(this.incoming, acked), majorityCommittedIndex(this.outgoing, acked));
  }

  voteResult(votes: ReadonlyMap<NodeId, boolean>): VoteResult {
    const incoming = majorityVoteResult(this.incoming, votes);
    const outgoing = majorityVoteResult(this.outgoing, votes);
    if (incoming === outgoing) return incoming;
    if (incoming === 'lost' || outgoing === 'lost') return 'lost';
    return 'pending';
  }
}
