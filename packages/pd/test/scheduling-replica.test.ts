/**
 * The replica checker, one script per rule: a cluster state in, the exact operators out.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RegionInfo, StoreInfo } from '../src/cluster/types.ts';
import { scheduleConfig } from '../src/scheduling/config.ts';
import { checkReplicas } from '../src/scheduling/replica-checker.ts';
import { GIB, allocator, region, renderAll, store, stores, view } from './scheduling-helpers.ts';

const MINUTE = 60_000;
const config = scheduleConfig({ storeDownMs: 30 * MINUTE });
const zoned = scheduleConfig({ storeDownMs: 30 * MINUTE, locationLabels: ['zone', 'host'] });

interface Script {
  readonly name: string;
  readonly stores: readonly StoreInfo[];
  readonly regions: readonly RegionInfo[];
  readonly labels?: boolean;
  readonly expect: readonly string[];
  /** A substring the (first) operator's reason must contain. */
  readonly because?: string;
}

const scripts: Script[] = [
  { name: 'a healthy region is left alone', stores: stores(4), regions: [region(1, { voters: [1, 2, 3] })], expect: [] },
  {
    name: 'too few voters: add on the lightest store',
    stores: stores(5),
    regions: [region(1, { voters: [1, 2] }), region(2, { voters: [3, 4, 1] })],
    expect: ['r1 replica-checker: addLearner p1000@s5 > changeVoters +p1000@s5'],
    because: 'has 2 of 3 voters',
  },
  {
    name: 'down for longer than storeDownMs: replace (new first, then remove)',
    stores: [store(1), store(2), store(3, { state: 'down', silentMs: 31 * MINUTE }), store(4)],
    regions: [region(1, { voters: [1, 2, 3], down: [3] })],
    expect: ['r1 replica-checker: addLearner p1000@s4 > changeVoters +p1000@s4 -p103@s3'],
    because: 'store 3 down for 31 min',
  },
  {
    name: 'down for less than storeDownMs: wait',
    stores: [store(1), store(2), store(3, { state: 'down', silentMs: 29 * MINUTE }), store(4)],
    regions: [region(1, { voters: [1, 2, 3], down: [3] })],
    expect: [],
  },
  {
    name: 'disconnected past storeDownMs (state not yet relabelled): replace',
    stores: [store(1), store(2), store(3, { state: 'disconnected', silentMs: 45 * MINUTE }), store(4)],
    regions: [region(1, { voters: [1, 2, 3] })],
    expect: ['r1 replica-checker: addLearner p1000@s4 > changeVoters +p1000@s4 -p103@s3'],
  },
  {
    name: 'offline store holding the leader: leadership away first, then move',
    stores: [store(1, { state: 'offline' }), store(2), store(3), store(4)],
    regions: [region(1, { voters: [1, 2, 3] })],
    expect: ['r1 replica-checker: transferLeader s1->s2 > addLearner p1000@s4 > changeVoters +p1000@s4 -p101@s1'],
    because: 'store 1 is offline',
  },
  {
    name: 'tombstone store and unknown store: replaced, one operator per region',
    stores: [store(1), store(2), store(3, { state: 'tombstone' }), store(4), store(5)],
    regions: [region(1, { voters: [1, 2, 3] }), region(2, { voters: [1, 2, 9] })],
    expect: ['r1 replica-checker: addLearner p1000@s4 > changeVoters +p1000@s4 -p103@s3', 'r2 replica-checker: addLearner p1002@s5 > changeVoters +p1002@s5 -p209@s9'],
  },
  {
    name: 'a learner on an offline store is just removed',
    stores: [store(1), store(2), store(3), store(4, { state: 'offline' })],
    regions: [region(1, { voters: [1, 2, 3], learners: [4] })],
    expect: ['r1 replica-checker: removePeer p104@s4'],
  },
  {
    name: 'down store, nowhere to replace, voters to spare: remove',
    stores: [store(1), store(2), store(3), store(4, { state: 'down', silentMs: 60 * MINUTE })],
    regions: [region(1, { voters: [1, 2, 3, 4] })],
    expect: ['r1 replica-checker: removePeer p104@s4'],
  },
  {
    name: 'down store, nowhere to replace, no voters to spare: nothing',
    stores: [store(1), store(2), store(3, { state: 'down', silentMs: 60 * MINUTE })],
    regions: [region(1, { voters: [1, 2, 3] })],
    expect: [],
  },
  {
    name: 'never a target that is not up, is low on space, has no known space, or has a replica',
    stores: [
      store(1),
      store(2),
      store(3, { state: 'disconnected', silentMs: MINUTE }),
      store(4, { available: 10 * GIB }),
      store(5, { state: 'offline' }),
      store(6, { capacity: 0, available: 0 }),
    ],
    regions: [region(1, { voters: [1, 2] })],
    expect: [],
  },
  {
    name: 'too many voters: remove the least isolated (same zone), not the leader',
    labels: true,
    stores: [store(1, { zone: 'a' }), store(2, { zone: 'b' }), store(3, { zone: 'c' }), store(4, { zone: 'a' })],
    regions: [region(1, { voters: [1, 2, 3, 4] })],
    expect: ['r1 replica-checker: removePeer p104@s4'],
  },
  {
    name: 'too many voters, the leader ties for least isolated: the follower goes (no transfer needed)',
    labels: true,
    stores: [store(1, { zone: 'a' }), store(2, { zone: 'b' }), store(3, { zone: 'c' }), store(4, { zone: 'c' })],
    regions: [region(1, { voters: [3, 1, 2, 4] })],
    expect: ['r1 replica-checker: removePeer p104@s4'],
  },
  {
    name: 'a learner with too few voters is promoted',
    stores: stores(4),
    regions: [region(1, { voters: [1, 2], learners: [4] })],
    expect: ['r1 replica-checker: changeVoters +p104@s4'],
  },
  {
    name: 'a pending learner with too few voters is removed (re-added afresh later)',
    stores: stores(4),
    regions: [region(1, { voters: [1, 2], learners: [4], pending: [4] })],
    expect: ['r1 replica-checker: removePeer p104@s4'],
  },
  {
    name: 'a leftover learner with all voters is removed',
    stores: stores(4),
    regions: [region(1, { voters: [1, 2, 3], learners: [4] })],
    expect: ['r1 replica-checker: removePeer p104@s4'],
  },
  {
    name: 'labels: the new replica goes to a new zone, even onto a heavier store',
    labels: true,
    stores: [store(1, { zone: 'a' }), store(2, { zone: 'b' }), store(3, { zone: 'a' }), store(4, { zone: 'c' })],
    regions: [region(1, { voters: [1, 2] }), region(2, { voters: [4, 2, 1] })],
    expect: ['r1 replica-checker: addLearner p1000@s4 > changeVoters +p1000@s4'],
  },
  {
    name: 'labels: a new host in a used zone beats the same host',
    labels: true,
    stores: [store(1, { zone: 'a', host: 'x' }), store(2, { zone: 'a', host: 'x' }), store(3, { zone: 'a', host: 'y' })],
    regions: [region(1, { voters: [1] })],
    expect: ['r1 replica-checker: addLearner p1000@s3 > changeVoters +p1000@s3'],
  },
  {
    name: 'labels: two replicas share a zone while a third zone is free: move one there',
    labels: true,
    stores: [store(1, { zone: 'a' }), store(2, { zone: 'a' }), store(3, { zone: 'b' }), store(4, { zone: 'c' })],
    regions: [region(1, { voters: [1, 2, 3] })],
    expect: ['r1 replica-checker: addLearner p1000@s4 > changeVoters +p1000@s4 -p102@s2'],
    because: 'better isolated',
  },
  {
    name: 'labels: no better zone exists: nothing moves',
    labels: true,
    stores: [store(1, { zone: 'a' }), store(2, { zone: 'a' }), store(3, { zone: 'b' }), store(4, { zone: 'b' })],
    regions: [region(1, { voters: [1, 2, 3] })],
    expect: [],
  },
  {
    name: 'unknown leader: nothing can run',
    stores: stores(4),
    regions: [region(1, { voters: [1, 2], leader: 0 })],
    expect: [],
  },
];

