/**
 * The entry command codec: bytes that outlive the apply (region boundaries) are decoded into
 * buffers of their own. An entry's payload may share its buffer with other entries (the log
 * cache's read slabs), and a region's keys live as long as the region does.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeCommands, encodeCommands } from '../src/command-codec.ts';

const b = (s: string): Uint8Array => new TextEncoder().encode(s);
const EPOCH = { version: 3, confVer: 2 };

/** The encoded commands at an offset inside a larger buffer, as a read slab holds them. */
function inSharedBuffer(encoded: Uint8Array): Uint8Array {
  const shared = new Uint8Array(encoded.byteLength + 64);
  shared.set(encoded, 32);
  return shared.subarray(32, 32 + encoded.byteLength);
}

describe('entry command codec', () => {
  it('copies a split key and a merge source region out of the entry payload; data keys stay views', () => {
    const source = { id: 7, startKey: b('a'), endKey: b('m'), epoch: EPOCH, peers: [{ id: 71, storeId: 1, role: 'voter' as const }] };
    const data = inSharedBuffer(
      encodeCommands([
        { op: 'split', splitKey: b('k'), newRegionId: 9, newPeerIds: [91], epoch: EPOCH },
        { op: 'commitMerge', source, prepareIndex: 5, prepareTerm: 2, targetEpoch: EPOCH },
        { op: 'put', key: b('key'), value: b('value') },
      ]),
    );
    const [split, merge, put] = decodeCommands(data);
    assert.ok(split?.op === 'split' && merge?.op === 'commitMerge' && put?.op === 'put');
    assert.deepEqual([...split.splitKey], [...b('k')]);
    assert.deepEqual([merge.source.startKey, merge.source.endKey].map((k) => [...k]), [[...b('a')], [...b('m')]]);
    for (const kept of [split.splitKey, merge.source.startKey, merge.source.endKey]) {
      assert.notEqual(kept.buffer, data.buffer, 'region boundaries do not keep the payload buffer alive');
    }
    // Puts are applied (copied into RocksDB) in the same cycle: views, no copy.
    assert.equal(put.key.buffer, data.buffer);
  });
});
