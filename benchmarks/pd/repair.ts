/**
 * PD repair and spread (issue 5): one (or three) PD member processes and 5 store processes
 * placed by PD (started with --pd, no --store-id). The benchmark splits the keyspace into
 * 1,000 regions through PD's manual operator API, lets the balance schedulers spread them,
 * then SIGKILLs one store and measures how long PD takes to give every region 3 voters on live
 * stores again, and at what rate operators finish. Then a 6th store joins, and a second store
 * is SIGKILLed, this time with the benchmark cancelling (through the API) every operator that
 * leads into the dead store once PD lists it disconnected — what PD does not do by itself.
 * Region and leader spread (max/min over the live stores) is measured whenever the cluster
 * settles: before the first kill, after each repair, after the join. At each of those points
 * the benchmark also asks every live store which replicas it really hosts, and counts the peers
 * PD lists that their store does not host (a voter added without ever receiving its data).
 *
 *   node --import tsx benchmarks/pd/repair.ts [--quick] [--pd-members=1|3] [--regions=1000]
 *     [--down-ms=5000] [--replica-limit=256] [--store-op-limit=64] [--no-join] [--report=REPAIR.md]
 *
 * Splits: key layout r00000…r99999 (5 digits). Region 1 covers all keys; every round splits
 * every region (one operator per region: PD's split step carries one key) at the middle of
 * its share of 0…99,999, until there are --regions regions: ~10 rounds for 1,000. The regions
 * hold no data. The balance schedulers are paused while splitting (they would take the same
 * regions), then resumed. The merge checker and the hot-region scheduler are off (empty
 * regions would otherwise be merge candidates; the store cannot merge yet).
 *
 * Writes benchmarks/pd/REPAIR.md (not with --quick) and prints the same report.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { ProcessCluster } from '../../test/support/cluster.ts';
import { PdProcesses } from '../../test/support/pd.ts';
import { cpuMs, machineCpuMs, machineLine } from '../cluster/proc.ts';
import {
  fullyReplicated,
  metricSum,
  pdMetrics,
  pdRegions,
  pdStores,
  pollUntil,
  runningOperators,
  sleep,
  spreadOf,
  type PdRegion,
  type Spread,
} from './pd-view.ts';
import { report, type RepairMode, type RepairResult, type RoundRow, type SettleRow } from './repair-report.ts';

const argv = process.argv.slice(2);
const flag = (name: string, fallback: number): number => Number(argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);
const quick = argv.includes('--quick');
const join = !argv.includes('--no-join');
/** The report's file name next to this file. */
const REPORT_FILE = argv.find((a) => a.startsWith('--report='))?.split('=')[1] ?? 'REPAIR.md';
const PD_MEMBERS = flag('pd-members', 1);
const REGIONS = flag('regions', quick ? 128 : 1_000);
const STORES = 5;
const DOWN_MS = flag('down-ms', 5_000);
const DISCONNECT_MS = Math.min(2_000, DOWN_MS - 1);
const REPLICA_LIMIT = flag('replica-limit', 256);
const STORE_OP_LIMIT = flag('store-op-limit', 64);
const REGION_LIMIT = flag('region-limit', 64);
const LEADER_LIMIT = flag('leader-limit', 64);
const SCHEDULER_INTERVAL_MS = 200;
const PD_ARGS = ['--schedule-interval-ms', '100'];
const STORE_ARGS = ['--store-heartbeat-ms', '300', '--region-heartbeat-ms', '1000'];
const TICK_MS = 50;
/** Keys r00000…r99999: region boundaries are picked from this integer space. */
const KEY_SPACE = 100_000;
/** Split requests in flight at once. */
const SPLIT_CONCURRENCY = 16;
/** No running operator and every region fully replicated for this long: settled. */
const QUIET_MS = 3_000;
const POLL_MS = 250;
const PHASE_DEADLINE_MS = 600_000;
/** A settle phase gives up (and reports the cluster as it is) after this long. */
const SETTLE_DEADLINE_MS = 120_000;
/** The benchmark gives up on a repair this long after the kill and reports what is left. */
const REPAIR_DEADLINE_S = DOWN_MS / 1000 + 90;
/** FLOTILLA_BENCH_DEBUG=1: log regions that stay broken during the repair, with their operator. */
const DEBUG = process.env.FLOTILLA_BENCH_DEBUG === '1';

