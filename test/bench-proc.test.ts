/**
 * What the benchmarks read about processes from /proc: the run-queue wait of their threads
 * (time runnable but without a core), the figure that tells a starved server from a slow one.
 */
import assert from 'node:assert/strict';
import os from 'node:os';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { parseSchedstat, runQueueWaitedMs, threadRunQueueWaits } from '../benchmarks/cluster/proc.ts';

/** Threads that spin for `ms`, twice as many as the machine has cores, so each waits for one. */
function oversubscribe(ms: number): Promise<unknown[]> {
  const threads = os.availableParallelism() * 2;
  const source = `const end = Date.now() + ${ms}; while (Date.now() < end);`;
  return Promise.all(Array.from({ length: threads }, () => new Promise((resolve, reject) => new Worker(source, { eval: true }).on('exit', resolve).on('error', reject))));
}

describe('benchmarks/cluster/proc.ts run-queue waits', () => {
  it('reads the wait from the second field of schedstat (the first is time on a core)', () => {
    assert.deepEqual(parseSchedstat('48112233 5566 77\n'), { onCpuNs: 48112233, runQueueNs: 5566 });
    assert.throws(() => parseSchedstat(''), /unexpected schedstat/);
    assert.throws(() => parseSchedstat('12'), /unexpected schedstat/);
  });

  it('sums per thread: a thread born in between counts whole, the main thread alone is reported too', () => {
    const before = new Map([['100', 5], ['101', 40], ['102', 7]]);
    const after = new Map([['100', 9], ['101', 70], ['103', 12]]);
    // 102 exited (lost), 103 was born (12 ms counted whole).
    assert.deepEqual(runQueueWaitedMs(100, before, after), { allThreads: 4 + 30 + 12, mainThread: 4 });
    assert.ok(Number.isNaN(runQueueWaitedMs(100, before, new Map()).allThreads), 'no schedstat: NaN, not 0');
  });

  it('grows while more threads spin than there are cores; the idle main thread barely waits', async (t) => {
    const before = threadRunQueueWaits(process.pid);
    if (before.size === 0) {
      t.skip('this kernel keeps no schedstat');
      return;
    }
    const spinMs = 400;
    const spinning = oversubscribe(spinMs);
    await new Promise((resolve) => setTimeout(resolve, spinMs / 2));
    // Read while the spinning threads still run: an exited thread drops out of the sum.
    const waited = runQueueWaitedMs(process.pid, before, threadRunQueueWaits(process.pid));
    await spinning;
    // Half the spinning threads wait at any moment: ~spinMs/2 × cores by mid-run. A tenth of that
    // is the bound, for a loaded machine where the first threads finish before the last start.
    assert.ok(waited.allThreads > (spinMs / 2) * 0.1, `the spinning threads waited ${waited.allThreads} ms`);
    assert.ok(waited.mainThread >= 0 && waited.mainThread < waited.allThreads, `the main thread, mostly asleep, waited ${waited.mainThread} ms of ${waited.allThreads}`);
  });
});
