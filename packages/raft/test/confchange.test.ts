import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  CONF_CHANGE_CHANGES_MAX,
  EMPTY_BYTES,
  decodeConfChange,
  encodeConfChange,
  isRaftError,
  type ConfChange,
  type ConfChangeSingle,
  type ConfState,
} from '@flotilla/raft';
import { Changer, changeNeedsJoint, isLeaveJoint, restoreConfig, type ChangeResult } from '../src/confchange.ts';
import { ProgressTracker, toConfState } from '../src/tracker.ts';

const LAST_INDEX = 10;
const tracker = new ProgressTracker(16, 0);
const newProgress = (next: number, learner: boolean) => tracker.newProgress(next, learner);

const cs = (fields: Partial<ConfState>): ConfState => ({ voters: [], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false, ...fields });
const add = (nodeId: number): ConfChangeSingle => ({ type: 'addNode', nodeId });
const remove = (nodeId: number): ConfChangeSingle => ({ type: 'removeNode', nodeId });
const learner = (nodeId: number): ConfChangeSingle => ({ type: 'addLearnerNode', nodeId });

function from(state: ConfState): Changer {
  const r = restoreConfig(newProgress, state, LAST_INDEX);
  return new Changer({ ...r, newProgress }, LAST_INDEX);
}
function changer(r: ChangeResult): Changer {
  return new Changer({ ...r, newProgress }, LAST_INDEX);
}
const rejected = (err: unknown): boolean => isRaftError(err, 'FLOTILLA_RAFT_CONF_CHANGE_REJECTED');

describe('Changer.simple', () => {
  test('adds a voter, a learner, removes a node', () => {
    let r = from(cs({ voters: [1, 2, 3] })).simple([add(4)]);
    assert.deepEqual(toConfState(r.config), cs({ voters: [1, 2, 3, 4] }));
    assert.equal(r.progress.get(4)?.next, LAST_INDEX, 'a new member probes from the last index');
    assert.equal(r.progress.get(4)?.isLearner, false);
    assert.equal(r.progress.get(4)?.recentActive, true);

    r = changer(r).simple([learner(5)]);
    assert.deepEqual(toConfState(r.config), cs({ voters: [1, 2, 3, 4], learners: [5] }));
    assert.equal(r.progress.get(5)?.isLearner, true);

    r = changer(r).simple([remove(2)]);
    assert.deepEqual(toConfState(r.config), cs({ voters: [1, 3, 4], learners: [5] }));
    assert.equal(r.progress.has(2), false);

    r = changer(r).simple([add(5)]); // promote the learner
    assert.deepEqual(toConfState(r.config), cs({ voters: [1, 3, 4, 5] }));
    assert.equal(r.progress.get(5)?.isLearner, false);

    r = changer(r).simple([learner(4)]); // demote a voter (allowed outside joint)
    assert.deepEqual(toConfState(r.config), cs({ voters: [1, 3, 5], learners: [4] }));
    assert.equal(r.progress.get(4)?.isLearner, true);
  });

  test('does not mutate the base configuration', () => {
    const base = restoreConfig(newProgress, cs({ voters: [1, 2, 3], learners: [4] }), LAST_INDEX);
    const before = toConfState(base.config);
    changer(base).simple([add(4)]);
    assert.deepEqual(toConfState(base.config), before);
    assert.equal(base.progress.get(4)?.isLearner, true);
  });

  test('refuses two voter changes without joint consensus', () => {
    const c = from(cs({ voters: [1, 2, 3] }));
    assert.throws(() => c.simple([add(4), add(5)]), rejected);
    assert.throws(() => c.simple([add(4), remove(1)]), rejected);
    assert.throws(() => c.simple([remove(1), remove(2)]), rejected);
    // One voter change plus learner changes is fine.
    const r = c.simple([add(4), learner(5), learner(6)]);
    assert.deepEqual(toConfState(r.config), cs({ voters: [1, 2, 3, 4], learners: [5, 6] }));
  });

  test('refuses removing the last voter, and any simple change while joint', () => {
    assert.throws(() => from(cs({ voters: [1] })).simple([remove(1)]), rejected);
    const joint = from(cs({ voters: [1, 2, 3] })).enterJoint(true, [add(4)]);
    assert.throws(() => changer(joint).simple([add(5)]), rejected);
  });

  test('removing an unknown node and a zero id are no-ops', () => {
    const r = from(cs({ voters: [1, 2, 3] })).simple([remove(9), add(0)]);
    assert.deepEqual(toConfState(r.config), cs({ voters: [1, 2, 3] }));
  });
});

