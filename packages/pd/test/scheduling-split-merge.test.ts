/**
 * The split checker (size and load) and the merge checker (thresholds, health, adjacency,
 * alignment, cooldown), one script per rule.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Operator, RegionInfo, StoreInfo } from '../src/cluster/types.ts';
import { scheduleConfig } from '../src/scheduling/config.ts';
import { checkMerges } from '../src/scheduling/merge-checker.ts';
import { buildTransferLeader } from '../src/scheduling/operators.ts';
import { checkSplits } from '../src/scheduling/split-checker.ts';
import type { SchedulingView } from '../src/scheduling/types.ts';
import { MIB, NOW, allocator, region, renderAll, store, stores, view, withTimes } from './scheduling-helpers.ts';

const MINUTE = 60_000;
const config = scheduleConfig({
  regionMaxBytes: 100 * MIB,
  regionMaxKeys: 1000,
  regionSplitBytes: 64 * MIB,
  regionSplitKeys: 640,
  mergeMaxBytes: 10 * MIB,
  mergeMaxKeys: 100,
  splitMergeCooldownMs: 60 * MINUTE,
  hotRegionWriteBytesPerSec: 1 * MIB,
  hotRegionReadBytesPerSec: 4 * MIB,
  loadSplitSpanMs: MINUTE,
});

describe('split checker', () => {
  const scripts: [string, RegionInfo[], Map<number, number>, string[], string?][] = [
    ['too many bytes: split at the middle', [region(1, { voters: [1, 2, 3], bytes: 101 * MIB, keys: 10, last: true })], new Map(), ['r1 split-checker: split middle'], 'bytes, over'],
    ['too many keys: split', [region(1, { voters: [1, 2, 3], bytes: MIB, keys: 1001, last: true })], new Map(), ['r1 split-checker: split middle'], 'keys, over'],
    ['at the bounds: nothing', [region(1, { voters: [1, 2, 3], bytes: 100 * MIB, keys: 1000, last: true })], new Map(), []],
    ['hot for the whole span: load split', [region(1, { voters: [1, 2, 3], bytes: MIB, keys: 50, write: 2 * MIB, last: true })], new Map([[1, MINUTE]]), ['r1 split-checker: split middle'], 'hot for 1 min'],
    ['read hot for the span: load split', [region(1, { voters: [1, 2, 3], bytes: MIB, keys: 50, read: 5 * MIB, last: true })], new Map([[1, 2 * MINUTE]]), ['r1 split-checker: split middle']],
    ['hot for less than the span: wait', [region(1, { voters: [1, 2, 3], bytes: MIB, keys: 50, write: 2 * MIB, last: true })], new Map([[1, MINUTE - 1]]), []],
    ['hot, but one key: nothing to split', [region(1, { voters: [1, 2, 3], bytes: MIB, keys: 1, write: 2 * MIB, last: true })], new Map([[1, MINUTE]]), []],
  ];
  for (const [name, regions, hot, expected, because] of scripts) {
    it(name, () => {
      const ops = checkSplits(withTimes(view(stores(3), regions), 2 * MINUTE, hot), config, allocator());
      assert.deepEqual(renderAll(ops), expected);
      if (because !== undefined) assert.match(ops[0]?.reason ?? '', new RegExp(because));
    });
  }

  it('the hot span restarts when the version changes (the halves of a load split wait)', () => {
    const regions = [region(1, { voters: [1, 2, 3], bytes: MIB, keys: 50, write: 2 * MIB, last: true })];
    const v = withTimes(view(stores(3), regions), 10 * 1000, new Map([[1, 5 * MINUTE]]));
    assert.deepEqual(checkSplits(v, config, allocator()), []);
  });

  it('loadSplitSpanMs 0 disables load split', () => {
    const regions = [region(1, { voters: [1, 2, 3], bytes: MIB, keys: 50, write: 2 * MIB, last: true })];
    const v = withTimes(view(stores(3), regions), 2 * MINUTE, new Map([[1, MINUTE]]));
    assert.deepEqual(checkSplits(v, scheduleConfig({ ...config, loadSplitSpanMs: 0 }), allocator()), []);
  });
});

/** Regions 1..n over adjacent ranges, small unless `bytes` says otherwise, all on stores 1,2,3. */
function small(id: number, extra: Partial<Parameters<typeof region>[1]> = {}, last = false): RegionInfo {
  return region(id, { voters: [1, 2, 3], bytes: 5 * MIB, keys: 50, last, ...extra });
}

