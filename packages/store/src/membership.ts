import type { ConfChange, ConfChangeSingle, ConfChangeTransition, ConfState } from '@flotilla/raft';
import type { RegionMeta } from '@flotilla/storage';
import { Packr } from 'msgpackr';
import { StoreError } from './errors.ts';

/**
 * Membership changes of a region. The raft ConfChange decides WHO is a member; its context
 * carries only WHERE added members live (peer id -> store id). Every replica derives the
 * region's peers and roles from the configuration it applied, so all replicas compute the
 * same metadata at the same index — including outgoing voters while joint, which must stay
 * reachable until the joint configuration is left. Every applied change bumps confVer.
 */
export type MembershipChange =
  | { readonly type: 'addLearner'; readonly peerId: number; readonly storeId: number }
  | { readonly type: 'addVoter'; readonly peerId: number; readonly storeId: number }
  | { readonly type: 'remove'; readonly peerId: number };

const CONTEXT_VERSION = 1;
const packr = new Packr({ useRecords: false });

export function toConfChange(changes: readonly MembershipChange[], transition: ConfChangeTransition = 'auto'): ConfChange {
  const singles: ConfChangeSingle[] = changes.map((c) => ({
    type: c.type === 'addLearner' ? 'addLearnerNode' : c.type === 'addVoter' ? 'addNode' : 'removeNode',
    nodeId: c.peerId,
  }));
  const locations = changes.flatMap((c) => (c.type === 'remove' ? [] : [[c.peerId, c.storeId]]));
  return { transition, changes: singles, context: Uint8Array.from(packr.pack([CONTEXT_VERSION, locations])) };
}

/** Peer id -> store id of the members a change adds (empty for a leave-joint entry). */
export function decodeLocations(context: Uint8Array): Map<number, number> {
  const locations = new Map<number, number>();
  if (context.byteLength === 0) return locations;
  const decoded: unknown = packr.unpack(context);
  if (!Array.isArray(decoded) || decoded[0] !== CONTEXT_VERSION || !Array.isArray(decoded[1])) {
    throw new StoreError('FLOTILLA_STORE_CORRUPT_ENTRY', 'malformed membership context');
  }
  for (const pair of decoded[1] as unknown[]) {
    if (!Array.isArray(pair) || !Number.isSafeInteger(pair[0]) || !Number.isSafeInteger(pair[1])) {
      throw new StoreError('FLOTILLA_STORE_CORRUPT_ENTRY', 'malformed membership location');
    }
    locations.set(pair[0] as number, pair[1] as number);
  }
  return locations;
}

/** The region after a configuration change: peers and roles from `cs`, confVer + 1. */
export function regionAfterChange(region: RegionMeta, cs: ConfState, added: ReadonlyMap<number, number>): RegionMeta {
  const storeOf = new Map<number, number>(region.peers.map((p) => [p.id, p.storeId]));
  for (const [peerId, storeId] of added) storeOf.set(peerId, storeId);
  const voters = new Set([...cs.voters, ...cs.votersOutgoing]);
  const ids = [...new Set([...cs.voters, ...cs.votersOutgoing, ...cs.learners, ...cs.learnersNext])].sort((a, b) => a - b);
  const peers = ids.flatMap((id) => {
    const storeId = storeOf.get(id);
    return storeId === undefined ? [] : [{ id, storeId, role: voters.has(id) ? ('voter' as const) : ('learner' as const) }];
  });
  return { ...region, epoch: { version: region.epoch.version, confVer: region.epoch.confVer + 1 }, peers };
}

/**
 * Why `changes` can't apply to the region's current configuration, or null when they can.
 * The raft core vets a proposed change for ordering only; one that can't apply (no voter
 * left) would throw on every replica when applied and stop the stores. The admin API checks
 * first, on the leader, whose configuration is the one the change will meet. It also refuses
 * what raft would accept but the store can't host (two replicas of a region on one store) and
 * no-ops (a member added again, a non-member removed), which would only bump confVer.
 * An empty list leaves a joint configuration (transition 'explicit').
 */
export function membershipChangeProblem(region: RegionMeta, config: ConfState, changes: readonly MembershipChange[]): string | null {
  const joint = config.votersOutgoing.length > 0;
  if (changes.length === 0) return joint ? null : 'an empty change list leaves a joint configuration, and the region is not in one';
  if (joint) return 'the region is in a joint configuration: leave it first (an empty change list)';
  const voters = new Set(config.voters);
  const storeOf = new Map<number, number>(region.peers.map((p) => [p.id, p.storeId]));
  for (const change of changes) {
    const store = storeOf.get(change.peerId);
    if (change.type === 'remove') {
      if (store === undefined) return `peer ${change.peerId} is not a member of region ${region.id}`;
      storeOf.delete(change.peerId);
      voters.delete(change.peerId);
      continue;
    }
    if (store === undefined) {
      for (const [peerId, storeId] of storeOf) {
        if (storeId === change.storeId) return `store ${change.storeId} already hosts peer ${peerId} of region ${region.id}`;
      }
      storeOf.set(change.peerId, change.storeId);
    } else if (store !== change.storeId) {
      return `peer ${change.peerId} lives on store ${store}, not ${change.storeId}`;
    } else if (voters.has(change.peerId) === (change.type === 'addVoter')) {
      return `peer ${change.peerId} is a ${change.type === 'addVoter' ? 'voter' : 'learner'} already`;
    }
    if (change.type === 'addVoter') voters.add(change.peerId);
    else voters.delete(change.peerId);
  }
  return voters.size === 0 ? 'no voter would be left' : null;
}
