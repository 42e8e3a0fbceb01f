import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CallContext, backoffMs } from '../src/backoff.ts';
import { clientLimits } from '../src/constants.ts';
import { isClientError, isRetryable } from '../src/errors.ts';

describe('backoff and call deadlines', () => {
  it('backs off exponentially with full jitter, capped', () => {
    assert.equal(backoffMs(0, () => 0.999), clientLimits.backoffMsBase - 1);
    assert.equal(backoffMs(3, () => 0.5), (clientLimits.backoffMsBase * 8) / 2);
    assert.equal(backoffMs(50, () => 0.999), Math.floor(clientLimits.backoffMsMax * 0.999), 'capped');
    assert.equal(backoffMs(50, () => 0), 0, 'full jitter reaches zero');
  });

  it('a wait past the deadline ends at the deadline with DEADLINE_EXCEEDED', async () => {
    const ctx = new CallContext(30, undefined, 'test');
    const started = performance.now();
    await assert.rejects(ctx.sleep(10_000, new Error('busy')), (err: unknown) => isClientError(err, 'FLOTILLA_DEADLINE_EXCEEDED') && isRetryable(err) && /busy/.test((err as Error).message));
    assert.ok(performance.now() - started < 2_000);
  });

  it('a race the deadline ends first names what it waited for; a later one names the last error', async () => {
    const ctx = new CallContext(30, undefined, 'get');
    const never = new Promise<void>(() => {});
    await assert.rejects(ctx.race(never, 'the placement driver (GET /regions)'), (err: unknown) => isClientError(err, 'FLOTILLA_DEADLINE_EXCEEDED') && (err as Error).message === 'get: deadline exceeded while waiting for the placement driver (GET /regions)');
    await assert.rejects(ctx.sleep(10, new Error('connect ECONNREFUSED')), (err: unknown) => isClientError(err, 'FLOTILLA_DEADLINE_EXCEEDED') && (err as Error).message === 'get: deadline exceeded (last error: connect ECONNREFUSED)');
  });

  it('a call found over when it checks (a slow machine) still names the last error or what it was about to wait for', () => {
    const over = new CallContext(0, undefined, 'get');
    const expect = (message: string) => (err: unknown): boolean => isClientError(err, 'FLOTILLA_DEADLINE_EXCEEDED') && (err as Error).message === message;
    assert.throws(() => over.check(new Error('connect ECONNREFUSED')), expect('get: deadline exceeded (last error: connect ECONNREFUSED)'));
    assert.throws(() => over.check(undefined, 'the first attempt'), expect('get: deadline exceeded while waiting for the first attempt'));
    return assert.rejects(over.race(Promise.resolve(), 'the placement driver (GET /regions)'), expect('get: deadline exceeded while waiting for the placement driver (GET /regions)'));
  });

  it('an abort ends a wait and a race at once; a sent write makes the outcome unknown', async () => {
    const controller = new AbortController();
    const ctx = new CallContext(60_000, controller.signal, 'test');
    const never = new Promise<void>(() => {});
    const raced = ctx.race(never, 'nothing');
    ctx.writesInFlight++;
    controller.abort();
    await assert.rejects(raced, (err: unknown) => isClientError(err, 'FLOTILLA_ABORTED') && err.unknownOutcome && !isRetryable(err));
    await assert.rejects(ctx.sleep(10), (err: unknown) => isClientError(err, 'FLOTILLA_ABORTED'));
  });
});
