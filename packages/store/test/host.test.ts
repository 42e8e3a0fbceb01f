import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { MemoryNetwork } from '@flotilla/transport';
import type { GroupWrite, LogEngine, LogWriteOptions, MemoryLogEngine } from '@flotilla/storage';
import type { KvOp, KvOpResult } from '@flotilla/wire';
import { EPOCH, HeldCalls, REGION, TestCluster, bytes, connectAll, get, intercept, leaderOf, memoryStore, put, run, text, waitFor, type MemoryStore } from './harness.ts';
import { limits } from '../src/constants.ts';

describe('multi-raft host on in-memory twins', () => {
  const cluster = new TestCluster();
  after(() => cluster.closeAll());

  test('three founding replicas elect a leader, replicate writes and serve linearizable reads', async () => {
    for (const id of [1, 2, 3]) await cluster.startStore(id);
    for (const store of cluster.stores.values()) await store.host.bootstrapRegion(REGION);
    await waitFor('a leader', () => cluster.leaderOf(1) !== undefined);
    const leader = cluster.leaderOf(1)!;
    assert.deepEqual(await run(leader, put('apple', 'red')), [{ op: 'put' }]);
    const [read] = await run(leader, get('apple'));
    assert.equal(read?.op, 'get');
    assert.equal(text(read?.op === 'get' ? read.value : null), 'red');
    // Every replica applies the write to its own KV engine.
    for (const store of cluster.stores.values()) {
      await waitFor(`store ${store.id} applies`, async () => text(await store.kv.get(bytes('apple'))) === 'red');
    }
  });

  test('wrong replica, stale epoch, unknown region and keys outside the range get typed errors', async () => {
    const leader = cluster.leaderOf(1)!;
    const follower = [...cluster.stores.values()].find((s) => s !== leader)!;
    const [notLeader] = await run(follower, put('apple', 'green'));
    assert.ok(notLeader?.op === 'error' && notLeader.error.code === 'FLOTILLA_NOT_LEADER');
    assert.equal(notLeader.error.code === 'FLOTILLA_NOT_LEADER' ? notLeader.error.leader?.storeId : undefined, leader.id);
    const [stale] = await run(leader, put('apple', 'green', { version: 0, confVer: 1 }));
    assert.ok(stale?.op === 'error' && stale.error.code === 'FLOTILLA_EPOCH_NOT_MATCH');
    const [unknown] = await run(leader, put('apple', 'green', EPOCH, 99));
    assert.ok(unknown?.op === 'error' && unknown.error.code === 'FLOTILLA_REGION_NOT_FOUND');
    const [outside] = await run(leader, put('zebra', 'striped'));
    assert.ok(outside?.op === 'error' && outside.error.code === 'FLOTILLA_KEY_NOT_IN_REGION');
    // None of them changed anything.
    const [read] = await run(leader, get('apple'));
    assert.equal(text(read?.op === 'get' ? read.value : null), 'red');
  });

  test('concurrent requests share ready cycles: far fewer log writes than writes', async () => {
    const leader = cluster.leaderOf(1)!;
    const before = leader.host.stats().logWrites;
    const writes = Array.from({ length: 200 }, (_, i) => run(leader, put(`batch-${i}`, `${i}`)));
    const results = await Promise.all(writes);
    assert.ok(results.every(([r]) => r?.op === 'put'));
    const logWrites = leader.host.stats().logWrites - before;
    assert.ok(logWrites < 50, `200 writes took ${logWrites} log writes`);
  });

  test('the writes of many requests to a region in one turn become one entry; each request gets its own results', async () => {
    const leader = cluster.leaderOf(1)!;
    // Settle first: nothing else proposes meanwhile.
    await run(leader, put('merge-warm', '0'));
    const lastIndex = (): number => leader.host.regionStatus(1)!.raft.lastIndex;
    const before = lastIndex();
    // Issued in one turn: 30 requests of one put each, one of two puts and a CAS whose base is
    // the put before it in the same entry.
    const requests: Promise<KvOpResult[]>[] = Array.from({ length: 30 }, (_, i) => run(leader, put(`merged-${i}`, `${i}`)));
    requests.push(run(leader, put('merged-pair-a', 'A'), put('merged-pair-b', 'B')));
    requests.push(run(leader, { op: 'cas', regionId: 1, regionEpoch: EPOCH, key: bytes('merged-0'), expected: bytes('0'), value: bytes('zero') }));
    const results = await Promise.all(requests);
    for (let i = 0; i < 30; i++) assert.deepEqual(results[i], [{ op: 'put' }], `request ${i}`);
    assert.deepEqual(results[30], [{ op: 'put' }, { op: 'put' }]);
    const cas = results[31]![0]!;
    assert.ok(cas.op === 'cas' && cas.succeeded, `the CAS saw the put merged before it: ${JSON.stringify(cas)}`);
    assert.equal(lastIndex() - before, 1, '32 requests, one entry');
    assert.equal(text(await leader.kv.get(bytes('merged-0'))), 'zero');
    assert.equal(text(await leader.kv.get(bytes('merged-pair-b'))), 'B');
  });

  test('a turn whose writes exceed one entry\'s command bound is cut into several entries', async () => {
    const leader = cluster.leaderOf(1)!;
    await run(leader, put('cut-warm', '0'));
    const lastIndex = (): number => leader.host.regionStatus(1)!.raft.lastIndex;
    const before = lastIndex();
    const perRequest = 100;
    const ops = (r: number): KvOp[] => Array.from({ length: perRequest }, (_, i) => put(`cut-${r}-${i}`, 'v'));
    // 25 requests of 100 puts in one turn: 2,500 commands, at most commandsPerEntryMax (1,024) an entry.
    const results = await Promise.all(Array.from({ length: 25 }, (_, r) => run(leader, ...ops(r))));
    assert.ok(results.every((rs) => rs.length === perRequest && rs.every((x) => x.op === 'put')));
    assert.equal(lastIndex() - before, 3, 'ten requests per entry, three entries');
    assert.equal(text(await leader.kv.get(bytes('cut-24-99'))), 'v');
  });

  test('a write waits for one fsync per replica: the commit that follows it is written without one', async () => {
    const puts = 20;
    const before = new Map([...cluster.stores.values()].map((s) => [s.id, s.host.stats()]));
    const leader = cluster.leaderOf(1)!;
    for (let i = 0; i < puts; i++) assert.deepEqual(await run(leader, put(`lone-${i}`, `${i}`)), [{ op: 'put' }]);
    for (const store of cluster.stores.values()) await waitFor(`store ${store.id} applies`, async () => text(await store.kv.get(bytes(`lone-${puts - 1}`))) !== null);
    for (const store of cluster.stores.values()) {
      const was = before.get(store.id)!;
      const now = store.host.stats();
      const syncs = now.logSyncs - was.logSyncs;
      // Each put: its entry (synced) and, later, the commit index moving (not synced). A
      // follower mostly learns the commit with the next put's append; the leader never does.
      assert.ok(syncs <= puts + 2, `store ${store.id}: ${puts} puts one after another took ${syncs} fsyncs`);
      if (store === leader) assert.ok(now.logWrites - was.logWrites - syncs >= puts, `the leader's commit-only writes are not synced (${now.logWrites - was.logWrites} writes, ${syncs} fsyncs)`);
    }
  });

  test('writes larger than one entry are split; one write larger than an entry is refused, and the store lives', async () => {
    const leader = cluster.leaderOf(1)!;
    // 200 puts of 64 KiB to one region: 12.5 MiB, more than one 8 MiB entry can carry.
    const many = Array.from({ length: 200 }, (_, i) => ({ ...put(`big${i}`, ''), value: new Uint8Array(64 * 1024).fill(i) }));
    const results = await run(leader, ...many);
    assert.ok(results.every((r) => r.op === 'put'), JSON.stringify(results.find((r) => r.op !== 'put')));
    // One put with the largest value the wire accepts cannot fit an entry: refused alone.
    const huge = { ...put('huge', ''), value: new Uint8Array(8 * 1024 * 1024) };
    const [refused, beside] = await run(leader, huge, put('beside', 'ok'));
    assert.equal(refused?.op === 'error' ? refused.error.code : refused?.op, 'FLOTILLA_REQUEST_TOO_LARGE');
    assert.deepEqual(beside, { op: 'put' });
    assert.equal(leader.host.state, 'running', 'the store survived both');
    const [read] = await run(leader, get('big199'));
    assert.equal(read?.op === 'get' ? read.value?.byteLength : -1, 64 * 1024);
  });

  test('compare-and-swap decides on the applied value', async () => {
    const leader = cluster.leaderOf(1)!;
    const cas = (expected: string | null, value: string): KvOp => ({ op: 'cas', regionId: 1, regionEpoch: EPOCH, key: bytes('apple'), expected: expected === null ? null : bytes(expected), value: bytes(value) });
    const [won] = await run(leader, cas('red', 'green'));
    assert.ok(won?.op === 'cas' && won.succeeded);
    const [lost] = await run(leader, cas('red', 'blue'));
    assert.ok(lost?.op === 'cas' && !lost.succeeded && text(lost.previous) === 'green');
  });

  test('leadership moves on request, and writes continue at the new leader', async () => {
    const from = cluster.leaderOf(1)!;
    const target = [...cluster.stores.values()].find((s) => s !== from)!;
    const targetPeer = target.host.peer(1)!.peerId;
    assert.equal(target.host.transferLeader(1, from.host.peer(1)!.peerId), false, 'only the leader can transfer');
    assert.equal(from.host.transferLeader(1, targetPeer), true);
    await waitFor('the target leads', () => cluster.leaderOf(1) === target);
    assert.deepEqual(await run(target, put('handover', 'yes')), [{ op: 'put' }]);
  });

  test('the leader stops: the others elect a new one and keep every acknowledged write', async () => {
    const old = cluster.leaderOf(1)!;
    // A write still pending when its leader's store closes may yet commit elsewhere: its
    // outcome is unknown (TIMEOUT), never an error that says "not applied, retry freely".
    for (const other of cluster.stores.values()) if (other !== old) cluster.network.partition(old.id, other.id);
    const pending = run(old, put('limbo', 'maybe'));
    let settled: unknown;
    void pending.then((r) => (settled = r));
    await waitFor('the write is proposed', () => {
      if (settled !== undefined) throw new Error(`settled early: ${JSON.stringify(settled)}`);
      return old.host.peer(1)!.node.status().lastIndex > old.host.peer(1)!.node.status().commit;
    });
    await cluster.stop(old.id);
    const [outcome] = await pending;
    assert.deepEqual(outcome, { op: 'error', error: { code: 'FLOTILLA_TIMEOUT' } });
    cluster.network.heal();
    await waitFor('a new leader', () => cluster.leaderOf(1) !== undefined);
    const leader = cluster.leaderOf(1)!;
    assert.notEqual(leader.id, old.id);
    const [read] = await run(leader, get('apple'));
    assert.equal(text(read?.op === 'get' ? read.value : null), 'green');
    assert.deepEqual(await run(leader, put('after', 'failover')), [{ op: 'put' }]);
    // The old leader restarts from its disks, rejoins and catches up.
    await cluster.startStore(old.id, { logDisk: old.logDisk, kvDisk: old.kvDisk });
    const back = cluster.stores.get(old.id)!;
    await waitFor('the restarted store catches up', async () => text(await back.kv.get(bytes('after'))) === 'failover');
  });
});

