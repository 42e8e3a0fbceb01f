import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Entry, Ready, Snapshot } from '@flotilla/raft';
import { durableCount } from '../src/apply-stage.ts';

const entry = (index: number): Entry => ({ index, term: 2, type: 'normal', data: new Uint8Array([index]) });
const range = (from: number, to: number): Entry[] => Array.from({ length: to - from + 1 }, (_, i) => entry(from + i));

function ready(committed: Entry[], entries: Entry[], snapshot: Snapshot | null = null): Ready {
  return { softState: null, hardState: null, readStates: [], entries, snapshot, committedEntries: committed, messages: [], mustSync: entries.length > 0 };
}

describe('durableCount: the committed entries a cycle may apply while its own log write is in flight', () => {
  test('all of them when the Ready carries no new entries', () => {
    assert.equal(durableCount(ready(range(5, 8), [])), 4);
  });

  test('those below the first new entry: the rest are in this very write', () => {
    assert.equal(durableCount(ready(range(5, 8), range(9, 10))), 4);
    // A follower learns a commit index that covers entries it has not written yet.
    assert.equal(durableCount(ready(range(5, 8), range(7, 9))), 2);
    assert.equal(durableCount(ready(range(5, 8), range(5, 9))), 0);
  });

  test('none when the Ready installs a snapshot, and none when nothing is committed', () => {
    const snapshot: Snapshot = { metadata: { index: 4, term: 2, confState: { voters: [1], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false } }, data: new Uint8Array() };
    assert.equal(durableCount(ready(range(5, 6), [], snapshot)), 0);
    assert.equal(durableCount(ready([], range(5, 6))), 0);
  });
});
