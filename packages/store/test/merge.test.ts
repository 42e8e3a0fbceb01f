/**
 * Region merge on three stores (in-memory twins): prepare in the source, commit in the target
 * once every source replica holds the prepare entry, rollback when the target changed first,
 * a target replica that waits for its lagging source replica, restarts in between, and a
 * stale source replica ended by the merged target's snapshot.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { RegionEpoch } from '@flotilla/wire';
import type { GroupWrite, LogEngine } from '@flotilla/storage';
import { decodeCommands } from '../src/command-codec.ts';
import { EPOCH, REGION, TestCluster, bytes, get, put, run, text, waitFor, type EngineWrappers, type MemoryStore } from './harness.ts';

/** After the split at 'g': region 1 = [a, g), region 2 = [g, n), both at version 2. */
const SPLIT_EPOCH: RegionEpoch = { version: EPOCH.version + 1, confVer: EPOCH.confVer };
/** The source after its prepare entry. */
const FROZEN_EPOCH: RegionEpoch = { version: SPLIT_EPOCH.version + 1, confVer: EPOCH.confVer };
/** The target after taking the source: past both. */
const MERGED_EPOCH: RegionEpoch = { version: FROZEN_EPOCH.version + 1, confVer: EPOCH.confVer };

/** Three stores with region 1 split at 'g' into regions 1 and 2, one key written on each side. */
async function splitCluster(cluster = new TestCluster(), wrap: Record<number, EngineWrappers> = {}): Promise<TestCluster> {
  for (const id of [1, 2, 3]) await cluster.startStore(id, undefined, wrap[id]);
  for (const store of cluster.stores.values()) await store.host.bootstrapRegion(REGION);
  await waitFor('a leader', () => cluster.leaderOf(1) !== undefined);
  assert.deepEqual(await run(cluster.leaderOf(1)!, put('b', 'left'), put('k', 'right')), [{ op: 'put' }, { op: 'put' }]);
  assert.equal((await cluster.leaderOf(1)!.host.split(1, bytes('g'), 2, [21, 22, 23])).kind, 'applied');
  await waitFor('every store runs region 2', () => [...cluster.stores.values()].every((s) => s.host.peer(2) !== undefined && !s.host.peer(2)!.placeholder));
  await waitFor('region 2 elects a leader', () => cluster.leaderOf(2) !== undefined);
  return cluster;
}

/** Store 3 hears nothing and is heard by none; both regions are led on store 1 or 2 after it. */
async function cutOffStore3(cluster: TestCluster): Promise<void> {
  cluster.network.partition(3, 1);
  cluster.network.partition(3, 2);
  await waitFor('both regions led on store 1 or 2', () => [1, 2].every((r) => [1, 2].some((id) => cluster.stores.get(id)!.host.peer(r)!.isLeader())));
}

function healStore3(cluster: TestCluster): void {
  cluster.network.heal(3, 1);
  cluster.network.heal(3, 2);
}

function merged(store: MemoryStore): boolean {
  const target = store.host.peer(1);
  return store.host.peer(2) === undefined && target !== undefined && text(target.region.endKey) === 'n' && target.region.epoch.version === MERGED_EPOCH.version;
}

/** Prepares the merge of region 2 into region 1 where region 1 is led (as PD's operator does). */
async function prepare(cluster: TestCluster): Promise<void> {
  const targetStore = cluster.leaderOf(1)!.id;
  await waitFor('both regions led on one store', () => {
    const sourceLeader = cluster.leaderOf(2);
    if (sourceLeader?.id === targetStore) return true;
    sourceLeader?.host.transferLeader(2, 20 + targetStore);
    return false;
  });
  const outcome = await cluster.leaderOf(2)!.host.prepareMerge(2, 1);
  assert.equal(outcome.kind, 'applied', JSON.stringify(outcome));
}

async function value(store: MemoryStore, key: string, epoch: RegionEpoch, regionId = 1): Promise<string | null> {
  const [r] = await run(store, get(key, epoch, regionId));
  assert.equal(r?.op, 'get', JSON.stringify(r));
  return text(r?.op === 'get' ? r.value : null);
}

