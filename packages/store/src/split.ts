import type { ConfState } from '@flotilla/raft';
import type { KvCommand, RegionMeta } from '@flotilla/storage';
import type { SplitCommand } from './command-codec.ts';
import { foundingConfState } from './founding.ts';

/**
 * Region split, applied identically at every replica: the parent keeps [start, splitKey), the
 * new region takes [splitKey, end) with one new peer per member on the same stores, and both
 * get version + 1. The data does not move (one keyspace); only metadata changes, in the same
 * KV batch as the parent's applied index. The parent keeps its raft configuration (`confState`,
 * the one in force at the split entry); the child's is that of its peers, voters and learners
 * as their roles say. Returns null when the split must be refused — the
 * same decision everywhere: the region changed since the split was proposed, the key is not
 * strictly inside, the peer ids don't match, or the region is in a joint configuration.
 */
export interface SplitPlan {
  readonly parent: RegionMeta;
  readonly child: RegionMeta;
  readonly commands: readonly KvCommand[];
}

export function planSplit(region: RegionMeta, confState: ConfState, split: SplitCommand, childAppliedIndex: number, childAppliedTerm: number): SplitPlan | null {
  const { version, confVer } = region.epoch;
  if (split.epoch.version !== version || split.epoch.confVer !== confVer) return null;
  if (confState.votersOutgoing.length > 0) return null;
  if (Buffer.compare(split.splitKey, region.startKey) <= 0) return null;
  if (region.endKey.byteLength > 0 && Buffer.compare(split.splitKey, region.endKey) >= 0) return null;
  if (split.newPeerIds.length !== region.peers.length || split.newRegionId === region.id) return null;
  const epoch = { version: version + 1, confVer };
  const parent: RegionMeta = { ...region, endKey: split.splitKey, epoch };
  const child: RegionMeta = {
    id: split.newRegionId,
    startKey: split.splitKey,
    endKey: region.endKey,
    epoch,
    peers: region.peers.map((p, i) => ({ id: split.newPeerIds[i]!, storeId: p.storeId, role: p.role })),
  };
  return {
    parent,
    child,
    commands: [
      { op: 'putRegion', region: parent, confState },
      { op: 'putRegion', region: child, confState: foundingConfState(child), appliedIndex: childAppliedIndex, appliedTerm: childAppliedTerm },
    ],
  };
}
