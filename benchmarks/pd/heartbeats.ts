/**
 * PD heartbeat handling rate (issue 5): one PD member process; this process plays 5 stores.
 * It joins 5 fake stores (POST /pd/api/v1/join), keeps them up with a store heartbeat each per
 * second, and sends region heartbeats (POST /pd/api/v1/region-heartbeats, 1,024 per request,
 * @flotilla/wire's pd-protocol JSON) for N fake regions that tile the keyspace: epoch version 2
 * (so the first report replaces the founding region), 3 voters on 3 of the 5 stores (the 10
 * possible triples in turn) and the leader rotating over them, so regions and leaders are
 * already balanced and the schedulers find nothing to do. Every request comes from the store
 * that leads its regions. Several requests are in flight at once.
 *
 * Per N (a fresh PD member each):
 * - register round: the first heartbeat of every region (PD persists each new region: one
 *   metadata write per request);
 * - idle window: only store heartbeats, to see what PD costs with N regions and no region
 *   heartbeats (its scheduling passes over all regions);
 * - steady rounds: every region again and again (same epoch: statistics only), for
 *   --seconds; sustained heartbeats/s, PD CPU (utime+stime of its process from /proc) and
 *   heartbeats per PD CPU-second.
 *
 *   node --import tsx benchmarks/pd/heartbeats.ts [--quick] [--sizes=10000,100000] [--in-flight=4] [--seconds=15]
 *
 * Writes benchmarks/pd/HEARTBEATS.md (not with --quick) and prints the same report.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { pdLimits } from '@flotilla/wire';
import { PdProcesses } from '../../test/support/pd.ts';
import { cpuMs, fmt, machineCpuMs, machineLine, rssBytes } from '../cluster/proc.ts';
import { metricSum, pdMetrics, pollUntil, reportHead, sleep } from './pd-view.ts';

const argv = process.argv.slice(2);
const option = (name: string): string | undefined => argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const quick = argv.includes('--quick');
const SIZES = (option('sizes') ?? (quick ? '2000,10000' : '10000,100000')).split(',').map(Number);
const IN_FLIGHT = Number(option('in-flight') ?? 4);
const STEADY_S = Number(option('seconds') ?? (quick ? 5 : 15));
const IDLE_S = quick ? 3 : 6;
const STORES = 5;
const STORE_HEARTBEAT_MS = 1_000;
const BATCH = pdLimits.regionHeartbeatsPerRequestMax;
/** Fake ids far above what PD's allocator hands out during the run. */
const REGION_ID_BASE = 1_000_000;
const PEER_ID_BASE = 10_000_000;
/** PD's own defaults but stores never go down during the run (heartbeats may queue behind region batches). */
const SCHEDULE_CONFIG = { storeDisconnectMs: 600_000, storeDownMs: 3_600_000 };
const PD_ARGS: string[] = [];

