/**
 * When a store counts a region's size again (RegionSizes): after a split or merge, or once the
 * bytes written since reach a share of the last count — not at every heartbeat of a written
 * region, which walked all its rows each time.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RegionMeta } from '@flotilla/storage';
import { RegionSizes, sizeRecountBytesMin, sizeRecountShare, type RegionSize } from '../src/pd/region-size.ts';

const region = (version: number): RegionMeta => ({
  id: 7,
  startKey: new Uint8Array(),
  endKey: new Uint8Array(),
  epoch: { version, confVer: 1 },
  peers: [{ id: 71, storeId: 1, role: 'voter' }],
});

describe('RegionSizes', () => {
  it('counts again only after enough writes, or a new epoch version', async () => {
    let bytes = 64 * sizeRecountBytesMin;
    let counts = 0;
    const sizes = new RegionSizes(async (): Promise<RegionSize> => {
      counts++;
      return { bytes, keys: bytes / 100, capped: false };
    });
    assert.equal((await sizes.of(region(1), 0)).bytes, bytes, 'the first call counts');
    assert.equal(counts, 1);
    const share = bytes * sizeRecountShare;
    bytes += share;
    // Heartbeat after heartbeat of a written region: the last count, until the writes add up.
    for (let i = 0; i < 7; i++) assert.equal((await sizes.of(region(1), share / 8)).bytes, 64 * sizeRecountBytesMin);
    assert.equal(counts, 1, 'seven eighths of the share written: no count');
    assert.equal((await sizes.of(region(1), share / 8)).bytes, bytes, 'the share reached: counted again');
    assert.equal(counts, 2);
    assert.equal((await sizes.of(region(1), 0)).bytes, bytes);
    assert.equal(counts, 2, 'the written bytes were reset by the count');
    assert.equal((await sizes.of(region(2), 0)).bytes, bytes, 'a split or merge counts again');
    assert.equal(counts, 3);
  });

  it('waits for at least sizeRecountBytesMin on a small region, and forgets regions no longer led', async () => {
    let counts = 0;
    const sizes = new RegionSizes(async () => {
      counts++;
      return { bytes: 100, keys: 1, capped: false };
    });
    await sizes.of(region(1), 0);
    await sizes.of(region(1), sizeRecountBytesMin - 1);
    assert.equal(counts, 1, 'a 100-byte region is not counted again before sizeRecountBytesMin were written');
    await sizes.of(region(1), 1);
    assert.equal(counts, 2);
    sizes.forgetExcept(new Set());
    await sizes.of(region(1), 0);
    assert.equal(counts, 3, 'forgotten: counted afresh');
  });
});
