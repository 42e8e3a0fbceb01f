/**
 * The SDK (@flotilla/client) against a real cluster: one PD member and three PD-placed stores.
 * Every call, with strings and bytes, both read consistencies, deadlines and aborts; then every
 * call again from concurrent workers while regions split and leaders move under them, each
 * worker checking every answer against its own model of its keys.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createClient, isClientError, isRetryable, type FlotillaClient } from '../packages/client/src/index.ts';
import { waitFor } from './support/cluster.ts';
import { SdkCluster } from './support/sdk-cluster.ts';

const WORKERS = 6;
const KEYS_PER_WORKER = 40;
const key = (w: number, i: number): string => `w${w}/${String(i).padStart(3, '0')}`;

describe('the SDK against a real cluster', () => {
  const sdk = new SdkCluster();
  let client: FlotillaClient;
  before(async () => {
    await sdk.start(3);
    client = createClient({ pd: sdk.urls() });
  });
  after(async () => {
    await client?.close();
    await sdk.close();
  });

  it('answers every call', async () => {
    await client.put('a/1', 'one');
    assert.equal((await client.get('a/1'))?.toString(), 'one');
    assert.equal(await client.get('a/missing'), null);
    const bytesKey = new Uint8Array([0x61, 0x2f, 0x00, 0xff]);
    await client.put(bytesKey, Buffer.from([1, 2, 3]));
    assert.deepEqual([...(await client.get(bytesKey))!], [1, 2, 3]);

    await client.putMany([
      ['a/2', 'two'],
      { key: 'a/3', value: 'three' },
    ]);
    assert.deepEqual((await client.getMany(['a/3', 'a/missing', 'a/2'])).map((v) => v?.toString() ?? null), ['three', null, 'two']);

    const cas1 = await client.compareAndSwap('a/4', null, 'four');
    assert.deepEqual(cas1, { succeeded: true, previous: null });
    const cas2 = await client.compareAndSwap('a/4', 'nope', 'x');
    assert.equal(cas2.succeeded, false);
    assert.equal(cas2.previous?.toString(), 'four');
    const cas3 = await client.compareAndSwap('a/4', 'four', null);
    assert.equal(cas3.succeeded, true);
    assert.equal(await client.get('a/4'), null);

    const rows = await client.scan({ start: 'a/', end: 'a0' });
    assert.deepEqual(rows.map((r) => r.key.toString('hex')), ['a/\u0000\u00ff', 'a/1', 'a/2', 'a/3'].map((k, i) => (i === 0 ? Buffer.from(bytesKey).toString('hex') : Buffer.from(k).toString('hex'))));
    const reversed = await client.scan({ start: 'a/', end: 'a0', reverse: true, limit: 2 });
    assert.deepEqual(reversed.map((r) => r.key.toString()), ['a/3', 'a/2']);
    const iterated: string[] = [];
    for await (const row of client.scanIterator({ start: 'a/1', end: 'a0', pageSize: 1 })) iterated.push(row.value.toString());
    assert.deepEqual(iterated, ['one', 'two', 'three']);

    const stale = await client.get('a/1', { consistency: { maxStalenessMs: 60_000 } });
    assert.ok(stale === null || stale.toString() === 'one', 'a stale read sees the value or an older state');
    await client.delete('a/1');
    assert.equal(await client.get('a/1'), null);
    await client.deleteMany(['a/2', 'a/3']);
    assert.deepEqual(await client.getMany(['a/2', 'a/3']), [null, null]);
    await client.putMany(Array.from({ length: 10 }, (_, i) => [`r/${i}`, 'x'] as const));
    assert.equal(await client.deleteRange('r/', 'r0'), 10);
    assert.deepEqual(await client.scan({ start: 'r/', end: 'r0' }), []);

    // Deadlines and aborts are typed errors.
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(client.get('a/1', { signal: controller.signal }), (err: unknown) => isClientError(err, 'FLOTILLA_ABORTED') && !isRetryable(err));
    await assert.rejects(client.put('k'.repeat(9000), 'v'), (err: unknown) => isClientError(err, 'FLOTILLA_INVALID_ARGUMENT'));
    assert.ok(client.stats().requests > 0);
  });

  it('keeps every call correct while regions split and leaders move during the calls', async (t) => {
    const models: Map<string, string | null>[] = Array.from({ length: WORKERS }, () => new Map());
    /** Keys whose last write had an unknown outcome: either value is allowed until the next definite write. */
    const uncertain: Map<string, Set<string | null>>[] = Array.from({ length: WORKERS }, () => new Map());
    const unknownWrites: string[] = [];
    const failures: string[] = [];
    let chaosDone = false;
    let rounds = 0;

    const allowed = (w: number, k: string): Set<string | null> => uncertain[w]!.get(k) ?? new Set([models[w]!.get(k) ?? null]);
    const wrote = (w: number, k: string, v: string | null, err?: unknown): void => {
      if (err === undefined) {
        models[w]!.set(k, v);
        uncertain[w]!.delete(k);
        return;
      }
      if (isClientError(err) && err.unknownOutcome) {
        unknownWrites.push(`${k}: ${err.code}`);
        const set = allowed(w, k);
        set.add(v);
        uncertain[w]!.set(k, set);
        return;
      }
      throw err;
    };

    const worker = async (w: number): Promise<void> => {
      let i = 0;
      while (!chaosDone || i < 60) {
        i++;
        const k = key(w, (i * 7 + w) % KEYS_PER_WORKER);
        const v = `v${w}.${i}`;
        try {
          switch (i % 8) {
            case 0:
            case 1:
              try {
                await client.put(k, v);
                wrote(w, k, v);
              } catch (err) {
                wrote(w, k, v, err);
              }
              break;
            case 2: {
              const got = (await client.get(k))?.toString() ?? null;
              assert.ok(allowed(w, k).has(got), `get ${k}: ${got}, expected one of ${[...allowed(w, k)]}`);
              break;
            }
            case 3: {
              const ks = [k, key(w, (i + 13) % KEYS_PER_WORKER), key(w, (i + 29) % KEYS_PER_WORKER)];
              const got = await client.getMany(ks);
              ks.forEach((kk, j) => assert.ok(allowed(w, kk).has(got[j]?.toString() ?? null), `getMany ${kk}`));
              break;
            }
            case 4: {
              const ks = [key(w, (i + 3) % KEYS_PER_WORKER), key(w, (i + 21) % KEYS_PER_WORKER)];
              try {
                await client.putMany(ks.map((kk) => [kk, v] as const));
                for (const kk of ks) wrote(w, kk, v);
              } catch (err) {
                for (const kk of ks) wrote(w, kk, v, err);
              }
              break;
            }
            case 5: {
              if (uncertain[w]!.has(k)) break;
              const expected = models[w]!.get(k) ?? null;
              try {
                const r = await client.compareAndSwap(k, expected, v);
                assert.ok(r.succeeded, `cas ${k} from ${expected}: ${r.previous?.toString()}`);
                wrote(w, k, v);
              } catch (err) {
                wrote(w, k, v, err);
              }
              break;
            }
            case 6: {
              const rows = await client.scan({ start: `w${w}/`, end: `w${w}0`, pageSize: 5, reverse: i % 16 === 6 });
              const keys = rows.map((r) => r.key.toString());
              const sorted = [...keys].sort();
              if (i % 16 === 6) sorted.reverse();
              assert.deepEqual(keys, sorted, 'scan order');
              assert.equal(new Set(keys).size, keys.length, 'scan: every key once');
              for (const r of rows) assert.ok(allowed(w, r.key.toString()).has(r.value.toString()), `scan ${r.key}`);
              for (const [kk, vv] of models[w]!) if (vv !== null && !uncertain[w]!.has(kk)) assert.ok(keys.includes(kk), `scan misses ${kk}`);
              break;
            }
            case 7: {
              // Every other time a delete-range over two keys, which splits may overtake (the
              // store then answers EpochNotMatch and the client goes again).
              const a = (i * 7 + w) % KEYS_PER_WORKER;
              if (i % 16 === 7 && a + 2 <= KEYS_PER_WORKER) {
                const ks = [key(w, a), key(w, a + 1)];
                try {
                  await client.deleteRange(key(w, a), a + 2 < KEYS_PER_WORKER ? key(w, a + 2) : `w${w}0`);
                  for (const kk of ks) wrote(w, kk, null);
                } catch (err) {
                  for (const kk of ks) wrote(w, kk, null, err);
                }
                break;
              }
              try {
                await client.delete(k);
                wrote(w, k, null);
              } catch (err) {
                wrote(w, k, null, err);
              }
              break;
            }
          }
        } catch (err) {
          failures.push(`worker ${w} op ${i % 8}: ${err instanceof Error ? `${(err as { code?: string }).code ?? ''} ${err.message}` : String(err)}`);
          if (failures.length > 20) return;
        }
      }
    };

    const chaos = async (): Promise<void> => {
      try {
        // Split through every worker's keys, in rounds, moving leaders between rounds.
        for (const at of [20, 10, 30]) {
          await sdk.splitAt(Array.from({ length: WORKERS }, (_, w) => key(w, at)));
          rounds++;
          const regions = await sdk.regions();
          for (const r of regions.slice(0, 8)) await sdk.transferLeader(r.id);
        }
        for (let n = 0; n < 3; n++) {
          for (const r of await sdk.regions()) await sdk.transferLeader(r.id);
          await waitForLeaders();
        }
      } finally {
        chaosDone = true;
      }
    };
    const waitForLeaders = (): Promise<void> =>
      waitFor('the leader transfers to finish', async () => (await sdk.pd.expect<{ operators: unknown[] }>(1, 'GET', '/pd/api/v1/operators')).operators.length === 0, 15_000);

    const retriesBefore = client.stats().retries;
    await Promise.all([chaos(), ...Array.from({ length: WORKERS }, (_, w) => worker(w))]);
    assert.deepEqual(failures, [], 'no call failed');
    assert.equal(rounds, 3);
    assert.ok((await sdk.regions()).length >= 1 + 3 * WORKERS, 'the regions split');
    const retries = client.stats().retries;
    t.diagnostic(`retries ${JSON.stringify(retries)}; writes of unknown outcome: ${unknownWrites.length}; regions ${(await sdk.regions()).length}`);
    const moved = (code: string): number => (retries[code] ?? 0) - (retriesBefore[code] ?? 0);
    assert.ok(moved('FLOTILLA_EPOCH_NOT_MATCH') + moved('FLOTILLA_KEY_NOT_IN_REGION') > 0, `the calls ran into splits: ${JSON.stringify(retries)}`);
    assert.ok(moved('FLOTILLA_NOT_LEADER') > 0, `the calls ran into leader changes: ${JSON.stringify(retries)}`);
    assert.ok(unknownWrites.length <= 10, `few writes of unknown outcome: ${unknownWrites.join(', ')}`);

    // Every key reads back as the model says, through a fresh client (cold cache).
    const fresh = createClient({ pd: sdk.urls() });
    try {
      for (let w = 0; w < WORKERS; w++) {
        const keys = Array.from({ length: KEYS_PER_WORKER }, (_, i) => key(w, i));
        const values = await fresh.getMany(keys);
        keys.forEach((k, i) => assert.ok(allowed(w, k).has(values[i]?.toString() ?? null), `final ${k}: ${values[i]?.toString()}`));
      }
    } finally {
      await fresh.close();
    }
  });

  it('keeps answering when a store is killed (kill -9) during the calls', async (t) => {
    // The store leading the region of the keys written here.
    await client.put('kill/', 'x');
    await waitFor('the region of kill/ to have a leader at PD', async () => (await sdk.regionByKey('kill/')).leader !== null);
    const victim = (await sdk.regionByKey('kill/')).leader!.storeId;
    const acknowledged = new Map<string, string>();
    const unknown = new Map<string, string>();
    const failures: string[] = [];
    let killed = false;
    let afterKill = 0;
    const worker = async (w: number): Promise<void> => {
      for (let i = 0; i < 120; i++) {
        const k = `kill/${w}/${i % 30}`;
        const v = `${w}.${i}`;
        try {
          await client.put(k, v);
          acknowledged.set(k, v);
          unknown.delete(k);
          if (killed) afterKill++;
        } catch (err) {
          if (isClientError(err) && err.unknownOutcome) unknown.set(k, v);
          else failures.push(`${k}: ${err instanceof Error ? err.message : String(err)}`);
        }
        if (i === 30 && w === 0) {
          await sdk.cluster.kill9(victim);
          killed = true;
        }
      }
    };
    await Promise.all(Array.from({ length: 4 }, (_, w) => worker(w)));
    assert.deepEqual(failures, []);
    assert.ok(afterKill > 100, `writes kept succeeding after the kill (${afterKill})`);
    for (const [k, v] of acknowledged) {
      const got = (await client.get(k))?.toString();
      assert.ok(got === v || got === unknown.get(k), `${k}: ${got}, acknowledged ${v}`);
    }
    assert.ok((client.stats().retries['FLOTILLA_STORE_UNAVAILABLE'] ?? 0) > 0, 'the calls ran into the dead store');
    t.diagnostic(`killed store ${victim}; ${unknown.size} writes of unknown outcome; retries ${JSON.stringify(client.stats().retries)}`);
  });
});
