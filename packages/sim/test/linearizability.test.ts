import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { kvModel } from '../src/kv-model.ts';
import type { KvOperation } from '../src/kv-model.ts';
import { checkLinearizability } from '../src/linearizability.ts';
import type { CheckOptions, LinearizabilityResult, Model, Operation } from '../src/linearizability.ts';

// Every test history finishes far below this; a timeout here would be a checker bug.
const GENEROUS: CheckOptions = { timeBudgetMs: 10_000 };

function check(history: readonly KvOperation[], options: CheckOptions = GENEROUS) {
  return checkLinearizability(kvModel, history, options);
}

function get(clientId: number, key: string, value: string | null, call: number, ret: number): KvOperation {
  return { clientId, input: { kind: 'get', key }, output: { kind: 'get', value }, call, ret };
}

function put(clientId: number, key: string, value: string, call: number, ret: number): KvOperation {
  return { clientId, input: { kind: 'put', key, value }, output: { kind: 'put' }, call, ret };
}

function cas(
  clientId: number,
  key: string,
  [expected, next]: [string | null, string],
  swapped: boolean,
  call: number,
  ret: number,
): KvOperation {
  return { clientId, input: { kind: 'cas', key, expected, next }, output: { kind: 'cas', swapped }, call, ret };
}

/** The same operation with its outcome lost; keeps `ret` (the time the client gave up), which must be ignored. */
function unknown(op: KvOperation): KvOperation {
  return { ...op, output: undefined };
}

function illegalKey(result: LinearizabilityResult<unknown, unknown>): string {
  assert.equal(result.verdict, 'illegal');
  assert.ok(result.verdict === 'illegal');
  return result.illegalPartition.key;
}

describe('linearizability: single register', () => {
  test('an empty history is linearizable', () => {
    const result = check([]);
    assert.equal(result.verdict, 'ok');
    assert.equal(result.partitionsTotal, 0);
  });

  test('a get of a never-written key sees null, nothing else', () => {
    assert.equal(check([get(1, 'x', null, 0, 1)]).verdict, 'ok');
    assert.equal(check([get(1, 'x', 'a', 0, 1)]).verdict, 'illegal');
  });

  test('sequential put then get of the put value', () => {
    assert.equal(check([put(1, 'x', 'a', 0, 10), get(2, 'x', 'a', 20, 30)]).verdict, 'ok');
  });

  test('a get that sees a stale value after a completed put is illegal', () => {
    const history = [put(1, 'x', 'a', 0, 10), put(1, 'x', 'b', 20, 30), get(2, 'x', 'a', 40, 50)];
    assert.equal(illegalKey(check(history)), 'x');
  });

  test('a get concurrent with a put may see the old or the new value', () => {
    assert.equal(check([put(1, 'x', 'a', 0, 10), get(2, 'x', null, 5, 15)]).verdict, 'ok');
    assert.equal(check([put(1, 'x', 'a', 0, 10), get(2, 'x', 'a', 5, 15)]).verdict, 'ok');
  });

  test('two sequential gets both concurrent with a put: new then old is illegal', () => {
    const write = put(1, 'x', 'a', 0, 100);
    assert.equal(check([write, get(2, 'x', 'a', 10, 20), get(3, 'x', null, 30, 40)]).verdict, 'illegal');
    assert.equal(check([write, get(2, 'x', null, 10, 20), get(3, 'x', 'a', 30, 40)]).verdict, 'ok');
  });

  test('a return and a call at the same instant overlap', () => {
    assert.equal(check([put(1, 'x', 'a', 0, 10), get(2, 'x', null, 10, 20)]).verdict, 'ok');
    assert.equal(check([put(1, 'x', 'a', 0, 10), get(2, 'x', null, 11, 20)]).verdict, 'illegal');
  });

  test('the illegal report names the longest linearizable prefix', () => {
    const history = [put(1, 'x', 'a', 0, 10), get(2, 'x', 'a', 20, 30), get(3, 'x', 'b', 40, 50)];
    const result = check(history);
    assert.ok(result.verdict === 'illegal');
    assert.deepEqual(result.illegalPartition.longestLinearizablePrefix, history.slice(0, 2));
    assert.deepEqual(result.illegalPartition.operations, history);
    assert.match(result.illegalPartition.description, /partition "x"/);
    assert.match(result.illegalPartition.description, /2\. client 2 \[20, 30\] get\("x"\) -> "a"/);
    assert.match(result.illegalPartition.description, /State after the prefix: "a"/);
    assert.match(result.illegalPartition.description, /- client 3 \[40, 50\] get\("x"\) -> "b"/);
  });
});