describe('log compaction and snapshots', () => {
  const cluster = new TestCluster(20);
  after(() => cluster.closeAll());

  test('a follower cut off while the leader compacts catches up by snapshot', async () => {
    for (const id of [1, 2, 3]) await cluster.startStore(id);
    for (const store of cluster.stores.values()) await store.host.bootstrapRegion(REGION);
    await waitFor('a leader', () => cluster.leaderOf(1) !== undefined);
    const leader = cluster.leaderOf(1)!;
    const sleeper = [...cluster.stores.values()].find((s) => s !== leader)!;
    // Every frame between them is lost (a stopped store would get the queued ones on restart).
    cluster.network.drop(leader.id, sleeper.id, 1);
    cluster.network.drop(sleeper.id, leader.id, 1);
    for (let i = 0; i < 100; i++) assert.deepEqual(await run(leader, put(`c${i}`, `${i}`)), [{ op: 'put' }]);
    assert.ok(leader.host.stats().compactions > 0, 'the leader compacted its log');
    const status = leader.host.peer(1)!.node.status();
    assert.ok(status.firstIndex > 60, `the leader's log starts at ${status.firstIndex}`);
    assert.equal(await sleeper.kv.get(bytes('c0')), null, 'the sleeper saw none of it');
    cluster.network.reset(); // clears the drops (heal() only ends partitions)
    // The data lands in the KV engine before the install completes: wait for both.
    await waitFor('the sleeper installs a snapshot and catches up', async () => sleeper.host.stats().snapshotsReceived >= 1 && text(await sleeper.kv.get(bytes('c99'))) === '99');
    assert.equal(text(await sleeper.kv.get(bytes('c0'))), '0');
    assert.ok(sleeper.host.stats().snapshotsReceived >= 1, 'caught up through a snapshot');
    assert.ok(leader.host.stats().snapshotsSent >= 1);
    // And it keeps replicating normally afterwards.
    assert.deepEqual(await run(leader, put('after-snapshot', 'yes')), [{ op: 'put' }]);
    await waitFor('replication after the snapshot', async () => text(await sleeper.kv.get(bytes('after-snapshot'))) === 'yes');
  });
});

