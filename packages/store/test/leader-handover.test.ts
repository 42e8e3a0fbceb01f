import assert from 'node:assert/strict';
import { test } from 'node:test';
import { handOverLeaderships } from '../src/leader-handover.ts';
import type { Peer } from '../src/peer.ts';

/** A hibernated leader whose followers have not shown themselves active yet. */
function sleepingLeader(calls: string[]): Peer {
  const progress = new Map([
    [11, { isLearner: false, recentActive: true, match: 5 }],
    [12, { isLearner: false, recentActive: false, match: 5 }],
  ]);
  const node = {
    wake: () => calls.push('wake'),
    transferLeader: (to: number) => calls.push(`transfer ${to}`),
    status: () => ({ progress }),
  };
  return { regionId: 1, peerId: 11, isLeader: () => true, node } as unknown as Peer;
}

test('a hibernated leader woken for the hand-over is marked dirty at once, before any follower answered', async () => {
  const calls: string[] = [];
  const peer = sleepingLeader(calls);
  let rounds = 0;
  const left = await handOverLeaderships(
    {
      peers: () => [peer],
      markDirty: (p) => calls.push(p === peer ? 'markDirty' : 'markDirty of another peer'),
      // One round: the leader is woken, no follower is known to be active yet.
      closed: () => ++rounds >= 1,
    },
    1_000,
    5_000,
  );
  assert.equal(left, 1, 'still leading: no follower could take over yet');
  // Without the mark, its heartbeats (which find the active followers) would wait for a tick,
  // and the awake-only ticker (awake-groups.ts) would not tick it until its next sweep.
  assert.deepEqual(calls, ['wake', 'markDirty']);
});
