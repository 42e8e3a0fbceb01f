/**
 * Reads at followers on three in-memory stores: bounded-staleness reads served from the
 * follower's own state (no round trip) while its safe time is recent enough, and through a
 * ReadIndex round otherwise; linearizable follower reads; the bound's validation.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MemoryNetwork } from '@flotilla/transport';
import { isWireError, limits as wireLimits, type KvOp, type KvOpResult, type KvResponse } from '@flotilla/wire';
import { limits } from '../src/constants.ts';
import { EPOCH, REGION, bytes, connectAll, leaderOf, memoryStore, text, waitFor, type MemoryStore } from './harness.ts';

const BOUND_MS = 1_000;
let requestIds = 1;

async function run(store: MemoryStore, op: KvOp, timeoutMs = 5_000): Promise<KvOpResult> {
  const response: KvResponse = await store.service.handle({ requestId: requestIds++, timeoutMs, ops: [op] });
  assert.ok('results' in response, `request refused: ${JSON.stringify(response)}`);
  return response.results[0]!;
}

const put = (key: string, value: string): KvOp => ({ op: 'put', regionId: 1, regionEpoch: EPOCH, key: bytes(key), value: bytes(value) });
const staleGet = (key: string, maxStalenessMs = BOUND_MS): KvOp => ({
  op: 'get',
  regionId: 1,
  regionEpoch: EPOCH,
  key: bytes(key),
  consistency: { level: 'stale', maxStalenessMs },
});
const linearGet = (key: string): KvOp => ({ op: 'get', regionId: 1, regionEpoch: EPOCH, key: bytes(key), consistency: { level: 'linearizable' } });

const valueOf = (r: KvOpResult): string | null | undefined => (r.op === 'get' ? text(r.value) : undefined);
const errorOf = (r: KvOpResult): string | undefined => (r.op === 'error' ? r.error.code : undefined);

/** Waits until `ms` have passed on this process's monotonic clock since `since` (no fixed sleep). */
const passed = (since: number, ms: number): Promise<void> => waitFor(`${ms} ms to pass`, () => performance.now() > since + ms, ms + 10_000);

class Cluster {
  readonly network = new MemoryNetwork();
  readonly stores: MemoryStore[] = [];

  constructor(private readonly hibernateAfterTicks = 0) {}

  async start(): Promise<void> {
    for (const id of [1, 2, 3]) {
      const store = memoryStore(this.network, id, { tickMs: 5, hibernateAfterTicks: this.hibernateAfterTicks });
      await store.host.start();
      this.stores.push(store);
    }
    connectAll(this.stores);
    for (const store of this.stores) await store.host.bootstrapRegion(REGION);
    await waitFor('a leader', () => this.leader() !== undefined);
  }

  leader(): MemoryStore | undefined {
    return leaderOf(this.stores, 1);
  }

  followers(): MemoryStore[] {
    const leader = this.leader();
    return this.stores.filter((s) => s !== leader);
  }

  /** Every replica follows the leader and applied everything it committed (after faults). */
  async steady(): Promise<void> {
    await waitFor('every replica follows the leader and is caught up', () => {
      const leader = this.leader()?.host.peer(1);
      if (!leader) return false;
      const { id, commit } = leader.node.status();
      return this.stores.every((s) => s.host.peer(1)!.node.status().leader === id && s.host.peer(1)!.applied === commit);
    });
  }

  /** Writes through the leader; resolves with the moment the write was acknowledged. */
  async write(key: string, value: string): Promise<number> {
    const result = await run(this.leader()!, put(key, value));
    assert.deepEqual(result, { op: 'put' });
    return performance.now();
  }

  async close(): Promise<void> {
    for (const store of this.stores) await store.host.close();
  }
}