const log = (message: string): void => void process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${message}\n`);
const hex = (s: string): string => Buffer.from(s).toString('hex');
const keyOf = (i: number): string => hex(`k${String(i).padStart(7, '0')}`);

/** The 10 triples of 5 stores (indexes into the store id list). */
const TRIPLES: number[][] = [];
for (let a = 0; a < STORES; a++) for (let b = a + 1; b < STORES; b++) for (let c = b + 1; c < STORES; c++) TRIPLES.push([a, b, c]);

interface Batch {
  readonly storeId: number;
  readonly count: number;
  readonly body: Buffer;
}

/** Region heartbeat requests for `n` regions tiling the keyspace, grouped by leader store. */
function buildBatches(n: number, storeIds: readonly number[]): Batch[] {
  const byLeader = new Map<number, unknown[]>(storeIds.map((id) => [id, []]));
  for (let i = 0; i < n; i++) {
    const triple = TRIPLES[i % TRIPLES.length]!;
    const rotate = Math.floor(i / TRIPLES.length) % 3;
    const order = [0, 1, 2].map((k) => triple[(k + rotate) % 3]!);
    const peers = order.map((storeIndex) => ({ id: PEER_ID_BASE + i * 8 + storeIndex, storeId: storeIds[storeIndex]!, role: 'voter' }));
    const id = REGION_ID_BASE + i;
    byLeader.get(peers[0]!.storeId)!.push({
      region: { id, startKey: i === 0 ? '' : keyOf(i), endKey: i === n - 1 ? '' : keyOf(i + 1), epoch: { version: 2, confVer: 1 }, peers },
      leaderPeerId: peers[0]!.id,
      downPeerIds: [],
      pendingPeerIds: [],
      approximateBytes: 0,
      approximateKeys: 0,
      rates: { writeBytes: 0, writeKeys: 0, readBytes: 0, readKeys: 0 },
    });
  }
  const perStore: Batch[][] = [];
  for (const [storeId, beats] of byLeader) {
    const own: Batch[] = [];
    for (let at = 0; at < beats.length; at += BATCH) {
      const heartbeats = beats.slice(at, at + BATCH);
      own.push({ storeId, count: heartbeats.length, body: Buffer.from(JSON.stringify({ storeId, heartbeats })) });
    }
    perStore.push(own);
  }
  // Interleave the stores' batches, as 5 stores reporting at once would.
  const batches: Batch[] = [];
  for (let i = 0; batches.length < perStore.reduce((s, b) => s + b.length, 0); i++) for (const own of perStore) if (own[i]) batches.push(own[i]!);
  return batches;
}

interface Window {
  readonly heartbeats: number;
  readonly requests: number;
  readonly seconds: number;
  readonly pdCpuMs: number;
  readonly clientCpuMs: number;
  readonly othersCpuMs: number;
  readonly latenciesMs: number[];
  readonly commands: number;
  readonly errors: number;
}

interface SizeRow {
  readonly regions: number;
  readonly register: Window;
  readonly idle: Window;
  readonly steady: Window;
  readonly rounds: number;
  readonly pdRssMiB: number;
  readonly pdRegions: number;
  readonly regionHeartbeatsCounted: number;
  /** Operators PD made during the run, by origin (the fake stores never run them). */
  readonly operatorsCreated: string;
}

class FakeStores {
  readonly storeIds: number[] = [];
  private timer: NodeJS.Timeout | null = null;
  private readonly pool: Pool;
  storeHeartbeats = 0;

  constructor(readonly url: string) {
    this.pool = new Pool(url, { connections: IN_FLIGHT + 1, pipelining: 1 });
  }

  async post(pathname: string, body: Buffer | string): Promise<{ status: number; text: string }> {
    const res = await this.pool.request({ method: 'POST', path: `/pd/api/v1${pathname}`, headers: { 'content-type': 'application/json' }, body, headersTimeout: 60_000, bodyTimeout: 60_000 });
    return { status: res.statusCode, text: await res.body.text() };
  }

  async join(): Promise<void> {
    for (let i = 0; i < STORES; i++) {
      const answer = await this.post('/join', JSON.stringify({ clusterId: 1, token: `bench-store-${i}`, raftAddress: `127.0.0.1:${30_001 + i}`, apiAddress: `127.0.0.1:${31_001 + i}`, labels: {} }));
      if (answer.status !== 200) throw new Error(`join answered ${answer.status} ${answer.text}`);
      this.storeIds.push((JSON.parse(answer.text) as { storeId: number }).storeId);
    }
    const beat = async (): Promise<void> => {
      await Promise.all(
        this.storeIds.map(async (storeId) => {
          const answer = await this.post('/store-heartbeat', JSON.stringify({ storeId, capacityBytes: 1e12, availableBytes: 9e11, usedBytes: 1e11, regionCount: 0, leaderCount: 0, rates: { writeBytes: 0, writeKeys: 0, readBytes: 0, readKeys: 0 } }));
          if (answer.status === 200) this.storeHeartbeats++;
        }),
      ).catch(() => undefined);
    };
    await beat();
    this.timer = setInterval(() => void beat(), STORE_HEARTBEAT_MS);
  }

  /** Sends `batches` with IN_FLIGHT requests at once, until `until()` says stop after a whole round. */
  async send(batches: readonly Batch[], pid: number, until: (rounds: number, elapsedMs: number) => boolean): Promise<{ window: Window; rounds: number }> {
    const latenciesMs: number[] = [];
    let heartbeats = 0;
    let requests = 0;
    let commands = 0;
    let errors = 0;
    const pd0 = cpuMs(pid);
    const client0 = process.cpuUsage();
    const machine0 = machineCpuMs();
    const t0 = performance.now();
    let rounds = 0;
    do {
      let next = 0;
      const lane = async (): Promise<void> => {
        while (next < batches.length) {
          const batch = batches[next++]!;
          const sent = performance.now();
          const answer = await this.post('/region-heartbeats', batch.body);
          latenciesMs.push(performance.now() - sent);
          requests++;
          if (answer.status !== 200) {
            errors++;
            if (errors <= 3) log(`region heartbeats answered ${answer.status}: ${answer.text.slice(0, 300)}`);
            continue;
          }
          heartbeats += batch.count;
          commands += (JSON.parse(answer.text) as { commands: unknown[] }).commands.length;
        }
      };
      await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
      rounds++;
    } while (!until(rounds, performance.now() - t0));
    const seconds = (performance.now() - t0) / 1000;
    const pdCpuMs = cpuMs(pid) - pd0;
    const client = process.cpuUsage(client0);
    const clientCpuMs = (client.user + client.system) / 1000;
    const othersCpuMs = machineCpuMs() - machine0 - pdCpuMs - clientCpuMs;
    return { window: { heartbeats, requests, seconds, pdCpuMs, clientCpuMs, othersCpuMs, latenciesMs: latenciesMs.sort((a, b) => a - b), commands, errors }, rounds };
  }

  /** Nothing but the store heartbeats for `seconds`. */
  async idle(pid: number, seconds: number): Promise<Window> {
    const pd0 = cpuMs(pid);
    const client0 = process.cpuUsage();
    const machine0 = machineCpuMs();
    const t0 = performance.now();
    await sleep(seconds * 1000);
    const elapsed = (performance.now() - t0) / 1000;
    const pdCpuMs = cpuMs(pid) - pd0;
    const client = process.cpuUsage(client0);
    const clientCpuMs = (client.user + client.system) / 1000;
    return { heartbeats: 0, requests: 0, seconds: elapsed, pdCpuMs, clientCpuMs, othersCpuMs: machineCpuMs() - machine0 - pdCpuMs - clientCpuMs, latenciesMs: [], commands: 0, errors: 0 };
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.pool.close();
  }
}

async function measureSize(regions: number): Promise<SizeRow> {
  const pd = new PdProcesses(PD_ARGS);
  let stores: FakeStores | undefined;
  try {
    const member = await pd.start(1);
    await pollUntil('PD member 1 to lead', async () => (await pd.leader()) === 1, 60_000);
    await pd.expect(1, 'PUT', '/pd/api/v1/config', SCHEDULE_CONFIG);
    stores = new FakeStores(member.url);
    await stores.join();
    const pid = member.child.pid!;
    const batches = buildBatches(regions, stores.storeIds);
    log(`${fmt(regions)} regions: ${batches.length} requests of up to ${BATCH} heartbeats (${(batches.reduce((s, b) => s + b.body.length, 0) / 2 ** 20).toFixed(1)} MiB a round)`);
    const register = await stores.send(batches, pid, (rounds) => rounds >= 1);
    log(`register: ${fmt(register.window.heartbeats / register.window.seconds)} heartbeats/s, PD CPU ${fmt(register.window.pdCpuMs)} ms`);
    const known = (await pd.expect<{ regions: number }>(1, 'GET', '/pd/api/v1/cluster')).regions;
    const idle = await stores.idle(pid, IDLE_S);
    log(`idle: PD CPU ${fmt((idle.pdCpuMs / (idle.seconds * 1000)) * 100, 1)}% of a core`);
    const metrics0 = await pdMetrics(pd, 1);
    const steady = await stores.send(batches, pid, (rounds, elapsedMs) => rounds >= 2 && elapsedMs >= STEADY_S * 1000);
    const metrics1 = await pdMetrics(pd, 1);
    log(`steady: ${fmt(steady.window.heartbeats / steady.window.seconds)} heartbeats/s over ${steady.rounds} rounds, PD CPU ${fmt((steady.window.pdCpuMs / (steady.window.seconds * 1000)) * 100)}%`);
    const counted = metricSum(metrics1, 'flotilla_pd_heartbeats_total', { kind: 'region' }) - metricSum(metrics0, 'flotilla_pd_heartbeats_total', { kind: 'region' });
    return {
      regions,
      register: register.window,
      idle,
      steady: steady.window,
      rounds: steady.rounds,
      pdRssMiB: rssBytes(pid) / 2 ** 20,
      pdRegions: known,
      regionHeartbeatsCounted: counted,
      operatorsCreated: ['replica-checker', 'split-checker', 'merge-checker', 'balance-region', 'balance-leader', 'hot-region']
        .map((origin) => [origin, metricSum(metrics1, 'flotilla_pd_operators_total', { origin, outcome: 'created' })] as const)
        .filter(([, n]) => n > 0)
        .map(([origin, n]) => `${n} ${origin}`)
        .join(', ') || '0',
    };
  } finally {
    await stores?.close();
    await pd.close();
  }
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const command = `node --import tsx benchmarks/pd/heartbeats.ts ${argv.join(' ')}`.trim();
  log(`machine: ${machineLine()}; ${command}`);
  const rows: SizeRow[] = [];
  for (const size of SIZES) rows.push(await measureSize(size));
  const text = report(startedAt, command, rows);
  process.stdout.write(text);
  if (!quick) writeFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), 'HEARTBEATS.md'), text);
}

function report(startedAt: Date, command: string, rows: readonly SizeRow[]): string {
  const rate = (w: Window): number => w.heartbeats / w.seconds;
  const cpuPct = (ms: number, w: Window): number => (ms / (w.seconds * 1000)) * 100;
  const perCpuS = (w: Window): number => w.heartbeats / (w.pdCpuMs / 1000);
  const p = (w: Window, q: number): number => w.latenciesMs[Math.min(w.latenciesMs.length - 1, Math.floor(q * w.latenciesMs.length))] ?? NaN;
  const windowRow = (r: SizeRow, what: string, w: Window): string =>
    `| ${fmt(r.regions)} | ${what} | ${fmt(w.seconds, 1)} | ${fmt(w.heartbeats)} | **${fmt(rate(w))}** | ${fmt(cpuPct(w.pdCpuMs, w))} | **${fmt(perCpuS(w))}** | ${fmt(p(w, 0.5))} / ${fmt(p(w, 0.99))} | ${fmt(cpuPct(w.clientCpuMs, w))} | ${fmt(cpuPct(w.othersCpuMs, w))} | ${w.errors} |`;
  const lines = [
    ...reportHead('PD heartbeat handling benchmark', startedAt, command),
    `- config: one PD member process (\`packages/pd/src/main.ts\`, tick 50 ms, schedule interval 1,000 ms, default schedule config but storeDisconnectMs ${SCHEDULE_CONFIG.storeDisconnectMs} / storeDownMs ${SCHEDULE_CONFIG.storeDownMs}, every checker and scheduler on), RocksDB metadata log (fsync on); this process plays ${STORES} stores over HTTP/1.1 (undici, ${IN_FLIGHT} region-heartbeat requests in flight, ${BATCH} heartbeats per request, one store heartbeat per store per ${STORE_HEARTBEAT_MS} ms); regions of empty size, 3 voters each, regions and leaders spread evenly; request bodies built once before sending (the client's JSON cost is not in the figures)`,
    `- PD CPU: utime + stime of the PD process from /proc/<pid>/stat over the window (all its threads: main, RocksDB, log appender); "others" is the rest of the machine's CPU (other processes: the machine is shared)`,
    '',
    '| regions | window | s | region heartbeats | heartbeats/s | PD CPU % of a core | heartbeats per PD CPU-second | request ms p50 / p99 | client CPU % | others CPU % | errors |',
    '|---:|---|---:|---:|---:|---:|---:|---|---:|---:|---:|',
  ];
  for (const r of rows) {
    lines.push(windowRow(r, 'register (first report of each region: persisted)', r.register));
    lines.push(`| ${fmt(r.regions)} | idle (store heartbeats only) | ${fmt(r.idle.seconds, 1)} | 0 | 0 | ${fmt(cpuPct(r.idle.pdCpuMs, r.idle), 1)} | — | — | ${fmt(cpuPct(r.idle.clientCpuMs, r.idle))} | ${fmt(cpuPct(r.idle.othersCpuMs, r.idle))} | 0 |`);
    lines.push(windowRow(r, `steady (${r.rounds} rounds over every region)`, r.steady));
  }
  lines.push('', '| regions | PD knows (after register) | PD counted region heartbeats in the steady window | operators PD created | commands answered | PD RSS MiB at the end | steady rate net of the idle CPU (heartbeats per CPU-second) |', '|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const netCpuS = (r.steady.pdCpuMs - (r.idle.pdCpuMs / r.idle.seconds) * r.steady.seconds) / 1000;
    lines.push(`| ${fmt(r.regions)} | ${fmt(r.pdRegions)} | ${fmt(r.regionHeartbeatsCounted)} | ${r.operatorsCreated} | ${r.register.commands + r.steady.commands} | ${fmt(r.pdRssMiB)} | ${fmt(r.steady.heartbeats / netCpuS)} |`);
  }
  lines.push('');
  return lines.join('\n');
}

await main();
