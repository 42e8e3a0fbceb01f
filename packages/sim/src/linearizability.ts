/**
 * Linearizability checker: the depth-first search of Wing & Gong with Lowe's memoization of
 * visited configurations, the algorithm Porcupine uses.
 *
 * A history is checked one partition at a time. When the model's objects are independent (the
 * keys of a KV store), a history is linearizable iff each partition is (P-compositionality), and
 * a search over 20 operations is exponentially cheaper than one over 1,000.
 *
 * Time. Call and return events are ordered by timestamp. At equal timestamps calls come before
 * returns, so an operation that returns at t and one called at t count as concurrent. This is
 * the permissive choice: the checker never reports a violation that a finer clock could explain.
 *
 * Unknown outcomes. An operation whose `output` is undefined (timed out, connection lost) may
 * have taken effect at any time after its call, or never. Its return time is taken as +Infinity,
 * so it constrains no other operation, and the search stops once every operation with a known
 * outcome is linearized: unknown ones left over are the ones that never took effect. The model's
 * `step` receives `undefined` as output for them and must accept it.
 *
 * Verdicts. 'timeout' means the budget ran out before a verdict: it is never a pass.
 */

/** How many search steps pass between two reads of the clock: reading it costs more than a step. */
export const CLOCK_CHECK_INTERVAL_STEPS = 1024;

export interface Operation<Input, Output> {
  readonly clientId: number;
  readonly input: Input;
  /** `undefined`: the outcome is unknown; the operation may or may not have taken effect. */
  readonly output: Output | undefined;
  /** Virtual time the request was sent. */
  readonly call: number;
  /** Virtual time the response arrived. Ignored when `output` is undefined (taken as +Infinity). */
  readonly ret: number;
}

export interface StepResult<State> {
  /** False when `output` cannot be what the operation returned in the state it was applied to. */
  readonly ok: boolean;
  readonly state: State;
}

/** A part of a history that can be checked on its own, e.g. every operation on one key. */
export interface Partition<Input, Output> {
  readonly key: string;
  readonly operations: readonly Operation<Input, Output>[];
}

export interface Model<State, Input, Output> {
  init(): State;
  /**
   * Applies `input` to `state` and says whether `output` is consistent with it. An undefined
   * `output` is an unknown outcome: accept it, and return the state the operation would produce.
   * Must not mutate `state`: the search keeps earlier states to backtrack to.
   */
  step(state: State, input: Input, output: Output | undefined): StepResult<State>;
  equal(a: State, b: State): boolean;
  /** Equal states must hash equal; unequal ones should rarely collide. */
  hash(state: State): string | number;
  /** Splits a history into independent partitions. Without it the history is one partition. */
  partition?(history: readonly Operation<Input, Output>[]): Partition<Input, Output>[];
  /** For reports; defaults to JSON. */
  describeOperation?(input: Input, output: Output | undefined): string;
  describeState?(state: State): string;
}

export interface CheckOptions {
  /** Wall-clock budget for the whole history, all partitions together. */
  readonly timeBudgetMs: number;
  /** Budget of search steps for the whole history; lets tests force a timeout deterministically. */
  readonly stepsMax?: number;
  /** Clock in milliseconds; defaults to performance.now(). */
  readonly now?: () => number;
}

export interface IllegalPartition<Input, Output> {
  readonly key: string;
  readonly operations: readonly Operation<Input, Output>[];
  /** The longest sequence of operations the search could linearize, in linearization order. */
  readonly longestLinearizablePrefix: readonly Operation<Input, Output>[];
  /** Multi-line, human-readable account of the above. */
  readonly description: string;
}

interface CheckProgress {
  /** Partitions that reached a verdict. */
  readonly partitionsChecked: number;
  readonly partitionsTotal: number;
  /** Search steps spent, all partitions together. */
  readonly steps: number;
}

export type LinearizabilityResult<Input, Output> =
  | (CheckProgress & { readonly verdict: 'ok' })
  | (CheckProgress & { readonly verdict: 'illegal'; readonly illegalPartition: IllegalPartition<Input, Output> })
  | (CheckProgress & { readonly verdict: 'timeout'; readonly timedOutKey: string });

export type LinearizabilityVerdict = LinearizabilityResult<unknown, unknown>['verdict'];

