/**
 * The PD repair benchmark's results (benchmarks/pd/repair.ts) and their Markdown report.
 */
import { fmt } from '../cluster/proc.ts';
import { ratioText, reportHead, type Spread } from './pd-view.ts';

export interface RoundRow {
  readonly round: number;
  readonly regionsBefore: number;
  readonly posted: number;
  readonly refused: number;
  readonly regionsAfter: number;
  readonly seconds: number;
}

export interface SettleRow {
  readonly what: string;
  /** Regions whose leader reports a peer on a live store down (or pending): balance skips them. */
  readonly liveDown: number;
  readonly livePending: number;
  /** Operators still running, and regions not fully replicated, once quiet (normally 0). */
  readonly running: number;
  readonly broken: number;
  /** PD-listed peers on live stores that the store does not host. */
  readonly ghost: { ghosts: number; regions: number; example: string };
  readonly seconds: number;
  readonly operators: Map<string, number>;
  readonly spread: Spread;
  readonly live: number[];
}

export interface RepairResult {
  /** Regions still not fully replicated when the benchmark gave up (0: repaired). */
  readonly unrepaired: number;
  readonly stuckExample: string[];
  /** PD-listed peers on live stores that the store does not host, once the repair ended. */
  readonly ghostAfter: { ghosts: number; regions: number; example: string };
  readonly mode: RepairMode;
  readonly liveBefore: number;
  readonly victim: number;
  readonly victimReplicas: number;
  readonly victimLeaders: number;
  readonly disconnectedS: number;
  readonly downS: number;
  readonly firstRepairS: number;
  readonly repairedS: number;
  readonly created: number;
  readonly finished: number;
  readonly timedOut: number;
  readonly stale: number;
  readonly balanceCreated: number;
  readonly peakFinishedPerS: number;
  /** Operators the benchmark cancelled because they led into the dead store (workaround mode). */
  readonly cancelled: number;
  /** Durations (s) of the repair operators, created to finished, from PD's history. */
  readonly durationsS: number[];
  /** The balance operators that held regions when the store went down (as-shipped mode): origin and target. */
  readonly doomed: string[];
  readonly timeline: { t: number; broken: number; finished: number }[];
  readonly cpuPct: { pd: number; stores: number; others: number };
}

/**
 * 'as shipped': nothing but the kill. 'doomed cancelled': once PD lists the dead store
 * disconnected, the benchmark cancels (DELETE /pd/api/v1/operators/:regionId) every running
 * operator that leads into it — what PD does not do itself (see REPAIR.md).
 */
export type RepairMode = 'as shipped' | 'doomed cancelled';

/** What the run was configured with, as the report states it. */
export interface RepairConfig {
  readonly pdMembers: number;
  readonly pdArgs: readonly string[];
  readonly stores: number;
  readonly storeArgs: readonly string[];
  readonly tickMs: number;
  readonly regions: number;
  readonly scheduleConfig: { readonly schedulers: object } & Record<string, unknown>;
  readonly schedulerIntervalMs: number;
  readonly quietMs: number;
  readonly disconnectMs: number;
  readonly downMs: number;
  readonly repairDeadlineS: number;
  readonly settleDeadlineMs: number;
}

/** What one run measured (a failed run reports what it got to). */
export interface RepairRun {
  readonly startedAt: Date;
  readonly command: string;
  readonly phases: readonly { what: string; seconds: number }[];
  readonly rounds: readonly RoundRow[];
  readonly settles: readonly SettleRow[];
  readonly repairs: readonly RepairResult[];
  readonly failure: unknown;
}

