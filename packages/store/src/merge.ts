import type { ConfState } from '@flotilla/raft';
import type { KvCommand, MergeState, RegionEpoch, RegionMeta } from '@flotilla/storage';
import type { CommitMergeCommand, FenceMergesCommand, PrepareMergeCommand, RollbackMergeCommand } from './command-codec.ts';

/**
 * Region merge, as TiKV does it, in three admin entries planned identically at every replica:
 *
 * 1. PrepareMerge in the SOURCE: the source's version moves on and it freezes (MergeState):
 *    from this entry on it applies no write, split or membership change and serves no read.
 * 2. CommitMerge in the TARGET, carrying the frozen source's metadata and where its prepare
 *    entry is: each target replica waits until ITS source replica applied the prepare (the
 *    host holds the target's apply meanwhile), then takes the source's range in one KV batch
 *    with the source's tombstone. The data does not move (one keyspace).
 * 3. RollbackMerge in the source, only once the target's epoch moved past the one the merge
 *    was prepared against: no CommitMerge of this merge can apply any more, anywhere (each
 *    carries that epoch), so the source may safely thaw.
 *
 * A commit that can't be made (a source replica is down without the prepare entry) would
 * leave the source frozen for as long: the source's leader then fences the target (FenceMerges:
 * its version moves on, so no commit of this merge can pass), and rolls back (step 3).
 *
 * A merge needs the two regions adjacent and on the same stores, neither in a joint
 * configuration. Every refusal returns null: the entry applies as a noop everywhere.
 */

function sameEpoch(a: RegionEpoch, b: RegionEpoch): boolean {
  return a.version === b.version && a.confVer === b.confVer;
}

export function adjacent(a: RegionMeta, b: RegionMeta): boolean {
  return (a.endKey.byteLength > 0 && Buffer.compare(a.endKey, b.startKey) === 0) || (b.endKey.byteLength > 0 && Buffer.compare(b.endKey, a.startKey) === 0);
}

/** Both regions have replicas on exactly the same stores (roles may differ). */
export function sameStores(a: RegionMeta, b: RegionMeta): boolean {
  const stores = (r: RegionMeta): string => [...new Set(r.peers.map((p) => p.storeId))].sort((x, y) => x - y).join(',');
  return stores(a) === stores(b);
}

function joint(cs: ConfState): boolean {
  return cs.votersOutgoing.length > 0;
}

export interface PrepareMergePlan {
  readonly region: RegionMeta;
  readonly merging: MergeState;
  readonly commands: readonly KvCommand[];
}

/** The source freezes at the prepare entry (`index`, `term`); null when refused. */
export function planPrepareMerge(source: RegionMeta, confState: ConfState, merging: MergeState | undefined, c: PrepareMergeCommand, index: number, term: number): PrepareMergePlan | null {
  if (merging !== undefined || joint(confState) || c.targetRegionId === source.id || !sameEpoch(c.epoch, source.epoch)) return null;
  const region: RegionMeta = { ...source, epoch: { version: source.epoch.version + 1, confVer: source.epoch.confVer } };
  const state: MergeState = { targetRegionId: c.targetRegionId, targetEpoch: c.targetEpoch, prepareIndex: index, prepareTerm: term };
  return { region, merging: state, commands: [{ op: 'putRegion', region, confState, merging: state }] };
}

/** Why the target can't take the source by this CommitMerge (the same answer at every replica), or null. */
export function commitMergeRefusal(target: RegionMeta, confState: ConfState, c: CommitMergeCommand): string | null {
  if (!sameEpoch(target.epoch, c.targetEpoch)) return `the target's epoch is ${target.epoch.version}/${target.epoch.confVer}, the merge was prepared at ${c.targetEpoch.version}/${c.targetEpoch.confVer}`;
  if (joint(confState)) return 'the target is in a joint configuration';
  if (c.source.id === target.id || !adjacent(target, c.source)) return 'the source is not adjacent to the target';
  if (!sameStores(target, c.source)) return 'the source and the target are not on the same stores';
  return null;
}

/** The target after taking the source: the union range, a version past both, the target's peers. */
export function mergedRegion(target: RegionMeta, source: RegionMeta): RegionMeta {
  const sourceFirst = source.endKey.byteLength > 0 && Buffer.compare(source.endKey, target.startKey) === 0;
  return {
    ...target,
    startKey: sourceFirst ? source.startKey : target.startKey,
    endKey: sourceFirst ? target.endKey : source.endKey,
    epoch: { version: Math.max(target.epoch.version, source.epoch.version) + 1, confVer: target.epoch.confVer },
  };
}

/** The target's KV commands of an accepted CommitMerge: its new metadata, the source's tombstone. */
export function commitMergeCommands(target: RegionMeta, confState: ConfState, c: CommitMergeCommand): { region: RegionMeta; commands: KvCommand[] } {
  const region = mergedRegion(target, c.source);
  return { region, commands: [{ op: 'putRegion', region, confState }, { op: 'tombstoneRegion', regionId: c.source.id }] };
}

/** The source thaws: version + 1, no merge state; null when it is not frozen at that epoch. */
export function planRollbackMerge(source: RegionMeta, confState: ConfState, merging: MergeState | undefined, c: RollbackMergeCommand): { region: RegionMeta; commands: KvCommand[] } | null {
  if (merging === undefined || !sameEpoch(source.epoch, c.epoch)) return null;
  const region: RegionMeta = { ...source, epoch: { version: source.epoch.version + 1, confVer: source.epoch.confVer } };
  return { region, commands: [{ op: 'putRegion', region, confState }] };
}

/**
 * Whether the target replica here shows that no CommitMerge of `merging` can ever apply: its
 * applied epoch moved past the prepared one (never behind it in either part). A target that
 * took the source ended the source replica here in the same apply, so a live frozen source
 * beside a moved target means the merge failed (see the file comment, step 3).
 */
export function targetMovedOn(target: RegionMeta, merging: MergeState): boolean {
  const now = target.epoch;
  const then = merging.targetEpoch;
  return now.version >= then.version && now.confVer >= then.confVer && !sameEpoch(now, then);
}

/** The target's version moves on (no pending merge prepared against it can commit); null when its epoch changed since. */
export function planFenceMerges(target: RegionMeta, confState: ConfState, c: FenceMergesCommand): { region: RegionMeta; commands: KvCommand[] } | null {
  if (!sameEpoch(target.epoch, c.epoch)) return null;
  const region: RegionMeta = { ...target, epoch: { version: target.epoch.version + 1, confVer: target.epoch.confVer } };
  return { region, commands: [{ op: 'putRegion', region, confState }] };
}
