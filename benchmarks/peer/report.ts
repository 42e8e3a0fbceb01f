/**
 * What a run leaves behind: the table and the `ratio WORKLOAD C=N X.XX` lines on stdout, the
 * results as JSON (results/<date>.json) and the SVG charts (charts/*.svg).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { table } from '../../packages/cli/src/format.ts';
import { fmt, pctCell } from '../cluster/proc.ts';
import type { PointResult } from './load.ts';
import type { MachineLimits } from './machine.ts';
import { lineChart, type Series } from './svg.ts';
import { WORKLOADS, WORKLOAD_TITLES, type WorkloadName } from './workloads.ts';

export interface Ratio {
  readonly workload: WorkloadName;
  readonly concurrency: number;
  /** Flotilla ops/s ÷ etcd ops/s. */
  readonly throughput: number;
  /** Flotilla p99 ÷ etcd p99 (≤ 1: Flotilla's p99 is no worse). */
  readonly p99: number;
}

/** One point of a Flotilla-only curve. */
export interface CurvePoint {
  readonly curve: string;
  readonly x: number;
  readonly opsPerS: number;
  readonly p99Ms: number;
  readonly detail: unknown;
}

export interface RunResults {
  readonly meta: Readonly<Record<string, unknown>>;
  readonly machine: MachineLimits | null;
  /** The same probe after the run. */
  readonly machineAfter: MachineLimits | null;
  readonly points: readonly PointResult[];
  readonly ratios: readonly Ratio[];
  readonly curves: readonly CurvePoint[];
  readonly notes: readonly string[];
  readonly failure?: string;
}

/** An etcd point and the Flotilla point run right after it with the same workload and concurrency. */
export interface PointPair {
  readonly etcd: PointResult;
  readonly flotilla: PointResult;
}

/**
 * The points paired by occurrence: the k-th Flotilla point of a (workload, concurrency) goes with
 * the k-th etcd point of it, so a concurrency listed twice (`--concurrency=1024,1,1`) yields two
 * pairs, each measured at its own time, instead of the first etcd point twice.
 */
export function pairs(points: readonly PointResult[]): PointPair[] {
  const etcdSeen = new Map<string, PointResult[]>();
  const flotillaSeen = new Map<string, number>();
  const keyOf = (p: PointResult): string => `${p.workload} ${p.concurrency}`;
  for (const p of points) {
    if (p.system !== 'etcd') continue;
    const list = etcdSeen.get(keyOf(p)) ?? [];
    list.push(p);
    etcdSeen.set(keyOf(p), list);
  }
  const out: PointPair[] = [];
  for (const f of points) {
    if (f.system !== 'flotilla') continue;
    const k = flotillaSeen.get(keyOf(f)) ?? 0;
    flotillaSeen.set(keyOf(f), k + 1);
    const e = etcdSeen.get(keyOf(f))?.[k];
    if (e) out.push({ etcd: e, flotilla: f });
  }
  return out;
}

export function ratioOf({ etcd, flotilla }: PointPair): Ratio {
  return { workload: flotilla.workload, concurrency: flotilla.concurrency, throughput: flotilla.opsPerS / etcd.opsPerS, p99: flotilla.p99Ms / etcd.p99Ms };
}

export function ratios(points: readonly PointResult[]): Ratio[] {
  return pairs(points).map(ratioOf);
}

/** `ratio WORKLOAD C=N X.XX`; `inf` when etcd completed nothing and Flotilla did. */
export function ratioLine(r: Ratio): string {
  const value = Number.isFinite(r.throughput) ? r.throughput.toFixed(2) : r.throughput === Infinity ? 'inf' : 'NaN';
  return `ratio ${r.workload} C=${r.concurrency} ${value}`;
}

const ms = (v: number): string => (v >= 100 ? v.toFixed(0) : v.toFixed(2));