/**
 * Checks partitions in the order the model returns them and stops at the first one that is
 * illegal or runs out of budget.
 */
export function checkLinearizability<State, Input, Output>(
  model: Model<State, Input, Output>,
  history: readonly Operation<Input, Output>[],
  options: CheckOptions,
): LinearizabilityResult<Input, Output> {
  validateHistory(history);
  const partitions = partitionHistory(model, history);
  const budget = new SearchBudget(options);
  let partitionsChecked = 0;
  const progress = (): CheckProgress => ({ partitionsChecked, partitionsTotal: partitions.length, steps: budget.steps });
  for (const partition of partitions) {
    const outcome = new PartitionSearch(model, partition.operations).run(budget);
    if (outcome.kind === 'timeout') return { verdict: 'timeout', timedOutKey: partition.key, ...progress() };
    partitionsChecked++;
    if (outcome.kind === 'illegal') {
      const illegalPartition = describeIllegalPartition(model, partition, outcome.longestPrefix);
      return { verdict: 'illegal', illegalPartition, ...progress() };
    }
  }
  return { verdict: 'ok', ...progress() };
}

/** A malformed history is a bug in whatever recorded it, not a linearizability violation. */
function validateHistory(history: readonly Operation<unknown, unknown>[]): void {
  history.forEach((op, index) => {
    assert(Number.isFinite(op.call), `operation ${index}: call time ${op.call} is not finite`);
    if (op.output === undefined) return;
    assert(Number.isFinite(op.ret), `operation ${index}: known outcome but return time ${op.ret} is not finite`);
    assert(op.ret >= op.call, `operation ${index}: returns at ${op.ret} before its call at ${op.call}`);
  });
}

function partitionHistory<State, Input, Output>(
  model: Model<State, Input, Output>,
  history: readonly Operation<Input, Output>[],
): Partition<Input, Output>[] {
  if (model.partition === undefined) return history.length === 0 ? [] : [{ key: '*', operations: history }];
  const partitions = model.partition(history);
  const operationsTotal = partitions.reduce((sum, partition) => sum + partition.operations.length, 0);
  assert(operationsTotal === history.length, `partitions hold ${operationsTotal} of ${history.length} operations`);
  return partitions;
}

function returnTime(op: Operation<unknown, unknown>): number {
  return op.output === undefined ? Infinity : op.ret;
}

class SearchBudget {
  steps = 0;
  private readonly stepsMax: number;
  private readonly deadlineMs: number;
  private readonly now: () => number;
  private exhausted = false;

  constructor(options: CheckOptions) {
    this.stepsMax = options.stepsMax ?? Infinity;
    this.now = options.now ?? (() => performance.now());
    this.deadlineMs = this.now() + options.timeBudgetMs;
  }

  /** Counts one step; false once the budget is spent. */
  spendStep(): boolean {
    if (this.steps >= this.stepsMax) this.exhausted = true;
    // Step 0 reads the clock too, so a zero budget times out before doing any work.
    if (this.steps % CLOCK_CHECK_INTERVAL_STEPS === 0 && this.now() >= this.deadlineMs) this.exhausted = true;
    if (this.exhausted) return false;
    this.steps++;
    return true;
  }
}

/**
 * A call or return event in the doubly linked list the search walks. Linearizing an operation
 * "lifts" its two events out of the list; backtracking puts them back in place, which works
 * because a lifted node keeps its own prev/next pointers (dancing links).
 */
interface EventNode {
  /** Index of the operation in its partition; -1 for the list head. */
  readonly opIndex: number;
  /** The matching return event on a call event; null on a return event and on the head. */
  readonly returnNode: EventNode | null;
  prev: EventNode | null;
  next: EventNode | null;
}

function buildEventList(operations: readonly Operation<unknown, unknown>[]): EventNode {
  const events: { time: number; node: EventNode }[] = [];
  operations.forEach((op, opIndex) => {
    const returnNode: EventNode = { opIndex, returnNode: null, prev: null, next: null };
    const callNode: EventNode = { opIndex, returnNode, prev: null, next: null };
    events.push({ time: op.call, node: callNode }, { time: returnTime(op), node: returnNode });
  });
  events.sort(compareEvents);
  const head: EventNode = { opIndex: -1, returnNode: null, prev: null, next: null };
  let tail = head;
  for (const { node } of events) {
    tail.next = node;
    node.prev = tail;
    tail = node;
  }
  return head;
}