describe('replica checker', () => {
  for (const script of scripts) {
    it(script.name, () => {
      const ops = checkReplicas(view(script.stores, script.regions), script.labels === true ? zoned : config, allocator());
      assert.deepEqual(renderAll(ops), script.expect);
      for (const op of ops) assert.ok(op.reason.length > 0, 'every operator says why');
      if (script.because !== undefined) assert.match(ops[0]?.reason ?? '', new RegExp(script.because));
    });
  }

  it('a region with a running operator gets no other', () => {
    const regions = [region(1, { voters: [1, 2] })];
    const first = checkReplicas(view(stores(4), regions), config, allocator());
    assert.equal(first.length, 1);
    assert.deepEqual(checkReplicas(view(stores(4), regions, first), config, allocator()), []);
  });

  it('the per-store operator limit sends new replicas elsewhere', () => {
    const limited = scheduleConfig({ storeOperatorLimit: 1 });
    const regions = [region(1, { voters: [1, 2] }), region(2, { voters: [1, 2] }), region(3, { voters: [1, 2] })];
    const ops = checkReplicas(view(stores(4), regions), limited, allocator());
    assert.deepEqual(renderAll(ops), ['r1 replica-checker: addLearner p1000@s3 > changeVoters +p1000@s3', 'r2 replica-checker: addLearner p1002@s4 > changeVoters +p1002@s4']);
  });
});
