/**
 * PointReadBatcher (point-reads.ts): the get() calls of one event-loop turn become one
 * MultiGet, each caller gets its own key's value, a failed read fails every caller of its
 * batch (and no other), and a full batch leaves at once.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RocksLevel } from '@nxtedition/rocksdb';
import { PointReadBatcher, type ReadNow } from '../src/point-reads.ts';

const b = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

/**
 * A fake MultiGet on the calling thread: the keys in `onDisk` are not read in time (null); it
 * records the keys of each call.
 */
function fakeReadsNow(store: ReadonlyMap<string, string>, onDisk: ReadonlySet<string>, keysMax: number): { calls: string[][]; readNow: ReadNow<string> } {
  const calls: string[][] = [];
  return {
    calls,
    readNow: {
      keysMax,
      read: (keys) => {
        const names = keys.map(text);
        calls.push(names);
        return names.map((k) => (onDisk.has(k) ? null : store.get(k)));
      },
    },
  };
}

/** A fake MultiGet over `store` that records the keys of each call. */
function fakeReads(store: ReadonlyMap<string, string>, fail?: (keys: string[]) => Error | undefined): { calls: string[][]; readMany: (keys: Uint8Array[]) => Promise<(string | undefined)[]> } {
  const calls: string[][] = [];
  return {
    calls,
    readMany: async (keys) => {
      const names = keys.map(text);
      calls.push(names);
      const error = fail?.(names);
      if (error) throw error;
      return names.map((k) => store.get(k));
    },
  };
}

describe('PointReadBatcher', () => {
  const store = new Map([
    ['a', '1'],
    ['b', '2'],
    ['c', '3'],
  ]);

  it('reads the gets of one turn in one call, each caller gets its own value', async () => {
    const reads = fakeReads(store);
    const batcher = new PointReadBatcher(reads.readMany, 100);
    const values = await Promise.all(['c', 'a', 'missing', 'b', 'a'].map((k) => batcher.get(b(k))));
    assert.deepEqual(values, ['3', '1', undefined, '2', '1']);
    assert.deepEqual(reads.calls, [['c', 'a', 'missing', 'b', 'a']]);
  });

  it('gets released by microtasks in the same turn join the batch; a later turn makes another', async () => {
    const reads = fakeReads(store);
    const batcher = new PointReadBatcher(reads.readMany, 100);
    // Reads released one after the other, as a ReadIndex confirmation releases its waiters.
    const released = Promise.resolve();
    const first = Promise.all(['a', 'b', 'c'].map((k) => released.then(() => released).then(() => batcher.get(b(k)))));
    assert.deepEqual(await first, ['1', '2', '3']);
    assert.deepEqual(await batcher.get(b('b')), '2');
    assert.deepEqual(reads.calls, [['a', 'b', 'c'], ['b']]);
  });

  it('a full batch leaves at once and the rest wait for the turn to end', async () => {
    const reads = fakeReads(store);
    const batcher = new PointReadBatcher(reads.readMany, 2);
    const values = Promise.all(['a', 'b', 'c'].map((k) => batcher.get(b(k))));
    assert.deepEqual(reads.calls, [['a', 'b']], 'the full batch was read synchronously');
    assert.deepEqual(await values, ['1', '2', '3']);
    assert.deepEqual(reads.calls, [['a', 'b'], ['c']]);
  });

  it("a failed read fails its batch's callers only; a read that throws at once too", async () => {
    const boom = new Error('disk');
    const reads = fakeReads(store, (keys) => (keys.includes('a') ? boom : undefined));
    const batcher = new PointReadBatcher(reads.readMany, 100);
    const failing = ['a', 'b'].map((k) => batcher.get(b(k)));
    for (const read of failing) await assert.rejects(read, (e) => e === boom);
    assert.equal(await batcher.get(b('c')), '3', 'the next turn reads again');

    const closed = new Error('closed');
    const throwing = new PointReadBatcher<string>(() => {
      throw closed;
    }, 100);
    await assert.rejects(throwing.get(b('a')), (e) => e === closed);
  });

  it('a small batch is read on this thread; only the keys not read in time go to the thread pool', async () => {
    const pool = fakeReads(store);
    const here = fakeReadsNow(store, new Set(['b']), 4);
    const batcher = new PointReadBatcher(pool.readMany, 100, here.readNow);
    const values = await Promise.all(['a', 'b', 'missing', 'c'].map((k) => batcher.get(b(k))));
    assert.deepEqual(values, ['1', '2', undefined, '3'], 'each caller its own value, wherever it was read');
    assert.deepEqual(here.calls, [['a', 'b', 'missing', 'c']]);
    assert.deepEqual(pool.calls, [['b']], 'the late key alone, on the pool');

    const allInTime = fakeReads(store);
    const quick = new PointReadBatcher(allInTime.readMany, 100, fakeReadsNow(store, new Set(), 4).readNow);
    assert.deepEqual(await Promise.all(['a', 'c'].map((k) => quick.get(b(k)))), ['1', '3']);
    assert.deepEqual(allInTime.calls, [], 'no thread hop when every key was read in time');
  });

  it('a batch larger than the read-now bound goes to the thread pool whole', async () => {
    const pool = fakeReads(store);
    const here = fakeReadsNow(store, new Set(), 2);
    const batcher = new PointReadBatcher(pool.readMany, 100, here.readNow);
    assert.deepEqual(await Promise.all(['a', 'b', 'c'].map((k) => batcher.get(b(k)))), ['1', '2', '3']);
    assert.deepEqual(here.calls, []);
    assert.deepEqual(pool.calls, [['a', 'b', 'c']]);
  });

  it('a read-now that throws fails its batch, and nothing goes to the pool', async () => {
    const pool = fakeReads(store);
    const closed = new Error('closed');
    const batcher = new PointReadBatcher(pool.readMany, 100, {
      keysMax: 4,
      read: () => {
        throw closed;
      },
    });
    for (const read of ['a', 'b'].map((k) => batcher.get(b(k)))) await assert.rejects(read, (e) => e === closed);
    assert.deepEqual(pool.calls, []);
  });

  it('the pinned RocksDB binding still has its synchronous MultiGet (without it every read takes the pool)', () => {
    assert.equal(typeof RocksLevel.prototype._getManySync, 'function');
  });
});
