/**
 * The invariant checker's own rules, on fake hosts: a false alarm here would send people
 * hunting a Raft bug that is not there.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ConfState, Ready, StateRole } from '@flotilla/raft';
import { InvariantChecker } from '../src/checker.ts';
import type { SimHost } from '../src/host.ts';

const CONF: ConfState = { voters: [1, 2, 3], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };

/** Just what onPersisted reads of a host with an empty log and nothing new in its Ready. */
function host(id: number, role: StateRole, term: number): SimHost {
  const live = { firstIndex: () => 1, lastIndex: () => 0 };
  return { id, node: { status: () => ({ id, role, term, commit: 0, lastIndex: 0 }) }, disk: { live } } as unknown as SimHost;
}

function leaderReady(lead: number): Ready {
  return { softState: { lead, role: 'leader' }, entries: [], committedEntries: [], messages: [], readStates: [], mustSync: false } as unknown as Ready;
}

test("a leader's Ready persisted after its node stepped down counts for the term it was made in", () => {
  const checker = new InvariantChecker(() => new Map(), CONF);
  const rules = (): string[] => checker.violations.map((v) => v.rule);
  // Node 1 led term 20; its Ready's fsync ended after it heard of term 21 (now a follower).
  checker.onPersisted(host(1, 'follower', 21), leaderReady(1), 20);
  checker.onPersisted(host(2, 'leader', 21), leaderReady(2), 21);
  assert.deepEqual(rules(), [], 'one leader per term');
  // The rule still bites: a second leader of term 21.
  checker.onPersisted(host(3, 'leader', 21), leaderReady(3), 21);
  assert.deepEqual(rules(), ['election safety']);
});

test('a snapshot install is judged by the configuration the node ran when it made the Ready, not by a newer one it stepped since', () => {
  const checker = new InvariantChecker(() => new Map(), CONF);
  const rules = (): string[] => checker.violations.map((v) => v.rule);
  const learnerAdded: ConfState = { ...CONF, learners: [4] };
  // Seed 126 with 3 nodes, once paused hosts saw their fsyncs complete only on resume: the
  // node stepped a newer snapshot (learner 4 added) before it finished installing this one.
  const newer = { node: { confState: () => learnerAdded } } as unknown as SimHost;
  const snapshot = { data: new Uint8Array(), metadata: { index: 10, term: 2, confState: CONF } };
  checker.onSnapshotInstalled(newer, snapshot, CONF);
  assert.deepEqual(rules(), []);
  // The rule still bites: a node that did not adopt the snapshot's configuration.
  checker.onSnapshotInstalled(newer, snapshot, learnerAdded);
  assert.deepEqual(rules(), ['snapshot configuration']);
});
