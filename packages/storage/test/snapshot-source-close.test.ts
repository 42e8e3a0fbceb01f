/**
 * A region snapshot source pins a RocksDB view until it is done with: iterated to the end, or
 * closed — also when its frames were never read (a send refused before its first byte, a backup
 * client gone before the first frame), which used to leave the view open until the engine closed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RocksKvEngine, type KvCommand, type RegionMeta } from '../src/index.ts';
import { putRegion, tempDir } from './helpers.ts';

const b = (text: string): Uint8Array => new TextEncoder().encode(text);
const REGION: RegionMeta = { id: 7, startKey: b('a'), endKey: b('z'), epoch: { version: 1, confVer: 1 }, peers: [{ id: 71, storeId: 1, role: 'voter' }] };

async function drain(frames: AsyncIterable<Uint8Array>): Promise<number> {
  let count = 0;
  for await (const _frame of frames) count++;
  return count;
}

describe('RegionSnapshotSource.close', () => {
  let kv: RocksKvEngine;
  let remove: () => Promise<void>;
  before(async () => {
    const tmp = await tempDir('snapshot-close');
    remove = tmp.remove;
    kv = await RocksKvEngine.open({ dir: tmp.dir });
    const puts: KvCommand[] = Array.from({ length: 50 }, (_, i) => ({ op: 'put', key: b(`k${i}`), value: b(`v${i}`) }));
    await kv.apply([{ regionId: REGION.id, appliedIndex: 5, appliedTerm: 1, commands: [putRegion(REGION), ...puts] }]);
  });
  after(async () => {
    await kv.close();
    await remove();
  });

  it('releases the view of a source whose frames were never read', async () => {
    const never = kv.snapshot(REGION.id);
    const unstarted = kv.snapshot(REGION.id);
    void unstarted.frames(); // asked for, never iterated: its generator never ran
    assert.equal(kv.openSnapshotViews(), 2);
    await never.close();
    await unstarted.close();
    assert.equal(kv.openSnapshotViews(), 0);
    await never.close(); // idempotent
  });

  it('releases it at the end of the frames, and close() after that is harmless', async () => {
    const source = kv.snapshot(REGION.id);
    assert.ok((await drain(source.frames())) >= 3, 'header, data, trailer');
    assert.equal(kv.openSnapshotViews(), 0);
    await source.close();
    assert.equal(kv.openSnapshotViews(), 0);
  });

  it('releases it when the reader stops half way', async () => {
    const source = kv.snapshot(REGION.id);
    for await (const _frame of source.frames()) break;
    assert.equal(kv.openSnapshotViews(), 0);
  });
});
