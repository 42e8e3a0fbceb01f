import { assert } from './errors.ts';
import { restoreConfig } from './confchange.ts';
import type { Raft } from './raft.ts';
import { hup } from './raft-election.ts';
import { stepFollowerHibernate } from './raft-hibernation.ts';
import { NO_NODE, type Message, type NodeId } from './types.ts';

/**
 * The follower's step function: appends, heartbeats and snapshots from the leader, and
 * forwarding of proposals, transfers and reads.
 */

export function stepFollower(r: Raft, m: Message): void {
  switch (m.type) {
    case 'propose':
      if (r.lead === NO_NODE) r.dropProposal(m, `node ${r.id} knows no leader`);
      else if (r.cfg.disableProposalForwarding) r.dropProposal(m, `node ${r.id} is not the leader and does not forward proposals`);
      else r.send({ type: 'propose', to: r.lead, entries: m.entries });
      return;
    case 'append':
      heardFromLeader(r, m.from);
      handleAppend(r, m);
      return;
    case 'heartbeat':
      heardFromLeader(r, m.from);
      handleHeartbeat(r, m);
      return;
    case 'snapshot':
      heardFromLeader(r, m.from);
      handleSnapshot(r, m);
      return;
    case 'hibernate':
      r.lead = m.from;
      stepFollowerHibernate(r, m);
      return;
    case 'transferLeader':
      // `from` names the transfer's target: keep it when forwarding.
      if (r.lead !== NO_NODE) r.msgs.push({ ...m, to: r.lead, term: 0 });
      return;
    case 'timeoutNow':
      // The leader chose us: campaign now, ignoring leases (we are as up to date as it is).
      hup(r, 'transfer');
      return;
    case 'readIndex':
      if (r.lead === NO_NODE) return; // dropped: the host's request times out and retries
      r.msgs.push({ ...m, to: r.lead, from: m.from === NO_NODE ? r.id : m.from });
      return;
    case 'readIndexResponse':
      if (m.from === r.lead) r.log.commitTo(m.commit); // min(match, committed), as a heartbeat's
      r.readStates.push({ index: m.index, context: m.context });
      return;
    default:
      return;
  }
}

function heardFromLeader(r: Raft, leader: NodeId): void {
  r.electionElapsed = 0;
  r.lead = leader;
  r.startupLease = false; // the leader's own lease rule takes over
}

/** Every answer echoes the append's leader tick: the leader counts it as a heartbeat's ack. */
export function handleAppend(r: Raft, m: Message): void {
  const leaderTick = m.leaderTick;
  if (m.index < r.log.committed) {
    r.send({ type: 'appendResponse', to: m.from, index: r.log.committed, leaderTick });
    return;
  }
  const lastNew = r.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
  if (lastNew !== undefined) {
    r.send({ type: 'appendResponse', to: m.from, index: lastNew, leaderTick });
    return;
  }
  // Tell the leader where our logs may agree: the last index with a term <= its logTerm.
  const hint = r.log.findConflictByTerm(Math.min(m.index, r.log.lastIndex()), m.logTerm);
  r.send({ type: 'appendResponse', to: m.from, index: m.index, reject: true, rejectHint: hint.index, logTerm: hint.term, leaderTick });
}

export function handleHeartbeat(r: Raft, m: Message): void {
  r.log.commitTo(m.commit);
  r.send({ type: 'heartbeatResponse', to: m.from, context: m.context, leaderTick: m.leaderTick });
}

export function handleSnapshot(r: Raft, m: Message): void {
  const snapshot = m.snapshot;
  assert(snapshot !== null, 'snapshot message without a snapshot');
  const outcome = restore(r, snapshot);
  if (outcome === 'installed') {
    r.send({ type: 'appendResponse', to: m.from, index: r.log.lastIndex() });
  } else if (outcome === 'alreadyHave') {
    r.send({ type: 'appendResponse', to: m.from, index: r.log.committed });
  }
  // 'notAMember': no answer. An answer would read as success and make the leader resend at
  // once; silence leaves it to retry after the next heartbeat, with a newer snapshot.
}

/** Installs a snapshot if it is newer than what we have committed. */
export function restore(r: Raft, snapshot: NonNullable<Message['snapshot']>): 'installed' | 'alreadyHave' | 'notAMember' {
  const meta = snapshot.metadata;
  if (meta.index <= r.log.committed) return 'alreadyHave';
  assert(r.role === 'follower', 'only followers install snapshots');
  const cs = meta.confState;
  const members = [...cs.voters, ...cs.learners, ...cs.votersOutgoing];
  // A snapshot from before we joined can't be right for us; the leader will send a newer one.
  if (!members.includes(r.id)) return 'notAMember';
  if (r.log.matchTerm(meta.index, meta.term)) {
    // We already have the entries: fast-forward the commit index instead of discarding the log.
    r.log.commitTo(meta.index);
    return 'alreadyHave';
  }
  r.log.restore(snapshot);
  if (r.cfg.faults.snapshotIgnoresConfState !== true) {
    r.switchToConfig(restoreConfig((next, learner) => r.tracker.newProgress(next, learner), cs, r.log.lastIndex()));
  }
  return 'installed';
}
