/**
 * Properties over random clusters (stores in every state, zones, low space; regions with
 * missing, extra, down, pending and learner peers; random limits): apply every operator the
 * coordinator makes, step by step, to a model of the region's peers, and check that
 * - no step leaves the region with fewer voters than min(maxReplicas, voters it had);
 * - no region ever has two replicas on one store;
 * - no peer is added on, and no leadership handed to, a store that is not up;
 * - each step makes sense where it runs (transfers start at the leader and go to a voter, the
 *   leader's own peer is never removed, promoted peers are learners, removed peers exist);
 * - one operator per region (merge targets included), within every origin's limit;
 * - a merge joins adjacent regions on the same stores.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { ClusterView, Operator, OperatorStep, RegionInfo, RegionPeer, StoreInfo, StoreState } from '../src/cluster/types.ts';
import { scheduleConfig, type ScheduleConfig } from '../src/scheduling/config.ts';
import { newSchedulerState, observeRegions, room, schedule } from '../src/scheduling/coordinator.ts';
import { leaderCandidates, regionsHeldBy } from '../src/scheduling/operators.ts';
import { balanceTargets, widestGap } from '../src/scheduling/balance.ts';
import { bestLeaderStore, capacityShare, fillScore, loadOf, moveThreshold, newContext, regionWeight } from '../src/scheduling/context.ts';
import { checkRegionReplicas, mustLeaveByStore, surelyFine, withoutHistory } from '../src/scheduling/replica-checker.ts';
import { LIMIT_OF_ORIGIN, leaderStoreId, peerOnStore } from '../src/scheduling/types.ts';
import { MIB, NOW, allocator, region, store } from './scheduling-helpers.ts';

const SEED = Number(process.env.FLOTILLA_FUZZ_SEED ?? 20260517);
const RUNS = Math.max(1, Math.round(300 * Number(process.env.FLOTILLA_FUZZ_RUNS_SCALE ?? 1)));
const STORES_MAX = 8;
const REGIONS_MAX = 16;
const DOWN_MS = 60_000;

interface Cluster {
  readonly config: ScheduleConfig;
  readonly view: ClusterView;
}

const storeArb = (id: number): fc.Arbitrary<StoreInfo> =>
  fc
    .record({
      state: fc.oneof(
        { weight: 6, arbitrary: fc.constant<StoreState>('up') },
        { weight: 1, arbitrary: fc.constantFrom<StoreState>('disconnected', 'down', 'offline', 'tombstone') },
      ),
      silentMs: fc.constantFrom(0, DOWN_MS / 2, DOWN_MS * 2),
      zone: fc.constantFrom('a', 'b', 'c'),
      host: fc.constantFrom('x', 'y'),
      availableGib: fc.constantFrom(0, 5, 50, 90),
      // Disks of different sizes (balance compares fill), and 0: no store heartbeat yet.
      capacityGib: fc.constantFrom(0, 100, 100, 200, 400),
    })
    .map((s) =>
      store(id, {
        state: s.state,
        silentMs: s.state === 'up' ? 0 : s.silentMs,
        zone: s.zone,
        host: `${s.zone}${s.host}${id % 2}`,
        capacity: s.capacityGib * 1024 * MIB,
        available: Math.min(s.availableGib, s.capacityGib) * 1024 * MIB,
      }),
    );

/** A region's shape: which stores hold voters and learners (distinct), who leads, who is unwell. */
const regionArb = (id: number, storeCount: number, last: boolean): fc.Arbitrary<RegionInfo> =>
  fc
    .record({
      // Often the same stores as its neighbours (as after splits), so merges are reachable.
      order: fc.oneof(
        fc.constant(Array.from({ length: Math.min(3, storeCount) }, (_, i) => i + 1)),
        fc.shuffledSubarray(
          Array.from({ length: storeCount + 1 }, (_, i) => i + 1),
          { minLength: 1, maxLength: Math.min(6, storeCount + 1) },
        ),
      ),
      voterCount: fc.integer({ min: 1, max: 6 }),
      leaderIndex: fc.integer({ min: -1, max: 5 }),
      downMask: fc.integer({ min: 0, max: 63 }),
      pendingMask: fc.integer({ min: 0, max: 63 }),
      bytesMib: fc.constantFrom(0, 1, 5, 50, 200),
      keys: fc.constantFrom(0, 10, 1000, 2_000_000),
      writeMib: fc.constantFrom(0, 0, 2, 20),
    })
    .map((r) => {
      // Store storeCount + 1 does not exist: a replica on an unknown store.
      const voterCount = Math.min(r.voterCount, r.order.length);
      const voters = r.order.slice(0, voterCount);
      const learners = r.order.slice(voterCount);
      const pick = (mask: number): number[] => r.order.filter((_, i) => (mask & (1 << i)) !== 0 && i > 0);
      const leader = r.leaderIndex < 0 ? 0 : voters[r.leaderIndex % voters.length]!;
      return region(id, {
        voters,
        learners,
        leader,
        down: pick(r.downMask).filter((s) => s !== leader),
        pending: pick(r.pendingMask).filter((s) => s !== leader),
        bytes: r.bytesMib * MIB,
        keys: r.keys,
        write: r.writeMib * MIB,
        last,
      });
    });