describe('stale reads at a follower', () => {
  const cluster = new Cluster();
  before(() => cluster.start());
  after(() => cluster.close());

  // Catches: a follower that asks the leader for every stale read (fails while cut off), and
  // one that serves whatever it has without proving its age (answers v1 past the bound).
  test('served from its own state while cut off from every store, until the bound passes', async () => {
    await cluster.write('fruit', 'v1');
    const leader = cluster.leader()!;
    const [follower, other] = cluster.followers() as [MemoryStore, MemoryStore];
    assert.equal(valueOf(await run(follower, staleGet('fruit'))), 'v1', 'the first read has no safe time yet: it asks the leader');
    const safe = follower.host.peer(1)!.safeTimeMs();
    assert.ok(Number.isFinite(safe));

    cluster.network.partition(follower.id, leader.id);
    cluster.network.partition(follower.id, other.id);
    try {
      await cluster.write('fruit', 'v2'); // commits on the two others
      const cutOff = await run(follower, staleGet('fruit'));
      assert.ok(performance.now() - safe < BOUND_MS, 'this test ran too slowly to say anything');
      assert.equal(valueOf(cutOff), 'v1', 'served locally: v2 was acknowledged after the safe time, so v1 is within the bound');
      assert.equal(follower.host.peer(1)!.safeTimeMs(), safe, 'no round completed while cut off');

      await passed(safe, BOUND_MS);
      const tooOld = await run(follower, staleGet('fruit'), 300);
      assert.ok(errorOf(tooOld) === 'FLOTILLA_NOT_LEADER' || errorOf(tooOld) === 'FLOTILLA_TIMEOUT', `never v1 past the bound: ${JSON.stringify(tooOld)}`);
    } finally {
      cluster.network.heal();
    }
    await waitFor('the follower reads v2 through the leader', async () => valueOf(await run(follower, staleGet('fruit'), 300)) === 'v2');
  });

  // Catches: a follower that serves its own state while it lags (no freshness proof) — the
  // write is committed without it, and its own state still holds v1.
  test('a value acknowledged more than maxStalenessMs before the read is visible, even on a lagging follower', async () => {
    await cluster.steady();
    const leader = cluster.leader()!;
    const follower = cluster.followers()[0]!;
    await cluster.write('berry', 'v1');
    await waitFor('the follower reads v1', async () => valueOf(await run(follower, staleGet('berry'))) === 'v1');

    cluster.network.block(leader.id, follower.id); // nothing reaches the follower from the leader
    try {
      const acked = await cluster.write('berry', 'v2');
      await passed(acked, BOUND_MS);
      assert.equal(text(await follower.kv.get(bytes('berry'))), 'v1', 'the follower lags');
      const lagging = await run(follower, staleGet('berry'), 300);
      assert.notEqual(valueOf(lagging), 'v1', 'v2 was acknowledged more than the bound ago');
    } finally {
      cluster.network.unblock(leader.id, follower.id);
    }
    await waitFor('the follower catches up and answers v2', async () => valueOf(await run(follower, staleGet('berry'), 300)) === 'v2');
    // And without faults, for a short bound: every write acknowledged past it is seen.
    for (let i = 0; i < 5; i++) {
      const at = await cluster.write('berry', `w${i}`);
      await passed(at, 20);
      assert.equal(valueOf(await run(follower, staleGet('berry', 20))), `w${i}`);
    }
  });

  // Catches: a linearizable follower read served from local state. The follower's link from the
  // leader is slowed, so when the write is acknowledged the follower does not have it yet.
  test('a linearizable read at a follower is served through the leader (follower ReadIndex)', async () => {
    await cluster.steady();
    const leader = cluster.leader()!;
    const follower = cluster.followers()[0]!;
    cluster.network.delay(leader.id, follower.id, 200);
    try {
      for (let i = 0; i < 3; i++) {
        await cluster.write('lemon', `p${i}`);
        assert.notEqual(text(await follower.kv.get(bytes('lemon'))), `p${i}`, 'the follower lags');
        assert.equal(valueOf(await run(follower, linearGet('lemon'))), `p${i}`);
      }
    } finally {
      cluster.network.delay(leader.id, follower.id, 0);
    }
  });

  // Catches: a bound that is not validated (a negative one would make any safe time "recent").
  test('an invalid maxStalenessMs is refused with a typed error before anything runs', async () => {
    await cluster.steady();
    const follower = cluster.followers()[0]!;
    const leader = cluster.leader()!;
    const invalid: [number, string][] = [
      [-1, 'FLOTILLA_WIRE_INVALID_ARGUMENT'],
      [1.5, 'FLOTILLA_WIRE_INVALID_ARGUMENT'],
      [Number.NaN, 'FLOTILLA_WIRE_INVALID_ARGUMENT'],
      [limits.staleReadBoundMsMax + 1, 'FLOTILLA_WIRE_LIMIT_EXCEEDED'],
    ];
    for (const [ms, code] of invalid) {
      await assert.rejects(follower.service.handle({ requestId: requestIds++, ops: [staleGet('fruit', ms)] }), (err) => isWireError(err, code as 'FLOTILLA_WIRE_INVALID_ARGUMENT'));
      // A write in the same request must not run.
      await assert.rejects(leader.service.handle({ requestId: requestIds++, ops: [put('kiwi', String(ms)), staleGet('fruit', ms)] }), (err) => isWireError(err));
    }
    assert.equal(text(await leader.kv.get(bytes('kiwi'))), null);
    assert.equal(limits.staleReadBoundMsMax, wireLimits.kvStalenessMsMax, 'what the wire accepts, the store accepts');
    await cluster.write('fig', 'ok');
    await cluster.steady();
    assert.equal(valueOf(await run(follower, staleGet('fig', limits.staleReadBoundMsMax))), 'ok', 'the largest bound is valid');
  });
});

