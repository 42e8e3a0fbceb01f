/**
 * Installing a snapshot clears the region's range with one RocksDB range tombstone, and that
 * tombstone's end key must be short. The binding's clear() without an upper bound writes an end
 * key of 1,000,000 bytes of 0xFF, and every iterator seek that meets the tombstone then copies it
 * (a 1 MB allocation per seek: ~0.8 ms more CPU per short scan on the stores that had installed
 * a snapshot of the last region). The last region has no end key: its clear must end just past its
 * largest key, and still remove every key of the range.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { RangeOptions, RocksLevel } from '@nxtedition/rocksdb';
import { RocksKvEngine, type KvCommand, type RegionMeta } from '../src/index.ts';
import { kvKeyBytesMax } from '../src/constants.ts';
import { putRegion, tempDir } from './helpers.ts';

const b = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

/** The last region of the key space: from 'm' to the end. */
const LAST: RegionMeta = { id: 9, startKey: b('m'), endKey: new Uint8Array(0), epoch: { version: 2, confVer: 1 }, peers: [{ id: 91, storeId: 1, role: 'voter' }] };
/** The largest key a client may write: kvKeyBytesMax bytes of 0xFF. */
const LARGEST_KEY = new Uint8Array(kvKeyBytesMax).fill(0xff);

async function* replay(frames: readonly Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const frame of frames) yield frame;
}

async function collect(frames: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const frame of frames) out.push(frame);
  return out;
}

/** The upper bound of each clear() the engine makes, in bytes (Infinity: none). */
function recordClears(kv: RocksKvEngine): number[] {
  const db = (kv as unknown as { db: RocksLevel }).db;
  const bounds: number[] = [];
  const clear = db.clear.bind(db);
  db.clear = (options: RangeOptions) => {
    bounds.push(options.lt?.byteLength ?? options.lte?.byteLength ?? Infinity);
    return clear(options);
  };
  return bounds;
}

describe('snapshot install into the last region', () => {
  const engines: RocksKvEngine[] = [];
  const removes: (() => Promise<void>)[] = [];
  after(async () => {
    for (const kv of engines) await kv.close();
    for (const remove of removes) await remove();
  });
  async function open(name: string): Promise<RocksKvEngine> {
    const tmp = await tempDir(name);
    removes.push(tmp.remove);
    const kv = await RocksKvEngine.open({ dir: tmp.dir });
    engines.push(kv);
    return kv;
  }

  it('clears the range up to its largest key only, and removes every stale key of it', async () => {
    const source = await open('clear-range-source');
    const target = await open('clear-range-target');
    const fresh: KvCommand[] = ['m1', 'n2', 'y3'].map((k) => ({ op: 'put', key: b(k), value: b('new') }));
    await source.apply([{ regionId: LAST.id, appliedIndex: 20, appliedTerm: 3, commands: [putRegion(LAST), ...fresh] }]);
    const frames = await collect(source.snapshot(LAST.id).frames());

    // The target holds an older replica of the region, its largest possible key included, and
    // a key of the region before it ('l0'), which the install must not touch.
    const stale: KvCommand[] = [b('m0'), b('x9'), LARGEST_KEY].map((key) => ({ op: 'put', key, value: b('stale') }));
    const older: RegionMeta = { ...LAST, epoch: { version: 1, confVer: 1 } };
    const left: RegionMeta = { ...LAST, id: 8, startKey: b('a'), endKey: b('m'), peers: [{ id: 81, storeId: 1, role: 'voter' }] };
    await target.apply([
      { regionId: LAST.id, appliedIndex: 5, appliedTerm: 1, commands: [putRegion(older), ...stale] },
      { regionId: left.id, appliedIndex: 5, appliedTerm: 1, commands: [putRegion(left), { op: 'put', key: b('l0'), value: b('left') }] },
    ]);
    const bounds = recordClears(target);
    await target.applySnapshot(LAST.id, replay(frames));

    assert.ok(bounds.length > 0, 'the install cleared the range');
    for (const bound of bounds) assert.ok(bound <= kvKeyBytesMax + 1, `a clear bounded by a ${bound}-byte key (at most ${kvKeyBytesMax + 1})`);
    const all = await target.scan({ start: new Uint8Array(0), end: new Uint8Array(0), limit: 100 });
    assert.deepEqual(all.pairs.map((p) => [text(p.key), text(p.value)]), [['l0', 'left'], ['m1', 'new'], ['n2', 'new'], ['y3', 'new']]);
  });

  it('an empty range clears nothing, and writes after the install land', async () => {
    const source = await open('clear-empty-source');
    const target = await open('clear-empty-target');
    await source.apply([{ regionId: LAST.id, appliedIndex: 7, appliedTerm: 1, commands: [putRegion(LAST)] }]);
    const frames = await collect(source.snapshot(LAST.id).frames());
    const bounds = recordClears(target);
    await target.applySnapshot(LAST.id, replay(frames));
    assert.deepEqual(bounds, [], 'no key in the range: no tombstone at all');
    await target.apply([{ regionId: LAST.id, appliedIndex: 8, appliedTerm: 1, commands: [{ op: 'put', key: b('zz1'), value: b('after') }] }]);
    assert.equal(text((await target.get(b('zz1')))!), 'after');
  });
});
