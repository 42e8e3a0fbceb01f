/**
 * Leadership: a leader whose cluster load keeps failing retries with a doubling, capped
 * backoff instead of at every 50 ms check (it once logged, and read PD's metadata group, 20
 * times a second while a record was unreadable).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PdError } from '../src/errors.ts';
import { Leadership, loadRetryMs } from '../src/member/leadership.ts';
import type { PdMember } from '../src/member/pd-member.ts';

const warnings: Record<string, unknown>[] = [];
const LOGGER = { info: () => {}, warn: (fields: Record<string, unknown>) => void warnings.push(fields), error: () => {}, fatal: () => {}, debug: () => {}, trace: () => {}, child: () => LOGGER } as never;

describe('Leadership', () => {
  it('backs off between failed cluster loads, doubling up to the cap', async () => {
    let loads = 0;
    const member = {
      leadership: () => ({ leader: true, term: 3, leaderPeerId: 1 }),
      recordKnownMembers: async () => {},
      meta: {
        get: async () => {
          loads++;
          throw new PdError('FLOTILLA_PD_CORRUPT_META', 'unreadable PD metadata: bootstrappedMs');
        },
      },
    } as unknown as PdMember;
    let nowMs = 0;
    const leadership = new Leadership(member, 7, LOGGER, { start: () => assert.fail('no term may start'), stop: () => {} }, () => nowMs);
    const attemptsAt = async (t: number): Promise<number> => {
      nowMs = t;
      leadership.check();
      await leadership.settled();
      return loads;
    };
    assert.equal(await attemptsAt(0), 1, 'the first check loads');
    assert.equal(await attemptsAt(50), 1, 'the next check, 50 ms later, waits');
    assert.equal(await attemptsAt(loadRetryMs.first), 2, 'retried after the first delay');
    assert.equal(await attemptsAt(loadRetryMs.first + 150), 2, 'the second delay is twice as long');
    assert.equal(await attemptsAt(loadRetryMs.first * 3), 3);
    // Many failures later the delay stops growing at the cap.
    let t = loadRetryMs.first * 3;
    for (let i = 0; i < 12; i++) {
      t += loadRetryMs.max;
      await attemptsAt(t);
    }
    assert.equal(loads, 15, 'one load per capped delay');
    assert.equal(warnings.at(-1)?.['retryInMs'], loadRetryMs.max);
    assert.equal(warnings.at(-1)?.['failures'], 15);
    assert.ok(!leadership.leading);
  });
});