/** By time; at equal times calls first, so operations touching at one instant overlap. */
function compareEvents(a: { time: number; node: EventNode }, b: { time: number; node: EventNode }): number {
  if (a.time !== b.time) return a.time < b.time ? -1 : 1;
  return Number(isCall(b.node)) - Number(isCall(a.node));
}

function isCall(node: EventNode): boolean {
  return node.returnNode !== null;
}

function lift(call: EventNode): void {
  unlink(call);
  unlink(call.returnNode!);
}

/** Exact reverse of lift. */
function unlift(call: EventNode): void {
  relink(call.returnNode!);
  relink(call);
}

function unlink(node: EventNode): void {
  node.prev!.next = node.next;
  if (node.next !== null) node.next.prev = node.prev;
}

function relink(node: EventNode): void {
  node.prev!.next = node;
  if (node.next !== null) node.next.prev = node;
}

type SearchOutcome = { kind: 'ok' } | { kind: 'timeout' } | { kind: 'illegal'; longestPrefix: readonly number[] };

interface Frame<State> {
  readonly call: EventNode;
  readonly stateBefore: State;
}

class PartitionSearch<State, Input, Output> {
  private readonly model: Model<State, Input, Output>;
  private readonly operations: readonly Operation<Input, Output>[];
  private readonly head: EventNode;
  private readonly linearized: Bitset;
  private readonly visited: VisitedConfigurations<State>;
  private readonly stack: Frame<State>[] = [];
  private longestPrefix: readonly number[] = [];
  /** Operations with a known outcome not yet linearized; the search succeeds when none is left. */
  private knownPending: number;
  private state: State;

  constructor(model: Model<State, Input, Output>, operations: readonly Operation<Input, Output>[]) {
    this.model = model;
    this.operations = operations;
    this.head = buildEventList(operations);
    this.linearized = new Bitset(operations.length);
    this.visited = new VisitedConfigurations(model);
    this.knownPending = operations.filter((op) => op.output !== undefined).length;
    this.state = model.init();
  }

  run(budget: SearchBudget): SearchOutcome {
    let node = this.head.next;
    while (this.knownPending > 0) {
      if (!budget.spendStep()) return { kind: 'timeout' };
      // A pending known operation has a finite return, which precedes every +Infinity one.
      assert(node !== null, 'the search walked off the event list with known operations pending');
      if (!isCall(node)) {
        // A return event ahead of every linearizable call: this path is a dead end.
        const resumeAt = this.backtrack();
        if (resumeAt === null) return { kind: 'illegal', longestPrefix: this.longestPrefix };
        node = resumeAt;
      } else if (this.tryLinearize(node)) {
        node = this.head.next;
      } else {
        node = node.next;
      }
    }
    return { kind: 'ok' };
  }

  /** Linearizes the call's operation next, unless the model rejects it or the result was seen. */
  private tryLinearize(call: EventNode): boolean {
    const op = this.operations[call.opIndex]!;
    const result = this.model.step(this.state, op.input, op.output);
    if (!result.ok) return false;
    this.linearized.set(call.opIndex);
    if (!this.visited.add(this.linearized, result.state)) {
      this.linearized.clear(call.opIndex);
      return false;
    }
    this.stack.push({ call, stateBefore: this.state });
    this.state = result.state;
    lift(call);
    if (op.output !== undefined) this.knownPending--;
    if (this.stack.length > this.longestPrefix.length) this.longestPrefix = this.stack.map((f) => f.call.opIndex);
    return true;
  }

  /** Undoes the last linearization; returns the event to try next, or null when none is left. */
  private backtrack(): EventNode | null {
    const frame = this.stack.pop();
    if (frame === undefined) return null;
    unlift(frame.call);
    this.linearized.clear(frame.call.opIndex);
    this.state = frame.stateBefore;
    if (this.operations[frame.call.opIndex]!.output !== undefined) this.knownPending++;
    return frame.call.next;
  }
}

type StateIdentity<State> = Pick<Model<State, unknown, unknown>, 'equal' | 'hash'>;

