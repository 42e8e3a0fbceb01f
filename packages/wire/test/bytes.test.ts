/**
 * compareBytes (the key order of the KV engine, the stores and the SDK) agrees with Buffer.compare — the
 * order RocksDB keeps — on keys that differ early, late, past the JS-compared head, only in
 * length, or not at all.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compareBytes, keyInRange } from '../src/index.ts';
import { SeededRandom } from '@flotilla/raft';

/** Integers in [lo, hi] from the shared seeded PRNG (a failing run names its seed). */
class Prng extends SeededRandom {
  int(lo: number, hi: number): number {
    return lo + this.nextInt(hi - lo + 1);
  }
}

describe('compareBytes', () => {
  it('orders keys as Buffer.compare does (seeded, every length up to 80 bytes, shared prefixes)', () => {
    const rng = new Prng(20261124);
    const key = (length: number, prefix: Uint8Array): Uint8Array => {
      const k = new Uint8Array(length);
      k.set(prefix.subarray(0, Math.min(length, prefix.byteLength)));
      for (let i = prefix.byteLength; i < length; i++) k[i] = rng.int(0, 3) === 0 ? 0xff : rng.int(0, 255);
      return k;
    };
    for (let n = 0; n < 20_000; n++) {
      const prefix = key(rng.int(0, 70), new Uint8Array(0));
      const a = key(rng.int(0, 80), prefix);
      const b = rng.int(0, 9) === 0 ? Uint8Array.from(a) : key(rng.int(0, 80), prefix);
      assert.equal(compareBytes(a, b), Buffer.compare(a, b), `${Buffer.from(a).toString('hex')} vs ${Buffer.from(b).toString('hex')}`);
      assert.equal(compareBytes(b, a), Buffer.compare(b, a));
    }
  });

  it('compares views at an offset and keys one byte apart around the JS-compared head', () => {
    const base = new Uint8Array(100).fill(7);
    for (const at of [0, 1, 30, 31, 32, 33, 63, 99]) {
      const higher = Uint8Array.from(base);
      higher[at] = 8;
      assert.equal(compareBytes(base, higher), -1, `differs at ${at}`);
      assert.equal(compareBytes(higher, base), 1);
      const view = new Uint8Array(new Uint8Array(110).fill(7).buffer, 10, 100);
      assert.equal(compareBytes(view, base), 0);
      assert.equal(compareBytes(view.subarray(0, at), base), at === 100 ? 0 : -1);
    }
    assert.equal(compareBytes(new Uint8Array(0), new Uint8Array(0)), 0);
    assert.equal(compareBytes(new Uint8Array(0), new Uint8Array([0])), -1);
  });

  it('keyInRange: [start, end), an empty end unbounded', () => {
    const k = (s: string): Uint8Array => new TextEncoder().encode(s);
    assert.equal(keyInRange(k('b'), k('b'), k('c')), true);
    assert.equal(keyInRange(k('c'), k('b'), k('c')), false);
    assert.equal(keyInRange(k('a'), k('b'), k('c')), false);
    assert.equal(keyInRange(k('zzz'), k('b'), new Uint8Array(0)), true);
    assert.equal(keyInRange(k('b'.repeat(40) + 'a'), k('b'.repeat(40)), k('b'.repeat(40) + 'b')), true);
  });
});
