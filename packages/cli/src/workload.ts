/**
 * What `flotilla load` and `flotilla bench` share: the keys they generate (so that `bench
 * --no-prepare` reads what `load --count` wrote), their values, batches run with bounded
 * concurrency, and durations on the command line (`10s`, `500ms`, `2m`).
 */
import { limits as wire } from '@flotilla/wire';
import { usageError } from './errors.ts';

export const workloadLimits = Object.freeze({
  /** Keys one `load --count` or `bench --key-count` may generate. */
  generatedKeysMax: 100_000_000,
  /** Pairs of one putMany (the SDK takes up to 100,000; smaller batches keep progress fluid). */
  batchPairsMax: 10_000,
  /** Batches (load) in flight at once. */
  loadConcurrencyMax: 256,
  /** Closed-loop workers of a benchmark. */
  benchConcurrencyMax: 1_024,
  /** A generated value (the store's bound for one value). */
  valueBytesMax: wire.kvValueBytesMax,
  /** A benchmark's --duration. */
  durationMsMax: 3_600_000,
  /** A benchmark's --ops. */
  opsMax: 1_000_000_000,
});

/** A pair as the SDK's putMany takes it. */
export interface Pair {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

/**
 * Key `index` of `count` generated keys: the prefix and the index zero-padded to the width of
 * the largest, so key order is index order (`load:0000` … `load:9999`).
 */
export function generatedKey(prefix: string, index: number, count: number): Uint8Array {
  const width = String(Math.max(0, count - 1)).length;
  return new Uint8Array(Buffer.from(`${prefix}${String(index).padStart(width, '0')}`, 'utf8'));
}

/** A value of `size` bytes that tells which key it belongs to: `KEY|KEY|…`, cut to size. */
export function generatedValue(key: Uint8Array, size: number): Uint8Array {
  const unit = Buffer.concat([Buffer.from(key), Buffer.from('|')]);
  const value = Buffer.alloc(size);
  for (let at = 0; at < size; at += unit.length) unit.copy(value, at, 0, Math.min(unit.length, size - at));
  return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
}

/** `count` generated pairs in batches of `batchPairs`, in key order. */
export function* generatedBatches(prefix: string, count: number, valueSize: number, batchPairs: number): Generator<Pair[]> {
  for (let first = 0; first < count; first += batchPairs) {
    const batch: Pair[] = [];
    for (let i = first; i < Math.min(count, first + batchPairs); i++) {
      const key = generatedKey(prefix, i, count);
      batch.push({ key, value: generatedValue(key, valueSize) });
    }
    yield batch;
  }
}

/**
 * Runs `run` over every item with at most `width` at once, pulling items only as slots free up
 * (a file is read no faster than it is written). The first failure stops the pulling; the
 * calls in flight finish, then it is thrown.
 */
export async function runBounded<T>(items: AsyncIterable<T> | Iterable<T>, width: number, run: (item: T) => Promise<void>): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  let failure: { readonly error: unknown } | undefined;
  const start = (item: T): void => {
    const call: Promise<void> = run(item)
      .catch((error: unknown) => {
        failure ??= { error };
      })
      .finally(() => inFlight.delete(call));
    inFlight.add(call);
  };
  try {
    for await (const item of items) {
      start(item);
      while (inFlight.size >= width && failure === undefined) await Promise.race(inFlight);
      if (failure !== undefined) break;
    }
  } finally {
    await Promise.all(inFlight);
  }
  if (failure !== undefined) throw failure.error;
}

const DURATION_UNITS_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000 };

/** `500ms`, `10s`, `2m`, or a number of seconds; a usage error names the flag. */
export function parseDurationMs(command: string, flag: string, text: string, maxMs = workloadLimits.durationMsMax): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  const ms = match ? Number(match[1]) * DURATION_UNITS_MS[match[2] ?? 's']! : NaN;
  if (!Number.isFinite(ms) || ms < 1 || ms > maxMs) {
    throw usageError(`${command}: --${flag} must be a duration like 500ms, 10s or 2m (at most ${maxMs / 60_000} m), got "${text}"`);
  }
  return Math.round(ms);
}
