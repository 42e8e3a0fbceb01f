import type { Raft } from './raft.ts';
import { broadcastHeartbeat } from './raft-replication.ts';
import { NO_NODE, type Message } from './types.ts';
import { committedEntryInCurrentTerm } from './raft-leader.ts';

/**
 * Linearizable reads at the leader: ReadIndex rounds and lease reads.
 */

export function leaderReadIndex(r: Raft, m: Message): void {
  if (r.tracker.isSingleton()) {
    respondToRead(r, m, r.log.committed);
    return;
  }
  if (!committedEntryInCurrentTerm(r)) {
    // The commit index of a fresh leader may lag the real one until its empty entry commits.
    if (r.pendingReadIndexMessages.length >= r.cfg.pendingReadIndexMax) return;
    r.pendingReadIndexMessages.push(m);
    return;
  }
  serveReadIndex(r, m);
}

function serveReadIndex(r: Raft, m: Message): void {
  if (r.cfg.readOnlyOption === 'leaseBased' && r.leaseValid()) {
    respondToRead(r, m, leaseHeld(r));
    return;
  }
  if (r.readOnly.isFull()) return; // dropped: the host's request times out and retries
  r.readOnly.add(r.log.committed, m);
  r.readOnly.recvAck(r.id, m.context);
  broadcastHeartbeat(r);
}

/**
 * A linearizable read at this node answered at once from its lease, with no request, no round
 * and no Ready: the index to serve it at (the read waits until the host applied it), or
 * undefined when a ReadIndex request is needed instead (not the leader, leases off or void,
 * no entry of its term committed yet). Same checks and index as a lease-served readIndex().
 */
export function leaseReadIndex(r: Raft): number | undefined {
  if (r.cfg.readOnlyOption !== 'leaseBased' || r.role !== 'leader') return undefined;
  if (r.tracker.isSingleton()) return r.log.committed;
  if (!committedEntryInCurrentTerm(r) || !r.leaseValid()) return undefined;
  return leaseHeld(r);
}

/** A lease read is served: the index it reads at. */
function leaseHeld(r: Raft): number {
  // A group serving reads is not idle, though its lease reads send nothing: it stays awake,
  // and its heartbeats keep the lease (a hibernated leader has none, so reads take rounds).
  r.idleTicks = 0;
  return r.log.committed;
}

export function releasePendingReadIndexMessages(r: Raft): void {
  const pending = r.pendingReadIndexMessages;
  r.pendingReadIndexMessages = [];
  for (const m of pending) serveReadIndex(r, m);
}

export function respondToRead(r: Raft, request: Message, index: number): void {
  if (request.from === NO_NODE || request.from === r.id) {
    r.readStates.push({ index, context: request.context });
  } else {
    // The commit rides along (as on a heartbeat: never past what the follower is known to
    // have), so a follower read need not wait for the next append or heartbeat to apply.
    const match = r.tracker.progress.get(request.from)?.match ?? 0;
    const commit = Math.min(match, r.log.committed);
    r.send({ type: 'readIndexResponse', to: request.from, index, context: request.context, commit });
  }
}