const SCHEDULE_CONFIG = {
  maxReplicas: 3,
  storeDisconnectMs: DISCONNECT_MS,
  storeDownMs: DOWN_MS,
  replicaScheduleLimit: REPLICA_LIMIT,
  regionScheduleLimit: REGION_LIMIT,
  leaderScheduleLimit: LEADER_LIMIT,
  storeOperatorLimit: STORE_OP_LIMIT,
  checkers: { mergeChecker: { enabled: false } },
  schedulers: {
    balanceRegion: { enabled: false, intervalMs: SCHEDULER_INTERVAL_MS },
    balanceLeader: { enabled: false, intervalMs: SCHEDULER_INTERVAL_MS },
    hotRegion: { enabled: false },
  },
};

const log = (message: string): void => void process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${message}\n`);
const hex = (s: string): string => Buffer.from(s).toString('hex');
const keyOf = (n: number): string => hex(`r${String(n).padStart(5, '0')}`);

/** The first `count - 1` split keys of the binary split tree over 0…KEY_SPACE, breadth first. */
function splitKeysBreadthFirst(count: number): string[] {
  const keys: string[] = [];
  const queue: [number, number][] = [[0, KEY_SPACE]];
  while (keys.length < count - 1) {
    const [lo, hi] = queue.shift()!;
    const mid = Math.floor((lo + hi) / 2);
    keys.push(keyOf(mid));
    queue.push([lo, mid], [mid, hi]);
  }
  return keys;
}

interface OperatorView {
  readonly operator: { readonly id: number; readonly regionId: number; readonly origin: string; readonly steps: readonly Record<string, unknown>[]; readonly createdMs: number };
  readonly step: number;
}

/** Whether one of the operator's steps adds a peer on `storeId` or hands it leadership. */
function leadsInto(op: OperatorView['operator'], storeId: number): boolean {
  return op.steps.some(
    (s) =>
      (s['type'] === 'transferLeader' && s['toStoreId'] === storeId) ||
      (s['type'] === 'addLearner' && s['storeId'] === storeId) ||
      (s['type'] === 'changeVoters' && (s['promote'] as { storeId: number }[]).some((p) => p.storeId === storeId)),
  );
}

class Bench {
  readonly pd = new PdProcesses(PD_ARGS);
  readonly cluster = new ProcessCluster({ tickMs: TICK_MS, pd: () => [...this.pd.members.values()].map((m) => m.url), args: STORE_ARGS });
  leader = 1;

  live(): Set<number> {
    return new Set(this.cluster.stores.keys());
  }

  regions(): Promise<PdRegion[]> {
    return pdRegions(this.pd, this.leader);
  }

  async operatorCounts(): Promise<Map<string, number>> {
    const text = await pdMetrics(this.pd, this.leader);
    const counts = new Map<string, number>();
    for (const origin of ['admin', 'replica-checker', 'balance-region', 'balance-leader']) {
      for (const outcome of ['created', 'finished', 'timedOut', 'stale', 'cancelled']) counts.set(`${origin}/${outcome}`, metricSum(text, 'flotilla_pd_operators_total', { origin, outcome }));
    }
    return counts;
  }

  /**
   * Voters and learners PD lists on a live store that the store does not host (no replica, or
   * only a placeholder waiting for its first snapshot), from every live store's admin API.
   */
  async ghosts(regions: readonly PdRegion[]): Promise<{ ghosts: number; regions: number; example: string }> {
    const hosted = new Set<string>();
    for (const store of this.cluster.stores.values()) {
      let after = 0;
      for (;;) {
        const page = await this.cluster.expectAdmin<{ regions: { id: number; peerId: number; placeholder: boolean }[]; next: number | null }>(store.id, 'GET', `/v1/admin/regions?after=${after}&limit=10000`);
        for (const r of page.regions) if (!r.placeholder) hosted.add(`${r.id}/${r.peerId}`);
        if (page.next === null) break;
        after = page.next;
      }
    }
    let ghosts = 0;
    let affected = 0;
    let example = '';
    for (const region of regions) {
      const missing = region.peers.filter((p) => this.cluster.stores.has(p.storeId) && !hosted.has(`${region.id}/${p.id}`));
      ghosts += missing.length;
      if (missing.length > 0) {
        affected++;
        example ||= `region ${region.id}: PD lists peer ${missing[0]!.id} (${missing[0]!.role}) on store ${missing[0]!.storeId}, which does not host it`;
      }
    }
    return { ghosts, regions: affected, example };
  }

  async startPd(): Promise<void> {
    await this.pd.start(1);
    await pollUntil('PD member 1 to lead', async () => (await this.pd.leader()) === 1, 60_000);
    for (let id = 2; id <= PD_MEMBERS; id++) await this.pd.start(id);
    if (PD_MEMBERS > 1) {
      await pollUntil(`${PD_MEMBERS} PD voters`, async () => (await this.pd.expect<{ voters: number[] }>(1, 'GET', '/pd/api/v1/members')).voters.length === PD_MEMBERS, 60_000);
    }
    this.leader = (await this.pd.leader())!;
    await this.pd.expect(this.leader, 'PUT', '/pd/api/v1/config', SCHEDULE_CONFIG);
  }

  /** Splits in rounds until REGIONS regions, each fully replicated; one row per round. */
  async split(): Promise<RoundRow[]> {
    const wanted = splitKeysBreadthFirst(REGIONS);
    const order = new Map(wanted.map((k, i) => [k, i]));
    const sorted = [...wanted].sort();
    const rows: RoundRow[] = [];
    for (let round = 1; round <= 40; round++) {
      const before = await this.regions();
      if (before.length >= REGIONS) return rows;
      const started = performance.now();
      const splits: { regionId: number; key: string }[] = [];
      for (const region of before) {
        // The wanted key inside the region that is highest in the split tree: its middle.
        let best: string | undefined;
        for (const key of sorted) {
          if (key <= region.startKey) continue;
          if (region.endKey !== '' && key >= region.endKey) break;
          if (best === undefined || order.get(key)! < order.get(best)!) best = key;
        }
        if (best !== undefined) splits.push({ regionId: region.id, key: best });
      }
      if (splits.length === 0) {
        // A new region of the last round is not reported yet (the gap after its parent's report).
        await sleep(1_000);
        continue;
      }
      const finished0 = (await this.operatorCounts()).get('admin/finished')!;
      let refused = 0;
      for (let at = 0; at < splits.length; at += SPLIT_CONCURRENCY) {
        await Promise.all(
          splits.slice(at, at + SPLIT_CONCURRENCY).map(async ({ regionId, key }) => {
            const answer = await this.pd.call(this.leader, 'POST', '/pd/api/v1/operators', { type: 'split', regionId, keys: [key] });
            if (answer.status !== 201) {
              refused++;
              log(`split of region ${regionId} refused: ${answer.status} ${JSON.stringify(answer.body)}`);
            }
          }),
        );
      }
      let after: PdRegion[] = before;
      await pollUntil(
        `split round ${round} to finish`,
        async () => {
          // Posted operators are registered when POST answers 201: none running means all ended.
          if ((await runningOperators(this.pd, this.leader)) > 0) return false;
          const counts = await this.operatorCounts();
          after = await this.regions();
          const finished = counts.get('admin/finished')! - finished0;
          const live = this.live();
          return after.length >= before.length + finished && after.every((r) => fullyReplicated(r, live));
        },
        PHASE_DEADLINE_MS,
        POLL_MS,
      );
      const row = { round, regionsBefore: before.length, posted: splits.length - refused, refused, regionsAfter: after.length, seconds: (performance.now() - started) / 1000 };
      rows.push(row);
      log(`split round ${round}: ${row.regionsBefore} -> ${row.regionsAfter} regions in ${row.seconds.toFixed(1)} s (${row.posted} splits, ${refused} refused)`);
    }
    throw new Error(`still fewer than ${REGIONS} regions after 40 split rounds`);
  }

  /**
   * Waits until no operator runs and every region is fully replicated on live stores for
   * QUIET_MS; seconds until the start of that quiet period.
   */
  async settle(what: string): Promise<SettleRow> {
    const counts0 = await this.operatorCounts();
    const started = performance.now();
    let quietSince: number | null = null;
    let regions: PdRegion[] = [];
    let last = '';
    let running = 0;
    let broken = 0;
    await pollUntil(
      `${what}: settled`,
      async () => {
        running = await runningOperators(this.pd, this.leader);
        regions = await this.regions();
        const live = this.live();
        broken = regions.filter((r) => !fullyReplicated(r, live)).length;
        // Quiet: no operator started or ended, and the same regions broken (normally none).
        const state = `${[...(await this.operatorCounts()).values()].join(',')}/${running}/${broken}`;
        const now = performance.now();
        quietSince = state === last ? (quietSince ?? now) : null;
        last = state;
        return quietSince !== null && now - quietSince >= QUIET_MS;
      },
      SETTLE_DEADLINE_MS,
      500,
    ).catch((err: unknown) => {
      // Operators that never end (see REPAIR.md) keep the cluster from going quiet: report as is.
      log(`${what}: ${String(err)}`);
      quietSince = Number.NaN;
    });
    const counts1 = await this.operatorCounts();
    const operators = new Map([...counts1].map(([k, v]) => [k, v - counts0.get(k)!]));
    const live = [...this.live()].sort((a, b) => a - b);
    const peerStore = (r: PdRegion, id: number): number | undefined => r.peers.find((p) => p.id === id)?.storeId;
    const liveDown = regions.filter((r) => r.downPeerIds.some((id) => live.includes(peerStore(r, id) ?? 0))).length;
    const livePending = regions.filter((r) => r.pendingPeerIds.some((id) => live.includes(peerStore(r, id) ?? 0))).length;
    const ghost = await this.ghosts(regions);
    const row = { what, liveDown, livePending, ghost, running, broken, seconds: (quietSince! - started) / 1000, operators, spread: spreadOf(regions, live), live };
    log(`${what}: settled in ${row.seconds.toFixed(1)} s; ${running} operators still running, ${broken} regions not fully replicated, ${liveDown} regions report a live peer down, ${livePending} pending, ${ghost.regions} regions with ${ghost.ghosts} peers their store does not host (${ghost.example}); replicas ${[...row.spread.replicas.values()].join('/')}, leaders ${[...row.spread.leaders.values()].join('/')}`);
    return row;
  }

  /** SIGKILLs the store holding the most replicas (then leaders) and waits for the repair. */
  async repair(spread: Spread, mode: RepairMode): Promise<RepairResult> {
    const victim = [...spread.replicas.keys()].sort((a, b) => spread.replicas.get(b)! - spread.replicas.get(a)! || spread.leaders.get(b)! - spread.leaders.get(a)! || a - b)[0]!;
    const liveBefore = this.cluster.stores.size;
    const counts0 = await this.operatorCounts();
    const killedAtMs = Date.now();
    let cancelled = 0;
    const doomed = new Map<number, string>();
    const pdPids = [...this.pd.members.values()].map((m) => m.child.pid!);
    const storePids = [...this.cluster.stores.values()].filter((s) => s.id !== victim).map((s) => s.child.pid!);
    const cpu0 = { pd: pdPids.reduce((s, p) => s + cpuMs(p), 0), stores: storePids.reduce((s, p) => s + cpuMs(p), 0), machine: machineCpuMs() };
    const killedAt = performance.now();
    await this.cluster.kill9(victim);
    log(`store ${victim} killed (${spread.replicas.get(victim)} replicas, ${spread.leaders.get(victim)} leaders)`);
    const since = (): number => (performance.now() - killedAt) / 1000;
    let disconnectedS = NaN;
    let downS = NaN;
    let firstRepairS = NaN;
    const timeline: RepairResult['timeline'] = [];
    let lastSampleS = -Infinity;
    const live = this.live();
    let unrepaired = 0;
    await pollUntil(
      'every region back to 3 voters on live stores',
      async () => {
        const t = since();
        const state = (await pdStores(this.pd, this.leader)).find((s) => s.id === victim)?.state;
        if (state === 'disconnected' && Number.isNaN(disconnectedS)) disconnectedS = t;
        if (state === 'down') {
          if (Number.isNaN(disconnectedS)) disconnectedS = t;
          if (Number.isNaN(downS)) downS = t;
        }
        const running = (await this.pd.expect<{ operators: OperatorView[] }>(this.leader, 'GET', '/pd/api/v1/operators')).operators;
        for (const { operator: op } of running) {
          if (!leadsInto(op, victim)) continue;
          if (!doomed.has(op.id)) doomed.set(op.id, `${op.origin}: ${op.steps.map((st) => st['type']).join(' → ')} (region ${op.regionId}, created ${((op.createdMs - killedAtMs) / 1000).toFixed(1)} s after the kill)`);
          if (mode === 'doomed cancelled' && state !== 'up') {
            const answer = await this.pd.call(this.leader, 'DELETE', `/pd/api/v1/operators/${op.regionId}`);
            if (answer.status === 200) cancelled++;
          }
        }
        const counts = await this.operatorCounts();
        const finished = counts.get('replica-checker/finished')! - counts0.get('replica-checker/finished')!;
        if (Number.isNaN(firstRepairS) && counts.get('replica-checker/created')! > counts0.get('replica-checker/created')!) firstRepairS = t;
        const brokenRegions = (await this.regions()).filter((r) => !fullyReplicated(r, live));
        const broken = brokenRegions.length;
        if (DEBUG && t - lastSampleS >= 1 && broken > 0 && broken === timeline.at(-1)?.broken && t > DOWN_MS / 1000 + 3) {
          const ops = await this.pd.expect<{ operators: { operator: { regionId: number; steps: unknown[]; createdMs: number }; step: number }[] }>(this.leader, 'GET', '/pd/api/v1/operators');
          for (const r of brokenRegions.slice(0, 2)) {
            const op = ops.operators.find((o) => o.operator.regionId === r.id);
            log(`stuck region ${JSON.stringify(r)} operator ${JSON.stringify(op)}`);
          }
        }
        if (t - lastSampleS >= 1 || broken === 0) {
          timeline.push({ t, broken, finished });
          lastSampleS = t;
          log(`repair +${t.toFixed(1)} s: ${broken} regions not fully replicated, ${finished} repair operators finished, store ${victim} ${state}`);
        }
        unrepaired = broken;
        return broken === 0 || t > REPAIR_DEADLINE_S;
      },
      PHASE_DEADLINE_MS,
      POLL_MS,
    );
    const repairedS = unrepaired === 0 ? since() : NaN;
    if (DEBUG) {
      for (const store of this.cluster.stores.values()) {
        const lines = store.logs.filter((l) => /snapshot/i.test(l) && !/"outcome":"finish/.test(l));
        log(`store ${store.id}: ${lines.length} snapshot log lines kept; last: ${lines.slice(-3).join(' | ').slice(0, 1500)}`);
      }
    }
    const finalRegions = await this.regions();
    const ghostAfter = await this.ghosts(finalRegions);
    const stuck = finalRegions.filter((r) => !fullyReplicated(r, live));
    const stuckExample = stuck.slice(0, 3).map((r) => `region ${r.id}: peers ${r.peers.map((p) => `${p.id}@s${p.storeId}${p.role === 'learner' ? ' (learner)' : ''}`).join(', ')}, leader ${r.leader ? `s${r.leader.storeId}` : 'none'}, down ${JSON.stringify(r.downPeerIds)}`);
    const elapsedMs = performance.now() - killedAt;
    const cpu1 = { pd: pdPids.reduce((s, p) => s + cpuMs(p), 0), stores: storePids.reduce((s, p) => s + cpuMs(p), 0), machine: machineCpuMs() };
    const counts1 = await this.operatorCounts();
    const delta = (k: string): number => counts1.get(k)! - counts0.get(k)!;
    let peak = 0;
    for (let i = 0; i < timeline.length; i++) {
      const j = timeline.findIndex((s) => s.t >= timeline[i]!.t + 1);
      if (j > i) peak = Math.max(peak, (timeline[j]!.finished - timeline[i]!.finished) / (timeline[j]!.t - timeline[i]!.t));
    }
    const history = (await this.pd.expect<{ history: { atMs: number; event: string; operatorId: number; origin: string }[] }>(this.leader, 'GET', '/pd/api/v1/history?limit=4096')).history;
    const createdAt = new Map(history.filter((h) => h.event === 'created' && h.origin === 'replica-checker' && h.atMs >= killedAtMs).map((h) => [h.operatorId, h.atMs]));
    const durationsS = history
      .filter((h) => h.event === 'finished' && createdAt.has(h.operatorId))
      .map((h) => (h.atMs - createdAt.get(h.operatorId)!) / 1000)
      .sort((a, b) => a - b);
    const pdMs = cpu1.pd - cpu0.pd;
    const storesMs = cpu1.stores - cpu0.stores;
    return {
      unrepaired,
      stuckExample,
      ghostAfter,
      mode,
      liveBefore,
      cancelled,
      durationsS,
      doomed: [...doomed.values()],
      victim,
      victimReplicas: spread.replicas.get(victim)!,
      victimLeaders: spread.leaders.get(victim)!,
      disconnectedS,
      downS,
      firstRepairS,
      repairedS,
      created: delta('replica-checker/created'),
      finished: delta('replica-checker/finished'),
      timedOut: delta('replica-checker/timedOut'),
      stale: delta('replica-checker/stale'),
      balanceCreated: delta('balance-region/created') + delta('balance-leader/created'),
      peakFinishedPerS: peak,
      timeline,
      cpuPct: {
        pd: (pdMs / elapsedMs) * 100,
        stores: (storesMs / elapsedMs) * 100,
        others: ((cpu1.machine - cpu0.machine - pdMs - storesMs) / elapsedMs) * 100,
      },
    };
  }

  async close(): Promise<void> {
    try {
      await this.cluster.close();
    } finally {
      await this.pd.close();
    }
  }
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const command = `node --import tsx benchmarks/pd/repair.ts ${argv.join(' ')}`.trim();
  log(`machine: ${machineLine()}; ${command}`);
  const bench = new Bench();
  const phases: { what: string; seconds: number }[] = [];
  let rounds: RoundRow[] = [];
  const settles: SettleRow[] = [];
  const repairs: RepairResult[] = [];
  let failure: unknown;
  try {
    let t = performance.now();
    const lap = (what: string): void => {
      phases.push({ what, seconds: (performance.now() - t) / 1000 });
      t = performance.now();
    };
    await bench.startPd();
    for (let i = 0; i < STORES; i++) await bench.cluster.startNewStore();
    await pollUntil('region 1 on 3 voters', async () => {
      const all = await bench.regions();
      return all.length === 1 && fullyReplicated(all[0]!, bench.live());
    }, 120_000);
    lap(`${PD_MEMBERS} PD member(s) and ${STORES} stores started, region 1 on 3 voters`);
    rounds = await bench.split();
    lap(`split into ${REGIONS} regions (${rounds.length} rounds, balance paused)`);
    await bench.pd.expect(bench.leader, 'PUT', '/pd/api/v1/config', { schedulers: { balanceRegion: { enabled: true }, balanceLeader: { enabled: true } } });
    settles.push(await bench.settle(`${REGIONS} regions balanced over ${STORES} stores`));
    lap('balance resumed until settled (+3 s quiet)');
    repairs.push(await bench.repair(settles.at(-1)!.spread, 'as shipped'));
    lap(`store ${repairs.at(-1)!.victim} killed until every region has 3 voters on live stores (as shipped)`);
    settles.push(await bench.settle(`after the repair, ${STORES - 1} live stores`));
    lap('balance after the repair until settled (+3 s quiet)');
    if (join) {
      const fresh = await bench.cluster.startNewStore();
      log(`store ${fresh.id} joined`);
      settles.push(await bench.settle(`store ${fresh.id} joined: ${STORES} live stores`));
      lap('a 6th store joined until settled (+3 s quiet)');
      repairs.push(await bench.repair(settles.at(-1)!.spread, 'doomed cancelled'));
      lap(`store ${repairs.at(-1)!.victim} killed until every region has 3 voters on live stores (doomed operators cancelled)`);
      settles.push(await bench.settle(`after the second repair, ${STORES - 1} live stores`));
      lap('balance after the second repair until settled (+3 s quiet)');
    }
  } catch (err) {
    failure = err;
  } finally {
    await bench.close().catch((err: unknown) => {
      failure ??= err;
    });
  }
  const text = report({ startedAt, command, phases, rounds, settles, repairs, failure }, {
    pdMembers: PD_MEMBERS,
    pdArgs: PD_ARGS,
    stores: STORES,
    storeArgs: STORE_ARGS,
    tickMs: TICK_MS,
    regions: REGIONS,
    scheduleConfig: SCHEDULE_CONFIG,
    schedulerIntervalMs: SCHEDULER_INTERVAL_MS,
    quietMs: QUIET_MS,
    disconnectMs: DISCONNECT_MS,
    downMs: DOWN_MS,
    repairDeadlineS: REPAIR_DEADLINE_S,
    settleDeadlineMs: SETTLE_DEADLINE_MS,
  });
  process.stdout.write(text);
  if (!quick && failure === undefined) writeFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), REPORT_FILE), text);
  if (failure !== undefined) throw failure;
}

await main();
