/**
 * Operators as explicit step lists, and how PD judges their progress from region heartbeats.
 *
 * Builders never do I/O: new peer ids and operator ids come from `allocateId`. A region's
 * leader executes the current step; PD sees it done in a later heartbeat (`stepDone`). The
 * server keeps, per running operator, the index of the current step and passes it back as
 * `fromStep`, so a done step is never judged again (a leader that moves back after a transfer
 * step does not rewind the operator).
 */
import type { Operator, OperatorOrigin, OperatorStep, RegionInfo, RegionMeta, RegionPeer } from '../cluster/types.ts';
import type { OperatorKind, ScheduleConfig } from './config.ts';
import { assert, isPeerUnhealthy, leaderPeer, leaderStoreId, peerOnStore, voters, type AllocateId } from './types.ts';

type Epoch = RegionMeta['epoch'];

/** Who made the operator, why, and the clock: what every builder needs besides the steps. */
export interface OperatorMeta {
  readonly origin: OperatorOrigin;
  readonly reason: string;
  readonly priority: number;
  readonly nowMs: number;
  readonly timeouts: ScheduleConfig['operatorTimeoutMs'];
}

export function operatorKind(steps: readonly OperatorStep[]): OperatorKind {
  if (steps.some((s) => s.type === 'merge')) return 'merge';
  if (steps.some((s) => s.type === 'split')) return 'split';
  if (steps.some((s) => s.type === 'addLearner' || s.type === 'changeVoters' || s.type === 'removePeer')) return 'peer';
  return 'leader';
}

function makeOperator(region: RegionInfo, steps: readonly OperatorStep[], meta: OperatorMeta, allocateId: AllocateId): Operator {
  assert(steps.length > 0, 'an operator has at least one step');
  return {
    id: allocateId(),
    regionId: region.meta.id,
    regionEpoch: { version: region.meta.epoch.version, confVer: region.meta.epoch.confVer },
    origin: meta.origin,
    reason: meta.reason,
    steps,
    priority: meta.priority,
    createdMs: meta.nowMs,
    timeoutMs: meta.timeouts[operatorKind(steps)],
  };
}

/** The regions an operator holds: its own, and a merge's target (nothing else may touch either). */
export function regionsHeldBy(op: Operator): number[] {
  const held = [op.regionId];
  for (const step of op.steps) if (step.type === 'merge') held.push(step.targetRegionId);
  return held;
}

/** Stores of the region's healthy voters other than `leavingStoreId`: who could take leadership over. */
export function leaderCandidates(region: RegionInfo, leavingStoreId: number): number[] {
  return voters(region)
    .filter((p) => p.storeId !== leavingStoreId && !isPeerUnhealthy(region, p.id))
    .map((p) => p.storeId);
}

export function buildTransferLeader(region: RegionInfo, toStoreId: number, meta: OperatorMeta, allocateId: AllocateId): Operator {
  const from = leaderStoreId(region);
  const to = peerOnStore(region, toStoreId);
  assert(from !== 0, 'transfer leader needs a known leader');
  assert(to !== undefined && to.role === 'voter', 'leadership goes to a voter');
  assert(from !== toStoreId, 'transfer leader to another store');
  return makeOperator(region, [{ type: 'transferLeader', fromStoreId: from, toStoreId }], meta, allocateId);
}

/** Add a voter on `storeId`: as a learner first (it catches up by snapshot without counting in quorums), then promote. */
export function buildAddReplica(region: RegionInfo, storeId: number, meta: OperatorMeta, allocateId: AllocateId): Operator {
  assert(peerOnStore(region, storeId) === undefined, 'one replica of a region per store');
  const added = { storeId, peerId: allocateId() };
  const steps: OperatorStep[] = [
    { type: 'addLearner', ...added },
    { type: 'changeVoters', promote: [added], remove: [] },
  ];
  return makeOperator(region, steps, meta, allocateId);
}

/** Promote a learner already in the region. */
export function buildPromoteLearner(region: RegionInfo, storeId: number, meta: OperatorMeta, allocateId: AllocateId): Operator {
  const peer = peerOnStore(region, storeId);
  assert(peer !== undefined && peer.role === 'learner', 'only a learner is promoted');
  return makeOperator(region, [{ type: 'changeVoters', promote: [{ storeId, peerId: peer.id }], remove: [] }], meta, allocateId);
}

