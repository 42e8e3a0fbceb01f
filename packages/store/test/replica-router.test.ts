/**
 * ReplicaRouter (replica-router.ts): which inbound messages create a replica here, which are
 * dropped, and the bound on the tombstones that keep removed replicas removed.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SeededRandom, message, type Message } from '@flotilla/raft';
import { MemoryLogEngine } from '@flotilla/storage';
import { limits } from '../src/constants.ts';
import type { Peer } from '../src/peer.ts';
import { ReplicaRouter } from '../src/replica-router.ts';

const STORE = 3;
const FROM_STORE = 1;

function router(): { router: ReplicaRouter; dirty: Peer[]; open: { accepting: boolean } } {
  const dirty: Peer[] = [];
  const open = { accepting: true };
  const r = new ReplicaRouter({
    storeId: STORE,
    log: new MemoryLogEngine(),
    random: new SeededRandom(1),
    hibernateAfterTicks: 20,
    markDirty: (peer) => dirty.push(peer),
    accepting: () => open.accepting,
  });
  return { router: r, dirty, open };
}

/** A message from peer 11 (store 1), the leader in term 2, to peer `to` here. */
const fromLeader = (type: Message['type'], to = 13, term = 2): Message => message({ type, from: 11, to, term, commit: 0 });

describe('ReplicaRouter', () => {
  test("a leader's first message creates a placeholder that knows the sender's store", () => {
    const { router: r, dirty } = router();
    r.route(FROM_STORE, 7, fromLeader('heartbeat'));
    const peer = r.get(7);
    assert.ok(peer, 'a replica of region 7 exists');
    assert.equal(peer.placeholder, true);
    assert.equal(peer.peerId, 13);
    assert.equal(peer.storeOf(11), FROM_STORE);
    assert.equal(peer.node.status().term, 2, 'the message was stepped into the new group');
    assert.ok(dirty.includes(peer), 'the host was told the replica has work');
  });

  test('messages that cannot come from a leader, of term 0, or after close create nothing', () => {
    const { router: r, open } = router();
    for (const type of ['appendResponse', 'vote', 'preVote', 'heartbeatResponse'] as const) r.route(FROM_STORE, 7, fromLeader(type));
    r.route(FROM_STORE, 7, fromLeader('append', 13, 0));
    assert.equal(r.size, 0);
    open.accepting = false;
    r.route(FROM_STORE, 7, fromLeader('append'));
    assert.equal(r.size, 0, 'a closed host creates no replica');
  });

  test('a tombstone keeps the removed replica and older ones removed, not a newer one', () => {
    const { router: r } = router();
    r.route(FROM_STORE, 7, fromLeader('append', 13));
    r.remove(r.get(7)!);
    assert.equal(r.get(7), undefined);
    r.route(FROM_STORE, 7, fromLeader('append', 13));
    r.route(FROM_STORE, 7, fromLeader('append', 12));
    assert.equal(r.size, 0, 'messages to the removed peer id (or a lower one) are stale');
    r.route(FROM_STORE, 7, fromLeader('append', 14));
    assert.equal(r.get(7)?.peerId, 14, 'a replica added again gets a new peer id and is created');
  });

  test("a split child's messages are dropped while its founding write runs", async () => {
    const { router: r } = router();
    await r.whileFounding(9, async () => {
      r.route(FROM_STORE, 9, fromLeader('append'));
      assert.equal(r.get(9), undefined);
    });
    r.route(FROM_STORE, 9, fromLeader('append'));
    assert.ok(r.get(9), 'after the write, messages create the replica again');
  });

  test('a detached placeholder is no longer current; ids page in ascending order', () => {
    const { router: r } = router();
    for (const id of [30, 10, 20]) r.route(FROM_STORE, id, fromLeader('heartbeat'));
    const placeholder = r.get(20)!;
    assert.equal(r.detach(20), placeholder);
    assert.equal(r.isCurrent(placeholder), false);
    assert.deepEqual(r.ids(0, 10), [10, 30]);
    assert.deepEqual(r.ids(10, 1), [30]);
    assert.deepEqual(r.counts(), { leaders: 0, hibernating: 0, withoutLeader: 0, merging: 0 }, 'placeholders are not counted');
  });

  test('tombstones are bounded: the oldest is forgotten', () => {
    const { router: r } = router();
    for (let id = 1; id <= limits.tombstonesMax + 1; id++) r.rememberTombstone(id, 13);
    r.route(FROM_STORE, 1, fromLeader('append', 13));
    assert.ok(r.get(1), 'the oldest tombstone was forgotten');
    r.route(FROM_STORE, 2, fromLeader('append', 13));
    assert.equal(r.get(2), undefined, 'the next one is still there');
  });
});
