import { BOOTSTRAP_INDEX, BOOTSTRAP_TERM, decodeConfChange, type Entry } from '@flotilla/raft';
import type { KvCommand, RegionMeta } from '@flotilla/storage';
import { decodeCommands, isDataCommand, type CommitMergeCommand, type DataCommand, type EntryCommand } from './command-codec.ts';
import type { HostEventLog } from './host-types.ts';
import { decodeLocations, regionAfterChange } from './membership.ts';
import type { Peer } from './peer.ts';
import { commitMergeCommands, commitMergeRefusal, planFenceMerges, planPrepareMerge, planRollbackMerge } from './merge.ts';
import { planSplit } from './split.ts';

/** What applying an entry asks of the host once the cycle's KV batches are written. */
export interface EntryEffects {
  /** The change removed this store's replica: destroy it after the cycle. */
  removed(peer: Peer): void;
  /** A split created `child`: start its raft group here after the cycle. */
  split(child: RegionMeta, parentLeads: boolean): void;
  /** This store's replica of a merge's source, or undefined. */
  replica(regionId: number): Peer | undefined;
  /**
   * A merge's target must wait at its CommitMerge entry until `source` here applied the
   * prepare entry: the host holds the target's apply and resumes it (entryCommands answers null).
   */
  waitForSource(target: Peer, source: Peer | undefined, merge: CommitMergeCommand): void;
  readonly events: HostEventLog;
}

/**
 * The KV commands a committed entry stands for, at apply time. Conf changes switch the raft
 * configuration here and the region's metadata follows in the same KV batch as the applied
 * index, so both agree after any crash; a split is planned identically at every replica.
 */
export function entryCommands(peer: Peer, entry: Entry, effects: EntryEffects): KvCommand[] | null {
  if (entry.type === 'confChange') return confChangeCommands(peer, entry, effects);
  if (entry.data.byteLength === 0) return [];
  return decodedCommands(peer, entry, decodeCommands(entry.data), effects);
}

/**
 * entryCommands for an entry of plain data (puts, deletes, CAS, range deletes); null, with no
 * effect, for anything else: a conf change, an admin command, any entry of a region frozen for
 * a merge, and an empty entry (a new leader's first: the raft core refuses conf changes until
 * it learns that one applied). The cycle's early apply (ApplyStage.applyDurable) takes only
 * these; the rest wait for the cycle's advance(), as before.
 */
export function dataEntryCommands(peer: Peer, entry: Entry, effects: EntryEffects): KvCommand[] | null {
  if (entry.type === 'confChange' || entry.data.byteLength === 0 || peer.merging !== undefined) return null;
  const decoded = decodeCommands(entry.data);
  // Data commands are KV commands as they are (a region not frozen applies them unchanged):
  // the decoded list is the entry's command list, with no copy and no array per command.
  return allData(decoded) ? decoded : null;
}

function allData(decoded: EntryCommand[]): decoded is DataCommand[] {
  for (const c of decoded) if (!isDataCommand(c)) return false;
  return true;
}

function decodedCommands(peer: Peer, entry: Entry, decoded: EntryCommand[], effects: EntryEffects): KvCommand[] | null {
  // A CommitMerge travels alone in its entry (host.commitMerge): the only command that waits.
  const merge = decoded.length === 1 && decoded[0]!.op === 'commitMerge' ? decoded[0] : undefined;
  if (merge !== undefined) return commitMerge(peer, merge, effects);
  const commands: KvCommand[] = [];
  for (const c of decoded) for (const k of commandEffects(peer, entry, c, effects)) commands.push(k);
  return commands;
}

