/**
 * Many regions on three store processes: 1,000 founding regions elect leaders and take
 * writes, 100 of them split while writes continue, and replicas that fell behind a compacted
 * log (a restarted store, a new store) catch up by snapshot. Every acknowledged write must be
 * readable at the end.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { RegionMeta } from '@flotilla/wire';
import { ProcessCluster, regionJson, waitFor } from './support/cluster.ts';
import { RangeRouter } from './support/router.ts';

const REGIONS = 1_000;
const SPLITS = 100;
const WRITERS = 4;
const STORES = [1, 2, 3];
const LAGGING_WRITES = 600;

const pad = (i: number): string => String(i).padStart(4, '0');
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const hex = (s: string): string => Buffer.from(s).toString('hex');
const regionId = (i: number): number => 1_000 + i;
const peerId = (region: number, storeId: number): number => region * 10 + storeId;

/** Region i = [k<i>, k<i+1>); the first starts at the empty key, the last is unbounded. */
function foundingRegion(i: number): RegionMeta {
  const id = regionId(i);
  return {
    id,
    startKey: i === 0 ? new Uint8Array(0) : bytes(`k${pad(i)}`),
    endKey: i === REGIONS - 1 ? new Uint8Array(0) : bytes(`k${pad(i + 1)}`),
    epoch: { version: 1, confVer: 1 },
    peers: STORES.map((storeId) => ({ id: peerId(id, storeId), storeId, role: 'voter' as const })),
  };
}

interface StoreStatus {
  readonly stats: { readonly peers: number; readonly snapshotsReceived: number; readonly snapshotsSent: number };
}
interface RegionStatus {
  readonly role: string;
  readonly commit: number;
  readonly applied: number;
  readonly firstIndex: number;
  readonly leader: { readonly peerId: number; readonly storeId: number } | null;
  readonly peers: readonly { readonly id: number; readonly storeId: number; readonly role: string }[];
  readonly epoch: { readonly version: number; readonly confVer: number };
}

