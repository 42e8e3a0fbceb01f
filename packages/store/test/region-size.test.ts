/**
 * When a store counts a region's size again (RegionSizes): after a split or merge, or once the
 * bytes written since reach a share of the last count — not at every heartbeat of a written
 * region, which walked all its rows each time. Between counts the size is the last count plus
 * what was put since; a recount runs in the background, paced.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KvEngine, RegionMeta } from '@flotilla/storage';
import type { RegionWrites } from '../src/pd/region-flow.ts';
import { HeldCalls } from './harness.ts';
import { RegionSizes, measureRegion, sizeRecountBytesMin, sizeRecountShare, type RegionSize } from '../src/pd/region-size.ts';

const region = (version: number): RegionMeta => ({
  id: 7,
  startKey: new Uint8Array(),
  endKey: new Uint8Array(),
  epoch: { version, confVer: 1 },
  peers: [{ id: 71, storeId: 1, role: 'voter' }],
});

const NOTHING: RegionWrites = { bytes: 0, putBytes: 0, putKeys: 0, deletedKeys: 0 };
/** `keys` puts of 100 bytes each (key + value), as the flow reports them. */
const puts = (keys: number): RegionWrites => ({ bytes: keys * 100, putBytes: keys * 100, putKeys: keys, deletedKeys: 0 });
/** `keys` deletes of 10-byte keys. */
const deletes = (keys: number): RegionWrites => ({ bytes: keys * 10, putBytes: 0, putKeys: 0, deletedKeys: keys });

/** A count the test settles by hand (release()), and how often it was asked for. */
function heldCount(result: () => RegionSize): { count: () => Promise<RegionSize>; release: () => void; calls: () => number } {
  const held = new HeldCalls();
  let calls = 0;
  return {
    count: async () => {
      calls++;
      await held.hold();
      return result();
    },
    release: () => held.release(),
    calls: () => calls,
  };
}

