import type { Model, Operation, Partition, StepResult } from './linearizability.ts';

/**
 * The sequential specification of Flotilla's KV API, for the linearizability checker: a space
 * of independent registers, one per key, each holding a string or nothing (null).
 * Keys are independent, so the model partitions a history by key and a state is one key's value.
 */

export type KvInput =
  | { readonly kind: 'get'; readonly key: string }
  | { readonly kind: 'put'; readonly key: string; readonly value: string }
  /** Sets the key to `next` iff it currently holds `expected` (null: the key is absent). */
  | { readonly kind: 'cas'; readonly key: string; readonly expected: string | null; readonly next: string };

/** An output's kind must match its input's; anything else is a malformed history. */
export type KvOutput =
  | { readonly kind: 'get'; readonly value: string | null }
  | { readonly kind: 'put' }
  | { readonly kind: 'cas'; readonly swapped: boolean };

/** The value of the partition's one key; null when absent. */
export type KvState = string | null;

export type KvOperation = Operation<KvInput, KvOutput>;

export const kvModel: Model<KvState, KvInput, KvOutput> = {
  init: () => null,
  step: stepKv,
  equal: (a, b) => a === b,
  // The prefix keeps the absent value apart from the string "null".
  hash: (state) => (state === null ? 'absent' : `value:${state}`),
  partition: partitionByKey,
  describeOperation: describeKvOperation,
  describeState: (state) => JSON.stringify(state),
};

function stepKv(state: KvState, input: KvInput, output: KvOutput | undefined): StepResult<KvState> {
  switch (input.kind) {
    case 'get': {
      if (output === undefined) return { ok: true, state };
      return { ok: outputOfKind(output, 'get').value === state, state };
    }
    case 'put':
      if (output !== undefined) outputOfKind(output, 'put');
      return { ok: true, state: input.value };
    case 'cas': {
      const matches = state === input.expected;
      const after = matches ? input.next : state;
      if (output === undefined) return { ok: true, state: after };
      return { ok: outputOfKind(output, 'cas').swapped === matches, state: after };
    }
  }
}

function outputOfKind<Kind extends KvOutput['kind']>(output: KvOutput, kind: Kind): Extract<KvOutput, { kind: Kind }> {
  if (output.kind !== kind) throw new Error(`kv model: a ${kind} operation has a ${output.kind} output`);
  return output as Extract<KvOutput, { kind: Kind }>;
}

function partitionByKey(history: readonly KvOperation[]): Partition<KvInput, KvOutput>[] {
  const byKey = new Map<string, KvOperation[]>();
  for (const op of history) {
    const operations = byKey.get(op.input.key);
    if (operations === undefined) byKey.set(op.input.key, [op]);
    else operations.push(op);
  }
  return [...byKey].map(([key, operations]) => ({ key, operations }));
}

function describeKvOperation(input: KvInput, output: KvOutput | undefined): string {
  const key = JSON.stringify(input.key);
  switch (input.kind) {
    case 'get':
      return `get(${key}) -> ${output === undefined ? '?' : JSON.stringify(outputOfKind(output, 'get').value)}`;
    case 'put':
      return `put(${key}, ${JSON.stringify(input.value)}) -> ${output === undefined ? '?' : 'ok'}`;
    case 'cas': {
      const swapped = output === undefined ? '?' : outputOfKind(output, 'cas').swapped ? 'swapped' : 'not swapped';
      return `cas(${key}, ${JSON.stringify(input.expected)} => ${JSON.stringify(input.next)}) -> ${swapped}`;
    }
  }
}
