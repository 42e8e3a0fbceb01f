import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RegionMeta } from '@flotilla/wire';
import { RegionCache } from '../src/region-cache.ts';

const b = (s: string): Uint8Array => Buffer.from(s);
const region = (id: number, start: string, end: string, version = 1, confVer = 1): RegionMeta => ({
  id,
  startKey: b(start),
  endKey: b(end),
  epoch: { version, confVer },
  peers: [
    { id: id * 10 + 1, storeId: 1, role: 'voter' },
    { id: id * 10 + 2, storeId: 2, role: 'voter' },
    { id: id * 10 + 3, storeId: 3, role: 'voter' },
  ],
});

describe('RegionCache', () => {
  it('locates keys, and the region before an end key', () => {
    const cache = new RegionCache();
    cache.insert(region(1, '', 'g'));
    cache.insert(region(2, 'g', 'p'));
    cache.insert(region(3, 'p', ''));
    assert.equal(cache.locate(b(''))?.meta.id, 1);
    assert.equal(cache.locate(b('f\xff'))?.meta.id, 1);
    assert.equal(cache.locate(b('g'))?.meta.id, 2);
    assert.equal(cache.locate(b('zzz'))?.meta.id, 3);
    assert.equal(cache.locateBefore(b(''))?.meta.id, 3, 'the end of the keyspace');
    assert.equal(cache.locateBefore(b('p'))?.meta.id, 2, 'end = a region start: the region before');
    assert.equal(cache.locateBefore(b('h'))?.meta.id, 2);
    assert.equal(cache.locateBefore(b('g\x00'))?.meta.id, 2);
    cache.remove(2);
    assert.equal(cache.locate(b('h')), undefined, 'a hole');
    assert.equal(cache.locateBefore(b('p')), undefined);
  });

  it('replaces what a newer region overlaps, and refuses older news', () => {
    const cache = new RegionCache();
    cache.insert(region(1, '', ''), 11);
    // A split: region 1 shrinks to [, m) and region 2 holds [m, ), both at version 2.
    cache.insert(region(1, '', 'm', 2));
    assert.equal(cache.locate(b('z')), undefined, 'the shrunk region no longer claims the right half');
    assert.equal(cache.get(1)?.leaderPeerId, 11, 'the leader survives an epoch change that kept the peer');
    cache.insert(region(2, 'm', '', 2));
    assert.equal(cache.locate(b('z'))?.meta.id, 2);
    // Late news of the old region 1 (PD not updated yet) changes nothing.
    cache.insert(region(1, '', '', 1));
    assert.equal(cache.locate(b('z'))?.meta.id, 2);
    assert.equal(cache.get(1)?.meta.epoch.version, 2);
    // A region overlapping a newer one (higher version) is refused.
    cache.insert(region(7, 'k', 'z', 1));
    assert.equal(cache.get(7), undefined);
    assert.deepEqual(cache.regions().map((r) => r.meta.id), [1, 2]);
    // A conf change (confVer) replaces the entry; a leader not among the peers is dropped.
    cache.insert({ ...region(2, 'm', '', 2, 2), peers: [{ id: 99, storeId: 9, role: 'voter' }] });
    assert.equal(cache.get(2)?.meta.epoch.confVer, 2);
    assert.equal(cache.setLeader(2, 21), false, 'not a peer');
    assert.equal(cache.setLeader(2, 99), true);
    cache.forgetLeadersOn(9);
    assert.equal(cache.get(2)?.leaderPeerId, null);
  });

  it('stays within its capacity, dropping the least recently used', () => {
    const cache = new RegionCache(16);
    for (let i = 0; i < 40; i++) {
      cache.insert(region(i + 1, `k${String(i).padStart(2, '0')}`, `k${String(i + 1).padStart(2, '0')}`));
      cache.locate(b('k00'));
      assert.ok(cache.size <= 16);
    }
    assert.equal(cache.locate(b('k00'))?.meta.id, 1, 'the region used all along stayed');
    assert.equal(cache.locate(b('k39'))?.meta.id, 40, 'the newest stayed');
  });
});
