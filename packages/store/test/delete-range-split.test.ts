/**
 * A delete-range that a split overtakes: its entry applies clipped to the shrunk region, so
 * the keys that moved to the new region stay. The client must hear EpochNotMatch (and go
 * again), never success. Found by the SDK's chaos test on real processes.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { MemoryNetwork } from '@flotilla/transport';
import { EPOCH, REGION, bytes, connectAll, leaderOf, memoryStore, waitFor } from './harness.ts';

it('a delete-range applied after a split it did not know of answers EpochNotMatch', async () => {
  const network = new MemoryNetwork();
  const stores = [1, 2, 3].map((id) => memoryStore(network, id));
  for (const s of stores) await s.host.start();
  connectAll(stores);
  for (const s of stores) await s.host.bootstrapRegion(REGION);
  try {
    await waitFor('a leader', () => leaderOf(stores, 1) !== undefined);
    const leader = leaderOf(stores, 1)!;
    const puts = Array.from({ length: 10 }, (_, i) => ({ op: 'put' as const, regionId: 1, regionEpoch: EPOCH, key: bytes(`k${i}`), value: bytes('v') }));
    await leader.service.handle({ requestId: 1, ops: puts });
    // The split is proposed first; the delete-range is checked against the unsplit region
    // and proposed right after it, so it applies to the left half only.
    const split = leader.host.split(1, bytes('k5'), 50, [51, 52, 53]);
    const deleted = leader.service.handle({ requestId: 2, ops: [{ op: 'deleteRange', regionId: 1, regionEpoch: EPOCH, start: bytes('k'), end: bytes('l') }] });
    assert.equal((await split).kind, 'applied');
    const answer = await deleted;
    assert.ok('results' in answer);
    const result = answer.results[0]!;
    assert.equal(result.op, 'error', `the overtaken delete-range must not report success: ${JSON.stringify(result)}`);
    assert.equal(result.op === 'error' && result.error.code, 'FLOTILLA_EPOCH_NOT_MATCH');
    assert.notEqual(await leader.kv.get(bytes('k7')), null, 'the moved keys are still there: the client goes again');
  } finally {
    for (const s of stores) await s.host.close();
  }
});
