import { assert, isRaftError } from './errors.ts';
import type { Progress } from './progress.ts';
import type { Raft } from './raft.ts';
import { EMPTY_BYTES, type Entry, type NodeId } from './types.ts';
import { entriesBytes } from './util.ts';

/**
 * Replication to followers: appends within the flow-control window, snapshots for those
 * behind the log, and heartbeats.
 */

export function sendAppend(r: Raft, to: NodeId): void {
  maybeSendAppend(r, to, true);
}

/**
 * Sends entries (or a snapshot, or an empty append to carry the commit index) to `to`.
 * Returns false when nothing was sent: paused, nothing new, or entries not readable now.
 */
export function maybeSendAppend(r: Raft, to: NodeId, sendIfEmpty: boolean): boolean {
  const pr = r.tracker.progress.get(to);
  if (!pr || pr.isPaused()) return false;
  const prevIndex = pr.next - 1;
  const prevTerm = r.log.termOrUndefined(prevIndex);
  if (prevTerm === undefined) return sendSnapshot(r, to, pr);
  let entries: Entry[];
  try {
    entries = r.log.entries(pr.next, r.cfg.appendBytesMax);
  } catch (err) {
    if (isRaftError(err, 'FLOTILLA_RAFT_COMPACTED')) return sendSnapshot(r, to, pr);
    if (isRaftError(err, 'FLOTILLA_RAFT_LOG_TEMPORARILY_UNAVAILABLE')) return false;
    throw err;
  }
  if (entries.length === 0 && !sendIfEmpty) return false;
  if (entries.length > 0 && pr.inflights.count === 0) pr.flowTick = r.leaderTick;
  r.send({ type: 'append', to, index: prevIndex, logTerm: prevTerm, entries, commit: r.log.committed, leaderTick: r.leaderTick });
  pr.appendedSinceBeat = true;
  const last = entries[entries.length - 1];
  pr.sentEntries(last ? last.index : prevIndex, entriesBytes(entries), entries.length);
  return true;
}

function sendSnapshot(r: Raft, to: NodeId, pr: Progress): boolean {
  if (!pr.recentActive) return false; // don't ship a snapshot to a node that may be down
  let snapshot;
  try {
    snapshot = r.log.snapshot();
  } catch (err) {
    if (isRaftError(err, 'FLOTILLA_RAFT_SNAPSHOT_TEMPORARILY_UNAVAILABLE')) return false;
    throw err;
  }
  assert(snapshot.metadata.index > 0, 'need a non-empty snapshot to send');
  r.send({ type: 'snapshot', to, snapshot });
  pr.becomeSnapshot(snapshot.metadata.index);
  return true;
}

export function broadcastAppend(r: Raft): void {
  for (const id of r.tracker.memberIds()) if (id !== r.id) sendAppend(r, id);
}

/**
 * After the commit index advanced: sends new entries where there are any (they carry the
 * commit), but no append that would only carry the commit — the follower learns it from its
 * next append or, at the latest, from the next heartbeat (`commit = min(match, committed)`),
 * within one heartbeat interval. (etcd-raft sends these commit-only appends, deduplicated
 * by `sentCommit`; raft-rs can skip them, `skip_bcast_commit`, as here.) While a configuration change
 * is pending — including a new leader's first entry — the commit is broadcast at once, as
 * raft-rs does, so members switch configurations without waiting for a heartbeat.
 * `alsoTo` gets an append even if empty (a follower that was paused may have missed commits).
 */
export function broadcastCommit(r: Raft, committedBefore: number, alsoTo: NodeId | undefined): void {
  const eager = r.pendingConfIndex > committedBefore;
  for (const id of r.tracker.memberIds()) {
    if (id !== r.id) maybeSendAppend(r, id, eager || id === alsoTo);
  }
}

/**
 * A heartbeat to every follower. `round` is the periodic round of the heartbeat tick: it skips
 * a follower that is replicating and was sent an append since the previous round, when no
 * read waits for a heartbeat quorum. That append did the heartbeat's work: the follower
 * restarted its election timer, and its response echoes the append's leader tick, which
 * counts for the lease and CheckQuorum as a heartbeat's ack would. The follower then hears
 * from the leader at least every two heartbeat intervals (the skip applies only when
 * electionTicks > 2 * heartbeatTicks), and learns the commit index from its
 * next append or heartbeat. A follower in probe or snapshot state always gets its heartbeat:
 * the response is what lets the leader probe again.
 */
export function broadcastHeartbeat(r: Raft, round = false): void {
  const context = r.readOnly.lastPendingContext() ?? EMPTY_BYTES;
  const mayskip = round && context.byteLength === 0 && 2 * r.cfg.heartbeatTicks < r.cfg.electionTicks;
  for (const id of r.tracker.memberIds()) {
    if (id === r.id) continue;
    const pr = r.tracker.progress.get(id)!;
    const appended = pr.appendedSinceBeat;
    pr.appendedSinceBeat = false;
    if (mayskip && appended && pr.state === 'replicate') continue;
    // Never tell a follower to commit past what it is known to have (etcd-raft #2161).
    const commit = Math.min(pr.match, r.log.committed);
    r.send({ type: 'heartbeat', to: id, commit, context, leaderTick: r.leaderTick });
  }
}
