/**
 * The readiness gate of a restarted store (CatchUpGate): a replica counts as caught up once
 * its safe time reached the start; the gate starts one round at a time per replica, and two
 * bounds keep it from holding a store forever.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NO_NODE } from '@flotilla/raft';
import { CatchUpGate, type CatchUpRelease } from '../src/catch-up.ts';

const START_MS = 1_000;

/** A replica the test moves: its leader, its safe time, and the rounds the gate started. */
class FakeReplica {
  leader = 2;
  safeTimeMs = Number.NEGATIVE_INFINITY;
  rounds: ((ok: boolean) => void)[] = [];

  confirm(): Promise<boolean> {
    return new Promise((resolve) => this.rounds.push(resolve));
  }

  /** The round under way answers: caught up (the safe time moves past the start) or failed. */
  answer(ok: boolean): Promise<void> {
    if (ok) this.safeTimeMs = START_MS + 1;
    this.rounds.shift()!(ok);
    return Promise.resolve(); // the gate learns the outcome in a later microtask
  }
}

function setup(regions: readonly number[], bounds = { waitMaxMs: 600_000, leaderlessMaxMs: 30_000 }) {
  let nowMs = START_MS;
  const releases: CatchUpRelease[] = [];
  const replicas = new Map(regions.map((id) => [id, new FakeReplica()]));
  const replica = (id: number) => {
    const r = replicas.get(id);
    return r === undefined ? undefined : { leader: r.leader, safeTimeMs: r.safeTimeMs, confirm: () => r.confirm() };
  };
  const gate = new CatchUpGate(regions, replica, { ...bounds, startMs: START_MS, now: () => nowMs }, (release) => releases.push(release));
  return { releases, replicas, status: () => gate.status(), advance: (ms: number) => (nowMs += ms) };
}

describe('CatchUpGate', () => {
  it('waits until the replica applied everything committed before the start, one round at a time', async () => {
    const t = setup([7]);
    const replica = t.replicas.get(7)!;
    assert.deepEqual(t.status(), { caughtUp: false, waiting: 1, of: 1, example: 7 });
    assert.equal(replica.rounds.length, 1, 'the check started a round');
    t.status();
    assert.equal(replica.rounds.length, 1, 'no second round while one is under way');

    await replica.answer(false); // timed out, or no leader known yet
    assert.equal(t.status().caughtUp, false);
    assert.equal(replica.rounds.length, 1, 'a failed round is tried again at the next check');

    replica.safeTimeMs = START_MS - 1; // a round issued before the start does not count
    assert.equal(t.status().caughtUp, false);
    await replica.answer(true);
    assert.deepEqual(t.status(), { caughtUp: true });
    replica.safeTimeMs = Number.NEGATIVE_INFINITY;
    assert.deepEqual(t.status(), { caughtUp: true }, 'once open, the gate stays open');
    assert.deepEqual(t.releases, []);
  });

  it('counts the replicas still behind', async () => {
    const t = setup([1, 2, 3]);
    assert.deepEqual(t.status(), { caughtUp: false, waiting: 3, of: 3, example: 1 });
    await t.replicas.get(1)!.answer(true);
    await t.replicas.get(3)!.answer(true);
    assert.deepEqual(t.status(), { caughtUp: false, waiting: 1, of: 3, example: 2 });
  });

  it('stops waiting for a replica that knows no leader, and after the longest wait', () => {
    const t = setup([1, 2, 3], { waitMaxMs: 100_000, leaderlessMaxMs: 30_000 });
    t.replicas.get(1)!.leader = NO_NODE;
    t.replicas.get(2)!.leader = NO_NODE;
    t.status();
    t.advance(20_000);
    t.replicas.get(2)!.leader = 5; // region 2 finds its leader; leaderless time starts over
    t.status();
    t.advance(10_000);
    t.replicas.get(2)!.leader = NO_NODE;
    assert.deepEqual(t.status(), { caughtUp: false, waiting: 2, of: 3, example: 2 });
    assert.deepEqual(t.releases, [{ regionIds: [1], reason: 'noLeader' }], 'region 1 knew no leader for 30 s');

    t.advance(29_000);
    assert.equal(t.status().caughtUp, false, 'region 2 has been without a leader for 29 s only');
    t.advance(1_000);
    assert.deepEqual(t.status(), { caughtUp: false, waiting: 1, of: 3, example: 3 });
    assert.deepEqual(t.releases.at(-1), { regionIds: [2], reason: 'noLeader' });

    t.advance(39_000);
    assert.equal(t.status().caughtUp, false, '99 s after the start');
    t.advance(1_000);
    assert.deepEqual(t.status(), { caughtUp: true }, '100 s after the start');
    assert.deepEqual(t.releases.at(-1), { regionIds: [3], reason: 'waitMaxReached' });
  });

  it('does not wait for replicas that left the store, nor at all with a zero wait', () => {
    const t = setup([1, 2]);
    t.replicas.clear();
    assert.deepEqual(t.status(), { caughtUp: true });
    assert.deepEqual(setup([1], { waitMaxMs: 0, leaderlessMaxMs: 30_000 }).status(), { caughtUp: true });
    assert.deepEqual(setup([]).status(), { caughtUp: true });
  });
});
