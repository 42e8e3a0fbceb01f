import { EMPTY_BYTES, NO_NODE, type Message, type NodeId } from './types.ts';
import { isRaftError } from './errors.ts';
import type { Raft } from './raft.ts';
import { broadcastAppend } from './raft-replication.ts';
import { handleAppend, handleHeartbeat, handleSnapshot } from './raft-follower.ts';
import { stepFollowerHibernate } from './raft-hibernation.ts';

/**
 * Elections: campaigns (pre-vote, vote, forced by a transfer), vote counting, and the
 * candidate's step function.
 */

/** Marks a vote request that a leadership transfer forced: it ignores the voters' leases. */
export const TRANSFER_CONTEXT: Uint8Array = new TextEncoder().encode('flotilla:campaign-transfer');

export type CampaignKind = 'preElection' | 'election' | 'transfer';

export function hup(r: Raft, kind: CampaignKind): void {
  if (r.role === 'leader' || !r.promotable()) return;
  if (hasUnappliedConfChanges(r)) return; // its config may be about to change under it
  campaign(r, kind);
}

function hasUnappliedConfChanges(r: Raft): boolean {
  if (r.log.committed <= r.log.applied) return false;
  try {
    const pending = r.log.slice(r.log.applied + 1, r.log.committed + 1, Number.POSITIVE_INFINITY);
    return pending.some((e) => e.type === 'confChange');
  } catch (err) {
    if (isRaftError(err)) return true; // can't tell: be conservative
    throw err;
  }
}

export function campaign(r: Raft, kind: CampaignKind): void {
  let voteType: 'vote' | 'preVote';
  let term: number;
  if (kind === 'preElection') {
    r.becomePreCandidate();
    voteType = 'preVote';
    term = r.term + 1; // the term we would campaign in
  } else {
    r.becomeCandidate();
    voteType = 'vote';
    term = r.term;
  }
  if (poll(r, r.id, true) === 'won') {
    // A single voter wins at once.
    if (kind === 'preElection') campaign(r, 'election');
    else r.becomeLeader();
    return;
  }
  const context = kind === 'transfer' ? TRANSFER_CONTEXT : EMPTY_BYTES;
  for (const id of r.tracker.voterIds()) {
    if (id === r.id) continue;
    r.send({ type: voteType, to: id, term, index: r.log.lastIndex(), logTerm: r.log.lastTerm(), context });
  }
}

function poll(r: Raft, id: NodeId, granted: boolean): 'pending' | 'lost' | 'won' {
  r.tracker.recordVote(id, granted);
  return r.tracker.tallyVotes().result;
}

export function stepCandidate(r: Raft, m: Message): void {
  const myResponse = r.role === 'preCandidate' ? 'preVoteResponse' : 'voteResponse';
  switch (m.type) {
    case 'propose':
      r.dropProposal(m, `node ${r.id} is campaigning; no leader to take the proposal`);
      return;
    case 'append':
      r.becomeFollower(m.term, m.from);
      handleAppend(r, m);
      return;
    case 'heartbeat':
      r.becomeFollower(m.term, m.from);
      handleHeartbeat(r, m);
      return;
    case 'snapshot':
      r.becomeFollower(m.term, m.from);
      handleSnapshot(r, m);
      return;
    case 'hibernate':
      r.becomeFollower(m.term, m.from);
      stepFollowerHibernate(r, m);
      return;
    case 'voteResponse':
    case 'preVoteResponse': {
      if (m.type !== myResponse) return;
      const result = poll(r, m.from, !m.reject);
      if (result === 'won') {
        if (r.role === 'preCandidate') {
          campaign(r, 'election');
        } else {
          r.becomeLeader();
          broadcastAppend(r);
        }
      } else if (result === 'lost') {
        // (A rejection carrying a higher term already made us a follower of that term.)
        r.becomeFollower(r.term, NO_NODE);
      }
      return;
    }
    default:
      return; // timeoutNow, transfers and reads need a leader; the host retries
  }
}
