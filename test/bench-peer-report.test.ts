/**
 * The peer benchmark's report pairs each Flotilla point with the etcd point measured next to it,
 * also when a concurrency is listed twice (`--concurrency=1024,1,1`).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PointResult } from '../benchmarks/peer/load.ts';
import { markdownTable, ratioLine, ratios } from '../benchmarks/peer/report.ts';

function point(system: 'etcd' | 'flotilla', concurrency: number, opsPerS: number): PointResult {
  return {
    system,
    workload: 'insert',
    concurrency,
    seconds: 1,
    ops: opsPerS,
    opsPerS,
    p50Ms: 1,
    p99Ms: 2,
    p999Ms: 3,
    maxMs: 4,
    errors: 0,
    errorSamples: [],
    missing: 0,
    opsByKind: {},
    loadGeneratorCpuPct: 0,
    loadGeneratorMainThreadWaitPct: 0,
    servers: [],
    serversCpuPct: 0,
    serversWaitPct: 0,
    othersCpuPct: 0,
    bystandersCpuPct: 0,
    quietWaitMs: 0,
    syncsPerS: 0,
    syncMetric: '',
    counterDeltas: {},
  };
}

describe('bench:peer report', () => {
  // The order bench.ts runs them in: for each concurrency, etcd then Flotilla.
  const points = [point('etcd', 1024, 2_000), point('flotilla', 1024, 20_000), point('etcd', 1, 700), point('flotilla', 1, 350), point('etcd', 1, 800), point('flotilla', 1, 1_600)];

  it('pairs a repeated concurrency by occurrence, not with its first etcd point', () => {
    assert.deepEqual(ratios(points).map(ratioLine), ['ratio insert C=1024 10.00', 'ratio insert C=1 0.50', 'ratio insert C=1 2.00']);
  });

  it('prints one Markdown row per pair with that pair\'s own figures', () => {
    const rows = markdownTable(points).trim().split('\n').slice(2);
    assert.deepEqual(
      rows.map((r) => r.split('|').slice(2, 6).map((c) => c.trim())),
      [
        ['1024', '2,000', '20,000', '**10.00**'],
        ['1', '700', '350', '**0.50**'],
        ['1', '800', '1,600', '**2.00**'],
      ],
    );
  });

  it('prints the servers\' run-queue wait, and a dash where the kernel keeps no schedstat', () => {
    const pair = [{ ...point('etcd', 16, 100), serversWaitPct: NaN }, { ...point('flotilla', 16, 300), serversWaitPct: 12.4 }];
    const header = markdownTable(pair).split('\n')[0]!.split('|').map((c) => c.trim());
    const row = markdownTable(pair).trim().split('\n')[2]!.split('|').map((c) => c.trim());
    assert.equal(row[header.indexOf('servers wait % e / f')], '- / 12');
  });

  it('leaves out a Flotilla point with no etcd point beside it', () => {
    assert.deepEqual(ratios([point('flotilla', 16, 100), point('etcd', 64, 10), point('flotilla', 64, 30)]).map(ratioLine), ['ratio insert C=64 3.00']);
  });
});
