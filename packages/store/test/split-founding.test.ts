/**
 * A split child's placeholder (created by the child leader's first messages, before this store
 * applied the split) must never be stepped while the child's founding log write runs: its raft
 * log was built on the empty group, and the log engine already shows the founded one, so an
 * append landed at a stale offset and the store fail-stopped ("commit 9 beyond last index 4",
 * chaos seed 2 on real processes).
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { BOOTSTRAP_INDEX, BOOTSTRAP_TERM, message } from '@flotilla/raft';
import type { GroupWrite, KvEngine, LogEngine, RegionApply } from '@flotilla/storage';
import { EPOCH, REGION, TestCluster, bytes, put, run, text, waitFor } from './harness.ts';

/** A gate a wrapped engine call waits at until the test opens it. */
class Gate {
  private open: () => void = () => {};
  readonly opened = new Promise<void>((resolve) => (this.open = resolve));
  held = false;
  release(): void {
    this.open();
  }
}

it("a split child's placeholder is not stepped while the child's founding log write runs", async () => {
  const cluster = new TestCluster();
  const splitApply = new Gate();
  const founding = new Gate();
  // Store 3 applies the split late (its placeholder of the child appears first), then holds
  // the child's founding write with the log engine already showing it.
  const holdSplitApply = (kv: KvEngine): KvEngine =>
    Object.assign(Object.create(kv) as KvEngine, {
      apply: async (batch: readonly RegionApply[]) => {
        if (batch.some((a) => a.commands.some((c) => c.op === 'putRegion' && c.region.id === 2))) {
          splitApply.held = true;
          await splitApply.opened;
        }
        return kv.apply(batch);
      },
    });
  const holdFounding = (log: LogEngine): LogEngine =>
    Object.assign(Object.create(log) as LogEngine, {
      write: async (writes: GroupWrite[]) => {
        const written = log.write(writes);
        if (writes.some((w) => w.groupId === 2 && w.snapshot !== undefined)) {
          founding.held = true;
          await founding.opened;
        }
        return written;
      },
    });
  try {
    await cluster.startStore(1);
    await cluster.startStore(2);
    const third = await cluster.startStore(3, undefined, { kv: holdSplitApply, log: holdFounding });
    for (const store of cluster.stores.values()) await store.host.bootstrapRegion(REGION);
    await waitFor('a leader on store 1 or 2', () => [1, 2].some((id) => cluster.stores.get(id)!.host.peer(1)?.isLeader()));
    assert.deepEqual(await run(cluster.leaderOf(1)!, put('k', 'before')), [{ op: 'put' }]);
    const split = cluster.leaderOf(1)!.host.split(1, bytes('h'), 2, [21, 22, 23]);
    await waitFor('store 3 holds the split apply', () => splitApply.held);
    await waitFor("the child's placeholder on store 3", () => third.host.peer(2)?.placeholder === true);
    splitApply.release();
    await waitFor("store 3 holds the child's founding write", () => founding.held);
    // An append of the child's leader reaches store 3 while the founding write runs (on real
    // processes the window is one fsync; here it is held open and the message delivered by
    // hand): entries 6..9 after the bootstrap entry, which the founded log already shows.
    const leader = cluster.leaderOf(2) ?? cluster.stores.get(1)!;
    const term = leader.host.peer(2)!.node.term;
    const entries = [6, 7, 8, 9].map((index) => ({ index, term, type: 'normal' as const, data: new Uint8Array(0) }));
    const append = message({ type: 'append', from: 20 + leader.id, to: 23, term, index: BOOTSTRAP_INDEX, logTerm: BOOTSTRAP_TERM, entries, commit: 9 });
    third.host.onRaftMessages(leader.id, [{ regionId: 2, fromPeer: append.from, toPeer: 23, regionEpoch: { version: EPOCH.version + 1, confVer: EPOCH.confVer }, message: append }]);
    founding.release();
    assert.equal((await split).kind, 'applied');
    const childEpoch = { version: EPOCH.version + 1, confVer: EPOCH.confVer };
    await waitFor('the child takes a write', async () => {
      const childLeader = cluster.leaderOf(2);
      return childLeader !== undefined && (await run(childLeader, put('m', 'child', childEpoch, 2)))[0]?.op === 'put';
    });
    await waitFor('store 3 runs the child and has its write', async () => third.host.peer(2)?.placeholder === false && text(await third.kv.get(bytes('m'))) === 'child');
    assert.equal(third.host.stoppedBy, undefined, 'store 3 did not fail-stop');
  } finally {
    splitApply.release();
    founding.release();
    await cluster.closeAll();
  }
});