describe('region merge', () => {
  test('the target takes the source: one range, the data in place, the source gone everywhere', async () => {
    const cluster = await splitCluster();
    try {
      await prepare(cluster);
      for (const store of cluster.stores.values()) await waitFor(`store ${store.id} merged`, () => merged(store));
      const leader = cluster.leaderOf(1)!;
      assert.equal(await value(leader, 'k', MERGED_EPOCH), 'right', 'the source data is served by the target');
      assert.equal(await value(leader, 'b', MERGED_EPOCH), 'left');
      assert.deepEqual(await run(leader, put('m', 'new', MERGED_EPOCH)), [{ op: 'put' }]);
      const [gone] = await run(leader, put('k', 'x', FROZEN_EPOCH, 2));
      assert.equal(gone?.op === 'error' && gone.error.code, 'FLOTILLA_REGION_NOT_FOUND');
      const [old] = await run(leader, put('b', 'x', SPLIT_EPOCH));
      assert.equal(old?.op === 'error' && old.error.code, 'FLOTILLA_EPOCH_NOT_MATCH');
      for (const store of cluster.stores.values()) assert.equal(store.kv.region(2)?.status, 'tombstone', `store ${store.id} keeps the source's tombstone`);
    } finally {
      await cluster.closeAll();
    }
  });

  test('writes racing the prepare either land and survive the merge, or are refused and absent', async () => {
    const cluster = await splitCluster();
    try {
      const sourceLeader = cluster.leaderOf(2)!;
      const writes = Array.from({ length: 40 }, (_, i) => run(sourceLeader, put(`h${String(i).padStart(2, '0')}`, `v${i}`, SPLIT_EPOCH, 2)));
      const preparing = prepare(cluster);
      const answers = (await Promise.all(writes)).map((r) => r[0]!);
      await preparing;
      for (const store of cluster.stores.values()) await waitFor(`store ${store.id} merged`, () => merged(store));
      const leader = cluster.leaderOf(1)!;
      for (const [i, answer] of answers.entries()) {
        const key = `h${String(i).padStart(2, '0')}`;
        const found = await value(leader, key, MERGED_EPOCH);
        if (answer.op === 'put') assert.equal(found, `v${i}`, `${key} was acknowledged and must survive`);
        else {
          assert.equal(answer.op, 'error');
          assert.ok(answer.op === 'error' && ['FLOTILLA_SERVER_BUSY', 'FLOTILLA_EPOCH_NOT_MATCH'].includes(answer.error.code), JSON.stringify(answer));
          assert.equal(found, null, `${key} was refused and must not appear`);
        }
      }
    } finally {
      await cluster.closeAll();
    }
  });

  test('a frozen source refuses reads and writes, and membership changes', async () => {
    const cluster = await splitCluster();
    try {
      // Store 3 cut off: the commit waits for its source replica, so the source stays frozen.
      await cutOffStore3(cluster);
      await prepare(cluster);
      const sourceLeader = cluster.leaderOf(2)!;
      for (const op of [put('k', 'x', FROZEN_EPOCH, 2), get('k', FROZEN_EPOCH, 2)]) {
        const [r] = await run(sourceLeader, op);
        assert.equal(r?.op === 'error' && r.error.code, 'FLOTILLA_SERVER_BUSY', `${op.op} on a frozen source`);
      }
      const change = await sourceLeader.host.changeMembership(2, [{ type: 'remove', peerId: 23 }]);
      assert.equal(change.kind === 'failed' && change.error.code, 'FLOTILLA_SERVER_BUSY');
      const ticks = sourceLeader.host.stats().ticks;
      await waitFor('fifty ticks', () => sourceLeader.host.stats().ticks > ticks + 50);
      assert.ok(!merged(cluster.stores.get(1)!), 'no commit while a source replica lacks the prepare entry');
      healStore3(cluster);
      for (const store of cluster.stores.values()) await waitFor(`store ${store.id} merged`, () => merged(store));
      assert.equal(await value(cluster.stores.get(3)!, 'k', MERGED_EPOCH), 'right');
    } finally {
      await cluster.closeAll();
    }
  });

  test('the target changed before the commit: the source rolls back and serves again', async () => {
    const cluster = await splitCluster();
    try {
      await cutOffStore3(cluster);
      await prepare(cluster);
      // The target splits first: no CommitMerge prepared against its old epoch can apply now.
      assert.equal((await cluster.leaderOf(1)!.host.split(1, bytes('c'), 3, [31, 32, 33])).kind, 'applied');
      const rolledBack = { version: FROZEN_EPOCH.version + 1, confVer: EPOCH.confVer };
      for (const id of [1, 2]) {
        await waitFor(`store ${id} thawed the source`, () => {
          const source = cluster.stores.get(id)!.host.peer(2)!;
          return source.merging === undefined && source.region.epoch.version === rolledBack.version;
        });
      }
      assert.deepEqual(await run(cluster.leaderOf(2)!, put('k', 'again', rolledBack, 2)), [{ op: 'put' }]);
      healStore3(cluster);
      const third = cluster.stores.get(3)!;
      await waitFor('store 3 caught up', () => third.host.peer(2)?.merging === undefined && third.host.peer(2)?.region.epoch.version === rolledBack.version);
      await waitFor('store 3 applied the write', async () => text(await third.kv.get(bytes('k'))) === 'again');
      assert.equal(third.kv.region(2)?.merging, undefined);
    } finally {
      await cluster.closeAll();
    }
  });

  test('a source replica that never gets the prepare entry: the target is fenced, the source rolls back', async () => {
    const cluster = await splitCluster(new TestCluster(10_000, 5, 0, { mergeCommitWaitMs: 300 }));
    try {
      await cutOffStore3(cluster);
      await prepare(cluster);
      const fenced = { version: SPLIT_EPOCH.version + 1, confVer: EPOCH.confVer };
      const rolledBack = { version: FROZEN_EPOCH.version + 1, confVer: EPOCH.confVer };
      for (const id of [1, 2]) {
        const host = cluster.stores.get(id)!.host;
        await waitFor(`store ${id} fenced the target and thawed the source`, () => host.peer(1)!.region.epoch.version === fenced.version && host.peer(2)!.merging === undefined);
        assert.equal(host.peer(2)!.region.epoch.version, rolledBack.version);
        assert.equal(text(host.peer(1)!.region.endKey), 'g', 'the target did not take the source');
      }
      assert.deepEqual(await run(cluster.leaderOf(2)!, put('k', 'thawed', rolledBack, 2)), [{ op: 'put' }]);
      healStore3(cluster);
      const third = cluster.stores.get(3)!;
      await waitFor('store 3 caught up', async () => text(await third.kv.get(bytes('k'))) === 'thawed');
      assert.equal(third.host.peer(2)!.merging, undefined);
      await waitFor('store 3 applied the fence', () => third.host.peer(1)!.region.epoch.version === fenced.version);
    } finally {
      await cluster.closeAll();
    }
  });

  test('a source whose target froze for a merge of its own waits, then rolls back once the target merged away', async () => {
    const cluster = await splitCluster();
    try {
      // Region 2 = [g, k), region 3 = [k, n).
      assert.equal((await cluster.leaderOf(2)!.host.split(2, bytes('k'), 3, [31, 32, 33])).kind, 'applied');
      await waitFor('every store runs region 3', () => [...cluster.stores.values()].every((s) => s.host.peer(3) !== undefined && !s.host.peer(3)!.placeholder));
      await cutOffStore3(cluster);
      await waitFor('region 3 led on store 1 or 2', () => [1, 2].some((id) => cluster.stores.get(id)!.host.peer(3)!.isLeader()));
      const leads = (regionId: number): MemoryStore => cluster.leaderOf(regionId)!;
      // Both prepared while store 3 can't hold the prepare entries: neither commits yet.
      await waitFor('regions 2 and 3 led on one store', () => {
        const [source, target] = [cluster.leaderOf(3), cluster.leaderOf(2)];
        if (!source || !target) return false;
        if (source.id === target.id) return true;
        source.host.transferLeader(3, 30 + target.id);
        return false;
      });
      assert.equal((await leads(3).host.prepareMerge(3, 2)).kind, 'applied', 'region 3 freezes to merge into region 2');
      assert.equal((await leads(2).host.prepareMerge(2, 3)).kind, 'failed', 'a region can not merge into a frozen one');
      await prepare(cluster); // region 2 into region 1
      healStore3(cluster);
      for (const store of cluster.stores.values()) {
        await waitFor(`store ${store.id}: region 1 took region 2, region 3 thawed`, () => {
          const third = store.host.peer(3);
          return store.host.peer(2) === undefined && text(store.host.peer(1)!.region.endKey) === 'k' && third !== undefined && third.merging === undefined;
        });
      }
      const thawed = cluster.stores.get(1)!.host.peer(3)!.region.epoch;
      assert.deepEqual(await run(cluster.leaderOf(3)!, put('m', 'after', thawed, 3)), [{ op: 'put' }]);
      assert.equal(await value(cluster.leaderOf(1)!, 'b', cluster.stores.get(1)!.host.peer(1)!.region.epoch), 'left');
    } finally {
      await cluster.closeAll();
    }
  });

  test('a restart in between: the frozen source stays frozen, the merge completes, and stays done', async () => {
    const cluster = await splitCluster();
    try {
      await cutOffStore3(cluster);
      await prepare(cluster);
      const disks = (id: number): { logDisk: MemoryStore['logDisk']; kvDisk: MemoryStore['kvDisk'] } => ({ logDisk: cluster.stores.get(id)!.logDisk, kvDisk: cluster.stores.get(id)!.kvDisk });
      const first = disks(1);
      await cluster.stop(1);
      const restarted = await cluster.startStore(1, first);
      // Back from the KV engine, or from the log (re-applied): frozen either way.
      await waitFor('the restarted source is frozen again', () => restarted.host.peer(2)?.merging !== undefined);
      healStore3(cluster);
      for (const store of cluster.stores.values()) await waitFor(`store ${store.id} merged`, () => merged(store));
      for (const id of [1, 2, 3]) {
        const d = disks(id);
        await cluster.stop(id);
        await cluster.startStore(id, d);
      }
      for (const store of cluster.stores.values()) assert.ok(merged(store), `store ${store.id} is still merged after a restart`);
      await waitFor('a leader', () => cluster.leaderOf(1) !== undefined);
      assert.equal(await value(cluster.leaderOf(1)!, 'k', MERGED_EPOCH), 'right');
    } finally {
      await cluster.closeAll();
    }
  });

  test("a source replica left behind is ended by the merged target's snapshot", async () => {
    const cluster = new TestCluster(20);
    try {
      // Store 3 hears nothing more once its log holds the source's prepare entry: every frame to
      // it is lost (its own still go out: the source's leader learns it holds the entry, and commits).
      const cutOffAtPrepare = (log: LogEngine): LogEngine =>
        Object.assign(Object.create(log) as LogEngine, {
          write: async (writes: GroupWrite[]) => {
            await log.write(writes);
            const prepared = writes.some((w) => w.groupId === 2 && w.entries?.some((e) => e.type === 'normal' && e.data.byteLength > 0 && decodeCommands(e.data)[0]?.op === 'prepareMerge'));
            if (prepared) {
              cluster.network.drop(1, 3, 1);
              cluster.network.drop(2, 3, 1);
            }
          },
        });
      await splitCluster(cluster, { 3: { log: cutOffAtPrepare } });
      await prepare(cluster);
      for (const id of [1, 2]) await waitFor(`store ${id} merged`, () => merged(cluster.stores.get(id)!));
      const third = cluster.stores.get(3)!;
      assert.ok(third.host.peer(2) !== undefined && !merged(third), 'store 3 missed the merge');
      // Enough writes that the target's log is compacted past the commit: store 3 needs a snapshot.
      const leader = cluster.leaderOf(1)!;
      for (let i = 0; i < 60; i++) assert.deepEqual(await run(leader, put(`m${i}`, 'w', MERGED_EPOCH)), [{ op: 'put' }]);
      for (const id of [1, 2]) await waitFor(`store ${id} compacted the target's log`, () => cluster.stores.get(id)!.host.regionStatus(1)!.raft.firstIndex > 30);
      const disks = { logDisk: third.logDisk, kvDisk: third.kvDisk };
      await cluster.stop(3);
      cluster.network.drop(1, 3, 0);
      cluster.network.drop(2, 3, 0);
      const back = await cluster.startStore(3, disks);
      await waitFor('store 3 merged through a snapshot', () => merged(back));
      assert.ok(back.host.stats().snapshotsReceived >= 1, 'it came back through a snapshot');
      assert.equal(back.kv.region(2)?.status, 'tombstone');
      assert.equal(text(await back.kv.get(bytes('k'))), 'right');
      assert.equal(text(await back.kv.get(bytes('m59'))), 'w');
    } finally {
      await cluster.closeAll();
    }
  });
});
