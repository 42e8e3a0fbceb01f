/**
 * The recorded history of a chaos run: every client operation with its invoke and complete
 * times (performance.now() of this one process, so all clients share a clock) and its outcome:
 *
 * - ok: the answer arrived (a get's value, a put's ack, a cas's verdict);
 * - fail: a typed SDK error that proves nothing was written (unknownOutcome false): dropped
 *   from the linearizability check, counted by code;
 * - unknown: a write whose outcome the SDK cannot know (timeouts, connections lost after
 *   sending): kept as possibly applied at any time after its invoke.
 *
 * Failed reads are "fail" too: a read that did not answer constrains nothing.
 */
import { performance } from 'node:perf_hooks';
import type { KvInput, KvOperation, KvOutput } from '@flotilla/sim';
import { isClientError } from '../../packages/client/src/index.ts';

export type Outcome = 'ok' | 'fail' | 'unknown';

/** One recorded set add: the element, and whether its write was acknowledged, refused or unknown. */
export interface SetAdd {
  readonly element: string;
  readonly outcome: Outcome;
}

/** Operations kept per run; past it a run is far longer than any we plan (a bound, not a target). */
export const HISTORY_OPS_MAX = 5_000_000;
/** Width of one bucket of the ops/s series. */
export const SERIES_BUCKET_MS = 1_000;

export interface SeriesBucket {
  /** Seconds since the run started (bucket start). */
  readonly atS: number;
  ok: number;
  fail: number;
  unknown: number;
}

export class History {
  /** Register operations for the checker (fails left out: they did not happen). */
  readonly registerOps: KvOperation[] = [];
  readonly setAdds: SetAdd[] = [];
  readonly errorsByCode = new Map<string, number>();
  readonly outcomes: Record<Outcome, number> = { ok: 0, fail: 0, unknown: 0 };
  private readonly series: SeriesBucket[] = [];
  readonly startedAt = performance.now();

  get size(): number {
    return this.outcomes.ok + this.outcomes.fail + this.outcomes.unknown;
  }

  /** Runs one register operation through `call` and records it. */
  async register(clientId: number, input: KvInput, call: () => Promise<KvOutput>): Promise<KvOutput | undefined> {
    const invokedAt = performance.now();
    try {
      const output = await call();
      this.registerOps.push({ clientId, input, output, call: invokedAt, ret: performance.now() });
      this.count('ok');
      return output;
    } catch (err) {
      const outcome = this.classify(err, input.kind !== 'get');
      if (outcome === 'unknown') this.registerOps.push({ clientId, input, output: undefined, call: invokedAt, ret: Infinity });
      return undefined;
    }
  }

  /** Runs one set add and records it. */
  async add(element: string, write: () => Promise<void>): Promise<void> {
    try {
      await write();
      this.setAdds.push({ element, outcome: 'ok' });
      this.count('ok');
    } catch (err) {
      this.setAdds.push({ element, outcome: this.classify(err, true) });
    }
  }

  /** ops/s: one bucket a second since the start, empty seconds included. */
  opsSeries(): readonly SeriesBucket[] {
    return this.series;
  }

  /** The outcome of a failed call, counted; anything but a ClientError is a bug of the harness. */
  private classify(err: unknown, write: boolean): Outcome {
    if (!isClientError(err)) throw err;
    this.errorsByCode.set(err.code, (this.errorsByCode.get(err.code) ?? 0) + 1);
    const outcome: Outcome = write && err.unknownOutcome ? 'unknown' : 'fail';
    this.count(outcome);
    return outcome;
  }

  private count(outcome: Outcome): void {
    if (this.size >= HISTORY_OPS_MAX) throw new Error(`history: more than ${HISTORY_OPS_MAX} operations`);
    this.outcomes[outcome]++;
    const at = Math.floor((performance.now() - this.startedAt) / SERIES_BUCKET_MS);
    for (let i = this.series.length; i <= at; i++) this.series.push({ atS: (i * SERIES_BUCKET_MS) / 1000, ok: 0, fail: 0, unknown: 0 });
    this.series[at]![outcome]++;
  }
}
