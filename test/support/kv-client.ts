/**
 * A small retrying client for cluster tests (the real SDK is packages/client): it follows
 * NotLeader hints, retries what certainly did not happen, and records every operation for
 * the linearizability checker, with an unknown outcome where the store could not say.
 */
import { performance } from 'node:perf_hooks';
import type { KvInput, KvOperation, KvOutput } from '@flotilla/sim';
import type { KvError, KvOp, KvOpResult, RegionEpoch } from '@flotilla/wire';
import type { ProcessCluster } from './cluster.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Errors that guarantee the operation did not take effect: retrying is safe. */
const NOT_APPLIED = new Set<KvError['code']>(['FLOTILLA_NOT_LEADER', 'FLOTILLA_REGION_NOT_FOUND', 'FLOTILLA_EPOCH_NOT_MATCH', 'FLOTILLA_KEY_NOT_IN_REGION', 'FLOTILLA_SERVER_BUSY']);
/** Attempts of one operation before its outcome is recorded as unknown. */
const ATTEMPTS_MAX = 50;
const REQUEST_TIMEOUT_MS = 2_000;

export interface Region {
  readonly id: number;
  readonly epoch: RegionEpoch;
}

export class RecordingClient {
  /** The store believed to lead; moved by NotLeader hints and failures. */
  private target: number;
  private requestId = 1;

  constructor(
    private readonly cluster: ProcessCluster,
    private readonly clientId: number,
    private readonly region: Region,
    private readonly history: KvOperation[],
    firstTarget: number,
  ) {
    this.target = firstTarget;
  }

  /** Runs one operation to a definite or unknown outcome and records it. */
  async run(input: KvInput): Promise<KvOutput | undefined> {
    const call = performance.now();
    let output: KvOutput | undefined;
    for (let attempt = 0; attempt < ATTEMPTS_MAX; attempt++) {
      const outcome = await this.attempt(input);
      if (outcome.kind === 'done') {
        output = outcome.output;
        break;
      }
      if (outcome.kind === 'unknown') break;
      await new Promise((resolve) => setTimeout(resolve, Math.min(10 * (attempt + 1), 200)));
    }
    this.history.push({ clientId: this.clientId, input, output, call, ret: performance.now() });
    return output;
  }

  private async attempt(input: KvInput): Promise<{ kind: 'done'; output: KvOutput } | { kind: 'retry' } | { kind: 'unknown' }> {
    const store = this.cluster.stores.get(this.target) ?? [...this.cluster.stores.values()][0];
    if (!store) return { kind: 'retry' };
    let result: KvOpResult | undefined;
    try {
      const { response } = await this.cluster.kv(store.id, { requestId: this.requestId++, timeoutMs: REQUEST_TIMEOUT_MS, ops: [this.toOp(input)] });
      result = 'results' in response ? response.results[0] : { op: 'error', error: response.error };
    } catch {
      // The connection failed: a write may or may not have been proposed.
      this.moveOn(store.id);
      return input.kind === 'get' ? { kind: 'retry' } : { kind: 'unknown' };
    }
    if (!result) return { kind: 'unknown' };
    if (result.op !== 'error') return { kind: 'done', output: toOutput(input, result) };
    const error = result.error;
    if (NOT_APPLIED.has(error.code)) {
      const hint = error.code === 'FLOTILLA_NOT_LEADER' ? error.leader?.storeId : undefined;
      if (hint !== undefined && hint !== store.id && this.cluster.stores.has(hint)) this.target = hint;
      else this.moveOn(store.id);
      return { kind: 'retry' };
    }
    this.moveOn(store.id);
    return input.kind === 'get' ? { kind: 'retry' } : { kind: 'unknown' };
  }

  private moveOn(failed: number): void {
    const ids = [...this.cluster.stores.keys()].sort((a, b) => a - b);
    this.target = ids.find((id) => id > failed) ?? ids[0] ?? failed;
  }

  private toOp(input: KvInput): KvOp {
    const base = { regionId: this.region.id, regionEpoch: this.region.epoch, key: encoder.encode(input.key) };
    switch (input.kind) {
      case 'get':
        return { ...base, op: 'get', consistency: { level: 'linearizable' } };
      case 'put':
        return { ...base, op: 'put', value: encoder.encode(input.value) };
      case 'cas':
        return { ...base, op: 'cas', expected: input.expected === null ? null : encoder.encode(input.expected), value: encoder.encode(input.next) };
    }
  }
}

function toOutput(input: KvInput, result: KvOpResult): KvOutput {
  if (input.kind === 'get' && result.op === 'get') return { kind: 'get', value: result.value === null ? null : decoder.decode(result.value) };
  if (input.kind === 'put' && result.op === 'put') return { kind: 'put' };
  if (input.kind === 'cas' && result.op === 'cas') return { kind: 'cas', swapped: result.succeeded };
  throw new Error(`a ${input.kind} answered with ${JSON.stringify(result)}`);
}