describe('membership changes', () => {
  const cluster = new TestCluster();
  after(() => cluster.closeAll());

  test('a replica moves to a new store: learner, then promotion and removal by joint consensus', async () => {
    for (const id of [1, 2, 3, 4]) await cluster.startStore(id);
    for (const id of [1, 2, 3]) await cluster.stores.get(id)!.host.bootstrapRegion(REGION);
    await waitFor('a leader', () => cluster.leaderOf(1) !== undefined);
    assert.deepEqual(await run(cluster.leaderOf(1)!, put('moved', 'along')), [{ op: 'put' }]);

    const added = await cluster.leaderOf(1)!.host.changeMembership(1, [{ type: 'addLearner', peerId: 14, storeId: 4 }]);
    assert.equal(added.kind, 'applied');
    const newcomer = cluster.stores.get(4)!;
    await waitFor('the learner on store 4 catches up', async () => text(await newcomer.kv.get(bytes('moved'))) === 'along');
    assert.equal(newcomer.host.peer(1)?.placeholder, false, 'the snapshot brought the real region');

    // Promote 14 and remove store 1's replica in one change: joint consensus, left automatically.
    const swapped = await cluster.leaderOf(1)!.host.changeMembership(1, [
      { type: 'addVoter', peerId: 14, storeId: 4 },
      { type: 'remove', peerId: 11 },
    ]);
    assert.equal(swapped.kind, 'applied');
    await waitFor('store 1 destroys its replica', () => cluster.stores.get(1)!.host.peer(1) === undefined);
    await waitFor('every remaining replica left the joint configuration', () =>
      [2, 3, 4].every((id) => {
        const region = cluster.stores.get(id)!.host.peer(1)?.region;
        return region !== undefined && region.peers.map((p) => `${p.id}:${p.role}`).join(' ') === '12:voter 13:voter 14:voter';
      }),
    );
    const region = cluster.stores.get(2)!.host.peer(1)!.region;
    assert.equal(region.epoch.confVer, EPOCH.confVer + 3, 'add learner, enter joint, leave joint');

    // Clients with the old epoch are told to refresh; with the new one, writes go on.
    await waitFor('a leader among the remaining replicas', () => cluster.leaderOf(1) !== undefined);
    const leader = cluster.leaderOf(1)!;
    const [stale] = await run(leader, put('moved', 'again'));
    assert.ok(stale?.op === 'error' && stale.error.code === 'FLOTILLA_EPOCH_NOT_MATCH');
    assert.deepEqual(await run(leader, put('moved', 'again', region.epoch)), [{ op: 'put' }]);
    await waitFor('the new voter applies it', async () => text(await newcomer.kv.get(bytes('moved'))) === 'again');

    // Store 1's replica was removed: the region id is never founded there again, and the
    // refusal comes before anything is written.
    const removedFrom = cluster.stores.get(1)!;
    await waitFor('store 1 dropped its replica', () => removedFrom.host.peer(1) === undefined);
    const writesBefore = removedFrom.host.stats().logWrites;
    await assert.rejects(removedFrom.host.bootstrapRegion(REGION), /region ids are never reused/);
    assert.equal(removedFrom.host.stats().logWrites, writesBefore, 'nothing written');
    assert.equal(removedFrom.host.state, 'running');
  });
});