function merges(storeList: readonly StoreInfo[], regions: readonly RegionInfo[], agoMs = 2 * 60 * MINUTE, running: readonly Operator[] = []): string[] {
  const v: SchedulingView = withTimes(view(storeList, regions, running), agoMs);
  return renderAll(checkMerges(v, config, allocator()));
}

describe('merge checker', () => {
  it('a small region merges into its smaller aligned neighbour; that neighbour is then held', () => {
    const regions = [small(1, { bytes: 8 * MIB }), small(2), small(3, { bytes: 2 * MIB }, true)];
    assert.deepEqual(merges(stores(3), regions), ['r1 merge-checker: merge into r2']);
  });

  it('the other neighbour when the smaller one would make the result too big (in keys)', () => {
    const regions = [small(1, { bytes: 1 * MIB, keys: 990 }), small(2), small(3, { bytes: 9 * MIB }, true)];
    assert.deepEqual(merges(stores(3), regions), ['r2 merge-checker: merge into r3']);
  });

  it('keys count too: small in bytes but not in keys is not a source', () => {
    const regions = [small(1, { keys: 101, bytes: 50 * MIB }), small(2, { keys: 950, bytes: 50 * MIB }, true)];
    assert.deepEqual(merges(stores(3), regions), []);
  });

  it('cooldown: a region split less than splitMergeCooldownMs ago does not merge', () => {
    const regions = [small(1), small(2, {}, true)];
    assert.deepEqual(merges(stores(3), regions, 59 * MINUTE), []);
    assert.deepEqual(merges(stores(3), regions, 60 * MINUTE), ['r1 merge-checker: merge into r2']);
  });

  it('unknown history counts as changed just now', () => {
    const v: SchedulingView = { ...view(stores(3), [small(1), small(2, {}, true)]), regionTimes: new Map() };
    assert.deepEqual(checkMerges(v, config, allocator()), []);
  });

  it('unhealthy or under-replicated neighbours do not merge', () => {
    assert.deepEqual(merges(stores(3), [small(1), small(2, { pending: [2] }, true)]), []);
    assert.deepEqual(merges(stores(3), [small(1, { down: [3] }), small(2, {}, true)]), []);
    assert.deepEqual(merges(stores(3), [small(1, { voters: [1, 2] }), small(2, {}, true)]), []);
    assert.deepEqual(merges(stores(3), [small(1), small(2, { leader: 0 }, true)]), []);
  });

  it('regions that do not share a boundary do not merge', () => {
    assert.deepEqual(merges(stores(3), [small(1), small(3, {}, true)]), []);
  });

  it('a neighbour with a running operator is not a target; the other one is', () => {
    const regions = [small(1), small(2), small(3, {}, true)];
    const busy = buildTransferLeader(regions[0]!, 2, { origin: 'admin', reason: 'x', priority: 1, nowMs: NOW, timeouts: config.operatorTimeoutMs }, allocator(1));
    assert.deepEqual(merges(stores(3), regions, 2 * 60 * MINUTE, [busy]), ['r2 merge-checker: merge into r3']);
  });

  it('not aligned: first move a source replica onto a store of the target', () => {
    const regions = [small(1, { voters: [1, 2, 4] }), small(2, {}, true)];
    assert.deepEqual(merges(stores(4), regions), ['r1 merge-checker: addLearner p1000@s3 > changeVoters +p1000@s3 -p104@s4']);
  });

  it('not aligned, and aligning would lower isolation: nothing', () => {
    const zoned = scheduleConfig({ ...config, locationLabels: ['zone', 'host'] });
    const storeList = [store(1, { zone: 'a' }), store(2, { zone: 'b' }), store(3, { zone: 'c' }), store(4, { zone: 'a' })];
    const regions = [small(1, { voters: [1, 2, 3] }), small(2, { voters: [1, 2, 4] }, true)];
    const v = withTimes(view(storeList, regions), 2 * 60 * MINUTE);
    // r1 -> r2 would move s3 (zone c) to s4 (zone a); r2 -> r1 would move s4 (a) to s3 (c), which raises isolation.
    assert.deepEqual(renderAll(checkMerges(v, zoned, allocator())), ['r2 merge-checker: addLearner p1000@s3 > changeVoters +p1000@s3 -p204@s4']);
  });
});
