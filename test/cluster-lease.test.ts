/**
 * Lease reads on real processes: a leader store cut off from the others and stopped (SIGSTOP:
 * a long GC pause, a frozen VM) while the others elect a new leader and overwrite a key. A read
 * of that key reaches the old leader while it is stopped and is the first thing it handles when
 * it resumes — its ticks stopped with it, so a lease that counted only ticks would still look
 * valid and answer the overwritten value. The store's lease clock sees the gap and voids the
 * lease first: the read takes a ReadIndex round, which the cut-off store cannot complete.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import type { KvOp, KvResponse } from '@flotilla/wire';
import { FAULT_RULES_APPLIED } from '../packages/store/src/index.ts';
import { ProcessCluster, waitFor, type StoreHandle } from './support/cluster.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const EPOCH = { version: 1, confVer: 1 };
const STORES = [1, 2, 3];
/** Longer than an election timeout (10 ticks of 50 ms, randomized up to 2x) with room to elect and write. */
const PAUSE_AT_LEAST_MS = 2_500;

const put = (key: string, value: string): KvOp => ({ op: 'put', regionId: 1, regionEpoch: EPOCH, key: encoder.encode(key), value: encoder.encode(value) });
const get = (key: string): KvOp => ({ op: 'get', regionId: 1, regionEpoch: EPOCH, key: encoder.encode(key), consistency: { level: 'linearizable' } });

/** What a one-operation response says: `put`, the value read, or the error code instead. */
function outcome(response: KvResponse): string {
  if (!('results' in response)) return `request error ${response.error.code}`;
  const result = response.results[0];
  if (result?.op === 'put') return 'put';
  if (result?.op === 'get') return result.value === null ? 'null' : `value ${decoder.decode(result.value)}`;
  return result?.op === 'error' ? `error ${result.error.code}` : `unexpected ${JSON.stringify(result)}`;
}

describe('lease reads on real processes', () => {
  let faultDir = '';
  const cluster = new ProcessCluster({ tickMs: 50 });
  after(async () => {
    await cluster.close();
    if (faultDir) await rm(faultDir, { recursive: true, force: true });
  });

  test('a stopped, cut-off leader answers no read from its old lease when it resumes', async () => {
    faultDir = await mkdtemp(path.join(os.tmpdir(), 'flotilla-lease-'));
    const faultFile = (id: number): string => path.join(faultDir, `store-${id}.json`);
    for (const id of STORES) await cluster.startStore(id, ['--fault-control', faultFile(id)]);
    await cluster.bootstrap({ id: 1, startKey: new Uint8Array(0), endKey: new Uint8Array(0), epoch: EPOCH, peers: STORES.map((id) => ({ id, storeId: id, role: 'voter' })) });
    await waitFor('a leader', async () => (await cluster.leaderOf(1)) !== undefined);
    const old = (await cluster.leaderOf(1))!;
    let requestId = 1;
    const kv = (store: StoreHandle, op: KvOp) => cluster.kv(store.id, { requestId: requestId++, timeoutMs: 3_000, ops: [op] });
    assert.equal(outcome((await kv(old, put('k', 'old'))).response), 'put');
    assert.equal(outcome((await kv(old, get('k'))).response), 'value old', 'the leader serves reads');

    // Cut the leader off (its transport drops everything to and from the others), then stop it.
    const others = STORES.filter((id) => id !== old.id);
    await writeFile(`${faultFile(old.id)}.tmp`, JSON.stringify({ dropTo: others, dropFrom: others }));
    await rename(`${faultFile(old.id)}.tmp`, faultFile(old.id));
    await waitFor('the leader applies its fault rules', () => old.logs.some((line) => line.includes(FAULT_RULES_APPLIED)));
    old.child.kill('SIGSTOP');
    const stoppedAt = performance.now();
    try {
      const leads = async (id: number): Promise<boolean> => (await cluster.admin<{ role?: string }>(id, 'GET', '/v1/admin/regions/1').catch(() => undefined))?.body.role === 'leader';
      let fresh: StoreHandle | undefined;
      await waitFor('a new leader among the others', async () => {
        for (const id of others) if (await leads(id)) fresh = cluster.stores.get(id);
        return fresh !== undefined;
      });
      assert.equal(outcome((await kv(fresh!, put('k', 'new'))).response), 'put', 'the new leader overwrote the key');

      // The read reaches the stopped store's socket; it runs first when the store resumes.
      const read = kv(old, get('k'));
      await waitFor('the pause to outlast an election timeout', () => performance.now() - stoppedAt >= PAUSE_AT_LEAST_MS);
      old.child.kill('SIGCONT');
      const answer = outcome((await read).response);
      assert.notEqual(answer, 'value old', 'the old leader answered from a lease its stopped ticks kept alive');
      assert.match(answer, /error FLOTILLA_(NOT_LEADER|TIMEOUT|SERVER_BUSY)/, `answered ${answer}`);
    } finally {
      old.child.kill('SIGCONT');
    }
  });
});