describe('work wakes the ready loop, not the ticker', () => {
  // The ticker fires once a minute: nothing in this test may wait for a tick.
  const cluster = new TestCluster(10_000, 60_000);
  after(() => cluster.closeAll());

  test('elections by campaign, writes and reads complete without a single tick', async () => {
    for (const id of [1, 2, 3]) await cluster.startStore(id);
    for (const store of cluster.stores.values()) await store.host.bootstrapRegion(REGION);
    cluster.stores.get(1)!.host.campaign(1);
    await waitFor('store 1 leads', () => cluster.leaderOf(1)?.id === 1);
    const leaderLast = () => cluster.stores.get(1)!.host.peer(1)!.node.status().lastIndex;
    await waitFor('the election settled and every ready loop went idle', () =>
      [...cluster.stores.values()].every((s) => s.host.isIdle() && s.host.peer(1)!.applied === leaderLast()),
    );
    // Regression: a proposal used to wait for the next tick to be picked up.
    assert.deepEqual(await run(cluster.stores.get(1)!, put('kick', 'tick')), [{ op: 'put' }]);
    const [read] = await run(cluster.stores.get(1)!, get('kick'));
    assert.equal(text(read?.op === 'get' ? read.value : null), 'tick');
  });
});

describe('region split', () => {
  const cluster = new TestCluster();
  after(() => cluster.closeAll());

  test('a split applied at every replica: metadata only, the new region serves its half', async () => {
    for (const id of [1, 2, 3]) await cluster.startStore(id);
    for (const store of cluster.stores.values()) await store.host.bootstrapRegion(REGION);
    await waitFor('a leader', () => cluster.leaderOf(1) !== undefined);
    assert.deepEqual(await run(cluster.leaderOf(1)!, put('b-left', 'L'), put('k-right', 'R')), [{ op: 'put' }, { op: 'put' }]);

    const outcome = await cluster.leaderOf(1)!.host.split(1, bytes('h'), 2, [21, 22, 23]);
    assert.equal(outcome.kind, 'applied');
    await waitFor('every store runs the new region', () => [...cluster.stores.values()].every((s) => s.host.peer(2) !== undefined));
    for (const store of cluster.stores.values()) {
      await waitFor(`store ${store.id} shrank the parent`, () => text(store.host.peer(1)!.region.endKey) === 'h');
    }
    const childEpoch = { version: EPOCH.version + 1, confVer: EPOCH.confVer };
    await waitFor('the new region elects a leader', () => cluster.leaderOf(2) !== undefined);
    const childLeader = cluster.leaderOf(2)!;
    // The data did not move: the new region serves what was written before the split.
    const [moved] = await run(childLeader, get('k-right', childEpoch, 2));
    assert.equal(text(moved?.op === 'get' ? moved.value : null), 'R');
    assert.deepEqual(await run(childLeader, put('m-new', 'N', childEpoch, 2)), [{ op: 'put' }]);
    // The parent no longer owns the right half, and old epochs are refused.
    const parentLeader = cluster.leaderOf(1)!;
    const [stale] = await run(parentLeader, put('b-left', 'x'));
    assert.ok(stale?.op === 'error' && stale.error.code === 'FLOTILLA_EPOCH_NOT_MATCH');
    const [outside] = await run(parentLeader, put('k-right', 'x', childEpoch));
    assert.ok(outside?.op === 'error' && outside.error.code === 'FLOTILLA_KEY_NOT_IN_REGION');
    const [left] = await run(parentLeader, get('b-left', childEpoch));
    assert.equal(text(left?.op === 'get' ? left.value : null), 'L');
    // A second split with the old epoch is refused by every replica.
    const refused = await parentLeader.host.split(1, bytes('c'), 3, [31, 32, 33]);
    assert.equal(refused.kind, 'applied');
    const again = await parentLeader.host.split(1, bytes('d'), 4, [41, 42, 43]);
    assert.equal(again.kind, 'failed', 'the epoch changed with the previous split');
  });
});