/**
 * Lowe's memoization: a (linearized set, state) pair reached once has had every continuation
 * explored, so reaching it again by another order cannot succeed where the first did not.
 * Grows by at most one entry per step, so the step and time budgets bound it.
 */
class VisitedConfigurations<State> {
  private readonly model: StateIdentity<State>;
  private readonly buckets = new Map<string, { linearized: Bitset; state: State }[]>();

  constructor(model: StateIdentity<State>) {
    this.model = model;
  }

  /** Records the pair; false when it was already recorded. */
  add(linearized: Bitset, state: State): boolean {
    const key = `${linearized.hash()}:${this.model.hash(state)}`;
    const bucket = this.buckets.get(key);
    if (bucket === undefined) {
      this.buckets.set(key, [{ linearized: linearized.clone(), state }]);
      return true;
    }
    for (const entry of bucket) {
      if (entry.linearized.equals(linearized) && this.model.equal(entry.state, state)) return false;
    }
    bucket.push({ linearized: linearized.clone(), state });
    return true;
  }
}

class Bitset {
  private readonly words: Uint32Array;

  constructor(sizeOrWords: number | Uint32Array) {
    this.words = typeof sizeOrWords === 'number' ? new Uint32Array(Math.ceil(sizeOrWords / 32)) : sizeOrWords;
  }

  set(index: number): void {
    const word = index >>> 5;
    this.words[word] = this.words[word]! | (1 << (index & 31));
  }

  clear(index: number): void {
    const word = index >>> 5;
    this.words[word] = this.words[word]! & ~(1 << (index & 31));
  }

  clone(): Bitset {
    return new Bitset(this.words.slice());
  }

  equals(other: Bitset): boolean {
    if (this.words.length !== other.words.length) return false;
    for (let i = 0; i < this.words.length; i++) if (this.words[i] !== other.words[i]) return false;
    return true;
  }

  /** FNV-1a over the words. */
  hash(): number {
    let hash = 0x811c9dc5;
    for (const word of this.words) hash = Math.imul(hash ^ word, 0x01000193);
    return hash >>> 0;
  }
}

function describeIllegalPartition<State, Input, Output>(
  model: Model<State, Input, Output>,
  partition: Partition<Input, Output>,
  longestPrefixIndexes: readonly number[],
): IllegalPartition<Input, Output> {
  const { key, operations } = partition;
  const prefix = longestPrefixIndexes.map((index) => operations[index]!);
  const inPrefix = new Set(longestPrefixIndexes);
  const rest = operations.filter((_, index) => !inPrefix.has(index)).sort((a, b) => a.call - b.call);
  const describe = (op: Operation<Input, Output>): string => describeOperation(model, op);
  const describeState = model.describeState ?? ((state: State) => JSON.stringify(state));
  const lines = [
    `partition ${JSON.stringify(key)}: ${operations.length} operations have no linearization.`,
    `Longest linearizable prefix (${prefix.length} operations):`,
    ...prefix.map((op, position) => `  ${position + 1}. ${describe(op)}`),
    `State after the prefix: ${describeState(replay(model, prefix))}`,
    `Not linearized (${rest.length} operations, by call time):`,
    ...rest.map((op) => `  - ${describe(op)}`),
  ];
  return { key, operations, longestLinearizablePrefix: prefix, description: lines.join('\n') };
}

function describeOperation<Input, Output>(
  model: Pick<Model<unknown, Input, Output>, 'describeOperation'>,
  op: Operation<Input, Output>,
): string {
  const returned = op.output === undefined ? '?' : String(op.ret);
  const what = model.describeOperation?.(op.input, op.output) ?? JSON.stringify({ input: op.input, output: op.output });
  return `client ${op.clientId} [${op.call}, ${returned}] ${what}`;
}

function replay<State, Input, Output>(model: Model<State, Input, Output>, ops: readonly Operation<Input, Output>[]): State {
  let state = model.init();
  for (const op of ops) {
    const result = model.step(state, op.input, op.output);
    assert(result.ok, 'the longest linearizable prefix replays through the model');
    state = result.state;
  }
  return state;
}

/** A broken invariant is a bug: it stops the check, it is not a verdict. */
function assert(condition: unknown, what: string): asserts condition {
  if (!condition) throw new Error(`linearizability checker assertion failed: ${what}`);
}
