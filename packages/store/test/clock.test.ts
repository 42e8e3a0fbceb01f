/** monotonicNowMs: whole milliseconds on the Unix epoch's scale, deaf to wall-clock steps. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { monotonicNowMs } from '../src/clock.ts';

describe('monotonicNowMs', () => {
  it('reads whole milliseconds near Date.now(), never going back', () => {
    let last = monotonicNowMs();
    assert.ok(Math.abs(last - Date.now()) < 1_000, 'on the epoch scale (no step happened in this process)');
    for (let i = 0; i < 1_000; i++) {
      const now = monotonicNowMs();
      assert.ok(Number.isInteger(now), `${now} is whole (it is stored in integer record fields)`);
      assert.ok(now >= last);
      last = now;
    }
  });

  it('does not move when the wall clock is stepped', () => {
    const realDateNow = Date.now;
    try {
      const before = monotonicNowMs();
      Date.now = () => realDateNow() + 3_600_000;
      assert.ok(monotonicNowMs() - before < 1_000, 'an hour forward on the wall clock is not an hour here');
      Date.now = () => realDateNow() - 3_600_000;
      assert.ok(monotonicNowMs() >= before, 'nor backwards');
    } finally {
      Date.now = realDateNow;
    }
  });
});
