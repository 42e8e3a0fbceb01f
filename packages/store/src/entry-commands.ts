import { BOOTSTRAP_INDEX, BOOTSTRAP_TERM, decodeConfChange, type Entry } from '@flotilla/raft';
import type { KvCommand, RegionMeta } from '@flotilla/storage';
import { decodeCommands } from './command-codec.ts';
import type { HostEventLog } from './host-types.ts';
import { decodeLocations, regionAfterChange } from './membership.ts';
import type { Peer } from './peer.ts';
import { planSplit } from './split.ts';

/** What applying an entry asks of the host once the cycle's KV batches are written. */
export interface EntryEffects {
  /** The change removed this store's replica: destroy it after the cycle. */
  removed(peer: Peer): void;
  /** A split created `child`: start its raft group here after the cycle. */
  split(child: RegionMeta, parentLeads: boolean): void;
  readonly events: HostEventLog;
}

/**
 * The KV commands a committed entry stands for, at apply time. Conf changes switch the raft
 * configuration here and the region's metadata follows in the same KV batch as the applied
 * index, so both agree after any crash; a split is planned identically at every replica.
 */
export function entryCommands(peer: Peer, entry: Entry, effects: EntryEffects): KvCommand[] {
  if (entry.type === 'confChange') return confChangeCommands(peer, entry, effects);
  if (entry.data.byteLength === 0) return [];
  const commands: KvCommand[] = [];
  for (const c of decodeCommands(entry.data)) {
    if (c.op !== 'split') {
      commands.push(c);
      continue;
    }
    const plan = planSplit(peer.region, peer.node.confState(), c, BOOTSTRAP_INDEX, BOOTSTRAP_TERM);
    if (!plan) {
      commands.push({ op: 'noop' }); // refused, identically at every replica
      continue;
    }
    peer.region = plan.parent;
    effects.split(plan.child, peer.isLeader());
    effects.events.info({ regionId: peer.regionId, newRegionId: plan.child.id, epoch: plan.parent.epoch }, 'region split');
    for (const k of plan.commands) commands.push(k);
  }
  return commands;
}

function confChangeCommands(peer: Peer, entry: Entry, effects: EntryEffects): KvCommand[] {
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