describe('hibernation', () => {
  const cluster = new TestCluster(10_000, 5, 10);
  after(() => cluster.closeAll());

  test('idle groups go quiet; when the leader store dies, store liveness wakes them to elect', async () => {
    for (const id of [1, 2, 3]) await cluster.startStore(id);
    for (const store of cluster.stores.values()) await store.host.bootstrapRegion(REGION);
    await waitFor('a leader', () => cluster.leaderOf(1) !== undefined);
    assert.deepEqual(await run(cluster.leaderOf(1)!, put('doze', 'yes')), [{ op: 'put' }]);
    await waitFor('every replica hibernates', () => [...cluster.stores.values()].every((s) => s.host.peer(1)!.node.status().hibernating));
    // Quiet means quiet: no raft traffic while hibernating.
    const sent = [...cluster.stores.values()].map((s) => s.host.stats().messagesSent);
    const ticksBefore = [...cluster.stores.values()].map((s) => s.host.stats().ticks);
    await waitFor('40 more ticks on every store (4 election timeouts)', () =>
      [...cluster.stores.values()].every((s, i) => s.host.stats().ticks >= ticksBefore[i]! + 40),
    );
    assert.deepEqual([...cluster.stores.values()].map((s) => s.host.stats().messagesSent), sent, 'hibernating groups sent nothing');
    // Nor does the ticker visit them, but for its sweep every tickSweepTicks rounds.
    const stores = [...cluster.stores.values()];
    const visits = (i: number, since: { ticks: number; groupTicks: number }): { ticks: number; groupTicks: number } => {
      const now = stores[i]!.host.stats();
      return { ticks: now.ticks - since.ticks, groupTicks: now.groupTicks - since.groupTicks };
    };
    const asleep = stores.map((s) => s.host.stats());
    await waitFor('40 more ticks on every store', () => stores.every((s, i) => s.host.stats().ticks >= asleep[i]!.ticks + 40));
    for (let i = 0; i < stores.length; i++) {
      const { ticks, groupTicks } = visits(i, asleep[i]!);
      assert.ok(groupTicks <= Math.ceil(ticks / limits.tickSweepTicks) + 1, `store ${i + 1}: a hibernating group was ticked ${groupTicks} times in ${ticks} rounds`);
    }
    // A proposal wakes the group; awake, it is ticked every round until it hibernates again.
    const leaderIndex = stores.indexOf(cluster.leaderOf(1)!);
    const woken = stores[leaderIndex]!.host.stats();
    assert.deepEqual(await run(cluster.leaderOf(1)!, put('doze', 'awake')), [{ op: 'put' }]);
    await waitFor('the group hibernates again', () => [...cluster.stores.values()].every((s) => s.host.peer(1)!.node.status().hibernating));
    const awake = visits(leaderIndex, woken);
    assert.ok(awake.groupTicks >= awake.ticks / 2, `the woken leader was ticked ${awake.groupTicks} times in ${awake.ticks} rounds`);
    // The leader's store dies while everyone sleeps: the transport reports it down, the
    // followers wake, and one of them is elected.
    const dead = cluster.leaderOf(1)!;
    await cluster.stop(dead.id);
    await waitFor('a new leader after the leader store died', () => {
      const leader = cluster.leaderOf(1);
      return leader !== undefined && leader.id !== dead.id;
    });
    const [read] = await run(cluster.leaderOf(1)!, get('doze'));
    assert.equal(text(read?.op === 'get' ? read.value : null), 'awake');
  });
});

