import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Progress } from '../src/progress.ts';

const make = (next = 10, windowMax = 4, bytesMax = 0): Progress => new Progress(next, windowMax, bytesMax, false);

describe('Progress transitions', () => {
  test('starts probing', () => {
    const pr = make(10);
    assert.equal(pr.state, 'probe');
    assert.equal(pr.match, 0);
    assert.equal(pr.next, 10);
    assert.equal(pr.isPaused(), false);
  });

  test('probe -> replicate sets next = match + 1 and clears the window', () => {
    const pr = make(10);
    pr.match = 7;
    pr.becomeReplicate();
    assert.equal(pr.state, 'replicate');
    assert.equal(pr.next, 8);
    assert.equal(pr.inflights.count, 0);
  });

  test('replicate -> probe resets next to match + 1', () => {
    const pr = make(10);
    pr.match = 5;
    pr.becomeReplicate();
    pr.sentEntries(9, 40, 4);
    assert.equal(pr.next, 10);
    assert.equal(pr.inflights.count, 1);
    pr.becomeProbe();
    assert.equal(pr.state, 'probe');
    assert.equal(pr.next, 6);
    assert.equal(pr.inflights.count, 0);
    assert.equal(pr.probeSent, false);
  });

  test('snapshot -> probe resumes after the snapshot (or match, whichever is later)', () => {
    const pr = make(10);
    pr.match = 3;
    pr.becomeSnapshot(20);
    assert.equal(pr.state, 'snapshot');
    assert.equal(pr.pendingSnapshot, 20);
    assert.equal(pr.isPaused(), true);
    pr.becomeProbe();
    assert.equal(pr.state, 'probe');
    assert.equal(pr.next, 21);
    assert.equal(pr.pendingSnapshot, 0);

    const failed = make(10);
    failed.match = 30;
    failed.becomeSnapshot(20);
    failed.becomeProbe();
    assert.equal(failed.next, 31);
  });
});

describe('Progress.sentEntries / isPaused', () => {
  test('probe pauses after one message until a response', () => {
    const pr = make(10);
    pr.sentEntries(12, 30, 3);
    assert.equal(pr.probeSent, true);
    assert.equal(pr.isPaused(), true);
    assert.equal(pr.next, 10, 'probing does not advance next optimistically');
    pr.maybeUpdate(12);
    assert.equal(pr.isPaused(), false);
  });

  test('replicate advances next optimistically and pauses on a full window', () => {
    const pr = make(1, 2);
    pr.becomeReplicate();
    pr.sentEntries(3, 30, 3);
    assert.equal(pr.next, 4);
    assert.equal(pr.isPaused(), false);
    pr.sentEntries(3, 0, 0); // an empty append (commit only) takes no slot
    assert.equal(pr.inflights.count, 1);
    pr.sentEntries(5, 20, 2);
    assert.equal(pr.next, 6);
    assert.equal(pr.isPaused(), true);
    pr.inflights.freeLE(3);
    assert.equal(pr.isPaused(), false);
  });

  test('replicate pauses on the byte window', () => {
    const pr = make(1, 100, 100);
    pr.becomeReplicate();
    pr.sentEntries(1, 60, 1);
    assert.equal(pr.isPaused(), false);
    pr.sentEntries(2, 60, 1);
    assert.equal(pr.isPaused(), true);
  });

  test('snapshot state is always paused', () => {
    const pr = make(10);
    pr.becomeSnapshot(9);
    assert.equal(pr.isPaused(), true);
  });
});

describe('Progress.maybeUpdate', () => {
  test('advances match and next; stale acks return false', () => {
    const pr = make(5);
    assert.equal(pr.maybeUpdate(7), true);
    assert.equal(pr.match, 7);
    assert.equal(pr.next, 8);
    assert.equal(pr.maybeUpdate(6), false, 'older ack');
    assert.equal(pr.match, 7);
    assert.equal(pr.next, 8);
    assert.equal(pr.maybeUpdate(7), false, 'same ack');
  });

  test('never moves next backwards', () => {
    const pr = make(20);
    assert.equal(pr.maybeUpdate(4), true);
    assert.equal(pr.match, 4);
    assert.equal(pr.next, 20);
  });
});

describe('Progress.maybeDecrTo', () => {
  test('replicate: a rejection at or below match is stale and ignored', () => {
    const pr = make(1);
    pr.match = 10;
    pr.becomeReplicate();
    pr.sentEntries(15, 50, 5);
    assert.equal(pr.maybeDecrTo(9, 0), false);
    assert.equal(pr.maybeDecrTo(10, 0), false);
    assert.equal(pr.next, 16);
    assert.equal(pr.maybeDecrTo(12, 0), true);
    assert.equal(pr.next, 11, 'back to match + 1');
  });

  test('probe: only a rejection of the last probe counts', () => {
    const pr = make(10);
    pr.sentEntries(10, 0, 1);
    assert.equal(pr.maybeDecrTo(5, 4), false, 'rejects index 5, but we probed at 9');
    assert.equal(pr.next, 10);
    assert.equal(pr.probeSent, true);
    assert.equal(pr.maybeDecrTo(9, 8), true);
    assert.equal(pr.next, 9);
    assert.equal(pr.probeSent, false, 'probe again at once');
  });

  test('probe: the hint skips a whole conflicting term (fast backtracking)', () => {
    const pr = make(101);
    assert.equal(pr.maybeDecrTo(100, 42), true);
    assert.equal(pr.next, 43);
  });

  test('probe: a hint above the rejected index is capped; next never drops below match + 1 or 1', () => {
    const pr = make(51);
    assert.equal(pr.maybeDecrTo(50, 80), true);
    assert.equal(pr.next, 50);

    const matched = make(51);
    matched.match = 30;
    assert.equal(matched.maybeDecrTo(50, 3), true);
    assert.equal(matched.next, 31);

    const empty = make(2);
    assert.equal(empty.maybeDecrTo(1, -5), true);
    assert.equal(empty.next, 1);
  });
});