const clusterArb: fc.Arbitrary<Cluster> = fc
  .record({ storeCount: fc.integer({ min: 1, max: STORES_MAX }), regionCount: fc.integer({ min: 1, max: REGIONS_MAX }) })
  .chain(({ storeCount, regionCount }) =>
    fc.record({
      stores: fc.tuple(...Array.from({ length: storeCount }, (_, i) => storeArb(i + 1))),
      regions: fc.tuple(...Array.from({ length: regionCount }, (_, i) => regionArb(i + 1, storeCount, i === regionCount - 1))),
      maxReplicas: fc.integer({ min: 1, max: 5 }),
      labels: fc.boolean(),
      limit: fc.integer({ min: 0, max: 6 }),
      storeOperatorLimit: fc.integer({ min: 1, max: 8 }),
      // 0.5 is the lowest that keeps a move from inviting its reverse.
      tolerantSizeRatio: fc.constantFrom(0.5, 1, 2),
    }),
  )
  .map((c) => {
    const config = scheduleConfig({
      maxReplicas: c.maxReplicas,
      locationLabels: c.labels ? ['zone', 'host'] : [],
      storeDisconnectMs: DOWN_MS / 4,
      storeDownMs: DOWN_MS,
      regionMaxBytes: 100 * MIB,
      regionMaxKeys: 1_000_000,
      regionSplitBytes: 64 * MIB,
      regionSplitKeys: 640_000,
      mergeMaxBytes: 10 * MIB,
      mergeMaxKeys: 100_000,
      splitMergeCooldownMs: 1000,
      loadSplitSpanMs: 1000,
      replicaScheduleLimit: c.limit,
      regionScheduleLimit: c.limit,
      leaderScheduleLimit: c.limit,
      mergeScheduleLimit: c.limit,
      hotRegionScheduleLimit: c.limit,
      splitScheduleLimit: c.limit,
      storeOperatorLimit: c.storeOperatorLimit,
      tolerantSizeRatio: c.tolerantSizeRatio,
    });
    return { config, view: { nowMs: NOW, stores: c.stores, regions: c.regions, running: [] } };
  });

interface Model {
  peers: RegionPeer[];
  leader: number;
}

function fail(op: Operator, what: string): never {
  assert.fail(`${what} (region ${op.regionId}, ${op.origin}: ${op.reason}; steps ${JSON.stringify(op.steps)})`);
}

/** Applies one step to the model, checking it makes sense where it runs. */
function apply(model: Model, step: OperatorStep, op: Operator, stores: ReadonlyMap<number, StoreInfo>): void {
  const peerOf = (peerId: number): RegionPeer | undefined => model.peers.find((p) => p.id === peerId);
  const leaderStore = model.peers.find((p) => p.id === model.leader)?.storeId;
  switch (step.type) {
    case 'addLearner':
      if (stores.get(step.storeId)?.state !== 'up') fail(op, `peer added on store ${step.storeId}, which is not up`);
      if (model.peers.some((p) => p.storeId === step.storeId)) fail(op, `second replica on store ${step.storeId}`);
      model.peers.push({ id: step.peerId, storeId: step.storeId, role: 'learner' });
      return;
    case 'changeVoters':
      for (const p of step.promote) {
        if (peerOf(p.peerId)?.role !== 'learner') fail(op, `promoted peer ${p.peerId} is not a learner`);
        model.peers = model.peers.map((q) => (q.id === p.peerId ? { ...q, role: 'voter' } : q));
      }
      for (const r of step.remove) {
        if (peerOf(r.peerId) === undefined) fail(op, `removed peer ${r.peerId} is absent`);
        if (r.peerId === model.leader) fail(op, 'the leader removes itself');
        model.peers = model.peers.filter((q) => q.id !== r.peerId);
      }
      return;
    case 'transferLeader': {
      if (leaderStore !== step.fromStoreId) fail(op, `transfer from store ${step.fromStoreId}, leader is on ${leaderStore}`);
      const to = model.peers.find((p) => p.storeId === step.toStoreId);
      if (to?.role !== 'voter') fail(op, `leadership to store ${step.toStoreId}, which holds no voter`);
      if (stores.get(step.toStoreId)?.state !== 'up') fail(op, `leadership to store ${step.toStoreId}, which is not up`);
      model.leader = to.id;
      return;
    }
    case 'removePeer':
      if (peerOf(step.peerId) === undefined) fail(op, `removed peer ${step.peerId} is absent`);
      if (step.peerId === model.leader) fail(op, 'the leader removes itself');
      model.peers = model.peers.filter((q) => q.id !== step.peerId);
      return;
    case 'split':
    case 'merge':
      return;
  }
}