describe('RegionSizes', () => {
  it('adds the puts since the last count to it, and counts again (in the background) only after enough writes or a new epoch version', async () => {
    let rows = Math.floor((64 * sizeRecountBytesMin) / 100);
    let counts = 0;
    const sizes = new RegionSizes({
      count: async (): Promise<RegionSize> => {
        counts++;
        return { bytes: rows * 100, keys: rows, capped: false };
      },
    });
    assert.deepEqual(await sizes.of(region(1), NOTHING), { bytes: rows * 100, keys: rows, capped: false }, 'the first call counts');
    assert.equal(counts, 1);
    // Heartbeat after heartbeat of a region growing by inserts: the count plus the puts, exact.
    const firstCount = rows;
    const step = Math.ceil((firstCount * sizeRecountShare) / 8);
    for (let i = 1; i <= 7; i++) {
      rows += step;
      assert.deepEqual(await sizes.of(region(1), puts(step)), { bytes: rows * 100, keys: rows, capped: false });
    }
    await sizes.idle();
    assert.equal(counts, 1, 'seven eighths of the share written: no count');
    rows += step;
    const estimate = rows;
    rows = firstCount; // what the puts did not tell: they overwrote rows, so the region did not grow
    assert.deepEqual(await sizes.of(region(1), puts(step)), { bytes: estimate * 100, keys: estimate, capped: false }, 'the share reached: the estimate still, while the count runs');
    await sizes.idle();
    assert.equal(counts, 2, 'counted again in the background');
    assert.deepEqual(await sizes.of(region(1), NOTHING), { bytes: rows * 100, keys: rows, capped: false }, 'the new count, and the written bytes reset');
    assert.equal((await sizes.of(region(1), deletes(10))).bytes, rows * 100, 'deletes do not grow the estimate');
    await sizes.idle();
    assert.equal(counts, 2);
    // Deleting half the rows (10-byte keys of 100-byte rows) counts again: a deleted key weighs an average row.
    const half = Math.ceil(rows * sizeRecountShare) - 10;
    await sizes.of(region(1), deletes(half));
    await sizes.idle();
    assert.equal(counts, 3, 'half the rows deleted: counted again');
    rows -= half + 10;
    assert.equal((await sizes.of(region(2), NOTHING)).bytes, rows * 100, 'a split or merge counts again, at once');
    assert.equal(counts, 4);
  });

  it('keeps what was put while a recount ran, and asks for one recount at a time per region', async () => {
    let rows = 1_000;
    const held = heldCount(() => ({ bytes: rows * 100, keys: rows, capped: false }));
    const sizes = new RegionSizes({ count: async () => ({ bytes: rows * 100, keys: rows, capped: false }), recount: held.count });
    await sizes.of(region(1), NOTHING);
    rows += 600;
    assert.equal((await sizes.of(region(1), puts(600))).keys, 1_600, 'due: the estimate, and a recount started');
    assert.equal(held.calls(), 1);
    rows += 600; // the recount will see these rows (its walk passed them)...
    assert.equal((await sizes.of(region(1), puts(600))).keys, 2_200);
    assert.equal(held.calls(), 1, 'no second recount while one is out');
    held.release();
    await sizes.idle();
    // ...and they are kept as put since, so the estimate overshoots by them rather than missing rows it never saw.
    assert.equal((await sizes.of(region(1), NOTHING)).keys, 2_200 + 600);
  });

  it('drops a recount of a region split meanwhile, and the recounts waiting at close', async () => {
    let rows = 1_000;
    const held = heldCount(() => ({ bytes: rows * 100, keys: rows, capped: false }));
    const sizes = new RegionSizes({ count: async () => ({ bytes: rows * 100, keys: rows, capped: false }), recount: held.count });
    await sizes.of(region(1), NOTHING);
    await sizes.of(region(1), puts(600));
    assert.equal(held.calls(), 1);
    rows = 400; // split off most of it
    assert.equal((await sizes.of(region(2), NOTHING)).keys, 400, 'the new version counted at once');
    rows = 1_000;
    held.release();
    await sizes.idle();
    assert.equal((await sizes.of(region(2), NOTHING)).keys, 400, 'the stale recount of version 1 was dropped');

    const other = { ...region(1), id: 8 };
    await sizes.of(other, NOTHING);
    await sizes.of(region(2), puts(600)); // a recount starts (held)...
    await sizes.of(other, puts(600)); // ...and another waits behind it
    assert.equal(held.calls(), 2);
    const closed = sizes.close();
    held.release();
    await closed;
    assert.equal(held.calls(), 2, 'the waiting recount never ran');
  });

  it('drops the queued recount of a region no longer led, and reports a failed recount', async () => {
    const held = heldCount(() => ({ bytes: 100_000, keys: 1_000, capped: false }));
    const failures: number[] = [];
    let failNext = false;
    const sizes = new RegionSizes({
      count: async () => ({ bytes: 100_000, keys: 1_000, capped: false }),
      recount: async () => {
        if (failNext) throw new Error('read failed');
        return held.count();
      },
      recountFailed: (regionId) => failures.push(regionId),
    });
    const other = { ...region(1), id: 8 };
    await sizes.of(region(1), NOTHING);
    await sizes.of(other, NOTHING);
    await sizes.of(region(1), puts(600)); // runs (held)...
    await sizes.of(other, puts(600)); // ...and region 8 waits
    assert.equal(sizes.recountsWaiting, 1);
    sizes.forgetExcept(new Set([7]));
    assert.equal(sizes.recountsWaiting, 0, 'the queue holds led regions only');
    held.release();
    await sizes.idle();
    assert.equal(held.calls(), 1, 'region 8, no longer led, was never counted');

    failNext = true;
    await sizes.of(region(1), puts(600));
    await sizes.idle();
    assert.deepEqual(failures, [7]);
    failNext = false;
    await sizes.of(region(1), NOTHING);
    assert.equal(held.calls(), 2, 'asked for again at the next heartbeat after the failure');
    held.release();
    await sizes.idle();
  });

  it('waits for at least sizeRecountBytesMin on a small region, and forgets regions no longer led', async () => {
    let counts = 0;
    const sizes = new RegionSizes({
      count: async () => {
        counts++;
        return { bytes: 100, keys: 1, capped: false };
      },
    });
    await sizes.of(region(1), NOTHING);
    await sizes.of(region(1), { ...NOTHING, bytes: sizeRecountBytesMin - 1 });
    await sizes.idle();
    assert.equal(counts, 1, 'a 100-byte region is not counted again before sizeRecountBytesMin were written');
    await sizes.of(region(1), { ...NOTHING, bytes: 1 });
    await sizes.idle();
    assert.equal(counts, 2);
    sizes.forgetExcept(new Set());
    await sizes.of(region(1), NOTHING);
    assert.equal(counts, 3, 'forgotten: counted afresh');
  });

  it('keeps a capped count capped', async () => {
    const sizes = new RegionSizes({ count: async () => ({ bytes: 1e9, keys: 1e6, capped: true }) });
    await sizes.of(region(1), NOTHING);
    assert.deepEqual(await sizes.of(region(1), puts(10)), { bytes: 1e9 + 1000, keys: 1e6 + 10, capped: true });
  });
});

describe('measureRegion', () => {
  /** A KV engine holding `rows` rows of 1-byte values (only scan is used by the count). */
  const engineOf = (rows: number): KvEngine => {
    const pairs = Array.from({ length: rows }, (_, i) => ({ key: new TextEncoder().encode(`k${String(i).padStart(4, '0')}`), value: new Uint8Array(1) }));
    const after = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(a, b) >= 0;
    return {
      scan: async ({ start, limit }: { start: Uint8Array; limit: number }) => {
        const from = pairs.filter((p) => after(p.key, start));
        return { pairs: from.slice(0, limit), more: from.length > limit };
      },
    } as unknown as KvEngine;
  };

  it('paces a background count: each page waits its share of a second at the allowed rate, and a stop cuts it short', async () => {
    const waits: number[] = [];
    const pace = { rowsPerSecondMax: 100, pageRows: 10, stopped: () => false, now: () => 0, wait: async (ms: number) => void waits.push(ms) };
    assert.deepEqual(await measureRegion(engineOf(35), region(1), pace), { bytes: 35 * 6, keys: 35, capped: false });
    assert.deepEqual(waits, [100, 100, 100], 'three full pages of 10 rows at 100 rows/s, none after the last');
    assert.deepEqual(await measureRegion(engineOf(35), region(1)), { bytes: 35 * 6, keys: 35, capped: false }, 'unpaced: the same count');

    let pages = 0;
    const stopping = { ...pace, wait: async () => void pages++, stopped: () => pages >= 2 };
    assert.equal((await measureRegion(engineOf(35), region(1), stopping)).keys, 20, 'stopped after two pages: a lower bound');
  });
});
