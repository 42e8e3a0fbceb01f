/**
 * The leader's scheduling loop on a real (in-memory) metadata group: operators made by the
 * checkers, handed out with region heartbeats, advanced and ended by later heartbeats, the
 * operator watch, manual operators, config persistence and the history.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryNetwork } from '@flotilla/transport';
import type { RegionHeartbeat, RegionMeta } from '@flotilla/wire';
import { memoryStore, waitFor } from '../../store/test/harness.ts';
import { Cluster } from '../src/cluster/cluster.ts';
import { isPdError } from '../src/errors.ts';
import { metaRegion } from '../src/member/pd-member.ts';
import { MetaStore } from '../src/meta/meta-store.ts';
import { buildTransferLeader } from '../src/scheduling/operators.ts';
import { SchedulingService } from '../src/service/scheduling-service.ts';

const SILENT = { info: () => {}, warn: () => {}, error: () => {}, fatal: () => {}, debug: () => {}, trace: () => {}, child: () => SILENT } as never;
const RATES = { writeBytes: 0, writeKeys: 0, readBytes: 0, readKeys: 0 };

/** A one-member metadata group led by member 1 and the cluster on it, timed by `now` (undefined: the default clock). */
async function leaderTerm(now: (() => number) | undefined) {
  const store = memoryStore(new MemoryNetwork(), 1);
  await store.host.start();
  await store.host.bootstrapRegion(metaRegion([1]));
  store.host.campaign(1);
  const meta = new MetaStore(store.host, store.service);
  await waitFor('member 1 leads', () => meta.leadership().leader);
  const cluster = await Cluster.load(meta, 7, now);
  return { meta, cluster, close: () => store.host.close() };
}

/** A leader term with a SchedulingService on it (passes driven by hand); close stops both. */
async function serviceTerm(now: () => number) {
  const term = await leaderTerm(now);
  const service = new SchedulingService(term.meta, SILENT, { now, scheduleIntervalMs: 60_000 });
  return { ...term, service, close: () => (service.stop(), term.close()) };
}

/** A store joining with token `t` (addresses derived from it). */
const joinAs = (cluster: Cluster, t: string) => cluster.join({ clusterId: 7, token: t, raftAddress: `${t}:1`, apiAddress: `${t}:2`, labels: {} });

function beat(region: RegionMeta, leaderPeerId: number): RegionHeartbeat {
  return { region, leaderPeerId, downPeerIds: [], pendingPeerIds: [], approximateBytes: 1024, approximateKeys: 10, rates: RATES };
}

const storeBeat = (storeId: number) => ({ storeId, capacityBytes: 100 * 2 ** 30, availableBytes: 80 * 2 ** 30, usedBytes: 20 * 2 ** 30, regionCount: 1, leaderCount: 0, rates: RATES });

