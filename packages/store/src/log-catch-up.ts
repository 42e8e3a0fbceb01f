import type { GroupLog, GroupWrite, KvEngine, LogEngine, RegionState } from '@flotilla/storage';
import type { HostEventLog } from './host-types.ts';
import { StoreError } from './errors.ts';

/**
 * The two engines agree again after a crash. A region's KV record (data, applied index and
 * configuration, written together) may be AHEAD of its raft log, because two writes reach the
 * KV engine before the log:
 * - a received snapshot is installed in the KV engine, synced, and only then stepped into the
 *   core, whose next Ready writes the snapshot metadata to the log;
 * - a split child's region record is written in its parent's apply batch, and the child's
 *   founding log write (the bootstrap snapshot) follows at the end of the cycle.
 * A crash in between leaves an applied index above the log's commit (often above its last
 * index, or no log group at all), and a raft node cannot start from that: it asserts that
 * nothing is applied beyond the commit.
 *
 * The repair is the log write the crash cut off, derived from the KV record alone: bring the
 * log to the applied index, as the core does when it restores a snapshot. It is safe because
 * everything at or below a KV applied index is committed: a snapshot holds its leader's
 * APPLIED state (snapshots.ts sends the KV snapshot's own index, term and configuration), and a
 * split child starts at the bootstrap index with its founding configuration, at every replica
 * the same. Recording it as committed is what the interrupted cycle would have written:
 * - the log holds the entry at the applied index with the applied term: only the commit
 *   moves. The entries after it stay; this replica may have acknowledged them, and a leader
 *   may have counted that acknowledgement to commit them;
 * - otherwise the log becomes the snapshot at the applied index (every entry goes, as in the
 *   core's restore). Entries after a point where this log differs from a committed entry can't
 *   be committed (log matching), so none of them was acknowledged towards a commit.
 * The hard state never goes back: its term and vote stay unless the applied term is newer
 * (then no vote was cast in that term here). A vote cast is never forgotten, so a placeholder
 * that voted before the crash still counts as having voted. Nothing the crashed process sent
 * depended on the lost write: the host sends only after its log write is durable (but a
 * leader's appends and heartbeats, which promise nothing about its own log).
 *
 * The same write founds a split child in the normal course (host.ts, startSplitChild), so the
 * restart path is the everyday path. Answers null when the log is not behind.
 */
export function logCatchUpWrite(state: RegionState, log: Pick<GroupLog, 'hardState' | 'truncatedIndex' | 'lastIndex' | 'term'>): GroupWrite | null {
  const { appliedIndex: index, appliedTerm: term, confState } = state;
  const groupId = state.region.id;
  const old = log.hardState();
  if (old.commit >= index) return null;
  // The persisted commit bounds compaction, so the applied index is above the log's truncation.
  if (index <= log.truncatedIndex()) {
    throw new StoreError('FLOTILLA_STORE_INTERNAL', `region ${groupId}: applied ${index} at or below the log's truncation ${log.truncatedIndex()} but above its commit ${old.commit}`);
  }
  if (index <= log.lastIndex() && log.term(index) === term) return { groupId, hardState: { ...old, commit: index } };
  const hardState = old.term >= term ? { ...old, commit: index } : { term, vote: 0, commit: index };
  return { groupId, snapshot: { index, term, confState }, hardState, confState };
}

/**
 * At a store's start, before any raft node does: the log writes a crash cut off.
 * - `catchUp`: each log behind its region's KV record gets the write above (logCatchUpWrite);
 * - `destroy`: a replica's log is destroyed only after its tombstone is durable in the KV
 *   engine (a removal, a merged-away source), so a crash in between leaves the log of a
 *   tombstone: it is destroyed now. Logs of regions the KV engine does not know are kept (an
 *   unstarted founding, a placeholder's vote history).
 */
export function restartLogWrites(resumed: readonly RegionState[], log: LogEngine, kv: Pick<KvEngine, 'region'>, events: HostEventLog): { catchUp: GroupWrite[]; destroy: GroupWrite[] } {
  const catchUp: GroupWrite[] = [];
  for (const state of resumed) {
    const group = log.group(state.region.id);
    const write = logCatchUpWrite(state, group);
    if (write === null) continue;
    catchUp.push(write);
    events.warn({ regionId: state.region.id, applied: state.appliedIndex, logCommit: group.hardState().commit, logLastIndex: group.lastIndex() }, 'log behind the KV engine after a crash: brought to the applied index');
  }
  const leftover = log.groupIds().filter((id) => kv.region(id)?.status === 'tombstone');
  if (leftover.length > 0) events.warn({ regions: leftover.length, first: leftover[0] }, 'destroying the logs of removed replicas a crash left behind');
  return { catchUp, destroy: leftover.map((groupId) => ({ groupId, destroy: true })) };
}