function checkOperator(op: Operator, cluster: Cluster, regions: ReadonlyMap<number, RegionInfo>, stores: ReadonlyMap<number, StoreInfo>): void {
  const region = regions.get(op.regionId);
  if (region === undefined) fail(op, 'operator on an unknown region');
  const model: Model = { peers: [...region.meta.peers], leader: region.leaderPeerId };
  const votersOf = (): number => model.peers.filter((p) => p.role === 'voter').length;
  const floor = Math.min(cluster.config.maxReplicas, votersOf());
  for (const step of op.steps) {
    apply(model, step, op, stores);
    if (votersOf() < floor) fail(op, `voters fell to ${votersOf()}, below ${floor}`);
    if (new Set(model.peers.map((p) => p.storeId)).size !== model.peers.length) fail(op, 'two replicas on one store');
    if (step.type === 'merge') checkMerge(op, region, regions.get(step.targetRegionId));
  }
}

function checkMerge(op: Operator, source: RegionInfo, target: RegionInfo | undefined): void {
  if (target === undefined) fail(op, 'merge into an unknown region');
  const adjacent = Buffer.compare(source.meta.endKey, target.meta.startKey) === 0 || Buffer.compare(target.meta.endKey, source.meta.startKey) === 0;
  if (!adjacent) fail(op, 'merge of regions that are not adjacent');
  const stores = (r: RegionInfo): string => JSON.stringify(r.meta.peers.map((p) => p.storeId).sort());
  if (stores(source) !== stores(target)) fail(op, 'merge of regions on different stores');
}

function checkPass(cluster: Cluster, ops: readonly Operator[]): void {
  const regions = new Map(cluster.view.regions.map((r) => [r.meta.id, r]));
  const stores = new Map(cluster.view.stores.map((s) => [s.id, s]));
  const held = new Set<number>(cluster.view.running.flatMap(regionsHeldBy));
  for (const op of ops) {
    for (const id of regionsHeldBy(op)) {
      if (held.has(id)) fail(op, `region ${id} already has an operator`);
      held.add(id);
    }
    assert.ok(op.reason.length > 0);
    checkOperator(op, cluster, regions, stores);
  }
  for (const [origin, limit] of Object.entries(LIMIT_OF_ORIGIN)) {
    if (limit === null) continue;
    const made = ops.filter((op) => op.origin === origin).length;
    assert.ok(made <= room(cluster.view, cluster.config, limit), `${origin}: ${made} operators over its limit`);
  }
}

/** Far above the test's peer ids (region × 100 + store), so new ids never collide with them. */
const ids = (): (() => number) => allocator(1_000_000);

/** A coordinator state that has watched the regions long enough for merges and load splits. */
function seasonedState(cluster: Cluster): ReturnType<typeof newSchedulerState> {
  const state = newSchedulerState();
  observeRegions(state, { ...cluster.view, nowMs: NOW - 60_000 }, cluster.config);
  return state;
}