/** Steps that move leadership off `storeId` first, when its peer leads; [] otherwise. */
function leaderAwaySteps(region: RegionInfo, storeId: number, leaderTo: number | undefined): OperatorStep[] {
  if (leaderStoreId(region) !== storeId) return [];
  assert(leaderTo !== undefined, 'the leader leaves only when another voter can take over');
  assert(leaderCandidates(region, storeId).includes(leaderTo), 'leadership goes to another healthy voter');
  return [{ type: 'transferLeader', fromStoreId: storeId, toStoreId: leaderTo }];
}

/**
 * Remove the replica on `storeId`. If it leads, leadership goes first to `leaderTo` (one of
 * `leaderCandidates`, chosen by the caller); returns null when the leader has no successor.
 */
export function buildRemoveReplica(region: RegionInfo, storeId: number, meta: OperatorMeta, allocateId: AllocateId, leaderTo?: number): Operator | null {
  const peer = peerOnStore(region, storeId);
  assert(peer !== undefined, 'remove an existing replica');
  if (leaderStoreId(region) === storeId && leaderTo === undefined) return null;
  const steps = [...leaderAwaySteps(region, storeId, leaderTo), { type: 'removePeer' as const, storeId, peerId: peer.id }];
  return makeOperator(region, steps, meta, allocateId);
}

/** A voter moves: learner on the target, then one joint change that promotes it and removes the old. */
function moveVoterSteps(region: RegionInfo, old: RegionPeer, added: { storeId: number; peerId: number }, leaderTo: number | undefined): OperatorStep[] {
  const oldRef = { storeId: old.storeId, peerId: old.id };
  if (leaderStoreId(region) === old.storeId && leaderTo === undefined) {
    // No other voter can lead: promote the new peer first, hand it leadership, then remove.
    return [
      { type: 'addLearner', ...added },
      { type: 'changeVoters', promote: [added], remove: [] },
      { type: 'transferLeader', fromStoreId: old.storeId, toStoreId: added.storeId },
      { type: 'removePeer', ...oldRef },
    ];
  }
  return [
    ...leaderAwaySteps(region, old.storeId, leaderTo),
    { type: 'addLearner', ...added },
    { type: 'changeVoters', promote: [added], remove: [oldRef] },
  ];
}

/**
 * Move the replica on `fromStoreId` to `toStoreId`. The voter count never drops: the new peer
 * is a voter in the same joint change that removes the old one. If the old peer leads,
 * leadership goes first to `leaderTo` (one of `leaderCandidates`); with none, the new peer is
 * promoted first and takes leadership before the old one is removed.
 */
export function buildMovePeer(region: RegionInfo, fromStoreId: number, toStoreId: number, meta: OperatorMeta, allocateId: AllocateId, leaderTo?: number): Operator {
  const old = peerOnStore(region, fromStoreId);
  assert(old !== undefined, 'move an existing replica');
  assert(peerOnStore(region, toStoreId) === undefined, 'one replica of a region per store');
  const added = { storeId: toStoreId, peerId: allocateId() };
  const steps: OperatorStep[] =
    old.role === 'learner'
      ? [{ type: 'addLearner', ...added }, { type: 'removePeer', storeId: old.storeId, peerId: old.id }]
      : moveVoterSteps(region, old, added, leaderTo);
  return makeOperator(region, steps, meta, allocateId);
}

function keyInside(region: RegionMeta, key: Uint8Array): boolean {
  if (Buffer.compare(key, region.startKey) <= 0) return false;
  return region.endKey.byteLength === 0 || Buffer.compare(key, region.endKey) < 0;
}

/** Split at `keys` (ascending, each strictly inside), or at the middle the store picks if none. */
export function buildSplit(region: RegionInfo, keys: readonly Uint8Array[], meta: OperatorMeta, allocateId: AllocateId): Operator {
  assert(keys.every((k) => keyInside(region.meta, k)), 'split keys lie strictly inside the region');
  assert(keys.every((k, i) => i === 0 || Buffer.compare(keys[i - 1]!, k) < 0), 'split keys ascend');
  return makeOperator(region, [{ type: 'split', keys }], meta, allocateId);
}

/** Merge `source` into its neighbour `target`; the caller checked adjacency and placement. */
export function buildMerge(source: RegionInfo, target: RegionInfo, meta: OperatorMeta, allocateId: AllocateId): Operator {
  const adjacent =
    Buffer.compare(source.meta.endKey, target.meta.startKey) === 0 || Buffer.compare(target.meta.endKey, source.meta.startKey) === 0;
  assert(adjacent, 'a region merges into an adjacent one');
  return makeOperator(source, [{ type: 'merge', targetRegionId: target.meta.id }], meta, allocateId);
}

/**
 * Whether a heartbeat of `region` (its leader on `leaderStoreId`) shows `step` done.
 * `opEpoch` is the operator's epoch (split and merge are judged by the version moving past it).
 */
