import { BOOTSTRAP_HARD_STATE, BOOTSTRAP_INDEX, BOOTSTRAP_TERM, bootstrapSnapshot, type ConfState, type HardState } from '@flotilla/raft';
import type { GroupLog, GroupWrite, RegionApply, RegionMeta } from '@flotilla/storage';

/**
 * Founding replicas: a region's raft group starting from the bootstrap snapshot (index 5,
 * term 5) over data already in place — a region bootstrapped by an operator or the placement
 * driver, and the child of a split. Every founding replica derives the same log from the
 * same metadata.
 */

/** The configuration a founding region's peers stand for (never joint). */
export function foundingConfState(region: RegionMeta): ConfState {
  return {
    voters: region.peers.filter((p) => p.role === 'voter').map((p) => p.id),
    learners: region.peers.filter((p) => p.role === 'learner').map((p) => p.id),
    votersOutgoing: [],
    learnersNext: [],
    autoLeave: false,
  };
}

/** The founding replica's log: the bootstrap snapshot with the region's configuration. */
export function foundingLogWrite(region: RegionMeta, hardState: HardState = BOOTSTRAP_HARD_STATE): GroupWrite {
  const confState = foundingConfState(region);
  return { groupId: region.id, snapshot: bootstrapSnapshot(confState).metadata, hardState, confState };
}

/**
 * A log holding a founding write and nothing since: the bootstrap snapshot, no entry, the
 * bootstrap hard state. A crash between a bootstrap's log write and its KV batch leaves one
 * with no KV region. Its raft node never started (a founding peer starts after both writes),
 * so it never voted nor acknowledged anything, and bootstrapping the region again keeps it
 * rather than writing the same snapshot again (which the log refuses as out of date). Its
 * configuration record is never read: the KV batch carries the one in force.
 */
export function isUnstartedFounding(log: Pick<GroupLog, 'hardState' | 'truncatedIndex' | 'lastIndex' | 'term'>): boolean {
  const hs = log.hardState();
  if (log.truncatedIndex() !== BOOTSTRAP_INDEX || log.lastIndex() !== BOOTSTRAP_INDEX) return false;
  if (log.term(BOOTSTRAP_INDEX) !== BOOTSTRAP_TERM) return false;
  return hs.term === BOOTSTRAP_HARD_STATE.term && hs.vote === BOOTSTRAP_HARD_STATE.vote && hs.commit === BOOTSTRAP_HARD_STATE.commit;
}

/**
 * The founding replica's KV state: the region, with its configuration, created and moved to
 * the bootstrap index in one batch.
 */
export function foundingApply(region: RegionMeta): RegionApply {
  const confState = foundingConfState(region);
  const { index, term } = bootstrapSnapshot(confState).metadata;
  return { regionId: region.id, appliedIndex: index, appliedTerm: term, commands: [{ op: 'putRegion', region, confState }] };
}
