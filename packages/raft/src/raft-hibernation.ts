import type { Raft } from './raft.ts';
import { NO_NODE, type Message } from './types.ts';

/**
 * Hibernation: when an idle group stops ticking, and what wakes it.
 */

/** True when the leader has nothing in flight: everyone has everything and it is applied. */
function isQuiet(r: Raft): boolean {
  const last = r.log.lastIndex();
  if (r.log.committed !== last || r.log.applied !== last) return false;
  if (r.leadTransferee !== NO_NODE || r.readOnly.size > 0 || r.pendingReadIndexMessages.length > 0) return false;
  if (r.tracker.config.voters.isJoint) return false;
  for (const pr of r.tracker.progress.values()) {
    if (pr.match !== last || pr.state !== 'replicate') return false;
  }
  return true;
}

/**
 * On a heartbeat tick: hibernates a group that has been quiet long enough, and returns true
 * — the caller then sends NO heartbeat round in this tick. A heartbeat in the same batch as
 * the hibernate message could reach a follower after it (hosts carry heartbeats and other
 * messages in different frames) and wake it again.
 */
export function maybeHibernate(r: Raft): boolean {
  if (r.cfg.hibernateAfterTicks === 0 || !isQuiet(r)) {
    r.idleTicks = 0;
    return false;
  }
  r.idleTicks += r.cfg.heartbeatTicks;
  if (r.idleTicks < r.cfg.hibernateAfterTicks) return false;
  const index = r.log.lastIndex();
  const logTerm = r.log.lastTerm();
  for (const id of r.tracker.memberIds()) {
    if (id !== r.id) r.send({ type: 'hibernate', to: id, index, logTerm, commit: r.log.committed });
  }
  r.hibernating = true;
  // Everyone has everything and no read is pending (isQuiet): let go of the memory of the
  // replication windows and of the read queue until the group wakes.
  for (const pr of r.tracker.progress.values()) pr.inflights.releaseIfEmpty();
  r.readOnly.clear();
  return true;
}

export function stepFollowerHibernate(r: Raft, m: Message): void {
  if (m.from !== r.lead) return;
  if (r.log.lastIndex() === m.index && r.log.matchTerm(m.index, m.logTerm)) {
    r.log.commitTo(Math.min(m.commit, m.index));
    r.hibernating = true;
    return;
  }
  r.send({ type: 'wakeUp', to: m.from });
}

/** Whether a message stepped into a hibernating node wakes it up. */
export function wakesOnMessage(r: Raft, m: Message): boolean {
  if (m.type === 'hibernate') return false;
  if (r.role !== 'leader') return true;
  // Late answers to the last heartbeats carry nothing new; they must not undo hibernation.
  if (m.type === 'heartbeatResponse' && m.context.byteLength === 0) return false;
  if (m.type === 'appendResponse' && !m.reject && m.index <= (r.tracker.progress.get(m.from)?.match ?? 0)) return false;
  return true;
}