/** The Markdown report of one run (printed, and written to REPAIR.md unless --quick). */
export function report(run: RepairRun, c: RepairConfig): string {
  const { startedAt, command, phases, rounds, settles, repairs, failure } = run;
  const ops = (m: Map<string, number>, origin: string): string => `${m.get(`${origin}/finished`)} finished, ${m.get(`${origin}/created`)} created, ${m.get(`${origin}/timedOut`)} timed out, ${m.get(`${origin}/stale`)} stale`;
  const counts = (m: ReadonlyMap<number, number>): string => [...m.entries()].map(([id, n]) => `s${id}: ${n}`).join(', ');
  const lines = [
    ...reportHead('PD repair and spread benchmark', startedAt, command),
    `- config: ${c.pdMembers} PD member process(es) (\`${c.pdArgs.join(' ')}\`, tick 50 ms) and ${c.stores} store processes placed by PD (\`--pd … ${c.storeArgs.join(' ')} --tick-ms ${c.tickMs} --log-shards 1\`, RocksDB, fsync on), all on loopback; ${fmt(c.regions)} empty regions made by PD split operators (keys r00000…r99999, split at the middle of each region, balance paused meanwhile)`,
    `- schedule config (PUT /pd/api/v1/config): \`${JSON.stringify({ ...c.scheduleConfig, schedulers: { ...c.scheduleConfig.schedulers, balanceRegion: { enabled: 'false while splitting, then true', intervalMs: c.schedulerIntervalMs }, balanceLeader: { enabled: 'false while splitting, then true', intervalMs: c.schedulerIntervalMs } } })}\`; everything else default (tolerantSizeRatio 1, peer operator timeout 10 min)`,
    `- settled: no operator started or ended and no region changed between fully replicated (3 voters on distinct live stores, a known leader) and not, for ${c.quietMs / 1000} s (the times below stop where that quiet period began); operators still running then and regions not fully replicated are listed`,
    '',
  ];
  if (failure !== undefined) lines.push(`**The run failed:** ${String(failure)}`, '');
  lines.push('## Phases', '', '| phase | seconds |', '|---|---:|', ...phases.map((p) => `| ${p.what} | ${fmt(p.seconds, 1)} |`), '');
  if (rounds.length > 0) {
    lines.push(
      '## Split rounds',
      '',
      '| round | regions before | split operators | refused | regions after | seconds |',
      '|---:|---:|---:|---:|---:|---:|',
      ...rounds.map((r) => `| ${r.round} | ${fmt(r.regionsBefore)} | ${fmt(r.posted)} | ${r.refused} | ${fmt(r.regionsAfter)} | ${fmt(r.seconds, 1)} |`),
      '',
    );
  }
  if (repairs.length > 0) {
    const pct = (xs: readonly number[], q: number): number => xs[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? NaN;
    const col = (f: (r: RepairResult) => string): string => `| ${repairs.map(f).join(' | ')} |`;
    lines.push(
      '## Repair after a store is SIGKILLed',
      '',
      `The store holding the most replicas (then leaders) is SIGKILLed. "as shipped": nothing else is done. "doomed cancelled": once PD lists the dead store disconnected, the benchmark cancels through the API every running operator that adds a peer on it or hands it leadership (PD does not; see below). Times in seconds from the kill.`,
      '',
      `| | ${repairs.map((r) => `kill ${repairs.indexOf(r) + 1}: ${r.mode}`).join(' | ')} |`,
      `|---|${repairs.map(() => '---:').join('|')}|`,
      `| live stores before → after ${col((r) => `${r.liveBefore} → ${r.liveBefore - 1}`)}`,
      `| store killed: replicas / leaders on it ${col((r) => `s${r.victim}: ${fmt(r.victimReplicas)} / ${fmt(r.victimLeaders)}`)}`,
      `| PD lists it disconnected (storeDisconnectMs ${c.disconnectMs}) ${col((r) => fmt(r.disconnectedS, 1))}`,
      `| PD lists it down (storeDownMs ${c.downMs}) ${col((r) => fmt(r.downS, 1))}`,
      `| first repair operator created ${col((r) => fmt(r.firstRepairS, 1))}`,
      `| **every region has 3 voters on live stores** ${col((r) => (r.unrepaired === 0 ? `**${fmt(r.repairedS, 1)}**` : `**never**: ${r.unrepaired} regions left at ${c.repairDeadlineS} s`))}`,
      `| **repair time after storeDownMs expired** ${col((r) => (r.unrepaired === 0 ? `**${fmt(r.repairedS - c.downMs / 1000, 1)}**` : '—'))}`,
      `| … after PD was first seen listing it down ${col((r) => (r.unrepaired === 0 ? fmt(r.repairedS - r.downS, 1) : '—'))}`,
      `| peers PD lists on live stores that the store does not host, once the repair ended (regions) ${col((r) => `${r.ghostAfter.ghosts} (${r.ghostAfter.regions})`)}`,
      `| replica-checker operators created / finished / timed out / stale ${col((r) => `${r.created} / ${r.finished} / ${r.timedOut} / ${r.stale}`)}`,
      `| **operators/s** (finished ÷ time from the down mark to the end) ${col((r) => (r.unrepaired === 0 ? `**${fmt(r.finished / (r.repairedS - r.downS), 1)}**` : '—'))}`,
      `| operators/s at the best 1-s window ${col((r) => fmt(r.peakFinishedPerS, 1))}`,
      `| repair operator duration p50 / p90 / max (s, created → finished) ${col((r) => `${fmt(pct(r.durationsS, 0.5), 1)} / ${fmt(pct(r.durationsS, 0.9), 1)} / ${fmt(r.durationsS.at(-1) ?? NaN, 1)}`)}`,
      `| operators leading into the dead store (made after the kill, before PD saw it disconnected) ${col((r) => String(r.doomed.length))}`,
      `| of which cancelled by the benchmark ${col((r) => String(r.cancelled))}`,
      `| balance operators created during the repair ${col((r) => String(r.balanceCreated))}`,
      `| CPU % of one core: PD / live stores together / other processes ${col((r) => `${fmt(r.cpuPct.pd, 0)} / ${fmt(r.cpuPct.stores, 0)} / ${fmt(r.cpuPct.others, 0)}`)}`,
      '',
      'Every repair operator is a move: a learner on the target store, then one joint change promoting it and removing the dead voter.',
      '',
    );
    for (const [i, r] of repairs.entries()) {
      lines.push(`### Kill ${i + 1} (${r.mode}): regions not fully replicated over time`, '', '| s after the kill | regions not fully replicated | repair operators finished |', '|---:|---:|---:|');
      lines.push(...thin(r.timeline, 16).map((x) => `| ${fmt(x.t, 1)} | ${fmt(x.broken)} | ${fmt(x.finished)} |`), '');
      if (r.unrepaired > 0) lines.push(`Regions never repaired (first 3 of ${r.unrepaired}):`, '', ...r.stuckExample.map((x) => `- ${x}`), '');
      if (r.ghostAfter.ghosts > 0) lines.push(`Example of a peer PD lists but its store does not host: ${r.ghostAfter.example}.`, '');
      if (r.doomed.length > 0) lines.push(`Operators that led into the dead store (first 5 of ${r.doomed.length}):`, '', ...r.doomed.slice(0, 5).map((d) => `- ${d}`), '');
    }
  }
  if (settles.length > 0) {
    lines.push(
      '## Spread',
      '',
      'Replicas (any role) and leaders per live store, as PD\'s region map shows them once settled; balance seconds are from the start of the phase to the quiet period.',
      '',
      '| moment | live stores | balance s | replicas per store | max/min | leaders per store | max/min | operators still running | regions not fully replicated | regions whose leader reports a live peer down | PD-listed peers their store does not host (regions) | operators in the phase |',
      '|---|---:|---:|---|---:|---|---:|---:|---:|---:|---:|---|',
      ...settles.map(
        (s) =>
          `| ${s.what} | ${s.live.length} | ${Number.isNaN(s.seconds) ? `not quiet in ${c.settleDeadlineMs / 1000} s` : fmt(s.seconds, 1)} | ${counts(s.spread.replicas)} | **${ratioText(s.spread.replicaRatio)}** | ${counts(s.spread.leaders)} | **${ratioText(s.spread.leaderRatio)}** | ${s.running} | ${s.broken} | ${s.liveDown} | ${s.ghost.ghosts} (${s.ghost.regions}) | balance-region ${ops(s.operators, 'balance-region')}; balance-leader ${ops(s.operators, 'balance-leader')}; replica-checker ${ops(s.operators, 'replica-checker')} |`,
      ),
      '',
    );
  }
  return lines.join('\n');
}

/** At most `max` samples, evenly picked, always keeping the last. */
function thin<T>(xs: readonly T[], max: number): T[] {
  if (xs.length <= max) return [...xs];
  const step = xs.length / (max - 1);
  const out: T[] = [];
  for (let i = 0; i < max - 1; i++) out.push(xs[Math.floor(i * step)]!);
  out.push(xs[xs.length - 1]!);
  return out;
}