describe('1,000 regions on 3 store processes', () => {
  const cluster = new ProcessCluster({ tickMs: 50 });
  after(() => cluster.close());
  const router = new RangeRouter(cluster);
  /** Per key: the last acknowledged value, and values whose write outcome is unknown since. */
  const expected = new Map<string, { acknowledged: string | null; unknown: Set<string> }>();

  const leaderStore = async (region: number): Promise<number> => {
    let leader: number | undefined;
    await waitFor(`a leader of region ${region}`, async () => {
      for (const store of cluster.stores.values()) {
        const status = await cluster.admin<RegionStatus>(store.id, 'GET', `/v1/admin/regions/${region}`);
        if (status.status === 200 && status.body.role === 'leader') leader = store.id;
      }
      return leader !== undefined;
    });
    return leader!;
  };

  const write = async (key: string, value: string): Promise<void> => {
    const entry = expected.get(key) ?? { acknowledged: null, unknown: new Set<string>() };
    expected.set(key, entry);
    if ((await router.put(key, value)) === 'ok') {
      entry.acknowledged = value;
      entry.unknown.clear();
    } else {
      entry.unknown.add(value);
    }
  };

  /** The store's replica applies up to the leader's commit index, and a snapshot brought it there. */
  const caughtUpBySnapshot = async (storeId: number, region: number, leader: number): Promise<void> => {
    const { commit } = await cluster.expectAdmin<RegionStatus>(leader, 'GET', `/v1/admin/regions/${region}`);
    await waitFor(`store ${storeId} applies region ${region} up to the commit index`, async () => {
      const status = await cluster.admin<RegionStatus>(storeId, 'GET', `/v1/admin/regions/${region}`);
      return status.status === 200 && status.body.applied >= commit;
    }, 60_000);
    const store = await cluster.expectAdmin<StoreStatus>(storeId, 'GET', '/v1/admin/store');
    assert.ok(store.stats.snapshotsReceived >= 1, `store ${storeId} installed a snapshot`);
  };

  const checkEveryKey = async (): Promise<void> => {
    for (const [key, entry] of expected) {
      const value = await router.get(key);
      const allowed = new Set([entry.acknowledged, ...entry.unknown]);
      assert.ok(allowed.has(value), `${key}: read ${value}, acknowledged ${entry.acknowledged}, unknown ${[...entry.unknown].join(',')}`);
    }
  };

  test('1,000 founding regions elect, take writes and split 100 times under load', async () => {
    for (const id of STORES) await cluster.startStore(id);
    const regions = Array.from({ length: REGIONS }, (_, i) => foundingRegion(i));
    for (const id of STORES) await cluster.expectAdmin(id, 'POST', '/v1/admin/bootstrap', { regions: regions.map(regionJson) });
    await waitFor('every region has a leader', async () => {
      let leaders = 0;
      for (const store of cluster.stores.values()) {
        const page = await cluster.expectAdmin<{ regions: { role: string }[] }>(store.id, 'GET', `/v1/admin/regions?limit=${REGIONS}`);
        leaders += page.regions.filter((r) => r.role === 'leader').length;
      }
      return leaders === REGIONS;
    }, 120_000);
    await router.refresh();
    assert.equal(router.size, REGIONS);

    // Writers cover every region while the splits run; each key has one writer, in order.
    let splitting = true;
    let serial = 0;
    const writers = Array.from({ length: WRITERS }, async (_, w) => {
      for (let n = 0; splitting || n < 50; n++) {
        const i = (n * WRITERS + w) % REGIONS;
        // "-0…" sorts below the split key "-5", "-w…" above it: both halves get writes.
        await write(`k${pad(i)}-${n % 2 === 0 ? '0' : 'w'}${w}`, `v${serial++}`);
      }
    });
    for (let j = 0; j < SPLITS; j++) {
      const i = j * (REGIONS / SPLITS) + 1;
      const parent = regionId(i);
      const child = 5_000 + j;
      const answer = await cluster.admin(await leaderStore(parent), 'POST', `/v1/admin/regions/${parent}/split`, {
        splitKey: hex(`k${pad(i)}-5`),
        newRegionId: child,
        newPeerIds: STORES.map((storeId) => peerId(child, storeId)),
      });
      assert.equal(answer.status, 200, `split ${parent}: ${JSON.stringify(answer.body)}`);
    }
    splitting = false;
    await Promise.all(writers);
    assert.ok(router.refreshes > 1, 'writers saw the splits and refreshed their region table');
    // The table comes from one store, which may apply the last split a moment after the leader.
    await waitFor('every split in the region table', async () => {
      await router.refresh();
      return router.size === REGIONS + SPLITS;
    });
    await checkEveryKey();
  });

  test('a store that fell behind a compacted log catches up by snapshot', async () => {
    const region = regionId(500);
    await cluster.kill9(3);
    // More entries than the leader's inflight window (256 appends): the appends queued for the
    // dead store cannot carry them all, so the rest must come by snapshot after compaction.
    for (let n = 0; n < LAGGING_WRITES; n++) await write(`k0500-lag${n}`, `lag${n}`);
    const leader = await leaderStore(region);
    const snapshot = await cluster.expectAdmin<{ index: number }>(leader, 'POST', `/v1/admin/regions/${region}/snapshot`);
    assert.ok(snapshot.index > LAGGING_WRITES, `the log was compacted past the writes (to ${snapshot.index})`);
    await cluster.startStore(3);
    await caughtUpBySnapshot(3, region, leader);
    await checkEveryKey();
  });

  test('a replica added on a new store arrives by snapshot; an old one is removed', async () => {
    const region = regionId(700);
    for (let n = 0; n < 50; n++) await write(`k0700-move${n}`, `move${n}`);
    await cluster.startStore(4);
    const leader = await leaderStore(region);
    await cluster.expectAdmin(leader, 'POST', `/v1/admin/regions/${region}/snapshot`);
    const newPeer = peerId(region, 4);
    await cluster.expectAdmin(leader, 'POST', `/v1/admin/regions/${region}/members`, { changes: [{ type: 'addLearner', peerId: newPeer, storeId: 4 }] });
    await caughtUpBySnapshot(4, region, leader);
    // Promote it and remove store 1's replica in one joint change.
    const removed = peerId(region, 1);
    const leaderNow = await leaderStore(region);
    if (leaderNow === 1) await cluster.expectAdmin(1, 'POST', `/v1/admin/regions/${region}/transfer-leader`, { toPeerId: peerId(region, 2) });
    // A leader takes a conf change once it applied an entry of its term (503 SERVER_BUSY until then).
    await waitFor('the joint change is taken', async () => {
      const leaderStoreId = await leaderStore(region);
      const answer = await cluster.admin(leaderStoreId, 'POST', `/v1/admin/regions/${region}/members`, {
        changes: [
          { type: 'addVoter', peerId: newPeer, storeId: 4 },
          { type: 'remove', peerId: removed, storeId: 1 },
        ],
      });
      if (answer.status === 503) return false;
      assert.equal(answer.status, 200, `store ${leaderStoreId}: ${JSON.stringify(answer.body)}`);
      return true;
    });
    await waitFor('store 1 no longer hosts the region', async () => (await cluster.admin(1, 'GET', `/v1/admin/regions/${region}`)).status === 404);
    const final = await cluster.expectAdmin<RegionStatus>(await leaderStore(region), 'GET', `/v1/admin/regions/${region}`);
    assert.deepEqual(final.peers.map((p) => `${p.storeId}:${p.role}`).sort(), ['2:voter', '3:voter', '4:voter']);
    await router.refresh();
    await checkEveryKey();
  });
});
