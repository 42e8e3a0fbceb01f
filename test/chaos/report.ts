/**
 * A run's report, as JSON (everything) and markdown (for people): the verdict, the fault
 * timeline, ops/s over time, errors by code, and on failure the illegal histories, the lost
 * writes and the processes' last log lines.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { LinearizabilityVerdict } from './check.ts';
import type { Outcome, SeriesBucket } from './history.ts';
import type { TimelineEvent } from './nemesis.ts';

export interface LivenessVerdict {
  readonly ok: boolean;
  /** From the heal to every region led and written (or to the deadline). */
  readonly ms: number;
  readonly problem: string | null;
}

export interface ChaosReport {
  readonly seed: number;
  readonly startedAt: string;
  readonly durationMs: number;
  readonly config: unknown;
  readonly ops: number;
  readonly outcomes: Readonly<Record<Outcome, number>>;
  readonly registerKeys: number;
  readonly setAdds: { readonly acknowledged: number; readonly unknown: number; readonly failed: number; readonly found: number };
  readonly violations: number;
  readonly lost: number;
  readonly linearizability: LinearizabilityVerdict;
  readonly lostWrites: { readonly registers: readonly string[]; readonly setAdds: readonly string[]; readonly unexpectedSetElements: readonly string[] };
  readonly finalReadsUnanswered: number;
  readonly liveness: LivenessVerdict;
  readonly regionsAtEnd: number;
  readonly passed: boolean;
  readonly timeline: readonly TimelineEvent[];
  /** Not verdicts but worth a look (PD answers that say "a bug", with their log lines). */
  readonly anomalies: readonly string[];
  /** Processes that exited on their own (each fails the run), with their last log lines. */
  readonly crashes: readonly string[];
  readonly opsPerSecond: readonly SeriesBucket[];
  readonly errorsByCode: Readonly<Record<string, number>>;
  /** The processes' last log lines, kept only when the run failed. */
  readonly logs?: Readonly<Record<string, readonly string[]>>;
}

/** Seconds per row of the markdown's ops/s table (the JSON keeps every second). */
const MARKDOWN_SERIES_ROW_S = 10;

/** Writes `<dir>/<stamp>-seed-<seed>.json` and `.md`; answers both paths. */
export async function writeReport(dir: string, report: ChaosReport): Promise<{ json: string; markdown: string }> {
  await mkdir(dir, { recursive: true });
  const base = path.join(dir, `${report.startedAt.replace(/[:.]/g, '-')}-seed-${report.seed}`);
  const json = `${base}.json`;
  const markdown = `${base}.md`;
  await writeFile(json, JSON.stringify(report, null, 1) + '\n');
  await writeFile(markdown, renderMarkdown(report));
  return { json, markdown };
}

function renderMarkdown(r: ChaosReport): string {
  const lines = [
    `# Chaos run, seed ${r.seed}: ${r.passed ? 'PASSED' : 'FAILED'}`,
    '',
    `Started ${r.startedAt}, faults for ${(r.durationMs / 1000).toFixed(0)} s. \`pnpm chaos --seed ${r.seed} --duration ${Math.round(r.durationMs / 1000)}s\` replays the schedule.`,
    '',
    '## Verdict',
    '',
    `- operations: ${r.ops} (ok ${r.outcomes.ok}, failed ${r.outcomes.fail}, unknown ${r.outcomes.unknown}); register keys ${r.registerKeys}`,
    `- linearizability: ${r.linearizability.keysChecked} keys checked in ${(r.linearizability.ms / 1000).toFixed(1)} s, ${r.linearizability.illegalKeys} illegal, ${r.linearizability.undecidedKeys} undecided (a timeout fails the run)`,
    `- lost: ${r.lost} (register keys read empty after an acknowledged write: ${r.lostWrites.registers.length}; acknowledged set adds missing: ${r.lostWrites.setAdds.length}; set elements never added: ${r.lostWrites.unexpectedSetElements.length})`,
    `- set: ${r.setAdds.acknowledged} adds acknowledged, ${r.setAdds.unknown} unknown, ${r.setAdds.failed} failed; the final read found ${r.setAdds.found}`,
    `- final register reads unanswered: ${r.finalReadsUnanswered}`,
    `- processes crashed: ${r.crashes.length}`,
    `- liveness after the heal: ${r.liveness.ok ? 'ok' : 'FAILED'} in ${(r.liveness.ms / 1000).toFixed(1)} s${r.liveness.problem ? ` (${r.liveness.problem})` : ''}; ${r.regionsAtEnd} regions at the end`,
    '',
    '## Fault timeline',
    '',
    '| from (s) | to (s) | fault | target / outcome |',
    '| ---: | ---: | --- | --- |',
    ...r.timeline.map((e) => `| ${e.startS.toFixed(1)} | ${e.endS === null ? '' : e.endS.toFixed(1)} | ${e.kind} | ${e.note.replaceAll('|', '\\|')} |`),
    '',
    `## Operations per second (mean over ${MARKDOWN_SERIES_ROW_S} s)`,
    '',
    '| from (s) | ok/s | failed/s | unknown/s |',
    '| ---: | ---: | ---: | ---: |',
    ...seriesRows(r.opsPerSecond),
    '',
    '## Errors by code',
    '',
    '| code | count |',
    '| --- | ---: |',
    ...Object.entries(r.errorsByCode).sort((a, b) => b[1] - a[1]).map(([code, n]) => `| ${code} | ${n} |`),
    '',
  ];
  for (const crash of r.crashes) lines.push('## Crash', '', '```', crash, '```', '');
  if (r.anomalies.length > 0) lines.push('## Anomalies (not verdicts)', '', '```', ...r.anomalies, '```', '');
  for (const { key, description } of r.linearizability.illegal) lines.push(`## Illegal history of ${key}`, '', '```', description, '```', '');
  if (r.lost > 0) lines.push('## Lost writes (first ones)', '', '```', JSON.stringify(r.lostWrites, null, 1), '```', '');
  return lines.join('\n');
}

function seriesRows(series: readonly SeriesBucket[]): string[] {
  const rows: string[] = [];
  for (let at = 0; at < series.length; at += MARKDOWN_SERIES_ROW_S) {
    const window = series.slice(at, at + MARKDOWN_SERIES_ROW_S);
    const mean = (pick: (b: SeriesBucket) => number): string => (window.reduce((sum, b) => sum + pick(b), 0) / window.length).toFixed(0);
    rows.push(`| ${window[0]!.atS} | ${mean((b) => b.ok)} | ${mean((b) => b.fail)} | ${mean((b) => b.unknown)} |`);
  }
  return rows;
}
