/**
 * Scans through the SDK across many regions of a real cluster: 3,000 keys cut into 60+ regions
 * (the cutting happens while an iterator pages through them), then forward, reverse, limited
 * and paged scans each return every key exactly once, in order.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createClient, type FlotillaClient } from '../packages/client/src/index.ts';
import { SdkCluster } from './support/sdk-cluster.ts';

const KEYS = 3_000;
const SPLIT_EVERY = 50;
const keyOf = (i: number): string => `s/${String(i).padStart(5, '0')}`;
const ALL = Array.from({ length: KEYS }, (_, i) => keyOf(i));

describe('scans across many regions', () => {
  const sdk = new SdkCluster();
  let client: FlotillaClient;
  before(async () => {
    await sdk.start(3);
    client = createClient({ pd: sdk.urls() });
    // Keys outside the scanned range, on both sides, must never show up.
    await client.putMany([['r/outside', 'x'], ['t/outside', 'x'], ...ALL.map((k) => [k, `value of ${k}`] as const)]);
  });
  after(async () => {
    await client?.close();
    await sdk.close();
  });

  const assertEveryKeyOnce = (keys: readonly string[], expected: readonly string[], what: string): void => {
    assert.equal(keys.length, expected.length, `${what}: ${keys.length} rows, expected ${expected.length}`);
    for (let i = 0; i < expected.length; i++) if (keys[i] !== expected[i]) assert.fail(`${what}: row ${i} is ${keys[i]}, expected ${expected[i]}`);
  };

  it('an iterator paging while the regions split returns every key once, in order', async (t) => {
    const splitKeys = Array.from({ length: KEYS / SPLIT_EVERY - 1 }, (_, i) => keyOf((i + 1) * SPLIT_EVERY));
    const seen: string[] = [];
    let passes = 0;
    let splitting = true;
    const splits = sdk.splitAt(splitKeys).finally(() => (splitting = false));
    // Page through again and again while the splits happen (small pages: many requests per region).
    while (splitting || passes === 0) {
      seen.length = 0;
      for await (const row of client.scanIterator({ start: 's/', end: 's0', pageSize: 17 })) {
        assert.equal(row.value.toString(), `value of ${row.key.toString()}`);
        seen.push(row.key.toString());
      }
      assertEveryKeyOnce(seen, ALL, `pass ${passes}`);
      passes++;
    }
    await splits;
    const regions = (await sdk.regions()).length;
    assert.ok(regions >= 60, `${regions} regions`);
    t.diagnostic(`${passes} passes during the splits; ${regions} regions; client ${JSON.stringify(client.stats())}`);
  });

  it('scan, reverse scan, limits and the iterator cover ≥ 50 regions exactly once', async () => {
    const cold = createClient({ pd: sdk.urls() });
    try {
      const forward = (await cold.scan({ start: 's/', end: 's0' })).map((r) => r.key.toString());
      assertEveryKeyOnce(forward, ALL, 'forward scan');
      const pdPages = cold.stats().pdLookups;
      assert.ok(pdPages <= 10, `the cold scan loaded regions a page at a time (${pdPages} PD look-ups)`);

      const reverse = (await cold.scan({ start: 's/', end: 's0', reverse: true, pageSize: 23 })).map((r) => r.key.toString());
      assertEveryKeyOnce(reverse, [...ALL].reverse(), 'reverse scan');

      const unbounded = (await cold.scan({ start: 's/' })).map((r) => r.key.toString());
      assertEveryKeyOnce(unbounded, [...ALL, 't/outside'], 'scan to the end of the keyspace');
      const fromStart = (await cold.scan({ end: 's0', reverse: true })).map((r) => r.key.toString());
      assertEveryKeyOnce(fromStart, [...ALL].reverse().concat('r/outside'), 'reverse scan from the start of the keyspace');

      const middle = (await cold.scan({ start: keyOf(1_234), end: keyOf(2_345), limit: 777 })).map((r) => r.key.toString());
      assertEveryKeyOnce(middle, ALL.slice(1_234, 1_234 + 777), 'limited scan');
      const middleReverse = (await cold.scan({ start: keyOf(1_234), end: keyOf(2_345), limit: 777, reverse: true })).map((r) => r.key.toString());
      assertEveryKeyOnce(middleReverse, ALL.slice(2_345 - 777, 2_345).reverse(), 'limited reverse scan');

      const iterated: string[] = [];
      for await (const row of cold.scanIterator({ start: 's/', end: 's0', reverse: true, pageSize: 64, consistency: { maxStalenessMs: 30_000 } })) iterated.push(row.key.toString());
      assertEveryKeyOnce(iterated, [...ALL].reverse(), 'stale reverse iterator');

      // Breaking out of the iterator stops it.
      let taken = 0;
      for await (const _ of cold.scanIterator({ start: 's/', end: 's0', pageSize: 10 })) if (++taken === 25) break;
      assert.equal(taken, 25);

      assert.equal(await cold.deleteRange(keyOf(1_000), keyOf(2_000)), 1_000, 'deleteRange across 20 regions');
      const left = (await cold.scan({ start: 's/', end: 's0' })).map((r) => r.key.toString());
      assertEveryKeyOnce(left, [...ALL.slice(0, 1_000), ...ALL.slice(2_000)], 'after deleteRange');
    } finally {
      await cold.close();
    }
  });
});
