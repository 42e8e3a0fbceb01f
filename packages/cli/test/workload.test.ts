/** The pure pieces of `load` and `bench`: generated keys, bounded batches, durations, latency percentiles, the progress bar. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EXIT, isCliError } from '../src/errors.ts';
import { LatencyHistogram, latencyLimits } from '../src/latency.ts';
import { Progress } from '../src/progress.ts';
import { generatedBatches, generatedKey, generatedValue, parseDurationMs, runBounded } from '../src/workload.ts';

const usage = (err: unknown): boolean => isCliError(err) && err.exitCode === EXIT.usage;
const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString('utf8');

describe('generated keys and values', () => {
  it('pads the index to the widest so key order is index order', () => {
    assert.deepEqual([0, 7, 999].map((i) => text(generatedKey('k:', i, 1000))), ['k:000', 'k:007', 'k:999']);
    assert.equal(text(generatedKey('k:', 0, 1)), 'k:0');
    const keys = Array.from({ length: 120 }, (_, i) => Buffer.from(generatedKey('', i, 120)));
    assert.deepEqual([...keys].sort(Buffer.compare), keys);
  });

  it('fills values of the exact size with their key', () => {
    const key = generatedKey('a:', 3, 10);
    assert.equal(text(generatedValue(key, 9)), 'a:3|a:3|a');
    assert.equal(generatedValue(key, 0).length, 0);
  });

  it('cuts the generated pairs into batches, the last one short', () => {
    const batches = [...generatedBatches('p', 7, 2, 3)];
    assert.deepEqual(batches.map((b) => b.length), [3, 3, 1]);
    assert.equal(text(batches[2]![0]!.key), 'p6');
  });
});

describe('runBounded', () => {
  it('never has more than `width` calls in flight and runs every item', async () => {
    let inFlight = 0;
    let most = 0;
    const done: number[] = [];
    await runBounded([1, 2, 3, 4, 5, 6, 7], 3, async (n) => {
      most = Math.max(most, ++inFlight);
      await new Promise((resolve) => setImmediate(resolve));
      inFlight--;
      done.push(n);
    });
    assert.equal(most, 3);
    assert.deepEqual(done.sort(), [1, 2, 3, 4, 5, 6, 7]);
  });

  it('stops pulling items after a failure, lets the calls in flight finish, then throws it', async () => {
    const pulled: number[] = [];
    function* items(): Generator<number> {
      for (let n = 1; n <= 100; n++) {
        pulled.push(n);
        yield n;
      }
    }
    let finished = 0;
    await assert.rejects(
      runBounded(items(), 2, async (n) => {
        await new Promise((resolve) => setImmediate(resolve));
        if (n === 3) throw new Error('batch 3 failed');
        finished++;
      }),
      /batch 3 failed/,
    );
    assert.ok(pulled.length <= 5, `pulled ${pulled.length}`);
    assert.equal(finished, pulled.length - 1, 'every other call in flight finished');
  });
});

describe('durations', () => {
  it('reads ms, s, m and bare seconds; refuses the rest with the command and flag', () => {
    assert.deepEqual(['500ms', '10s', '2m', '3', '1.5s'].map((t) => parseDurationMs('bench', 'duration', t)), [500, 10_000, 120_000, 3_000, 1_500]);
    for (const bad of ['', '5x', '-1s', '0', 'soon', '2h', '61m']) assert.throws(() => parseDurationMs('bench', 'duration', bad), usage, bad);
    assert.throws(() => parseDurationMs('bench', 'duration', 'x'), { message: /^bench: --duration must be a duration/ });
  });
});

describe('LatencyHistogram', () => {
  it('reports percentiles within its bucket precision, and the exact max', () => {
    const h = new LatencyHistogram();
    for (let ms = 1; ms <= 1_000; ms++) h.record(ms);
    const within = (actual: number, expected: number): boolean => Math.abs(actual - expected) <= expected * (latencyLimits.bucketRatio - 1) + 1e-9;
    const s = h.summary();
    assert.ok(within(s.p50, 500), `p50 ${s.p50}`);
    assert.ok(within(s.p99, 990), `p99 ${s.p99}`);
    assert.ok(within(s.p999, 999), `p99.9 ${s.p999}`);
    assert.equal(s.max, 1_000);
    assert.equal(s.mean, 500.5);
    assert.equal(h.count, 1_000);
  });

  it('is empty-safe and keeps sub-microsecond and huge latencies in range', () => {
    assert.deepEqual(new LatencyHistogram().summary(), { p50: 0, p99: 0, p999: 0, max: 0, mean: 0 });
    const h = new LatencyHistogram();
    h.record(0);
    h.record(1e12);
    assert.equal(h.summary().max, latencyLimits.valueUsMax / 1_000);
    assert.ok(h.percentileMs(0.5) <= 0.001 * latencyLimits.bucketRatio, 'a 0 ms latency counts as 1 us');
  });
});

describe('Progress', () => {
  function capture(interactive: boolean): { progress: Progress; written: string[] } {
    const written: string[] = [];
    const stream = { columns: 200, write: (chunk: string) => written.push(chunk) } as unknown as NodeJS.WriteStream;
    return { progress: new Progress(stream, interactive), written };
  }

  it('draws a bar with done/total on a terminal, a count alone without a total', () => {
    const { progress, written } = capture(true);
    progress.update('loading', 6, 24);
    progress.update('reading', 42);
    progress.done('finished');
    assert.match(written[0]!, /\[######-{18}\] 6\/24 loading \(\d+\.\ds\)$/);
    assert.match(written[1]!, /42 reading \(/);
    assert.deepEqual(written.slice(2), ['\r\x1b[2K', 'finished\n']);
  });

  it('prints each label once off a terminal, without the numbers', () => {
    const { progress, written } = capture(false);
    for (let i = 0; i < 5; i++) progress.update('loading', i, 5);
    progress.update('bench');
    assert.deepEqual(written, ['loading\n', 'bench\n']);
  });
});
