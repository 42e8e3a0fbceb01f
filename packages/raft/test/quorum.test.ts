import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { JointConfig, majorityCommittedIndex, majorityVoteResult } from '../src/quorum.ts';

const acked = (m: Record<number, number>) => (id: number): number | undefined => m[id];
const votes = (m: Record<number, boolean>): Map<number, boolean> => new Map(Object.entries(m).map(([k, v]) => [Number(k), v]));

describe('majorityCommittedIndex', () => {
  test('an empty configuration is neutral (commits everything)', () => {
    assert.equal(majorityCommittedIndex(new Set(), acked({})), Number.POSITIVE_INFINITY);
  });

  test('single voter commits what it acked; unknown counts as 0', () => {
    assert.equal(majorityCommittedIndex(new Set([1]), acked({ 1: 7 })), 7);
    assert.equal(majorityCommittedIndex(new Set([1]), acked({})), 0);
  });

  test('odd sizes: the median acknowledgement', () => {
    assert.equal(majorityCommittedIndex(new Set([1, 2, 3]), acked({ 1: 10, 2: 8, 3: 3 })), 8);
    assert.equal(majorityCommittedIndex(new Set([1, 2, 3]), acked({ 1: 10 })), 0);
    assert.equal(majorityCommittedIndex(new Set([1, 2, 3]), acked({ 1: 10, 3: 4 })), 4);
    assert.equal(majorityCommittedIndex(new Set([1, 2, 3, 4, 5]), acked({ 1: 9, 2: 1, 3: 7, 4: 2, 5: 5 })), 5);
  });

  test('three voters (the fast path): the median of every combination of acks, unknown as 0', () => {
    const values = [undefined, 0, 1, 2, 3];
    for (const a of values) for (const b of values) for (const c of values) {
      const known = [a ?? 0, b ?? 0, c ?? 0].sort((x, y) => x - y);
      const m: Record<number, number> = {};
      if (a !== undefined) m[1] = a;
      if (b !== undefined) m[2] = b;
      if (c !== undefined) m[3] = c;
      assert.equal(majorityCommittedIndex(new Set([1, 2, 3]), acked(m)), known[1], `${a} ${b} ${c}`);
    }
  });

  test('even sizes need n/2 + 1 acknowledgements', () => {
    // 4 voters: quorum 3 -> third highest.
    assert.equal(majorityCommittedIndex(new Set([1, 2, 3, 4]), acked({ 1: 10, 2: 9, 3: 8, 4: 1 })), 8);
    assert.equal(majorityCommittedIndex(new Set([1, 2, 3, 4]), acked({ 1: 10, 2: 9 })), 0);
    // 2 voters: both.
    assert.equal(majorityCommittedIndex(new Set([1, 2]), acked({ 1: 10, 2: 3 })), 3);
    // 6 voters: quorum 4 -> fourth highest.
    assert.equal(majorityCommittedIndex(new Set([1, 2, 3, 4, 5, 6]), acked({ 1: 6, 2: 5, 3: 4, 4: 3, 5: 2, 6: 1 })), 3);
  });
});

describe('majorityVoteResult', () => {
  test('an empty configuration wins', () => {
    assert.equal(majorityVoteResult(new Set(), votes({})), 'won');
  });

  test('odd sizes: won, lost, pending', () => {
    const voters = new Set([1, 2, 3]);
    assert.equal(majorityVoteResult(voters, votes({})), 'pending');
    assert.equal(majorityVoteResult(voters, votes({ 1: true })), 'pending');
    assert.equal(majorityVoteResult(voters, votes({ 1: true, 2: true })), 'won');
    assert.equal(majorityVoteResult(voters, votes({ 1: true, 2: false })), 'pending');
    assert.equal(majorityVoteResult(voters, votes({ 1: true, 2: false, 3: false })), 'lost');
    assert.equal(majorityVoteResult(voters, votes({ 2: false, 3: false })), 'lost');
  });

  test('even sizes: a tie is lost, votes of non-members are ignored', () => {
    const voters = new Set([1, 2, 3, 4]);
    assert.equal(majorityVoteResult(voters, votes({ 1: true, 2: true })), 'pending');
    assert.equal(majorityVoteResult(voters, votes({ 1: true, 2: true, 3: false, 4: false })), 'lost');
    assert.equal(majorityVoteResult(voters, votes({ 1: true, 2: true, 3: true })), 'won');
    assert.equal(majorityVoteResult(voters, votes({ 1: true, 2: true, 9: true, 8: true })), 'pending');
  });
});

describe('JointConfig', () => {
  test('a non-joint config behaves like its incoming majority', () => {
    const c = new JointConfig(new Set([1, 2, 3]), new Set());
    assert.equal(c.isJoint, false);
    assert.equal(c.committedIndex(acked({ 1: 5, 2: 4, 3: 1 })), 4);
    assert.equal(c.voteResult(votes({ 1: true, 2: true })), 'won');
    assert.equal(c.voteResult(votes({ 1: false, 2: false })), 'lost');
    assert.deepEqual([...c.ids()].sort(), [1, 2, 3]);
  });

  test('committed index is the minimum of both majorities', () => {
    const c = new JointConfig(new Set([1, 2, 3]), new Set([3, 4, 5]));
    assert.equal(c.isJoint, true);
    assert.deepEqual([...c.ids()].sort(), [1, 2, 3, 4, 5]);
    // incoming majority: 9; outgoing {3:7,4:2,5:1} -> 2
    assert.equal(c.committedIndex(acked({ 1: 10, 2: 9, 3: 7, 4: 2, 5: 1 })), 2);
    // outgoing ahead of incoming
    assert.equal(c.committedIndex(acked({ 1: 1, 2: 2, 3: 3, 4: 8, 5: 9 })), 2);
    assert.equal(c.committedIndex(acked({ 1: 6, 2: 6, 3: 6, 4: 6, 5: 6 })), 6);
  });

  test('votes: both halves must win; either losing loses', () => {
    const c = new JointConfig(new Set([1, 2, 3]), new Set([3, 4, 5]));
    assert.equal(c.voteResult(votes({ 1: true, 2: true })), 'pending'); // incoming won, outgoing pending
    assert.equal(c.voteResult(votes({ 1: true, 2: true, 3: true, 4: true })), 'won');
    assert.equal(c.voteResult(votes({ 1: true, 2: true, 4: false, 5: false })), 'lost'); // outgoing lost
    assert.equal(c.voteResult(votes({ 1: false, 2: false, 4: true, 5: true })), 'lost'); // incoming lost
    assert.equal(c.voteResult(votes({ 3: true })), 'pending');
    assert.equal(c.voteResult(votes({ 1: false, 2: false, 4: false, 5: false })), 'lost');
  });
});
