import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LeaseClock, maxTickGapMs } from '../src/lease-clock.ts';

describe('maxTickGapMs', () => {
  test('a lease of L ticks spaced by the bound ends before the voters may vote, for every timing', () => {
    for (const electionTicks of [5, 10, 20]) {
      for (const driftTicks of [1, 2, 4]) {
        for (let tickMs = 2; tickMs <= 2_000; tickMs += tickMs < 50 ? 1 : 37) {
          for (const voterTickMsMin of [tickMs - 1, tickMs * 0.98]) {
            const gap = maxTickGapMs({ tickMs, voterTickMsMin, electionTicks, driftTicks });
            if (gap === 0) continue;
            const leaseTicks = electionTicks - driftTicks;
            const votersRefuseMs = (electionTicks - 1) * voterTickMsMin;
            assert.ok(leaseTicks * gap <= votersRefuseMs + 1e-9, `E=${electionTicks} d=${driftTicks} tick=${tickMs}: ${leaseTicks} x ${gap} > ${votersRefuseMs}`);
            assert.ok(gap > tickMs, 'a bound at or below one tick would void every lease');
          }
        }
      }
    }
  });

  test('no lease left, or ticks too short for a bound above them: 0 (lease reads off)', () => {
    assert.equal(maxTickGapMs({ tickMs: 100, voterTickMsMin: 99, electionTicks: 10, driftTicks: 10 }), 0);
    assert.equal(maxTickGapMs({ tickMs: 2, voterTickMsMin: 1, electionTicks: 10, driftTicks: 4 }), 0);
  });
});

describe('LeaseClock', () => {
  test('voids every lease when a gap between ticks, or since the last tick at a read, passed the bound', () => {
    let now = 1_000;
    let voided = 0;
    const clock = new LeaseClock(150, () => voided++, () => now);
    clock.startTicking();
    for (let i = 0; i < 5; i++) {
      now += 149;
      clock.onTick();
      clock.beforeLeaseUse();
    }
    assert.equal(voided, 0, 'ticks within the bound');
    now += 151;
    clock.onTick();
    assert.equal(voided, 1, 'a late tick voids the leases');
    now += 100;
    clock.beforeLeaseUse();
    assert.equal(voided, 1, 'a read within the bound of the last tick');
    now += 51;
    clock.beforeLeaseUse();
    assert.equal(voided, 2, 'a read after the ticks stopped: voided before the lease is used');
    clock.beforeLeaseUse();
    assert.equal(voided, 2, 'once: the void counts as a tick');
    now += 149;
    clock.onTick();
    assert.equal(voided, 2, 'the next gap is measured from the void');
    assert.equal(clock.stalls, 2);
  });

  test('the ticker starting counts as a tick: the time the host took to open is no stall', () => {
    let now = 0;
    let voided = 0;
    const clock = new LeaseClock(150, () => voided++, () => now);
    now = 60_000;
    clock.startTicking();
    now += 100;
    clock.onTick();
    assert.equal(voided, 0);
  });
});