describe('linearizability: compare-and-set', () => {
  test('sequential swaps succeed and fail as the register dictates', () => {
    const history = [
      cas(1, 'x', [null, 'a'], true, 0, 10),
      cas(2, 'x', [null, 'b'], false, 20, 30),
      cas(1, 'x', ['a', 'c'], true, 40, 50),
      get(2, 'x', 'c', 60, 70),
    ];
    assert.equal(check(history).verdict, 'ok');
  });

  test('a cas that fails although the register held the expected value is illegal', () => {
    assert.equal(check([put(1, 'x', 'a', 0, 10), cas(2, 'x', ['a', 'b'], false, 20, 30)]).verdict, 'illegal');
  });

  test('a cas that succeeds although the register held another value is illegal', () => {
    assert.equal(check([put(1, 'x', 'a', 0, 10), cas(2, 'x', ['b', 'c'], true, 20, 30)]).verdict, 'illegal');
  });

  test('two concurrent cas from the same expected value cannot both succeed', () => {
    const history = [put(1, 'x', 'a', 0, 10), cas(2, 'x', ['a', 'b'], true, 20, 40), cas(3, 'x', ['a', 'c'], true, 25, 35)];
    assert.equal(check(history).verdict, 'illegal');
  });

  test('two concurrent cas from the same expected value: one succeeds, one fails', () => {
    const history = [
      put(1, 'x', 'a', 0, 10),
      cas(2, 'x', ['a', 'b'], true, 20, 40),
      cas(3, 'x', ['a', 'c'], false, 25, 35),
      get(1, 'x', 'b', 50, 60),
    ];
    assert.equal(check(history).verdict, 'ok');
  });
});

describe('linearizability: unknown outcomes', () => {
  test('an unknown put whose value is read later took effect', () => {
    const history = [unknown(put(1, 'x', 'a', 0, 5)), get(2, 'x', 'a', 50, 60)];
    assert.equal(check(history).verdict, 'ok');
  });

  test('an unknown put never observed may never have happened', () => {
    const history = [put(1, 'x', 'a', 0, 10), unknown(put(2, 'x', 'b', 5, 8)), get(3, 'x', 'a', 20, 30)];
    assert.equal(check(history).verdict, 'ok');
  });

  test('an unknown operation may take effect long after the client gave up', () => {
    // Were `ret` = 5 honoured, the put would precede the get at 10 and that get could not see null.
    const history = [unknown(put(1, 'x', 'a', 0, 5)), get(2, 'x', null, 10, 20), get(2, 'x', 'a', 30, 40)];
    assert.equal(check(history).verdict, 'ok');
  });

  test('an unknown put called after a read cannot explain that read', () => {
    const history = [put(1, 'x', 'a', 0, 10), get(2, 'x', 'b', 20, 30), unknown(put(3, 'x', 'b', 40, 50))];
    assert.equal(check(history).verdict, 'illegal');
  });

  test('an unknown put cannot explain reads of a value it did not write', () => {
    const write = put(1, 'x', 'a', 0, 100);
    const history = [write, unknown(put(4, 'x', 'c', 0, 1)), get(2, 'x', 'a', 10, 20), get(3, 'x', null, 30, 40)];
    assert.equal(check(history).verdict, 'illegal');
  });

  test('an unknown cas applies only if its expected value held', () => {
    const swap = unknown(cas(1, 'x', ['a', 'b'], true, 20, 25));
    assert.equal(check([put(1, 'x', 'a', 0, 10), swap, get(2, 'x', 'b', 30, 40)]).verdict, 'ok');
    assert.equal(check([put(1, 'x', 'z', 0, 10), swap, get(2, 'x', 'b', 30, 40)]).verdict, 'illegal');
  });

  test('a history of only unknown operations is linearizable', () => {
    const history = [unknown(put(1, 'x', 'a', 0, 1)), unknown(get(2, 'x', 'zzz', 0, 1))];
    assert.equal(check(history).verdict, 'ok');
  });
});

