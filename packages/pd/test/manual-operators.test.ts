/**
 * Manual operators from the API: a request that no longer fits the region (its leader is
 * unknown right now, or the target leads already) is a 400 with a reason, never a broken
 * assertion answered 500 (found by the chaos harness: PD answered transferLeader with 500).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isPdError } from '../src/errors.ts';
import { DEFAULT_SCHEDULE_CONFIG } from '../src/scheduling/config.ts';
import { manualOperator } from '../src/server/scheduling-routes.ts';
import { NOW, allocator, region } from './scheduling-helpers.ts';

const meta = { origin: 'admin' as const, reason: 'test', priority: 1, nowMs: NOW, timeouts: DEFAULT_SCHEDULE_CONFIG.operatorTimeoutMs };
const noOther = (): undefined => undefined;

describe('manual transferLeader', () => {
  it('moves the leadership to a voter on another store', () => {
    const op = manualOperator({ type: 'transferLeader', toStoreId: 2 }, region(1, { voters: [1, 2, 3], leader: 1 }), meta, allocator(), noOther);
    assert.deepEqual(op.steps, [{ type: 'transferLeader', fromStoreId: 1, toStoreId: 2 }]);
  });

  it('refuses with INVALID_ARGUMENT while the leader is unknown, or when the target leads already', () => {
    const invalid = (pattern: RegExp) => (err: unknown): boolean => isPdError(err, 'FLOTILLA_PD_INVALID_ARGUMENT') && pattern.test((err as Error).message);
    assert.throws(() => manualOperator({ type: 'transferLeader', toStoreId: 2 }, region(1, { voters: [1, 2, 3], leader: 0 }), meta, allocator(), noOther), invalid(/no known leader/));
    assert.throws(() => manualOperator({ type: 'transferLeader', toStoreId: 1 }, region(1, { voters: [1, 2, 3], leader: 1 }), meta, allocator(), noOther), invalid(/leads region 1 already/));
    assert.throws(() => manualOperator({ type: 'transferLeader', toStoreId: 4 }, region(1, { voters: [1, 2, 3], leader: 1 }), meta, allocator(), noOther), invalid(/holds no voter/));
  });
});