describe('Changer.enterJoint / leaveJoint', () => {
  test('enter joint: outgoing = old voters, incoming = new; leave joint drops the old', () => {
    const joint = from(cs({ voters: [1, 2, 3] })).enterJoint(true, [add(4), remove(3)]);
    assert.deepEqual(toConfState(joint.config), cs({ voters: [1, 2, 4], votersOutgoing: [1, 2, 3], autoLeave: true }));
    assert.equal(joint.config.voters.isJoint, true);
    assert.equal(joint.progress.has(3), true, 'an outgoing voter keeps its progress while joint');

    const left = changer(joint).leaveJoint();
    assert.deepEqual(toConfState(left.config), cs({ voters: [1, 2, 4] }));
    assert.equal(left.progress.has(3), false);
    assert.deepEqual([...left.progress.keys()].sort(), [1, 2, 4]);
  });

  test('explicit transitions keep autoLeave off', () => {
    const joint = from(cs({ voters: [1, 2, 3] })).enterJoint(false, [add(4)]);
    assert.equal(joint.config.autoLeave, false);
    assert.deepEqual(toConfState(joint.config).votersOutgoing, [1, 2, 3]);
  });

  test('refuses entering twice, leaving when not joint, and emptying the incoming config', () => {
    const base = from(cs({ voters: [1, 2, 3] }));
    const joint = base.enterJoint(true, [add(4)]);
    assert.throws(() => changer(joint).enterJoint(true, [add(5)]), rejected);
    assert.throws(() => base.leaveJoint(), rejected);
    assert.throws(() => base.enterJoint(true, [remove(1), remove(2), remove(3)]), rejected);
  });

  test('demoting an outgoing voter goes through learnersNext', () => {
    const joint = from(cs({ voters: [1, 2, 3] })).enterJoint(true, [learner(3), add(4)]);
    assert.deepEqual(toConfState(joint.config), cs({ voters: [1, 2, 4], votersOutgoing: [1, 2, 3], learnersNext: [3], autoLeave: true }));
    assert.equal(joint.progress.get(3)?.isLearner, false, 'still votes in the outgoing config');

    const left = changer(joint).leaveJoint();
    assert.deepEqual(toConfState(left.config), cs({ voters: [1, 2, 4], learners: [3] }));
    assert.equal(left.progress.get(3)?.isLearner, true);
  });

  test('re-adding a learnersNext node as a voter clears it from learnersNext', () => {
    const joint = from(cs({ voters: [1, 2, 3] })).enterJoint(true, [learner(3), add(3)]);
    assert.deepEqual(toConfState(joint.config), cs({ voters: [1, 2, 3], votersOutgoing: [1, 2, 3], autoLeave: true }));
  });
});

describe('restoreConfig', () => {
  const cases: [string, ConfState][] = [
    ['empty', cs({})],
    ['single voter', cs({ voters: [1] })],
    ['voters and learners', cs({ voters: [1, 2, 3], learners: [4, 5] })],
    ['joint', cs({ voters: [1, 2, 4], votersOutgoing: [1, 2, 3], autoLeave: true })],
    ['joint, explicit', cs({ voters: [4, 5, 6], votersOutgoing: [1, 2, 3] })],
    ['joint with learners and learnersNext', cs({ voters: [1, 2, 4], votersOutgoing: [1, 2, 3], learners: [5], learnersNext: [3], autoLeave: true })],
  ];
  for (const [name, state] of cases) {
    test(`round-trips a ConfState: ${name}`, () => {
      const r = restoreConfig(newProgress, state, LAST_INDEX);
      assert.deepEqual(toConfState(r.config), state);
      for (const id of [...state.voters, ...state.votersOutgoing, ...state.learners, ...state.learnersNext]) {
        assert.ok(r.progress.has(id), `progress for ${id}`);
      }
      for (const id of state.learners) assert.equal(r.progress.get(id)?.isLearner, true);
      for (const id of state.learnersNext) assert.equal(r.progress.get(id)?.isLearner, false);
    });
  }
});

