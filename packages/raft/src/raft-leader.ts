import { decodeConfChange } from './confchange-codec.ts';
import { isLeaveJoint } from './confchange.ts';
import { assert, RaftError } from './errors.ts';
import type { Progress } from './progress.ts';
import type { Raft } from './raft.ts';
import { leaderReadIndex, releasePendingReadIndexMessages, respondToRead } from './raft-reads.ts';
import { broadcastCommit, broadcastHeartbeat, sendAppend, maybeSendAppend } from './raft-replication.ts';
import { EMPTY_BYTES, NO_NODE, type Entry, type Message, type NodeId } from './types.ts';
import { payloadBytes } from './util.ts';

/**
 * The leader's step function: proposals (and the one-change-at-a-time rule), commit,
 * replication responses, CheckQuorum and leadership transfer.
 */

export function stepLeader(r: Raft, m: Message): void {
  switch (m.type) {
    case 'beat':
      broadcastHeartbeat(r, true);
      return;
    case 'checkQuorum':
      checkQuorum(r);
      return;
    case 'propose':
      leaderPropose(r, m);
      return;
    case 'readIndex':
      leaderReadIndex(r, m);
      return;
    case 'transferLeader':
      leaderTransfer(r, m);
      return;
    case 'wakeUp':
      return; // stepping it already woke us; the heartbeat round brings the follower along
    default:
      break;
  }
  const pr = r.tracker.progress.get(m.from);
  if (!pr) return; // from a node no longer in the configuration
  switch (m.type) {
    case 'appendResponse':
      handleAppendResponse(r, m, pr);
      return;
    case 'heartbeatResponse':
      handleHeartbeatResponse(r, m, pr);
      return;
    case 'snapshotStatus':
      if (pr.state !== 'snapshot') return;
      // Success or failure, probe from the snapshot on; wait for the next heartbeat response.
      if (m.reject) pr.pendingSnapshot = 0;
      pr.becomeProbe();
      pr.probeSent = true;
      return;
    case 'unreachable':
      if (pr.state === 'replicate') pr.becomeProbe();
      return;
    default:
      return;
  }
}

export function checkQuorum(r: Raft): void {
  if (!r.tracker.quorumActive(r.id)) {
    r.becomeFollower(r.term, NO_NODE);
    return;
  }
  for (const [id, pr] of r.tracker.progress) if (id !== r.id) pr.recentActive = false;
}

function leaderPropose(r: Raft, m: Message): void {
  assert(m.entries.length > 0, 'empty proposal');
  if (!r.tracker.progress.has(r.id)) {
    r.dropProposal(m, `leader ${r.id} was removed from the group`);
    return;
  }
  if (r.leadTransferee !== NO_NODE) {
    r.dropProposal(m, `leadership is being transferred to ${r.leadTransferee}`);
    return;
  }
  let confChangeAccepted = false;
  const entries = m.entries.map((e) => {
    if (e.type !== 'confChange') return e;
    const vetted = vetConfChange(r, e, m.from, confChangeAccepted);
    if (vetted.type === 'confChange') confChangeAccepted = true;
    return vetted;
  });
  if (!appendEntries(r, entries)) {
    r.dropProposal(m, `uncommitted entries exceed ${r.cfg.uncommittedBytesMax} bytes`);
    return;
  }
  r.appendsPending = true;
}

/**
 * One configuration change at a time, and only after this leader committed an entry of its
 * term (pendingConfIndex starts at the last index of the previous term). A refused change
 * from a follower becomes an empty entry; a local one throws.
 */