describe('stale reads in a hibernated group', () => {
  const cluster = new Cluster(10);
  before(() => cluster.start());
  after(() => cluster.close());

  // Catches: a follower that trusts a quiet group's last state (no heartbeats prove its age).
  test('a quiet group sends nothing, so the first read past the bound asks the leader; reads after it are local', async () => {
    const acked = await cluster.write('mango', 'ripe');
    const hibernating = (): boolean => cluster.stores.every((s) => s.host.peer(1)!.node.status().hibernating);
    await waitFor('the group hibernates', hibernating);
    await passed(acked, BOUND_MS);
    const follower = cluster.followers()[0]!;
    const peer = follower.host.peer(1)!;
    const before = peer.safeTimeMs();
    assert.equal(valueOf(await run(follower, staleGet('mango'))), 'ripe');
    assert.ok(peer.safeTimeMs() > before && peer.safeTimeMs() > acked, 'a round moved the safe time past the write');
    await waitFor('the group hibernates again', hibernating);
    const sent = cluster.stores.map((s) => s.host.stats().messagesSent);
    assert.equal(valueOf(await run(follower, staleGet('mango'))), 'ripe');
    assert.deepEqual(cluster.stores.map((s) => s.host.stats().messagesSent), sent, 'the second read was served without a message');
  });
});

interface Read {
  readonly start: number;
  readonly end: number;
  readonly value: number;
  readonly boundMs: number | null;
}

describe('reads at every replica while leadership moves', () => {
  const cluster = new Cluster();
  before(() => cluster.start());
  after(() => cluster.close());

  // Catches: follower reads that miss a write acknowledged before they started (a read index
  // from a deposed leader, a resent round keeping its old stamp, a local read), and stale reads
  // past their bound. One writer puts 1, 2, 3, … in order, so a register check is exact.
  test('linearizable and stale reads at all three stores, across leader transfers, are consistent with the writes', async () => {
    const acked: number[] = []; // acked[i]: when write i+1 was acknowledged
    const invoked: number[] = [];
    const reads: Read[] = [];
    let writing = true;
    const until = performance.now() + 20_000;
    const writer = (async () => {
      for (let i = 1; i <= 60; i++) {
        invoked.push(performance.now());
        for (;;) {
          const leader = cluster.leader();
          if (leader && (await run(leader, put('count', String(i)), 500)).op === 'put') break;
          assert.ok(performance.now() < until, 'the writer makes progress');
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
        acked.push(performance.now());
        if (i % 20 === 0) {
          const leader = cluster.leader();
          const target = cluster.followers()[i % 2]?.host.peer(1)?.peerId;
          if (leader && target !== undefined) leader.host.transferLeader(1, target);
        }
      }
    })().finally(() => (writing = false));
    const reader = async (store: MemoryStore, boundMs: number | null): Promise<void> => {
      while (writing) {
        const start = performance.now();
        const result = await run(store, boundMs === null ? linearGet('count') : staleGet('count', boundMs), 500);
        if (result.op === 'get') reads.push({ start, end: performance.now(), value: Number(text(result.value) ?? '0'), boundMs });
        // A read served locally settles in microtasks only: yield, or the loop starves the timers.
        await new Promise((resolve) => setTimeout(resolve, result.op === 'get' ? 0 : 5));
      }
    };
    await Promise.all([writer, ...cluster.stores.flatMap((s) => [reader(s, null), reader(s, 30), reader(s, 0)])]);
    const lastBefore = (times: readonly number[], t: number): number => times.filter((at) => at < t).length;
    for (const r of reads) {
      const mustSee = lastBefore(acked, r.start - (r.boundMs ?? 0));
      assert.ok(r.value >= mustSee, `a read (bound ${r.boundMs}) saw ${r.value}, but ${mustSee} was acknowledged before it (less the bound)`);
      assert.ok(r.value <= lastBefore(invoked, r.end), `a read saw ${r.value}, not written yet`);
    }
    assert.ok(reads.filter((r) => r.boundMs === null).length > 30, `enough linearizable reads (${reads.length} in all)`);
  });
});

describe('a read that waits while its region splits', () => {
  const cluster = new Cluster();
  before(() => cluster.start());
  after(() => cluster.close());

  // Catches: a read checked only when it arrived. The key moved to the new region while the
  // read waited for its round; that region's writes are not in the old region's applied state.
  test('answers EpochNotMatch once the split applied', async () => {
    const leader = cluster.leader()!;
    const follower = cluster.followers()[0]!;
    await cluster.write('kale', 'old');
    await cluster.steady();
    cluster.network.delay(leader.id, follower.id, 200); // the follower learns of the split late
    try {
      const split = await leader.host.split(1, bytes('h'), 2, [21, 22, 23]);
      assert.equal(split.kind, 'applied');
      assert.equal(follower.host.peer(1)!.region.epoch.version, EPOCH.version, 'the follower has not applied the split yet');
      const response = await follower.service.handle({ requestId: requestIds++, timeoutMs: 5_000, ops: [linearGet('kale'), staleGet('kale', 0)] });
      assert.ok('results' in response);
      assert.deepEqual(response.results.map(errorOf), ['FLOTILLA_EPOCH_NOT_MATCH', 'FLOTILLA_EPOCH_NOT_MATCH']);
    } finally {
      cluster.network.delay(leader.id, follower.id, 0);
    }
  });
});
