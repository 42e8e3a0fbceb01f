import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TestCluster, bytes, text } from './cluster-harness.ts';

test('three nodes elect a leader and replicate proposals', () => {
  const c = new TestCluster([1, 2, 3]);
  const leader = c.electLeader();
  leader.node.propose([bytes('a'), bytes('b')]);
  c.heartbeatRound(leader.id);
  for (const tn of c.nodes.values()) assert.deepEqual(tn.applied.map(text), ['a', 'b']);
});