describe('linearizability: partitions and budget', () => {
  test('with many keys, the illegal one is found and reported by key', () => {
    const history = [
      put(1, 'a', '1', 0, 10),
      put(2, 'b', '1', 0, 10),
      get(1, 'a', '1', 20, 30),
      get(2, 'b', null, 20, 30),
      put(3, 'c', '1', 0, 10),
    ];
    const result = check(history);
    assert.equal(illegalKey(result), 'b');
    assert.ok(result.verdict === 'illegal');
    assert.deepEqual(result.illegalPartition.operations, [history[1], history[3]]);
    assert.equal(result.partitionsTotal, 3);
  });

  test('a spent step budget is a timeout, not a pass', () => {
    const history = generateHistory(new Prng(7), { keys: 1, clients: 10, ops: 200, unknownPercent: 0 });
    assert.equal(check(history).verdict, 'ok');
    const result = check(history, { timeBudgetMs: 10_000, stepsMax: 10 });
    assert.equal(result.verdict, 'timeout');
    assert.ok(result.verdict === 'timeout');
    assert.equal(result.timedOutKey, 'k0');
    assert.equal(result.steps, 10);
    assert.equal(result.partitionsChecked, 0);
  });

  test('a spent time budget is a timeout, not a pass', () => {
    const history = generateHistory(new Prng(7), { keys: 1, clients: 10, ops: 200, unknownPercent: 0 });
    assert.equal(check(history, { timeBudgetMs: 0 }).verdict, 'timeout');
    let nowMs = 0;
    const clock = () => (nowMs += 1_000);
    assert.equal(check(history, { timeBudgetMs: 500, now: clock }).verdict, 'timeout');
  });

  test('a model without partition checks the history whole', () => {
    const history: Operation<CounterInput, number>[] = [
      { clientId: 1, input: 'increment', output: 1, call: 0, ret: 10 },
      { clientId: 2, input: 'increment', output: 2, call: 5, ret: 15 },
      { clientId: 3, input: 'read', output: 2, call: 20, ret: 30 },
    ];
    assert.equal(checkLinearizability(counterModel, history, GENEROUS).verdict, 'ok');
    const stale = [...history, { clientId: 3, input: 'read' as const, output: 1, call: 40, ret: 50 }];
    const result = checkLinearizability(counterModel, stale, GENEROUS);
    assert.ok(result.verdict === 'illegal');
    assert.equal(result.illegalPartition.key, '*');
  });

  test('an unknown operation the model cannot apply anywhere is left out', () => {
    const history: Operation<CounterInput, number>[] = [
      { clientId: 1, input: 'decrement', output: undefined, call: 0, ret: 10 },
      { clientId: 2, input: 'read', output: 0, call: 20, ret: 30 },
    ];
    assert.equal(checkLinearizability(counterModel, history, GENEROUS).verdict, 'ok');
  });

  test('a malformed history is rejected, not judged', () => {
    assert.throws(() => check([put(1, 'x', 'a', 10, 5)]), /before its call/);
    assert.throws(() => check([put(1, 'x', 'a', 0, Infinity)]), /not finite/);
    const mismatched: KvOperation = { clientId: 1, input: { kind: 'get', key: 'x' }, output: { kind: 'put' }, call: 0, ret: 1 };
    assert.throws(() => check([mismatched]), /get operation has a put output/);
  });
});

describe('linearizability: generated histories', () => {
  test('histories of a real execution are linearizable; a read of a never-written value is not', () => {
    const rng = new Prng(0xf107);
    for (let seed = 0; seed < 300; seed++) {
      const history = generateHistory(rng, { keys: 3, clients: 5, ops: 30, unknownPercent: 10 });
      assert.equal(check(history).verdict, 'ok', `history ${seed} should be linearizable`);
      const reads = history.flatMap((op, index) => (op.input.kind === 'get' && op.output !== undefined ? [index] : []));
      if (reads.length === 0) continue;
      const mutated = history.slice();
      const index = reads[rng.int(reads.length)]!;
      const read = history[index]!;
      mutated[index] = { ...read, output: { kind: 'get', value: 'never-written' } };
      assert.equal(illegalKey(check(mutated)), read.input.key, `mutated history ${seed}`);
    }
  });

  test('1,000 operations over 50 keys, 10 clients per key', () => {
    const rng = new Prng(42);
    const history = Array.from({ length: 50 }, (_, key) =>
      generateHistory(rng, { keys: 1, clients: 10, ops: 20, unknownPercent: 5 }).map((op) => ({
        ...op,
        clientId: key * 10 + op.clientId,
        input: { ...op.input, key: `key-${key}` },
      })),
    ).flat();
    assert.equal(history.length, 1_000);
    const result = check(history);
    assert.equal(result.verdict, 'ok');
    assert.equal(result.partitionsChecked, 50);
  });
});