function vetConfChange(r: Raft, entry: Entry, from: NodeId, anotherInThisBatch: boolean): Entry {
  const cc = decodeConfChange(entry.data);
  const alreadyPending = anotherInThisBatch || r.pendingConfIndex > r.log.applied;
  const alreadyJoint = r.tracker.config.voters.isJoint;
  const wantsLeaveJoint = isLeaveJoint(cc);
  let refusal: string | undefined;
  if (alreadyPending) {
    refusal = `the entry at ${r.pendingConfIndex} (an earlier change, or this leader's first entry) is not applied yet (applied ${r.log.applied})`;
  }
  else if (alreadyJoint && !wantsLeaveJoint) refusal = 'must leave the joint configuration first';
  else if (!alreadyJoint && wantsLeaveJoint) refusal = 'not in a joint configuration';
  if (refusal === undefined) return entry; // appendEntries records its index as pending
  if (from === r.id || from === NO_NODE) throw new RaftError('FLOTILLA_RAFT_CONF_CHANGE_REJECTED', refusal);
  return { ...entry, type: 'normal', data: EMPTY_BYTES };
}

/**
 * Assigns index and term and appends to the leader's own log; false when over the
 * uncommitted budget (payload bytes, as etcd counts). Entries the protocol itself needs (a
 * new leader's empty entry, leaving a joint configuration) are exempt: refusing them would
 * stall the group.
 */
export function appendEntries(r: Raft, proposed: readonly Pick<Entry, 'type' | 'data'>[], { exemptFromBudget = false } = {}): boolean {
  const bytes = payloadBytes(proposed);
  if (!exemptFromBudget) {
    if (r.uncommittedBytes > 0 && bytes > 0 && r.uncommittedBytes + bytes > r.cfg.uncommittedBytesMax) return false;
    r.uncommittedBytes += bytes;
  }
  let index = r.log.lastIndex();
  const entries: Entry[] = proposed.map((e) => {
    index++;
    if (e.type === 'confChange') r.pendingConfIndex = index;
    return { index, term: r.term, type: e.type, data: e.data };
  });
  r.log.append(entries);
  // The leader's own copy counts only once persisted (leaderPersisted, from advance()): the
  // host may send these entries to the followers while it writes them (types.ts, Ready).
  return true;
}

/**
 * The host persisted the leader's log up to its persisted index: the leader's own copy counts
 * towards the commit from now on. Counting it at append time would let a quorum form of one
 * follower's durable copy and the leader's volatile one, which a power loss of the leader
 * then loses while a follower without the entry may win the next election.
 */
export function leaderPersisted(r: Raft): void {
  const self = r.tracker.progress.get(r.id);
  if (self === undefined || !self.maybeUpdate(r.log.persistedIndex())) return;
  const committedBefore = r.log.committed;
  if (maybeCommit(r)) broadcastCommit(r, committedBefore, undefined);
}

export function maybeCommit(r: Raft): boolean {
  const quorumIndex = r.tracker.committed();
  if (r.cfg.faults.commitOldTermByCounting === true) {
    // Injected bug: commit by counting replicas whatever the entry's term.
    if (quorumIndex > r.log.committed && quorumIndex <= r.log.lastIndex()) {
      r.log.commitTo(quorumIndex);
      onCommitted(r);
      return true;
    }
    return false;
  }
  if (r.log.maybeCommit(Math.min(quorumIndex, r.log.lastIndex()), r.term)) {
    onCommitted(r);
    return true;
  }
  return false;
}

function onCommitted(r: Raft): void {
  if (r.pendingReadIndexMessages.length > 0 && committedEntryInCurrentTerm(r)) releasePendingReadIndexMessages(r);
}

export function committedEntryInCurrentTerm(r: Raft): boolean {
  return r.log.term(r.log.committed) === r.term;
}

