import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Inflights } from '../src/inflights.ts';

describe('Inflights', () => {
  test('window bounded by message count', () => {
    const inf = new Inflights(3, 0);
    assert.equal(inf.full(), false);
    inf.add(10, 100);
    inf.add(20, 100);
    assert.equal(inf.count, 2);
    assert.equal(inf.full(), false);
    inf.add(30, 100);
    assert.equal(inf.count, 3);
    assert.equal(inf.full(), true);
    assert.throws(() => inf.add(40, 1), /add to a full window/);
  });

  test('window bounded by bytes (0 disables the byte bound)', () => {
    const inf = new Inflights(100, 1000);
    inf.add(1, 400);
    inf.add(2, 500);
    assert.equal(inf.inflightBytes, 900);
    assert.equal(inf.full(), false);
    inf.add(3, 100);
    assert.equal(inf.inflightBytes, 1000);
    assert.equal(inf.full(), true, 'bytes >= bytesMax is full');
    inf.freeLE(1);
    assert.equal(inf.inflightBytes, 600);
    assert.equal(inf.full(), false);

    const unbounded = new Inflights(100, 0);
    unbounded.add(1, 1e12);
    assert.equal(unbounded.full(), false);
  });

  test('freeLE frees every message whose last index <= index, in order', () => {
    const inf = new Inflights(10, 0);
    for (const i of [5, 7, 9, 11]) inf.add(i, 10);
    inf.freeLE(4);
    assert.equal(inf.count, 4, 'nothing below the first');
    inf.freeLE(8);
    assert.equal(inf.count, 2, 'frees 5 and 7');
    assert.equal(inf.inflightBytes, 20);
    inf.freeLE(8);
    assert.equal(inf.count, 2, 'idempotent');
    inf.freeLE(100);
    assert.equal(inf.count, 0);
    assert.equal(inf.inflightBytes, 0);
    inf.add(12, 10);
    assert.equal(inf.count, 1);
  });

  test('indexes must increase', () => {
    const inf = new Inflights(10, 0);
    inf.add(5, 1);
    assert.throws(() => inf.add(5, 1), /indexes must increase/);
    assert.throws(() => inf.add(4, 1), /indexes must increase/);
  });

  test('reset empties the window', () => {
    const inf = new Inflights(2, 50);
    inf.add(1, 25);
    inf.add(2, 25);
    assert.equal(inf.full(), true);
    inf.reset();
    assert.equal(inf.count, 0);
    assert.equal(inf.inflightBytes, 0);
    assert.equal(inf.full(), false);
    inf.add(1, 10); // indexes may restart after a reset
    assert.equal(inf.count, 1);
  });

  test('ring grows and compacts across many add/free cycles without losing order', () => {
    const windowMax = 8;
    const inf = new Inflights(windowMax, 0);
    let next = 1;
    let freed = 0;
    // Keep the window full, free two at a time: exercises compaction (head > 64) many times.
    for (let round = 0; round < 5000; round++) {
      while (!inf.full()) inf.add(next++, 3);
      assert.equal(inf.count, windowMax);
      assert.equal(inf.inflightBytes, windowMax * 3);
      freed += 2;
      inf.freeLE(freed);
      assert.equal(inf.count, next - 1 - freed);
    }
    inf.freeLE(next - 2);
    assert.equal(inf.count, 1);
    assert.equal(inf.inflightBytes, 3);
  });

  test('an empty window holds no arrays: allocated by the first add, let go on reset and when idle', () => {
    // A store keeps one window per member of thousands of mostly idle groups.
    const inf = new Inflights(4, 0);
    assert.equal(inf.allocated, false, 'a new window allocates nothing');
    assert.equal(inf.full(), false);
    inf.freeLE(10);
    inf.freeFirstOne();
    assert.equal(inf.allocated, false, 'freeing an empty window allocates nothing');
    inf.add(1, 5);
    assert.equal(inf.allocated, true);
    inf.releaseIfEmpty();
    assert.equal(inf.allocated, true, 'a window with a message in flight keeps it');
    assert.equal(inf.count, 1);
    inf.freeLE(1);
    assert.equal(inf.allocated, true, 'a busy pipeline keeps its arrays when it empties');
    inf.releaseIfEmpty();
    assert.equal(inf.allocated, false);
    assert.equal(inf.inflightBytes, 0);
    inf.add(2, 5);
    inf.reset();
    assert.equal(inf.allocated, false, 'reset lets go of the arrays');
    inf.add(1, 5);
    assert.equal(inf.count, 1);
  });

  test('a window of at least one message is required', () => {
    assert.throws(() => new Inflights(0, 0), /at least one message/);
  });
});
