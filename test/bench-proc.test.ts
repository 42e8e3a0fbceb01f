/**
 * What the benchmarks read about processes from /proc: the run-queue wait of their threads
 * (time runnable but without a core), the figure that tells a starved server from a slow one.
 */
import assert from 'node:assert/strict';
import os from 'node:os';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { parseSchedstat, runQueueWaitedMs, threadRunQueueWaits } from '../benchmarks/cluster/proc.ts';
import { waitFor } from './support/wait.ts';

/** A bound on the spinning threads starting and waiting (not a speed check). */
const SPIN_DEADLINE_MS = 20_000;
/** Run-queue time the spinning threads must have gathered: a few scheduler slices. */
const WAITED_ENOUGH_MS = 50;

/**
 * Twice as many threads as the machine has cores, each spinning until `stop` is called, so
 * that at any moment about half of them wait for a core.
 */
function oversubscribe(): { stop(): Promise<unknown[]> } {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const source = `const { workerData } = require('node:worker_threads'); while (Atomics.load(workerData, 0) === 0);`;
  const exits = Array.from({ length: os.availableParallelism() * 2 }, () => new Promise((resolve, reject) => new Worker(source, { eval: true, workerData: flag }).on('exit', resolve).on('error', reject)));
  return {
    stop: () => {
      Atomics.store(flag, 0, 1);
      return Promise.all(exits);
    },
  };
}

describe('benchmarks/cluster/proc.ts run-queue waits', () => {
  it('reads the wait from the second field of schedstat (the first is time on a core)', () => {
    assert.deepEqual(parseSchedstat('48112233 5566 77\n'), { onCpuNs: 48112233, runQueueNs: 5566 });
    assert.throws(() => parseSchedstat(''), /unexpected schedstat/);
    assert.throws(() => parseSchedstat('12'), /unexpected schedstat/);
  });

  it('sums per thread: a thread born in between counts whole, the main thread alone is reported too', () => {
    const before = new Map([[100, 5], [101, 40], [102, 7]]);
    const after = new Map([[100, 9], [101, 70], [103, 12]]);
    // 102 exited (lost), 103 was born (12 ms counted whole).
    assert.deepEqual(runQueueWaitedMs(100, before, after), { allThreads: 4 + 30 + 12, mainThread: 4 });
    assert.ok(Number.isNaN(runQueueWaitedMs(100, before, new Map()).allThreads), 'no schedstat: NaN, not 0');
  });

  it('grows while more threads spin than there are cores; the main thread, mostly asleep, waits less', async (t) => {
    const before = threadRunQueueWaits(process.pid);
    if (before.size === 0) {
      t.skip('this kernel keeps no schedstat');
      return;
    }
    const spinning = oversubscribe();
    let waited = { allThreads: 0, mainThread: 0 };
    try {
      // Read while the spinning threads still run: an exited thread drops out of the sum.
      await waitFor(
        `the spinning threads to wait ${WAITED_ENOUGH_MS} ms in run queues`,
        () => (waited = runQueueWaitedMs(process.pid, before, threadRunQueueWaits(process.pid))).allThreads > WAITED_ENOUGH_MS,
        SPIN_DEADLINE_MS,
        5,
      );
    } finally {
      await spinning.stop();
    }
    assert.ok(waited.mainThread >= 0 && waited.mainThread < waited.allThreads, `the main thread waited ${waited.mainThread} ms of ${waited.allThreads}`);
  });
});