/** mulberry32: tiny, seeded, good enough to shuffle test histories. */
class Prng {
  private seed: number;

  constructor(seed: number) {
    this.seed = seed >>> 0;
  }

  /** Uniform in [0, bound). */
  int(bound: number): number {
    this.seed = (this.seed + 0x6d2b79f5) >>> 0;
    let t = this.seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * bound);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
}

interface GeneratorConfig {
  readonly keys: number;
  readonly clients: number;
  readonly ops: number;
  /** Share of operations whose outcome is lost; half of those never take effect. */
  readonly unknownPercent: number;
}

const VALUES = ['a', 'b', 'c'] as const;

/**
 * Runs operations one at a time against a real register map at strictly increasing instants
 * ("points"), then widens each into a random [call, ret] interval around its point. The point
 * order is a linearization, so the history is linearizable. Each client's operations are
 * sequential; intervals of different clients overlap freely.
 */
function generateHistory(rng: Prng, config: GeneratorConfig): KvOperation[] {
  const store = new Map<string, string | null>();
  const clientFreeAt = new Array<number>(config.clients).fill(-1);
  const history: KvOperation[] = [];
  let point = 0;
  for (let i = 0; i < config.ops; i++) {
    const clientId = rng.int(config.clients);
    point = Math.max(point + 1 + rng.int(3), clientFreeAt[clientId]! + 1);
    const call = Math.max(clientFreeAt[clientId]! + 1, point - rng.int(20));
    const ret = point + rng.int(20);
    clientFreeAt[clientId] = ret;
    const key = `k${rng.int(config.keys)}`;
    const lost = rng.int(100) < config.unknownPercent;
    const neverApplied = lost && rng.int(2) === 0;
    const op = randomOperation(rng, store, key, neverApplied);
    history.push({ clientId, call, ret, ...op, ...(lost ? { output: undefined } : {}) });
  }
  return history;
}

/** Draws an operation on `key` and applies it to `store` (unless it is never applied). */
function randomOperation(
  rng: Prng,
  store: Map<string, string | null>,
  key: string,
  neverApplied: boolean,
): Pick<KvOperation, 'input' | 'output'> {
  const current = store.get(key) ?? null;
  const apply = (value: string): void => {
    if (!neverApplied) store.set(key, value);
  };
  switch (rng.int(3)) {
    case 0:
      return { input: { kind: 'get', key }, output: { kind: 'get', value: current } };
    case 1: {
      const value = rng.pick(VALUES);
      apply(value);
      return { input: { kind: 'put', key, value }, output: { kind: 'put' } };
    }
    default: {
      const expected = rng.pick([null, ...VALUES]);
      const next = rng.pick(VALUES);
      const swapped = current === expected;
      if (swapped) apply(next);
      return { input: { kind: 'cas', key, expected, next }, output: { kind: 'cas', swapped } };
    }
  }
}

type CounterInput = 'increment' | 'decrement' | 'read';

/**
 * A counter whose updates return the new count: a model with numeric hashes and no partitions.
 * It refuses to go below zero whatever the output, unknown included: the checker must then
 * leave an unknown decrement out rather than force it into the linearization.
 */
const counterModel: Model<number, CounterInput, number> = {
  init: () => 0,
  step: (count, input, output) => {
    const after = input === 'increment' ? count + 1 : input === 'decrement' ? count - 1 : count;
    if (after < 0) return { ok: false, state: count };
    return { ok: output === undefined || output === after, state: after };
  },
  equal: (a, b) => a === b,
  hash: (count) => count,
};