describe('graceful shutdown', () => {
  const cluster = new TestCluster(10_000, 5, 20);
  after(() => cluster.closeAll());

  test('leaderships move to other stores, hibernating groups included; a lone voter stays', async () => {
    for (const id of [1, 2, 3]) await cluster.startStore(id);
    const regions = [1, 2, 3].map((i) => ({ ...REGION, id: i, peers: REGION.peers.map((p) => ({ ...p, id: p.id + 10 * i })) }));
    for (const store of cluster.stores.values()) for (const region of regions) await store.host.bootstrapRegion(region);
    const leaving = cluster.stores.get(1)!;
    for (const region of regions) leaving.host.campaign(region.id);
    await waitFor('store 1 leads every region', () => regions.every((r) => leaving.host.peer(r.id)!.isLeader()));
    await waitFor('the groups hibernate', () => regions.every((r) => leaving.host.peer(r.id)!.node.status().hibernating));
    assert.equal(await leaving.host.transferLeadersAway(5_000), 0);
    for (const region of regions) {
      await waitFor(`region ${region.id} led elsewhere`, () => {
        const leader = cluster.leaderOf(region.id);
        return leader !== undefined && leader.id !== 1;
      });
    }
    // A region with no other voter cannot move: the call returns instead of waiting it out.
    const lone = { ...REGION, id: 9, peers: [{ id: 91, storeId: 1, role: 'voter' as const }] };
    await leaving.host.bootstrapRegion(lone);
    leaving.host.campaign(9);
    await waitFor('the lone region elects itself', () => leaving.host.peer(9)!.isLeader());
    const started = Date.now();
    assert.equal(await leaving.host.transferLeadersAway(60_000), 1);
    assert.ok(Date.now() - started < 30_000, 'gave up on the lone region long before the deadline');
  });
});

describe('bootstrapping many regions at once', () => {
  const cluster = new TestCluster();
  after(() => cluster.closeAll());

  test('500 regions in one call: one log write per store, every group elects; all or nothing', async () => {
    for (const id of [1, 2, 3]) await cluster.startStore(id);
    const regions = Array.from({ length: 500 }, (_, i) => ({
      ...REGION,
      id: 100 + i,
      startKey: bytes(`r${String(i).padStart(4, '0')}`),
      endKey: bytes(`r${String(i + 1).padStart(4, '0')}`),
      peers: REGION.peers.map((p) => ({ ...p, id: 1_000 + i * 10 + p.storeId })),
    }));
    for (const store of cluster.stores.values()) {
      const writesBefore = store.host.stats().logWrites;
      await store.host.bootstrapRegions(regions);
      assert.equal(store.host.stats().logWrites, writesBefore + 1, 'one log write for all regions');
    }
    await waitFor('every region has a leader', () => regions.every((r) => cluster.leaderOf(r.id) !== undefined), 30_000);
    // A batch naming a region that exists is refused whole: the new region is not created.
    const store = cluster.stores.get(1)!;
    const fresh = { ...regions[0]!, id: 9_999 };
    await assert.rejects(store.host.bootstrapRegions([fresh, regions[1]!]), /region 101 already has a replica/);
    assert.equal(store.host.peer(9_999), undefined);
  });
});

