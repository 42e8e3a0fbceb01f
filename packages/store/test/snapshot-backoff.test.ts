/**
 * A failed snapshot is reported to the raft core late, backing off per receiving peer: a
 * receiver that keeps refusing (its stale region overlaps) is not sent the region's whole
 * data again on every heartbeat.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { limits } from '../src/constants.ts';
import { SnapshotRetryBackoff } from '../src/snapshots.ts';

/** Draws the ceiling every time, so the delays are the backoff's bounds. */
const highest = { nextInt: (bound: number): number => bound - 1 };

describe('snapshot retry backoff', () => {
  it('doubles per consecutive failure up to the cap; a success resets it; peers count apart', () => {
    const backoff = new SnapshotRetryBackoff(highest);
    const delays = Array.from({ length: 10 }, () => backoff.delayMs(7, 71, 'failed'));
    assert.equal(delays[0], limits.snapshotRetryBaseMs);
    assert.equal(delays[1], 2 * limits.snapshotRetryBaseMs);
    assert.ok(delays.every((d, i) => i === 0 || d >= delays[i - 1]!), `never shrinks: ${delays.join(',')}`);
    assert.equal(delays[9], limits.snapshotRetryMaxMs);
    assert.equal(backoff.delayMs(7, 72, 'failed'), limits.snapshotRetryBaseMs, 'another peer starts afresh');
    assert.equal(backoff.delayMs(7, 71, 'finished'), 0, 'a success is reported at once');
    assert.equal(backoff.delayMs(7, 71, 'failed'), limits.snapshotRetryBaseMs, 'and resets the count');
  });

  it('tracks a bounded number of peers, forgetting the oldest', () => {
    const backoff = new SnapshotRetryBackoff(highest);
    for (let peer = 1; peer <= limits.snapshotRetriesTrackedMax + 1; peer++) backoff.delayMs(1, peer, 'failed');
    assert.equal(backoff.delayMs(1, 1, 'failed'), limits.snapshotRetryBaseMs, 'the oldest was forgotten');
    assert.equal(backoff.delayMs(1, limits.snapshotRetriesTrackedMax + 1, 'failed'), 2 * limits.snapshotRetryBaseMs, 'the newest is kept');
  });
});