describe('helpers', () => {
  const cc = (transition: ConfChange['transition'], changes: ConfChangeSingle[]): ConfChange => ({ transition, changes, context: EMPTY_BYTES });
  test('changeNeedsJoint / isLeaveJoint', () => {
    assert.equal(changeNeedsJoint(cc('auto', [add(4)])), false);
    assert.equal(changeNeedsJoint(cc('auto', [add(4), add(5)])), true);
    assert.equal(changeNeedsJoint(cc('implicit', [add(4)])), true);
    assert.equal(changeNeedsJoint(cc('explicit', [add(4)])), true);
    assert.equal(changeNeedsJoint(cc('explicit', [])), false);
    assert.equal(isLeaveJoint(cc('auto', [])), true);
    assert.equal(isLeaveJoint(cc('auto', [add(1)])), false);
  });
});

describe('conf change codec', () => {
  test('encode/decode round trip', () => {
    const samples: ConfChange[] = [
      { transition: 'auto', changes: [], context: EMPTY_BYTES },
      { transition: 'implicit', changes: [add(1), remove(2), learner(3)], context: new Uint8Array([9, 8, 7]) },
      { transition: 'explicit', changes: [add(2 ** 53 - 1)], context: new TextEncoder().encode('ctx') },
      { transition: 'auto', changes: Array.from({ length: CONF_CHANGE_CHANGES_MAX }, (_, i) => add(i + 1)), context: EMPTY_BYTES },
    ];
    for (const sample of samples) {
      const decoded = decodeConfChange(encodeConfChange(sample));
      assert.equal(decoded.transition, sample.transition);
      assert.deepEqual(decoded.changes, sample.changes);
      assert.deepEqual([...decoded.context], [...sample.context]);
    }
  });

  test('decodes from a view into a larger buffer (non-zero byteOffset)', () => {
    const encoded = encodeConfChange({ transition: 'implicit', changes: [add(7)], context: new Uint8Array([1]) });
    const big = new Uint8Array(encoded.byteLength + 10);
    big.set(encoded, 5);
    const decoded = decodeConfChange(big.subarray(5, 5 + encoded.byteLength));
    assert.deepEqual(decoded.changes, [add(7)]);
    assert.deepEqual([...decoded.context], [1]);
  });

  test('too many changes are refused when encoding', () => {
    const changes = Array.from({ length: CONF_CHANGE_CHANGES_MAX + 1 }, (_, i) => add(i + 1));
    assert.throws(() => encodeConfChange({ transition: 'auto', changes, context: EMPTY_BYTES }), rejected);
  });

  test('malformed input is FLOTILLA_RAFT_CONF_CHANGE_REJECTED', () => {
    const good = encodeConfChange({ transition: 'implicit', changes: [add(1), add(2)], context: new Uint8Array([1, 2]) });
    const mutate = (f: (b: Uint8Array, v: DataView) => void): Uint8Array => {
      const b = good.slice();
      f(b, new DataView(b.buffer));
      return b;
    };
    const malformed: [string, Uint8Array][] = [
      ['empty', new Uint8Array(0)],
      ['too short', good.slice(0, 7)],
      ['bad version', mutate((b) => (b[0] = 2))],
      ['bad transition', mutate((b) => (b[1] = 3))],
      ['too many changes', mutate((_, v) => v.setUint16(2, CONF_CHANGE_CHANGES_MAX + 1, true))],
      ['truncated changes', mutate((_, v) => v.setUint16(2, 5, true))],
      ['bad change type', mutate((b) => (b[4] = 3))],
      ['fractional node id', mutate((_, v) => v.setFloat64(5, 1.5, true))],
      ['negative node id', mutate((_, v) => v.setFloat64(5, -1, true))],
      ['NaN node id', mutate((_, v) => v.setFloat64(5, Number.NaN, true))],
      ['context length too long', mutate((_, v) => v.setUint32(22, 3, true))],
      ['trailing bytes', new Uint8Array([...good, 0])],
    ];
    assert.deepEqual([...decodeConfChange(good).context], [1, 2], 'the unmutated sample is valid');
    for (const [name, input] of malformed) {
      assert.throws(() => decodeConfChange(input), rejected, name);
    }
  });
});
