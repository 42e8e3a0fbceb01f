/**
 * The byte-ring entry cache of one group (log-cache.ts) against a plain array of entries: seeded
 * random appends (with empty and large payloads, so the ring wraps, fills and relays out),
 * conflicting suffixes, drops from the head, clears and byte-limited slices.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ENTRY_OVERHEAD_BYTES, type Entry } from '@flotilla/raft';
import { logCacheReadSlabPieceBytesMax } from '../src/constants.ts';
import { EntryCache } from '../src/log-cache.ts';
import { Prng } from './helpers.ts';

function payload(rng: Prng, index: number): Uint8Array {
  const kind = rng.int(0, 9);
  const n = kind === 0 ? 0 : kind === 1 ? rng.int(2000, 9000) : rng.int(1, 300);
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (index * 31 + i) & 0xff;
  return b;
}

describe('entry cache (byte ring)', () => {
  it('matches an array of entries under random appends, conflicts, drops and reads', () => {
    const seed = Number(process.env['FLOTILLA_SEED'] ?? 20261122);
    const rng = new Prng(seed);
    const cache = new EntryCache(1);
    let model: Entry[] = [];
    let first = 1;
    let term = 1;
    for (let step = 0; step < 5000; step++) {
      const op = rng.int(0, 99);
      const next = first + model.length;
      if (op < 60) {
        const e: Entry = { index: next, term, type: rng.int(0, 9) === 0 ? 'confChange' : 'normal', data: payload(rng, next) };
        cache.push(e);
        model.push(e);
      } else if (op < 70 && model.length > 0) {
        // A conflicting suffix: cut, then continue in a newer term.
        const from = first + rng.int(0, model.length - 1);
        const freed = cache.truncateFrom(from);
        const cut = model.slice(from - first);
        model = model.slice(0, from - first);
        assert.equal(freed, cut.reduce((n, e) => n + e.data.byteLength, 0), `seed ${seed} step ${step}: bytes freed by truncateFrom`);
        term++;
      } else if (op < 85 && model.length > 0) {
        const below = first + rng.int(0, model.length);
        const freed = cache.dropBelow(below);
        const dropped = model.slice(0, below - first);
        model = model.slice(below - first);
        first = below;
        assert.equal(freed, dropped.reduce((n, e) => n + e.data.byteLength, 0), `seed ${seed} step ${step}: bytes freed by dropBelow`);
      } else if (op < 87) {
        const freed = cache.clear(next);
        assert.equal(freed, model.reduce((n, e) => n + e.data.byteLength, 0));
        model = [];
        first = next;
      } else if (model.length > 0) {
        const lo = first + rng.int(0, model.length - 1);
        const hi = rng.int(lo + 1, first + model.length);
        const maxBytes = rng.int(0, 3) === 0 ? Number.MAX_SAFE_INTEGER : rng.int(1, 20_000);
        const got = cache.slice(lo, hi, maxBytes);
        // The model: the longest prefix within maxBytes, never empty.
        const want: Entry[] = [];
        let size = 0;
        for (const e of model.slice(lo - first, hi - first)) {
          size += e.data.byteLength + ENTRY_OVERHEAD_BYTES;
          if (want.length > 0 && size > maxBytes) break;
          want.push(e);
        }
        assert.deepEqual(
          got.map((e) => [e.index, e.term, e.type, [...e.data]]),
          want.map((e) => [e.index, e.term, e.type, [...e.data]]),
          `seed ${seed} step ${step}: slice [${lo}, ${hi}) within ${maxBytes}`,
        );
      }
      assert.equal(cache.first, first, `seed ${seed} step ${step}: first`);
      assert.equal(cache.count, model.length, `seed ${seed} step ${step}: count`);
      assert.equal(cache.bytes, model.reduce((n, e) => n + e.data.byteLength, 0), `seed ${seed} step ${step}: bytes`);
    }
  });

  it('hands out copies: later appends never change entries already read', () => {
    const cache = new EntryCache(1);
    const read: Entry[] = [];
    for (let i = 1; i <= 3000; i++) {
      cache.push({ index: i, term: 1, type: 'normal', data: new Uint8Array(100).fill(i & 0xff) });
      if (i % 7 === 0) read.push(...cache.slice(i, i + 1, Number.MAX_SAFE_INTEGER));
      if (cache.count > 50) cache.dropBelow(cache.first + 10);
    }
    for (const e of read) assert.ok(e.data.every((b) => b === (e.index & 0xff)), `entry ${e.index} unchanged`);
  });

  it('reads of several caches share read slabs without overlapping, small and large reads alike', () => {
    const caches = [new EntryCache(1), new EntryCache(1), new EntryCache(1)];
    const rng = new Prng(77);
    const read: { cache: number; entry: Entry }[] = [];
    const fill = (cache: number, index: number): number => (cache * 71 + index * 13) & 0xff;
    for (let i = 1; i <= 2000; i++) {
      caches.forEach((cache, c) => {
        // Some reads past the slab piece bound (their own buffer), most within it.
        const n = rng.int(0, 9) === 0 ? rng.int(logCacheReadSlabPieceBytesMax + 1, 2 * logCacheReadSlabPieceBytesMax) : rng.int(0, 400);
        cache.push({ index: i, term: 1, type: 'normal', data: new Uint8Array(n).fill(fill(c, i)) });
        if (cache.count > 40) cache.dropBelow(cache.first + 20);
      });
      const c = rng.int(0, caches.length - 1);
      const cache = caches[c]!;
      const lo = rng.int(cache.first, i);
      for (const entry of cache.slice(lo, Math.min(i + 1, lo + rng.int(1, 5)), Number.MAX_SAFE_INTEGER)) read.push({ cache: c, entry });
    }
    const shared = new Map<ArrayBufferLike, { from: number; to: number }[]>();
    for (const { cache, entry } of read) {
      assert.ok(entry.data.every((b) => b === fill(cache, entry.index)), `cache ${cache} entry ${entry.index} unchanged`);
      const ranges = shared.get(entry.data.buffer) ?? [];
      ranges.push({ from: entry.data.byteOffset, to: entry.data.byteOffset + entry.data.byteLength });
      shared.set(entry.data.buffer, ranges);
    }
    assert.ok([...shared.values()].some((r) => r.length > 10), 'small reads share buffers');
    for (const ranges of shared.values()) {
      ranges.sort((a, b) => a.from - b.from);
      for (let k = 1; k < ranges.length; k++) assert.ok(ranges[k]!.from >= ranges[k - 1]!.to, 'no two entries read share bytes');
    }
  });

  it('keeps terms up to 2^53 - 1 and both entry types exactly (slots packed into one Int32Array)', () => {
    const cache = new EntryCache(1);
    const terms = [0, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 40 + 12345, Number.MAX_SAFE_INTEGER];
    const entries: Entry[] = terms.map((term, k) => ({ index: k + 1, term, type: k % 2 === 0 ? 'confChange' : 'normal', data: new Uint8Array(k * 3).fill(k) }));
    for (const e of entries) cache.push(e);
    const got = cache.slice(1, entries.length + 1, Number.MAX_SAFE_INTEGER);
    assert.deepEqual(
      got.map((e) => [e.index, e.term, e.type, [...e.data]]),
      entries.map((e) => [e.index, e.term, e.type, [...e.data]]),
    );
  });
});
