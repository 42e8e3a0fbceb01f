/**
 * The storage benchmark's event-loop probe (benchmarks/storage/machine.ts) subtracts its timer's
 * resolution from Node's histogram, because the histogram records the whole interval between
 * the timer's runs, not only how late it ran. Before, an idle process "had" a 1 ms delay at
 * every percentile and the benchmark's p99 was 1 ms worse than the loop really was.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { LOOP_PROBE_RESOLUTION_MS, lateMs } from '../benchmarks/storage/machine.ts';
import { waitFor } from './support/wait.ts';

describe('storage benchmark: the event-loop probe', () => {
  it("Node's histogram records whole intervals, so an idle 20 ms probe shows ~20 ms, not ~0", async () => {
    const h = monitorEventLoopDelay({ resolution: 20 });
    h.enable();
    try {
      await waitFor('ten samples of a 20 ms probe', () => h.count >= 10, 10_000, 5);
    } finally {
      h.disable();
    }
    // A timer runs at most ~1 ms early (libuv's loop time is cached in whole ms), so every
    // recorded interval is about the resolution or more: that is what lateMs takes off.
    assert.ok(h.min / 1e6 >= 15, `min ${h.min / 1e6} ms`);
  });

  it('the delay is the recorded interval less the resolution, never below zero', () => {
    assert.equal(LOOP_PROBE_RESOLUTION_MS, 1);
    // What an idle process recorded at resolution 1 (p50 1.09 ms, p99 1.23 ms).
    assert.ok(Math.abs(lateMs(1.09) - 0.09) < 1e-9);
    assert.ok(Math.abs(lateMs(1.23) - 0.23) < 1e-9);
    // A timer that ran early (libuv's cached loop time) was not late.
    assert.equal(lateMs(0.9), 0);
    assert.ok(Math.abs(lateMs(10.19, 10) - 0.19) < 1e-9);
  });
});
