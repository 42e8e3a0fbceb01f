/**
 * Which received snapshots may land (snapshots.ts, admitSnapshot). Found while building merge:
 * a snapshot of a split's child used to land over the stale parent still on this store, which
 * then re-applied its older writes into the child's range.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RegionMeta, RegionState } from '@flotilla/storage';
import type { Peer } from '../src/peer.ts';
import { admitSnapshot } from '../src/snapshots.ts';
import { bytes } from './harness.ts';

function region(id: number, start: string, end: string, version: number): RegionMeta {
  return { id, startKey: bytes(start), endKey: bytes(end), epoch: { version, confVer: 1 }, peers: [{ id: id * 10 + 1, storeId: 1, role: 'voter' }] };
}

/** The fields of a peer admitSnapshot reads. */
function peer(meta: RegionMeta, placeholder = false): Peer {
  return { region: meta, regionId: meta.id, placeholder } as unknown as Peer;
}

function incoming(meta: RegionMeta): RegionState {
  return { region: meta, confState: { voters: [1], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false }, appliedIndex: 9, appliedTerm: 2, status: 'normal' };
}

describe('snapshot admission', () => {
  it("refuses a split child's snapshot over its stale parent", () => {
    const child = peer(region(2, '', '', 0), true);
    const staleParent = peer(region(1, 'a', 'n', 1));
    const verdict = admitSnapshot(child, incoming(region(2, 'g', 'n', 2)), [staleParent, child], []);
    assert.ok('refusal' in verdict && /overlaps region 1/.test(verdict.refusal), JSON.stringify(verdict));
  });

  it('ends a region whose start key the snapshot holds at a higher version (a merged-away source)', () => {
    const target = peer(region(1, 'a', 'g', 2));
    const source = peer(region(2, 'g', 'n', 3));
    const absorbed: Peer[] = [];
    const verdict = admitSnapshot(target, incoming(region(1, 'a', 'n', 4)), [target, source], absorbed);
    assert.deepEqual(verdict, { tombstones: [2] });
    assert.deepEqual(absorbed, [source]);
  });

  it('refuses when the overlapping region is newer, and ignores placeholders and neighbours', () => {
    const target = peer(region(1, 'a', 'g', 2));
    const newer = peer(region(5, 'g', 'k', 9));
    assert.ok('refusal' in admitSnapshot(target, incoming(region(1, 'a', 'n', 4)), [target, newer], []));
    const neighbour = peer(region(6, 'n', '', 3));
    const placeholder = peer(region(7, '', '', 0), true);
    assert.deepEqual(admitSnapshot(target, incoming(region(1, 'a', 'n', 4)), [target, neighbour, placeholder], []), { tombstones: [] });
  });
});