describe('KV apply batches stay under the engine bound', () => {
  const network = new MemoryNetwork();
  const BOUND = 1_000;
  const stores: MemoryStore[] = [];
  after(async () => {
    for (const store of stores) await store.host.close();
  });

  test('entries committed together beyond the bound are applied in several batches, cut at entry boundaries', async () => {
    for (const id of [1, 2, 3]) stores.push(memoryStore(network, id, { applyBatchCommandsMax: BOUND }));
    // Every store's KV engine records the commands of each apply batch it is given.
    const batchSizes: number[] = [];
    for (const store of stores) {
      const apply = store.kv.apply.bind(store.kv);
      store.kv.apply = (batch) => {
        batchSizes.push(batch.reduce((n, r) => n + r.commands.length, 0));
        return apply(batch);
      };
    }
    for (const store of stores) await store.host.start();
    connectAll(stores);
    for (const store of stores) await store.host.bootstrapRegion(REGION);
    await waitFor('a leader', () => leaderOf(stores, 1) !== undefined);
    const leader = leaderOf(stores, 1)!;
    // Five requests in one turn: five entries of 600 deletes, replicated and committed together.
    const deletes = (r: number): KvOp[] => Array.from({ length: 600 }, (_, i) => ({ op: 'delete', regionId: 1, regionEpoch: EPOCH, key: bytes(`d${r}-${i}`) }));
    const results = await Promise.all([0, 1, 2, 3, 4].map((r) => run(leader, ...deletes(r))));
    assert.ok(results.every((ops) => ops.length === 600 && ops.every((o) => o.op === 'delete')));
    await waitFor('every replica applied them', () => stores.every((s) => s.host.peer(1)!.applied === leader.host.peer(1)!.applied));
    assert.ok(Math.max(...batchSizes) <= BOUND, `largest apply batch: ${Math.max(...batchSizes)} commands`);
    assert.ok(batchSizes.filter((n) => n === 600).length >= 5, 'the entries were applied whole');
  });
});

/**
 * Holds a log engine's writes that `holds` picks (by default those carrying entries) after they
 * reached the engine (the page cache): as if their write or fsync had not returned yet, until
 * release().
 */
class FsyncGate extends HeldCalls {
  constructor(private readonly holds: (writes: readonly GroupWrite[], options?: LogWriteOptions) => boolean = (writes) => writes.some((w) => (w.entries?.length ?? 0) > 0)) {
    super();
  }

  wrap(engine: MemoryLogEngine): LogEngine {
    return intercept<LogEngine>(engine, ['write'], (_method, args, call) => {
      const written = call() as Promise<void>;
      if (!this.armed || !this.holds(args[0] as readonly GroupWrite[], args[1] as LogWriteOptions | undefined)) return written;
      return written.then(() => this.hold());
    });
  }
}

/** The last index of REGION's log on the store's (in-memory) disk. */
const lastIndex = (store: MemoryStore): number => store.logDisk.groups.get(1)?.storage.lastIndex() ?? 0;

/** Three stores of REGION whose log engines hold what `gate()` picks once armed; `close()` ends them. */
function gatedStores(gate: () => FsyncGate): { stores: MemoryStore[]; gates: Map<number, FsyncGate>; start(): Promise<MemoryStore>; close(): Promise<void> } {
  const network = new MemoryNetwork();
  const stores: MemoryStore[] = [];
  const gates = new Map<number, FsyncGate>();
  return {
    stores,
    gates,
    /** Starts the stores and bootstraps REGION; resolves with its leader. */
    async start(): Promise<MemoryStore> {
      for (const id of [1, 2, 3]) {
        const g = gate();
        gates.set(id, g);
        stores.push(memoryStore(network, id, {}, undefined, { log: (log) => g.wrap(log) }));
      }
      for (const store of stores) await store.host.start();
      connectAll(stores);
      for (const store of stores) await store.host.bootstrapRegion(REGION);
      await waitFor('a leader', () => leaderOf(stores, 1) !== undefined);
      return leaderOf(stores, 1)!;
    },
    async close(): Promise<void> {
      for (const g of gates.values()) g.release();
      for (const store of stores) await store.host.close();
    },
  };
}