describe('scheduling properties over random clusters', () => {
  it('operators keep voters, never double a store, never target a store that is not up', () => {
    fc.assert(
      fc.property(clusterArb, (cluster) => {
        const ops = schedule(cluster.view, cluster.config, ids(), seasonedState(cluster));
        checkPass(cluster, ops);
      }),
      { seed: SEED, numRuns: RUNS, includeErrorInReport: true },
    );
  });

  it('the same holds with the first pass running, and the pass is deterministic', () => {
    fc.assert(
      fc.property(clusterArb, (cluster) => {
        const first = schedule(cluster.view, cluster.config, ids(), seasonedState(cluster));
        assert.deepEqual(schedule(cluster.view, cluster.config, ids(), seasonedState(cluster)), first);
        const later: Cluster = { ...cluster, view: { ...cluster.view, running: first, nowMs: NOW + 1 } };
        checkPass(later, schedule(later.view, later.config, allocator(2_000_000), seasonedState(later)));
      }),
      { seed: SEED + 1, numRuns: RUNS, includeErrorInReport: true },
    );
  });

  it('no balance move closes a wider gap than widestGap, the bound the balance passes stop on; none invites its reverse', () => {
    let checked = 0;
    let moves = 0;
    fc.assert(
      fc.property(clusterArb, (cluster) => {
        const ctx = newContext(withoutHistory(cluster.view), cluster.config, ids());
        const fill = (id: number): number => fillScore(ctx, id);
        const leaders = (id: number): number => loadOf(ctx, id).leaderCount;
        for (const source of cluster.view.stores) {
          if (source.state !== 'up') continue;
          for (const r of cluster.view.regions) {
            if (peerOnStore(r, source.id)?.role === 'voter') {
              for (const target of balanceTargets(ctx, r, source.id, fill)) {
                checked++;
                const gap = fill(source.id) - fill(target.id);
                assert.ok(gap <= widestGap(ctx, source.id, fill), `region ${r.meta.id}: s${source.id} -> s${target.id}`);
                const w = regionWeight(r);
                if (gap <= moveThreshold(ctx, w, source.id, target.id)) continue;
                // A move: after it, the target must not be fuller than the source by the bound.
                moves++;
                const after = fill(target.id) + w / capacityShare(ctx, target.id) - (fill(source.id) - w / capacityShare(ctx, source.id));
                assert.ok(after <= moveThreshold(ctx, w, target.id, source.id), `region ${r.meta.id}: s${source.id} -> s${target.id} would invite its reverse`);
              }
            }
            if (leaderStoreId(r) === source.id) {
              const to = bestLeaderStore(ctx, leaderCandidates(r, source.id));
              if (to !== undefined) assert.ok(leaders(source.id) - leaders(to) <= widestGap(ctx, source.id, leaders), `region ${r.meta.id}: leader s${source.id} -> s${to}`);
            }
          }
        }
      }),
      { seed: SEED + 3, numRuns: RUNS, includeErrorInReport: true },
    );
    assert.ok(checked > RUNS, `only ${checked} candidate moves checked`);
    assert.ok(moves > RUNS / 10, `only ${moves} moves past the threshold checked`);
  });

  it('a region the replica checker passes over without looking (surelyFine) gets no operator from it', () => {
    let fine = 0;
    let notFine = 0;
    fc.assert(
      fc.property(clusterArb, (cluster) => {
        const ctx = newContext(withoutHistory(cluster.view), cluster.config, ids());
        const mustLeave = mustLeaveByStore(ctx);
        for (const r of cluster.view.regions) {
          if (!surelyFine(ctx, r, mustLeave)) {
            notFine++;
            continue;
          }
          fine++;
          // Rules 1-4 make nothing for it; rule 5 (isolation) is the pass's to skip only without labels.
          const noLabels = { ...ctx, config: { ...ctx.config, locationLabels: [] } };
          assert.equal(checkRegionReplicas(noLabels, r), null, `region ${r.meta.id}`);
        }
      }),
      { seed: SEED + 4, numRuns: RUNS, includeErrorInReport: true },
    );
    assert.ok(fine > RUNS / 4 && notFine > RUNS, `fine ${fine}, not fine ${notFine}`);
  });

  it('the generator reaches the interesting cases (the properties are not vacuous)', () => {
    const seen = new Map<string, number>();
    fc.assert(
      fc.property(clusterArb, (cluster) => {
        for (const op of schedule(cluster.view, cluster.config, ids(), seasonedState(cluster))) {
          const key = `${op.origin}:${op.steps.map((s) => s.type).join('>')}`;
          seen.set(key, (seen.get(key) ?? 0) + 1);
        }
      }),
      { seed: SEED + 2, numRuns: RUNS },
    );
    for (const expected of [
      'replica-checker:addLearner>changeVoters',
      'replica-checker:removePeer',
      'replica-checker:changeVoters',
      'split-checker:split',
      'merge-checker:merge',
      'balance-leader:transferLeader',
    ]) {
      assert.ok((seen.get(expected) ?? 0) > 0, `never produced ${expected}: ${JSON.stringify([...seen])}`);
    }
  });
});
