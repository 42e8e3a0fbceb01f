/**
 * ReplicaReads on a fake raft node and a fake clock: which moment becomes the safe time, when
 * a read is served at once, when it waits, and how lost rounds are sent again.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { KvError } from '@flotilla/wire';
import { limits } from '../src/constants.ts';
import { ReplicaReads, boundedStaleness, linearizable, type Moment } from '../src/replica-reads.ts';

const NOT_LEADER: KvError = { code: 'FLOTILLA_NOT_LEADER', regionId: 1, leader: null };
const FAR = Number.MAX_SAFE_INTEGER;

/** A raft node that records the rounds it was asked for, and a clock the test moves. */
class Fixture {
  ms = 1_000;
  private seq = 0;
  leader = 2;
  term = 5;
  /** What the node's lease answers (undefined: no lease, a round is needed). */
  leaseIndex: number | undefined = undefined;
  applied = 0;
  /** Times the reads asked the host for a ready cycle. */
  cyclesAsked = 0;
  readonly sent: string[] = [];
  readonly reads = new ReplicaReads(
    {
      readIndex: (context) => void this.sent.push(new TextDecoder().decode(context)),
      leadership: () => ({ leader: this.leader, term: this.term }),
      leaseReadIndex: () => this.leaseIndex,
      applied: () => this.applied,
    },
    () => NOT_LEADER,
    () => void this.cyclesAsked++,
    () => this.now(),
  );

  now(): Moment {
    return { ms: this.ms, seq: ++this.seq };
  }

  /** The leader answers round `context` with `index`. */
  answer(context: string | undefined, index: number): void {
    assert.ok(context !== undefined, 'a round was sent');
    this.reads.onReadStates([{ index, context: new TextEncoder().encode(context) }]);
  }
}

/** Whether a promise settled (after the microtasks queued so far). */
async function settled<T>(p: Promise<T>): Promise<{ done: boolean; value?: T }> {
  let state: { done: boolean; value?: T } = { done: false };
  void p.then((value) => (state = { done: true, value }));
  await new Promise((resolve) => setImmediate(resolve));
  return state;
}

describe('replica reads: the safe time', () => {
  test('is the moment the round was SENT, not when it was answered or applied', async () => {
    const f = new Fixture();
    const waiting = f.reads.wait(boundedStaleness(f.now(), 100), FAR);
    assert.equal(f.sent.length, 1, 'no safe time yet: a round is sent');
    const sentAt = f.ms;
    f.ms += 5_000; // a slow answer: the leader's commit covers nothing acknowledged after the send
    f.answer(f.sent[0], 42);
    f.reads.release(41);
    assert.equal((await settled(waiting)).done, false, 'not before the read index is applied');
    f.reads.release(42);
    assert.deepEqual(await settled(waiting), { done: true, value: null });
    assert.equal(f.reads.safeTimeMs, sentAt);
    // So a read with a 100 ms bound arriving now (5 s after the send) can't use it.
    void f.reads.wait(boundedStaleness(f.now(), 100), FAR);
    assert.equal(f.sent.length, 2, 'the safe time is too old for this bound');
  });

  test('a stale read within the bound is served at once, with no message', async () => {
    const f = new Fixture();
    void f.reads.wait(linearizable(f.now()), FAR);
    f.answer(f.sent[0], 7);
    f.reads.release(7);
    f.ms += 300;
    assert.deepEqual(await settled(f.reads.wait(boundedStaleness(f.now(), 300), FAR)), { done: true, value: null });
    assert.equal(f.sent.length, 1, 'served from the safe time alone');
    f.ms += 1;
    void f.reads.wait(boundedStaleness(f.now(), 300), FAR);
    assert.equal(f.sent.length, 2, '301 ms is past a 300 ms bound');
  });

  test('a linearizable read needs a round sent after it arrived, even within one clock reading', async () => {
    const f = new Fixture();
    void f.reads.wait(boundedStaleness(f.now(), 0), FAR); // round 1, at ms 1000
    const arrival = f.now(); // the same reading, a later event
    const read = f.reads.wait(linearizable(arrival), FAR);
    assert.equal(f.sent.length, 2, 'round 1 was sent before the read arrived: it proves nothing for it');
    f.answer(f.sent[0], 3);
    f.reads.release(3);
    assert.equal((await settled(read)).done, false);
    f.answer(f.sent[1], 4);
    f.reads.release(4);
    assert.deepEqual(await settled(read), { done: true, value: null });
  });

  test('reads join a round that covers them instead of sending their own', () => {
    const f = new Fixture();
    void f.reads.wait(boundedStaleness(f.now(), 50), FAR);
    f.ms += 40;
    void f.reads.wait(boundedStaleness(f.now(), 50), FAR);
    assert.equal(f.sent.length, 1, 'a round sent 40 ms ago covers a 50 ms bound');
    f.ms += 20;
    void f.reads.wait(boundedStaleness(f.now(), 50), FAR);
    assert.equal(f.sent.length, 2, 'but not 60 ms later');
    assert.equal(f.reads.waiting, 3);
  });

  test('a read served at once refreshes an ageing safe time in the background, one round at a time', () => {
    const f = new Fixture();
    void f.reads.wait(linearizable(f.now()), FAR);
    f.answer(f.sent[0], 1);
    f.reads.release(1);
    const bound = 1_000;
    const refresh = bound * limits.staleReadRefreshFraction;
    f.ms += refresh;
    void f.reads.wait(boundedStaleness(f.now(), bound), FAR, refresh);
    assert.equal(f.sent.length, 1, 'still young');
    f.ms += 1;
    void f.reads.wait(boundedStaleness(f.now(), bound), FAR, refresh);
    void f.reads.wait(boundedStaleness(f.now(), bound), FAR, refresh);
    assert.equal(f.sent.length, 2, 'one background round');
    assert.equal(f.reads.waiting, 0, 'nobody waits for it');
  });
});