describe("a leader's appends leave before its own log write is durable", () => {
  const cluster = gatedStores(() => new FsyncGate());
  const { stores, gates } = cluster;
  after(() => cluster.close());

  test('the followers write while the leader does; the write completes once the leader is durable', async () => {
    const leader = await cluster.start();
    assert.deepEqual(await run(leader, put('early', '1')), [{ op: 'put' }]);
    const before = lastIndex(leader);

    gates.get(leader.id)!.armed = true; // the leader's next fsync does not return
    let settled = false;
    const pending = run(leader, put('early', '2')).then((r) => ((settled = true), r));
    const followers = stores.filter((s) => s !== leader);
    // Sent after the leader's fsync, the append would never reach them.
    await waitFor('both followers to persist the entry', () => followers.every((f) => lastIndex(f) > before));
    assert.equal(settled, false, "nothing is answered before the leader's cycle completes");
    gates.get(leader.id)!.release();
    assert.deepEqual(await pending, [{ op: 'put' }]);
    const [read] = await run(leader, get('early'));
    assert.equal(text(read?.op === 'get' ? read.value : null), '2');
  });
});

describe('a commit is applied without waiting for its log write', () => {
  // Holds the unsynced writes: those of Readys that only moved the commit index.
  const cluster = gatedStores(() => new FsyncGate((_writes, options) => options?.sync === false));
  const { gates } = cluster;
  after(() => cluster.close());

  test("a write is answered while the leader's commit-only log write has not returned", async () => {
    const leader = await cluster.start();
    assert.deepEqual(await run(leader, put('commit', '1')), [{ op: 'put' }]);

    const gate = gates.get(leader.id)!;
    gate.armed = true; // the leader's next commit-only write does not return
    // Waiting for that write, the leader would neither apply nor answer.
    assert.deepEqual(await run(leader, put('commit', '2')), [{ op: 'put' }]);
    assert.ok(gate.count >= 1, "the commit was written, and that write has not returned");
    const [read] = await run(leader, get('commit'));
    assert.equal(text(read?.op === 'get' ? read.value : null), '2');
    gate.release();
  });
});

describe("a commit is applied while the log write of the entries proposed after it is in flight", () => {
  const cluster = gatedStores(() => new FsyncGate());
  const { stores, gates } = cluster;
  after(() => cluster.close());

  test("one Ready commits A and carries B: A is answered while the leader's write of B has not returned", async () => {
    const leader = await cluster.start();
    assert.deepEqual(await run(leader, put('carry', '0')), [{ op: 'put' }]);
    const followers = stores.filter((s) => s !== leader);
    const before = lastIndex(leader);

    // The followers hold their write of A: A is durable at the leader only, not committed.
    for (const f of followers) gates.get(f.id)!.armed = true;
    let answeredA = false;
    const a = run(leader, put('carry', 'A')).then((r) => ((answeredA = true), r));
    await waitFor('A durable at the leader, held at both followers', () => lastIndex(leader) > before && followers.every((f) => gates.get(f.id)!.count >= 1));

    // B is proposed in the turn the followers' acknowledgements of A arrive: the leader's next
    // Ready commits A and carries B, whose write the leader's gate holds.
    const leaderGate = gates.get(leader.id)!;
    leaderGate.armed = true;
    let b: Promise<KvOpResult[]> | undefined;
    let answeredB = false;
    const host = leader.host;
    const onRaftMessages = host.onRaftMessages.bind(host);
    host.onRaftMessages = (from, messages) => {
      onRaftMessages(from, messages);
      if (b === undefined && messages.some((m) => m.message.type === 'appendResponse')) b = run(leader, put('fresh', 'B')).then((r) => ((answeredB = true), r));
    };
    for (const f of followers) gates.get(f.id)!.release();

    // Waiting for that write first, the leader would neither apply A nor answer it.
    await waitFor('A answered', () => answeredA, 2_000);
    assert.deepEqual(await a, [{ op: 'put' }]);
    assert.ok(b !== undefined && leaderGate.count >= 1 && !answeredB, "B's write has not returned, and B is not answered");
    leaderGate.release();
    assert.deepEqual(await b, [{ op: 'put' }]);
    const [read] = await run(leader, get('carry'));
    assert.equal(text(read?.op === 'get' ? read.value : null), 'A');
  });
});
