import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RegionMeta } from '@flotilla/wire';
import { RegionIndex } from '../src/cluster/region-index.ts';
import { ZERO_RATES, type RegionInfo } from '../src/cluster/types.ts';

const key = (s: string): Uint8Array => new TextEncoder().encode(s);

function info(id: number, start: string, end: string, version: number, confVer = 1, leaderPeerId = 0): RegionInfo {
  const meta: RegionMeta = { id, startKey: key(start), endKey: key(end), epoch: { version, confVer }, peers: [{ id: id * 10, storeId: 1, role: 'voter' }] };
  return { meta, leaderPeerId, downPeerIds: [], pendingPeerIds: [], approximateBytes: 0, approximateKeys: 0, rates: ZERO_RATES, lastHeartbeatMs: 0 };
}

const ids = (regions: readonly RegionInfo[]): number[] => regions.map((r) => r.meta.id);

describe('RegionIndex', () => {
  it('finds the region of a key, including the unbounded last one', () => {
    const index = new RegionIndex();
    index.put(info(1, '', 'g', 2));
    index.put(info(2, 'g', 'p', 2));
    index.put(info(3, 'p', '', 2));
    assert.equal(index.byKey(key(''))?.meta.id, 1);
    assert.equal(index.byKey(key('f'))?.meta.id, 1);
    assert.equal(index.byKey(key('g'))?.meta.id, 2);
    assert.equal(index.byKey(key('zzz'))?.meta.id, 3);
    assert.deepEqual(ids(index.inRange(key('h'), key('q'), 10)), [2, 3]);
    assert.deepEqual(ids(index.inRange(key(''), key(''), 2)), [1, 2]);
  });

  it('a split reported by the left child replaces the parent; the parent\'s late report is stale', () => {
    const index = new RegionIndex();
    index.put(info(1, '', '', 1));
    const split = index.put(info(1, '', 'm', 2));
    assert.equal(split.kind, 'stored');
    assert.deepEqual(ids(index.all()), [1]);
    assert.equal(index.byKey(key('x')), undefined, 'the right half is unknown until its leader reports');
    assert.equal(index.put(info(2, 'm', '', 2)).kind, 'stored');
    const late = index.put(info(1, '', '', 1));
    assert.equal(late.kind, 'stale');
    assert.deepEqual(ids(index.all()), [1, 2]);
  });

  it('the right child reported first replaces the parent, and the parent cannot come back', () => {
    const index = new RegionIndex();
    index.put(info(1, '', '', 1));
    const outcome = index.put(info(2, 'm', '', 2));
    assert.deepEqual(outcome.kind === 'stored' ? ids(outcome.removed) : outcome.kind, [1]);
    assert.equal(index.put(info(1, '', '', 1)).kind, 'stale');
    assert.equal(index.put(info(1, '', 'm', 2)).kind, 'stored');
    assert.deepEqual(ids(index.all()), [1, 2]);
  });

  it('a report with a lower confVer than known is stale; same epoch only refreshes statistics', () => {
    const index = new RegionIndex();
    index.put(info(1, '', '', 3, 5, 10));
    assert.equal(index.put(info(1, '', '', 3, 4)).kind, 'stale');
    const refresh = index.put(info(1, '', '', 3, 5, 10));
    assert.deepEqual(refresh, { kind: 'stored', metaChanged: false, removed: [] });
    assert.equal(index.put(info(1, '', '', 3, 6)).kind, 'stored');
    assert.equal(index.get(1)?.meta.epoch.confVer, 6);
  });

  it('a merge (target grows, higher version) removes the merged source', () => {
    const index = new RegionIndex();
    index.put(info(1, '', 'g', 3));
    index.put(info(2, 'g', '', 3));
    const merged = index.put(info(2, '', '', 4));
    assert.deepEqual(merged.kind === 'stored' ? ids(merged.removed) : merged.kind, [1]);
    assert.deepEqual(ids(index.all()), [2]);
    assert.equal(index.size, 1);
    assert.equal(index.put(info(1, '', 'g', 3)).kind, 'stale', 'the merged-away source reporting late changes nothing');
  });

  it('keeps key order when 200 regions arrive out of order', () => {
    const index = new RegionIndex();
    const starts = Array.from({ length: 200 }, (_, i) => i.toString().padStart(4, '0'));
    const shuffled = starts.map((s, i) => ({ s, at: (i * 7919) % 211 })).sort((a, b) => a.at - b.at).map((x) => x.s);
    for (const start of shuffled) {
      const i = starts.indexOf(start);
      index.put(info(i + 1, start, starts[i + 1] ?? '', 1));
    }
    assert.deepEqual(ids(index.all()), starts.map((_, i) => i + 1));
    for (const [i, start] of starts.entries()) assert.equal(index.byKey(key(start + 'x'))?.meta.id, i + 1);
  });
});