/** The KV commands of one decoded command (admin commands change the region first). */
function commandEffects(peer: Peer, entry: Entry, c: EntryCommand, effects: EntryEffects): readonly KvCommand[] {
  // A frozen source applies nothing but its rollback: every replica refuses the same entries.
  if (peer.merging !== undefined && c.op !== 'rollbackMerge') return NOOP;
  switch (c.op) {
    case 'split': {
      const plan = planSplit(peer.region, peer.node.confState(), c, BOOTSTRAP_INDEX, BOOTSTRAP_TERM);
      if (!plan) return NOOP; // refused, identically at every replica
      peer.region = plan.parent;
      effects.split(plan.child, peer.isLeader());
      effects.events.info({ regionId: peer.regionId, newRegionId: plan.child.id, epoch: plan.parent.epoch }, 'region split');
      return plan.commands;
    }
    case 'prepareMerge': {
      const plan = planPrepareMerge(peer.region, peer.node.confState(), peer.merging, c, entry.index, entry.term);
      if (!plan) return NOOP;
      peer.region = plan.region;
      peer.merging = plan.merging;
      effects.events.info({ regionId: peer.regionId, targetRegionId: c.targetRegionId, epoch: plan.region.epoch, prepareIndex: entry.index }, 'region frozen to merge');
      return plan.commands;
    }
    case 'rollbackMerge': {
      const plan = planRollbackMerge(peer.region, peer.node.confState(), peer.merging, c);
      if (!plan) return NOOP;
      peer.region = plan.region;
      peer.merging = undefined;
      effects.events.warn({ regionId: peer.regionId, epoch: plan.region.epoch }, 'region merge rolled back: the target changed first');
      return plan.commands;
    }
    case 'fenceMerges': {
      const plan = planFenceMerges(peer.region, peer.node.confState(), c);
      if (!plan) return NOOP;
      peer.region = plan.region;
      effects.events.warn({ regionId: peer.regionId, epoch: plan.region.epoch }, 'region fenced off the merges prepared against it');
      return plan.commands;
    }
    case 'commitMerge':
      return NOOP; // only alone in its entry (see entryCommands)
    default:
      return [c];
  }
}

const NOOP: readonly KvCommand[] = [{ op: 'noop' }];

/**
 * The target takes the source — once the source replica HERE applied its prepare entry (the
 * data of the source's range in this store's keyspace is then final). Until then the entry
 * waits (null). The source replica ends in the same KV batch (its tombstone) and is destroyed
 * after the cycle.
 */
function commitMerge(target: Peer, c: CommitMergeCommand, effects: EntryEffects): KvCommand[] | null {
  // A target frozen to merge elsewhere takes nothing (its own merge carries its range as frozen).
  const refusal = target.merging !== undefined ? 'the target is itself frozen for a merge' : commitMergeRefusal(target.region, target.node.confState(), c);
  if (refusal !== null) {
    effects.events.warn({ regionId: target.regionId, sourceRegionId: c.source.id, refusal }, 'region merge refused by the target');
    return [{ op: 'noop' }];
  }
  const source = effects.replica(c.source.id);
  if (source === undefined || source.placeholder || source.applied < c.prepareIndex) {
    effects.waitForSource(target, source, c);
    return null;
  }
  const { region, commands } = commitMergeCommands(target.region, target.node.confState(), c);
  target.region = region;
  source.mergedAway = true;
  effects.removed(source);
  effects.events.info({ regionId: target.regionId, sourceRegionId: c.source.id, epoch: region.epoch }, 'region merged');
  return commands;
}

function confChangeCommands(peer: Peer, entry: Entry, effects: EntryEffects): KvCommand[] {
  // A frozen source changes no membership: the change is not applied, at every replica alike
  // (the raft configuration stays; the proposer sees a noop).
  if (peer.merging !== undefined) return [{ op: 'noop' }];
  const cc = decodeConfChange(entry.data);
  const cs = peer.node.applyConfChange(cc);
  const region = regionAfterChange(peer.region, cs, decodeLocations(cc.context));
  peer.region = region;
  effects.events.info({ regionId: peer.regionId, epoch: region.epoch, peers: region.peers }, 'region membership changed');
  if (!region.peers.some((p) => p.id === peer.peerId)) {
    effects.removed(peer);
    return [{ op: 'tombstoneRegion', regionId: peer.regionId }];
  }
  // The configuration in force from this entry on, in the batch with its applied index: a
  // restart from that index starts the group with it (snapshots.ts, PeerRaftStorage).
  return [{ op: 'putRegion', region, confState: cs }];
}