export function pointsTable(points: readonly PointResult[]): string {
  const header = ['workload', 'C', 'system', 'ops/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'errors', 'gen CPU%', 'servers CPU% (each)', 'servers wait% (main threads)', 'gen loop wait%', 'other system CPU%', 'others CPU%', 'syncs/s'];
  const rows = points.map((p) => [
    p.workload,
    String(p.concurrency),
    p.system,
    fmt(p.opsPerS),
    ms(p.p50Ms),
    ms(p.p99Ms),
    ms(p.p999Ms),
    String(p.errors),
    p.loadGeneratorCpuPct.toFixed(0),
    `${p.serversCpuPct.toFixed(0)} (${p.servers.map((s) => s.cpuPct.toFixed(0)).join('/')})`,
    `${pctCell(p.serversWaitPct)} (${p.servers.map((s) => pctCell(s.mainThreadWaitPct)).join('/')})`,
    pctCell(p.loadGeneratorMainThreadWaitPct),
    p.bystandersCpuPct.toFixed(0),
    p.othersCpuPct.toFixed(0),
    fmt(p.syncsPerS),
  ]);
  return table(header, rows);
}

/** The same as a Markdown table (RESULTS.md), one row per etcd/Flotilla pair. */
export function markdownTable(points: readonly PointResult[]): string {
  const lines = [
    '| workload | C | etcd ops/s | Flotilla ops/s | ratio | etcd p50 / p99 / p99.9 ms | Flotilla p50 / p99 / p99.9 ms | errors e / f | gen CPU % e / f | servers CPU % e / f | servers wait % e / f | others CPU % e / f | syncs/s e / f |',
    '|---|---:|---:|---:|---:|---|---|---|---|---|---|---|---|',
  ];
  const lat = (p: PointResult): string => `${ms(p.p50Ms)} / ${ms(p.p99Ms)} / ${ms(p.p999Ms)}`;
  for (const pair of pairs(points)) {
    const { etcd: e, flotilla: f } = pair;
    const r = ratioOf(pair);
    lines.push(
      `| ${r.workload} | ${r.concurrency} | ${fmt(e.opsPerS)} | ${fmt(f.opsPerS)} | **${Number.isFinite(r.throughput) ? r.throughput.toFixed(2) : '∞'}** | ${lat(e)} | ${lat(f)} | ${e.errors} / ${f.errors} | ${e.loadGeneratorCpuPct.toFixed(0)} / ${f.loadGeneratorCpuPct.toFixed(0)} | ${e.serversCpuPct.toFixed(0)} / ${f.serversCpuPct.toFixed(0)} | ${pctCell(e.serversWaitPct)} / ${pctCell(f.serversWaitPct)} | ${e.othersCpuPct.toFixed(0)} / ${f.othersCpuPct.toFixed(0)} | ${fmt(e.syncsPerS)} / ${fmt(f.syncsPerS)} |`,
    );
  }
  return `${lines.join('\n')}\n`;
}

export async function writeResults(outDir: string, stamp: string, results: RunResults): Promise<string> {
  const dir = path.join(outDir, 'results');
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `${stamp}.json`);
  await writeFile(file, `${JSON.stringify(results, null, 2)}\n`);
  return file;
}

/** Throughput vs concurrency and p99 vs throughput per workload, throughput vs x per curve. */
export async function writeCharts(outDir: string, results: RunResults): Promise<string[]> {
  const dir = path.join(outDir, 'charts');
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  const save = async (name: string, svg: string): Promise<void> => {
    const file = path.join(dir, name);
    await writeFile(file, svg);
    written.push(file);
  };
  for (const workload of WORKLOADS) {
    const of = (system: string): PointResult[] => results.points.filter((p) => p.workload === workload && p.system === system).sort((a, b) => a.concurrency - b.concurrency);
    if (of('flotilla').length + of('etcd').length === 0) continue;
    const systems = ['flotilla', 'etcd'];
    const throughput: Series[] = systems.map((s) => ({ name: s, points: of(s).map((p) => [p.concurrency, p.opsPerS] as const) }));
    await save(`throughput-${workload}.svg`, lineChart({ title: `${workload}: throughput vs concurrency`, xLabel: 'requests in flight (log)', yLabel: 'ops/s (log)', xLog: true, yLog: true, series: throughput }));
    const latency: Series[] = systems.map((s) => ({ name: `${s} p99`, points: of(s).map((p) => [p.opsPerS, p.p99Ms] as const), labels: of(s).map((p) => `C=${p.concurrency}`) }));
    await save(`latency-${workload}.svg`, lineChart({ title: `${workload}: p99 latency vs throughput`, xLabel: 'ops/s (log)', yLabel: 'p99 ms (log)', xLog: true, yLog: true, series: latency }));
  }
  const curves = [...new Set(results.curves.map((c) => c.curve))];
  for (const curve of curves) {
    const points = results.curves.filter((c) => c.curve === curve);
    const log = points.every((p) => p.x > 0) && Math.max(...points.map((p) => p.x)) / Math.min(...points.map((p) => p.x)) >= 100;
    await save(
      `curve-${curve.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}.svg`,
      lineChart({ title: `Flotilla: ${curve}`, xLabel: log ? `${curve} (log)` : curve, yLabel: 'ops/s', xLog: log, series: [{ name: 'ops/s', points: points.map((p) => [p.x, p.opsPerS] as const), labels: points.map((p) => `p99 ${ms(p.p99Ms)} ms`) }] }),
    );
  }
  return written;
}

export function workloadLines(): string[] {
  return WORKLOADS.map((w) => `- ${w}: ${WORKLOAD_TITLES[w]}`);
}