function handleAppendResponse(r: Raft, m: Message, pr: Progress): void {
  pr.recentActive = true;
  // The follower echoes the leader tick of the append it answers: an ack for the lease, as a
  // heartbeat's (it restarted its election timer when the append arrived).
  if (m.leaderTick > pr.ackedLeaderTick) pr.ackedLeaderTick = m.leaderTick;
  if (m.reject) {
    let probeFrom = m.rejectHint;
    if (m.logTerm > 0) probeFrom = r.log.findConflictByTerm(m.rejectHint, m.logTerm).index;
    if (pr.maybeDecrTo(m.index, probeFrom)) {
      if (pr.state === 'replicate') pr.becomeProbe();
      sendAppend(r, m.from);
    }
    return;
  }
  const wasPaused = pr.isPaused();
  const matchBefore = pr.match;
  if (!pr.maybeUpdate(m.index) && !(pr.match === m.index && pr.state === 'probe')) return;
  if (pr.match > matchBefore) pr.flowTick = r.leaderTick;
  if (pr.state === 'probe') {
    pr.becomeReplicate();
  } else if (pr.state === 'snapshot' && pr.match + 1 >= r.log.firstIndex()) {
    // The snapshot (or entries since) caught the follower up: replicate from here.
    pr.becomeProbe();
    pr.becomeReplicate();
  } else if (pr.state === 'replicate') {
    pr.inflights.freeLE(m.index);
  }
  const committedBefore = r.log.committed;
  if (maybeCommit(r)) {
    broadcastCommit(r, committedBefore, wasPaused ? m.from : undefined);
  } else if (wasPaused) {
    sendAppend(r, m.from);
  }
  // Fill the window: send while there is something to send and room for it.
  while (maybeSendAppend(r, m.from, false)) {
    /* keep sending */
  }
  if (m.from === r.leadTransferee && pr.match === r.log.lastIndex()) {
    sendTimeoutNow(r, m.from);
  }
}

function handleHeartbeatResponse(r: Raft, m: Message, pr: Progress): void {
  pr.recentActive = true;
  pr.probeSent = false;
  if (m.leaderTick > pr.ackedLeaderTick) pr.ackedLeaderTick = m.leaderTick;
  // Lost appends leave a full window that nothing would ever drain: let one more through.
  const windowFull = pr.state === 'replicate' && pr.inflights.full();
  if (windowFull) pr.inflights.freeFirstOne();
  const last = r.log.lastIndex();
  if (pr.match < last) {
    // In replicate state with every entry already sent, an empty append is only a probe for
    // lost appends (the follower rejects it if it misses entries). Skip it while the flow
    // is moving; send it once entries have been outstanding for over a heartbeat interval.
    const inFlight = pr.state === 'replicate' && pr.next > last && !windowFull;
    const stalled = r.leaderTick - pr.flowTick > r.cfg.heartbeatTicks;
    if (!inFlight || stalled) sendAppend(r, m.from);
  }
  if (m.context.byteLength === 0) return;
  const acks = r.readOnly.recvAck(m.from, m.context);
  if (!acks) return;
  const votes = new Map<NodeId, boolean>();
  for (const id of acks) votes.set(id, true);
  if (r.tracker.config.voters.voteResult(votes) !== 'won') return;
  for (const read of r.readOnly.advance(m.context)) respondToRead(r, read.request, read.index);
}

function leaderTransfer(r: Raft, m: Message): void {
  const target = m.from;
  const pr = r.tracker.progress.get(target);
  if (!pr || pr.isLearner) return;
  if (r.leadTransferee !== NO_NODE) {
    if (r.leadTransferee === target) return;
    r.abortLeaderTransfer();
  }
  if (target === r.id) return;
  r.electionElapsed = 0; // the transfer must finish within one election timeout
  r.leadTransferee = target;
  r.leaseNotBeforeTick = Number.POSITIVE_INFINITY;
  if (pr.match === r.log.lastIndex()) {
    sendTimeoutNow(r, target);
  } else {
    sendAppend(r, target); // catch it up first; timeoutNow follows its ack
  }
}

/**
 * A TimeoutNow makes its target campaign with forced votes that ignore leases, whenever it
 * arrives — even after this leader gave up on the transfer. So once one is sent, the lease
 * is gone for the rest of the term (reads fall back to ReadIndex).
 */
function sendTimeoutNow(r: Raft, target: NodeId): void {
  r.leaseDisabledForTerm = true;
  r.send({ type: 'timeoutNow', to: target });
}