describe("replica reads: the leader's lease", () => {
  test('a linearizable read is served at once when the lease index is applied: no round, no cycle', async () => {
    const f = new Fixture();
    f.leaseIndex = 7;
    f.applied = 7;
    for (let i = 0; i < 3; i++) {
      f.ms += 1;
      assert.equal(await f.reads.wait(linearizable(f.now()), FAR), null);
    }
    assert.deepEqual(f.sent, []);
    assert.equal(f.cyclesAsked, 0);
    assert.ok(f.reads.safeTimeMs >= f.ms, 'the safe time is the moment the lease was checked');
  });

  test('a lease index above the applied one: the read waits for the apply, with no round', async () => {
    const f = new Fixture();
    f.leaseIndex = 9;
    f.applied = 8;
    const waiting = f.reads.wait(linearizable(f.now()), FAR);
    const joining = f.reads.wait(linearizable(f.now()), FAR);
    assert.deepEqual(f.sent, [], 'the lease answered both (the second arrived later: its own lease check)');
    assert.equal(f.cyclesAsked, 2, 'a ready cycle applies the committed entries');
    f.reads.release(8);
    assert.equal((await settled(waiting)).done, false, 'not before the lease index is applied');
    f.applied = 9;
    f.reads.release(9);
    assert.deepEqual(await settled(waiting), { done: true, value: null });
    assert.deepEqual(await settled(joining), { done: true, value: null });
    assert.deepEqual(f.sent, []);
  });

  test('without a lease (void, expired, a follower) the read takes a round', async () => {
    const f = new Fixture();
    f.leaseIndex = 3;
    f.applied = 3;
    assert.equal(await f.reads.wait(linearizable(f.now()), FAR), null);
    f.leaseIndex = undefined;
    const waiting = f.reads.wait(linearizable(f.now()), FAR);
    assert.equal(f.sent.length, 1, 'a read arriving after the lease moment needs a round of its own');
    f.answer(f.sent[0], 3);
    f.reads.release(3);
    assert.deepEqual(await settled(waiting), { done: true, value: null });
  });
});

describe('replica reads: lost rounds and bounds', () => {
  test('no leader known: NotLeader at once', async () => {
    const f = new Fixture();
    f.leader = 0;
    assert.deepEqual(await settled(f.reads.wait(boundedStaleness(f.now(), 10), FAR)), { done: true, value: NOT_LEADER });
    assert.equal(f.sent.length, 0);
  });

  test('a round sent to a former leader is sent again to the new one; with no leader, NotLeader', async () => {
    const f = new Fixture();
    const first = f.reads.wait(linearizable(f.now()), FAR);
    f.ms += 50;
    f.term = 6;
    f.leader = 3;
    f.reads.release(0);
    assert.equal(f.sent.length, 2, 'resent after the leader changed');
    const resentAt = f.ms;
    f.answer(f.sent[0], 9); // a late answer to the lost round: unknown context now
    f.reads.release(9);
    assert.equal((await settled(first)).done, false, 'the late answer is ignored');
    f.answer(f.sent[1], 9);
    f.reads.release(9);
    assert.deepEqual(await settled(first), { done: true, value: null });
    assert.equal(f.reads.safeTimeMs, resentAt, 'stamped when resent (sound either way; fresher)');
    const second = f.reads.wait(linearizable(f.now()), FAR);
    f.leader = 0;
    f.reads.release(9);
    assert.deepEqual(await settled(second), { done: true, value: NOT_LEADER });
  });

  test('an answered round is kept across a leader change: it only waits for the apply', async () => {
    const f = new Fixture();
    const read = f.reads.wait(linearizable(f.now()), FAR);
    f.answer(f.sent[0], 9);
    f.leader = 0;
    f.reads.release(8);
    assert.equal((await settled(read)).done, false);
    f.reads.release(9);
    assert.deepEqual(await settled(read), { done: true, value: null });
  });

  test('a round unanswered for readIndexRetryMs is sent again; expired reads are forgotten', async () => {
    const f = new Fixture();
    const read = f.reads.wait(linearizable(f.now()), f.ms + 3 * limits.readIndexRetryMs);
    f.ms += limits.readIndexRetryMs - 1;
    f.reads.release(0);
    assert.equal(f.sent.length, 1);
    f.ms += 1;
    f.reads.release(0);
    assert.equal(f.sent.length, 2, 'presumed dropped');
    f.ms += 3 * limits.readIndexRetryMs;
    f.reads.release(0);
    assert.deepEqual(await settled(read), { done: true, value: { code: 'FLOTILLA_TIMEOUT' } });
    assert.equal(f.reads.waiting, 0);
  });

  test('ServerBusy past pendingReadsPerRegionMax waiting reads', async () => {
    const f = new Fixture();
    const arrival = f.now();
    for (let i = 0; i < limits.pendingReadsPerRegionMax; i++) void f.reads.wait(linearizable(arrival), FAR);
    assert.equal(f.sent.length, 1, 'one round serves a whole request');
    assert.deepEqual(await settled(f.reads.wait(linearizable(arrival), FAR)), { done: true, value: { code: 'FLOTILLA_SERVER_BUSY', retryAfterMs: 0 } });
  });

  test('failAll answers every waiting read', async () => {
    const f = new Fixture();
    const read = f.reads.wait(linearizable(f.now()), FAR);
    const gone: KvError = { code: 'FLOTILLA_REGION_NOT_FOUND', regionId: 1 };
    f.reads.failAll(gone);
    assert.deepEqual(await settled(read), { done: true, value: gone });
  });
});