export function stepDone(step: OperatorStep, region: RegionInfo, leaderStore: number, opEpoch: Epoch): boolean {
  const present = (peerId: number): RegionPeer | undefined => region.meta.peers.find((p) => p.id === peerId);
  switch (step.type) {
    case 'addLearner':
      // Done once the learner HAS the data, not once it is in the configuration: promoting an
      // empty learner makes a voter that cannot help a quorum (TiKV waits the same way). The
      // leader reports a peer pending until it acknowledged entries past a snapshot's reach.
      return present(step.peerId) !== undefined && !region.pendingPeerIds.includes(step.peerId) && !region.downPeerIds.includes(step.peerId);
    case 'changeVoters':
      // While joint, the removed peers are still (outgoing) voters: done only once the joint config is left.
      return step.promote.every((p) => present(p.peerId)?.role === 'voter') && step.remove.every((p) => present(p.peerId) === undefined);
    case 'transferLeader':
      return leaderStore === step.toStoreId;
    case 'removePeer':
      return present(step.peerId) === undefined;
    case 'split':
    case 'merge':
      // A merge's source bumps its version when it prepares to merge (as TiKV's PrepareMerge).
      return region.meta.epoch.version > opEpoch.version;
  }
}

/** Most confVer bumps one step may cause: a joint change enters and leaves (2), single changes 1. */
function confBumpsMax(step: OperatorStep): number {
  switch (step.type) {
    case 'addLearner':
    case 'removePeer':
      return 1;
    case 'changeVoters':
      return 2;
    default:
      return 0;
  }
}

export type OperatorProgress =
  | { readonly state: 'running'; readonly step: number }
  | { readonly state: 'finished' }
  | { readonly state: 'timedOut'; readonly step: number }
  | { readonly state: 'stale'; readonly reason: string };

/**
 * Why the heartbeat's epoch shows a change this operator did not make, or null. With steps
 * [0, step) done and `step` possibly half done:
 * - the version moved, but no split or merge step is among those: someone split or merged it;
 * - confVer moved further than steps [0, step] can move it (0 for an operator without
 *   membership steps): someone else changed the membership.
 * A foreign membership change that fits inside the operator's own budget is not seen here;
 * it shows as a step that never completes, and the timeout ends the operator.
 */
function staleness(op: Operator, region: RegionInfo, step: number): string | null {
  const { version, confVer } = region.meta.epoch;
  const ours = op.steps.slice(0, step + 1);
  const splitOrMerge = op.steps.slice(0, step).some((s) => s.type === 'split' || s.type === 'merge');
  if (version > op.regionEpoch.version && !splitOrMerge) {
    return `region ${op.regionId} version moved ${op.regionEpoch.version} -> ${version}: split or merged by something else`;
  }
  const budget = ours.reduce((sum, s) => sum + confBumpsMax(s), 0);
  if (confVer > op.regionEpoch.confVer + budget) {
    return `region ${op.regionId} confVer moved ${op.regionEpoch.confVer} -> ${confVer}, more than this operator's steps can`;
  }
  return null;
}

/**
 * Judges a running operator against the region's latest heartbeat (undefined: PD no longer
 * knows the region). Order: finished beats stale beats timed out, so late completion counts.
 * A heartbeat older than the operator's epoch (a stale leader's) says nothing: still running.
 */
export function operatorProgress(op: Operator, region: RegionInfo | undefined, nowMs: number, fromStep = 0): OperatorProgress {
  assert(fromStep >= 0 && fromStep <= op.steps.length, 'fromStep within the operator');
  const timedOut = nowMs >= op.createdMs + op.timeoutMs;
  if (region === undefined) {
    // Only a merge makes a region vanish: the source is absorbed into the target.
    if (op.steps.some((s) => s.type === 'merge')) return { state: 'finished' };
    return { state: 'stale', reason: `region ${op.regionId} is gone` };
  }
  const { version, confVer } = region.meta.epoch;
  if (version < op.regionEpoch.version || confVer < op.regionEpoch.confVer) {
    return timedOut ? { state: 'timedOut', step: fromStep } : { state: 'running', step: fromStep };
  }
  const leaderStore = leaderPeer(region)?.storeId ?? 0;
  let step = fromStep;
  while (step < op.steps.length && stepDone(op.steps[step]!, region, leaderStore, op.regionEpoch)) step++;
  if (step === op.steps.length) return { state: 'finished' };
  const reason = staleness(op, region, step);
  if (reason !== null) return { state: 'stale', reason };
  return timedOut ? { state: 'timedOut', step } : { state: 'running', step };
}