describe('SchedulingService', () => {
  it('adds replicas step by step as heartbeats report progress, and records why', async () => {
    let now = 1_000;
    const { cluster, service, close } = await serviceTerm(() => now);
    try {
      const founder = await joinAs(cluster, 'a');
      const others = [await joinAs(cluster, 'b'), await joinAs(cluster, 'c')];
      for (const s of [founder, ...others]) cluster.storeHeartbeat(storeBeat(s.storeId));
      service.start({ term: 1, cluster, sinceMs: now });
      await waitFor('the config loaded', () => service.currentConfig().maxReplicas === 3);
      const region = founder.bootstrapRegion!;
      const leaderPeer = region.peers[0]!.id;
      await cluster.regionHeartbeats(founder.storeId, [beat(region, leaderPeer)]);

      const watched = service.watch(founder.storeId, 5_000, 10);
      const made = await service.pass();
      assert.equal(made.length, 1, 'one operator for the one region');
      assert.equal(made[0]!.origin, 'replica-checker');
      assert.deepEqual(await watched, [region.id], 'the parked watch is answered when the operator starts');
      assert.deepEqual(service.waitingOn(founder.storeId, 10), [region.id]);
      assert.deepEqual(service.waitingOn(others[0]!.storeId, 10), [], 'only the leader\'s store is told');

      const [first] = await service.commandsFor([region.id]);
      assert.equal(first?.step.type, 'addLearner');
      assert.deepEqual(first?.regionEpoch, region.epoch);
      const step = first!.step as { storeId: number; peerId: number };
      const withLearner: RegionMeta = { ...region, epoch: { version: 1, confVer: 2 }, peers: [...region.peers, { id: step.peerId, storeId: step.storeId, role: 'learner' }] };
      await cluster.regionHeartbeats(founder.storeId, [beat(withLearner, leaderPeer)]);
      const [second] = await service.commandsFor([region.id]);
      assert.equal(second?.step.type, 'changeVoters', 'the next step once the learner is reported');

      const promoted: RegionMeta = { ...withLearner, epoch: { version: 1, confVer: 4 }, peers: withLearner.peers.map((p) => ({ ...p, role: 'voter' as const })) };
      await cluster.regionHeartbeats(founder.storeId, [beat(promoted, leaderPeer)]);
      assert.deepEqual(await service.commandsFor([region.id]), [], 'finished: nothing more to run');
      const history = service.recentHistory(10);
      assert.deepEqual(history.map((h) => h.event), ['finished', 'created']);
      assert.match(history[0]!.reason, /1 of 3 voters/);

      now += 60 * 60_000;
      for (const s of [founder, ...others]) cluster.storeHeartbeat(storeBeat(s.storeId));
      const stuck = (await service.pass())[0];
      assert.ok(stuck, 'the second missing voter gets its operator');
      now += 11 * 60_000;
      await service.pass();
      assert.equal(service.recentHistory(1)[0]!.event, 'timedOut', 'an operator nobody advances times out');
    } finally {
      await close();
    }
  });

  it('a wall-clock step either way fires no timeout: stores stay up, a running operator keeps running', async () => {
    // A wall clock that can be stepped, in place before anything reads or keeps Date.now.
    const realDateNow = Date.now;
    let stepMs = 0;
    Date.now = () => realDateNow() + stepMs;
    // The default clocks, as a PD process runs them (Leadership loads the cluster without one).
    const term = await leaderTerm(undefined);
    const service = new SchedulingService(term.meta, SILENT, { scheduleIntervalMs: 60_000 });
    try {
      const founder = await joinAs(term.cluster, 'a');
      const b = await joinAs(term.cluster, 'b');
      for (const s of [founder, b]) term.cluster.storeHeartbeat(storeBeat(s.storeId));
      const region = { ...founder.bootstrapRegion!, peers: [...founder.bootstrapRegion!.peers, { id: 99, storeId: b.storeId, role: 'voter' as const }] };
      await term.cluster.regionHeartbeats(founder.storeId, [beat(region, region.peers[0]!.id)]);
      service.start({ term: 1, cluster: term.cluster, sinceMs: service.nowMs() });
      await service.patchConfig({ maxReplicas: 2 });
      const meta = { origin: 'admin' as const, reason: 'test', priority: 60, nowMs: service.nowMs(), timeouts: service.currentConfig().operatorTimeoutMs };
      const op = await service.addOperator((id) => buildTransferLeader(term.cluster.regions.get(region.id)!, b.storeId, meta, id));
      for (const step of [2 * 3_600_000, -2 * 3_600_000]) {
        stepMs = step; // an NTP step of two hours: the wall clock alone moves
        await service.pass();
        assert.deepEqual(term.cluster.storeInfos(service.timing()).map((s) => s.state), ['up', 'up'], `no store down after a step of ${step} ms`);
        assert.deepEqual(service.operators().map((o) => o.operator.id), [op.id], 'the leader transfer (30 s timeout) still runs');
      }
      assert.ok(!service.recentHistory(10).some((h) => h.event === 'timedOut'), 'nothing timed out');
      const reloaded = await Cluster.load(term.meta, 7);
      assert.deepEqual(reloaded.bootstrapped, term.cluster.bootstrapped, 'what the default clock stamped reads back (a fractional stamp made PD metadata unreadable)');
    } finally {
      Date.now = realDateNow;
      service.stop();
      await term.close();
    }
  });

  it('manual operators, one per region; cancel; config persisted and validated', async () => {
    const now = 1_000;
    const { meta, cluster, service, close } = await serviceTerm(() => now);
    try {
      const founder = await joinAs(cluster, 'a');
      const b = await joinAs(cluster, 'b');
      const region = { ...founder.bootstrapRegion!, peers: [...founder.bootstrapRegion!.peers, { id: 99, storeId: b.storeId, role: 'voter' as const }] };
      await cluster.regionHeartbeats(founder.storeId, [beat(region, region.peers[0]!.id)]);
      service.start({ term: 1, cluster, sinceMs: now });
      const info = cluster.regions.get(region.id)!;
      const meta0 = { origin: 'admin' as const, reason: 'test', priority: 60, nowMs: now, timeouts: service.currentConfig().operatorTimeoutMs };
      const op = await service.addOperator((id) => buildTransferLeader(info, b.storeId, meta0, id));
      await assert.rejects(service.addOperator((id) => buildTransferLeader(info, b.storeId, meta0, id)), (err) => isPdError(err, 'FLOTILLA_PD_OPERATOR_EXISTS'));
      assert.equal(service.cancel(region.id).id, op.id);
      assert.throws(() => service.cancel(region.id), (err) => isPdError(err, 'FLOTILLA_PD_OPERATOR_NOT_FOUND'));
      assert.deepEqual(service.recentHistory(2).map((h) => h.event), ['cancelled', 'created']);

      await assert.rejects(service.patchConfig({ maxReplicas: 0 }), (err) => isPdError(err, 'FLOTILLA_PD_INVALID_ARGUMENT'));
      await service.patchConfig({ maxReplicas: 5, schedulers: { balanceLeader: { enabled: false } } });
      const c = await joinAs(cluster, 'c');
      cluster.storeHeartbeat({ ...storeBeat(c.storeId), regionCount: 0 });
      await cluster.setStoreAdminState(c.storeId, 'offline');
      await cluster.setStoreAdminState(b.storeId, 'offline');
      await service.pass();
      assert.equal(cluster.storeInfo(c.storeId, service.timing()).state, 'tombstone', 'an offline store holding nothing is retired');
      assert.equal(cluster.storeInfo(b.storeId, service.timing()).state, 'offline', 'an offline store still holding a replica is not');
      assert.equal(service.recentHistory(10).find((h) => h.event === 'storeTombstoned')?.storeId, c.storeId);

      const reloaded = new SchedulingService(meta, SILENT, { now: () => now });
      reloaded.start({ term: 2, cluster, sinceMs: now });
      await waitFor('the persisted config loaded by the next leader', () => reloaded.currentConfig().maxReplicas === 5);
      assert.equal(reloaded.currentConfig().schedulers.balanceLeader.enabled, false);
      reloaded.stop();
    } finally {
      await close();
    }
  });

  it('ends an operator whose target store stopped answering instead of holding its region until the timeout', async () => {
    let now = 1_000;
    const { cluster, service, close } = await serviceTerm(() => now);
    try {
      const founder = await joinAs(cluster, 'a');
      const b = await joinAs(cluster, 'b');
      const region = { ...founder.bootstrapRegion!, peers: [...founder.bootstrapRegion!.peers, { id: 99, storeId: b.storeId, role: 'voter' as const }] };
      for (const s of [founder, b]) cluster.storeHeartbeat(storeBeat(s.storeId));
      await cluster.regionHeartbeats(founder.storeId, [beat(region, region.peers[0]!.id)]);
      service.start({ term: 1, cluster, sinceMs: now });
      const info = cluster.regions.get(region.id)!;
      const meta0 = { origin: 'balance-leader' as const, reason: 'test', priority: 20, nowMs: now, timeouts: service.currentConfig().operatorTimeoutMs };
      await service.addOperator((id) => buildTransferLeader(info, b.storeId, meta0, id));
      assert.equal((await service.commandsFor([region.id])).length, 1, 'sent while store b is up');
      now += service.currentConfig().storeDisconnectMs + 1;
      cluster.storeHeartbeat(storeBeat(founder.storeId));
      assert.deepEqual(await service.commandsFor([region.id]), []);
      const ended = service.recentHistory(1)[0]!;
      assert.equal(ended.event, 'stale');
      assert.match(ended.detail ?? '', /target store \d+ is disconnected/);
    } finally {
      await close();
    }
  });

  it('takes enough fresh ids for every operator its limits allow in one pass', async () => {
    const now = 1_000;
    const { cluster, service, close } = await serviceTerm(() => now);
    try {
      const joined: Awaited<ReturnType<Cluster['join']>>[] = [];
      for (const t of ['a', 'b', 'c']) joined.push(await joinAs(cluster, t));
      for (const s of joined) cluster.storeHeartbeat(storeBeat(s.storeId));
      const first = joined[0]!.bootstrapRegion!;
      // 300 one-voter regions tiling the keyspace, each wanting two more voters.
      const ids = await cluster.ids.allocate(600);
      const bound = (i: number) => (i === 0 ? new Uint8Array(0) : Buffer.from(`k${String(i).padStart(4, '0')}`));
      const regions: RegionMeta[] = Array.from({ length: 300 }, (_, i) => ({
        id: i === 0 ? first.id : ids[2 * i]!,
        startKey: bound(i),
        endKey: i === 299 ? new Uint8Array(0) : bound(i + 1),
        epoch: { version: 2, confVer: 1 },
        peers: [{ id: i === 0 ? first.peers[0]!.id : ids[2 * i + 1]!, storeId: joined[0]!.storeId, role: 'voter' as const }],
      }));
      await cluster.regionHeartbeats(joined[0]!.storeId, regions.map((r) => beat(r, r.peers[0]!.id)));
      service.start({ term: 1, cluster, sinceMs: now });
      await service.patchConfig({ replicaScheduleLimit: 256, storeOperatorLimit: 1024 });
      const made = await service.pass();
      assert.equal(made.length, 256, 'one pass starts as many repairs as its limit allows');
      assert.equal(new Set(made.map((op) => op.id)).size, 256);
    } finally {
      await close();
    }
  });
});
