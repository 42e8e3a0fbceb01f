/**
 * Write throughput of a 3-store cluster of real processes (RocksDB with fsync, TCP, HTTP) as
 * the number of regions taking writes grows: 1, 16, 256 and 4,096. Every region has a voter
 * on each store; leaderships are balanced first (about a third per store, as the placement
 * driver's balance-leader scheduler will do). The client batches: each request carries
 * OPS_PER_REQUEST puts for the regions one store leads, and LANES requests are in flight.
 *
 *   node --import tsx benchmarks/cluster/write.ts [--quick] [--seconds=8] [--active=4096] [--api-tls]
 *
 * `--api-tls`: the stores' API is HTTPS with client certificates (--api-tls-*, the test
 * credentials of test/support/tls) and the load generator presents one: what HTTPS costs.
 *
 * Profiling the stores: FLOTILLA_CLUSTER_PROFILE_DIR=/tmp/prof (test/support/cluster.ts).
 *
 * Target (issue 4): the curve rises with regions until the cores saturate, not falls.
 */
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import { decodeKvResponse, encodeKvRequest, type KvOp, type KvRequest } from '@flotilla/wire';
import { ProcessCluster, waitFor, type StoreHandle } from '../../test/support/cluster.ts';
import { tlsCredentials, tlsFiles } from '../../test/support/tls.ts';
import { curveVerdict } from './curve.ts';
import { cpuMs, fmt, machineCpuMs, machineLine, pctCell, runQueueWaitedMs, scrape, threadRunQueueWaits, useStoreMallocEnv } from './proc.ts';

const quick = process.argv.includes('--quick');
const apiTls = process.argv.includes('--api-tls');
const seconds = Number(process.argv.find((a) => a.startsWith('--seconds='))?.split('=')[1] ?? (quick ? 3 : 8));
const WARMUP_S = quick ? 1 : 2;
const WARMUP_REQUESTS_PER_LANE = 3;
const REGIONS = 4_096;
/** `--active=4096` (comma-separated) measures only those points (profiling one load). */
const ACTIVE = (process.argv.find((a) => a.startsWith('--active='))?.split('=')[1]?.split(',').map(Number) ?? [1, 16, 256, REGIONS]).filter((n) => n >= 1 && n <= REGIONS);
/** Leadership transfers in flight at once while balancing (each waits until its target leads). */
const BALANCE_CONCURRENCY = 32;
const BALANCE_ROUNDS = 5;
const STORES = [1, 2, 3];
const OPS_PER_REQUEST = 64;
const LANES = 48;
const BOOTSTRAP_CHUNK = 2_000;
const VALUE_BYTES = 128;
const TICK_MS = 100;
const CONNECTIONS_PER_STORE = 32;

const encoder = new TextEncoder();
const hex = (s: string): string => Buffer.from(s).toString('hex');
const pad = (i: number): string => String(i).padStart(6, '0');
const regionIdOf = (i: number): number => 10_000 + i;

interface Row {
  readonly regions: number;
  readonly opsPerS: number;
  readonly requestsPerS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly refused: number;
  readonly storeCpuPct: number;
  /**
   * Per store, % of the window its main thread (the whole ready loop) was runnable but waiting
   * for a core: how short of cores the stores were (NaN where the kernel keeps no schedstat).
   */
  readonly storeMainThreadWaitPct: readonly number[];
  readonly clientCpuPct: number;
  readonly machineCpuPct: number;
  readonly logWritesPerS: number;
  /**
   * Raft messages the stores sent per put measured (heartbeats included): 4 is one entry per
   * put (an append to each follower and its answer), less is puts sharing entries.
   */
  readonly messagesPerPut: number;
  readonly leadersPerStore: number[];
}

function region(i: number): unknown {
  const id = regionIdOf(i);
  return {
    id,
    startKey: i === 0 ? '' : hex(`w${pad(i)}`),
    endKey: i === REGIONS - 1 ? '' : hex(`w${pad(i + 1)}`),
    epoch: { version: 1, confVer: 1 },
    peers: STORES.map((storeId) => ({ id: id * 10 + storeId, storeId, role: 'voter' })),
  };
}

/** Region index → the store whose replica leads it, for regions 0..count-1. */
async function leaders(cluster: ProcessCluster, count: number): Promise<Map<number, number>> {
  const led = new Map<number, number>();
  for (const store of cluster.stores.values()) {
    let after = 0;
    for (;;) {
      const page = await cluster.expectAdmin<{ regions: { id: number; role: string }[]; next: number | null }>(store.id, 'GET', `/v1/admin/regions?after=${after}&limit=10000`);
      for (const r of page.regions) if (r.role === 'leader' && r.id - regionIdOf(0) < count) led.set(r.id - regionIdOf(0), store.id);
      if (page.next === null) break;
      after = page.next;
    }
  }
  return led;
}

/**
 * What the placement driver's balance-leader scheduler will do: moves leaderships until each
 * store leads about a third of the regions. Elections favour whichever store started first,
 * which would otherwise measure one store's CPU, not the cluster's. Region i goes to store
 * STORES[i % 3], so every measured prefix (1, 16, 256 regions) is balanced too. Transfers go
 * through the admin API of the current leader (peer id of region r on store s is r*10+s), at
 * most BALANCE_CONCURRENCY at once; one that fails is retried in the next round.
 */
async function balanceLeaders(cluster: ProcessCluster): Promise<Map<number, number>> {
  let led = await leaders(cluster, REGIONS);
  for (let round = 0; round < BALANCE_ROUNDS; round++) {
    const moves: { index: number; from: number; to: number }[] = [];
    for (const [index, from] of led) {
      const to = STORES[index % STORES.length]!;
      if (from !== to) moves.push({ index, from, to });
    }
    if (moves.length === 0) break;
    let next = 0;
    let failed = 0;
    const worker = async (): Promise<void> => {
      while (next < moves.length) {
        const { index, from, to } = moves[next++]!;
        const id = regionIdOf(index);
        const answer = await cluster.admin(from, 'POST', `/v1/admin/regions/${id}/transfer-leader`, { toPeerId: id * 10 + to }).catch(() => undefined);
        if (answer?.status !== 200) failed++;
      }
    };
    const started = performance.now();
    await Promise.all(Array.from({ length: BALANCE_CONCURRENCY }, worker));
    process.stderr.write(`balancing leaders, round ${round + 1}: ${moves.length - failed} of ${moves.length} moved in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
    await waitFor('every region has a leader', async () => (led = await leaders(cluster, REGIONS)).size === REGIONS, 60_000);
  }
  return led;
}

function leadersLine(led: Map<number, number>): string {
  return STORES.map((s) => `store ${s}: ${[...led.values()].filter((l) => l === s).length}`).join(', ');
}

class Load {
  private stopped = false;
  private measuring = false;
  ops = 0;
  requests = 0;
  /** Requests answered, measured or not. */
  completed = 0;
  refused = 0;
  readonly latencies: number[] = [];
  private serial = 0;
  /** xorshift32 state: the keys' random part, the same sequence every run. */
  private random = 0x9e3779b9;
  private requestId = 1;
  private readonly perStore: Map<number, number[]>;
  private readonly cursor = new Map<number, number>();
  private readonly value = new Uint8Array(VALUE_BYTES).fill(0x61);

  constructor(
    private readonly pools: Map<number, Pool>,
    led: Map<number, number>,
  ) {
    this.perStore = new Map();
    for (const [index, storeId] of led) this.perStore.set(storeId, [...(this.perStore.get(storeId) ?? []), index]);
  }

  run(): Promise<void[]> {
    return Promise.all(Array.from({ length: LANES }, (_, lane) => this.lane(lane)));
  }

  measure(on: boolean): void {
    this.measuring = on;
  }

  stop(): void {
    this.stopped = true;
  }

  private async lane(lane: number): Promise<void> {
    const stores = [...this.perStore.keys()];
    for (let n = 0; !this.stopped; n++) {
      const storeId = stores[(lane + n) % stores.length]!;
      const request = this.request(storeId);
      const started = performance.now();
      const res = await this.pools.get(storeId)!.request({ method: 'POST', path: '/v1/kv', headers: { 'content-type': 'application/x-msgpack' }, body: encodeKvRequest(request) });
      const response = decodeKvResponse(new Uint8Array(await res.body.arrayBuffer()));
      this.completed++;
      if (!this.measuring) continue;
      this.latencies.push(performance.now() - started);
      this.requests++;
      if (!('results' in response)) {
        this.refused += request.ops.length;
        continue;
      }
      for (const r of response.results) if (r.op === 'put') this.ops++;
      else this.refused++;
    }
  }

  /**
   * A new key spread at random over region `index`'s range (its serial keeps it unique): the
   * same key pattern at every point, so a single region's puts do not land in key order (a
   * serial suffix alone made its memtable inserts near-sequential, hence cheaper than
   * the spread inserts of many regions).
   */
  private keyIn(index: number): Uint8Array {
    let x = this.random;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.random = x >>> 0;
    return encoder.encode(`w${pad(index)}-${this.random.toString(16).padStart(8, '0')}-${this.serial++}`);
  }

  private request(storeId: number): KvRequest {
    const regions = this.perStore.get(storeId)!;
    let at = this.cursor.get(storeId) ?? 0;
    const ops: KvOp[] = [];
    for (let i = 0; i < OPS_PER_REQUEST; i++) {
      const index = regions[at++ % regions.length]!;
      ops.push({ op: 'put', regionId: regionIdOf(index), regionEpoch: { version: 1, confVer: 1 }, key: this.keyIn(index), value: this.value });
    }
    this.cursor.set(storeId, at % regions.length);
    return { requestId: this.requestId++, timeoutMs: 30_000, ops };
  }
}

async function scenario(cluster: ProcessCluster, pools: Map<number, Pool>, active: number): Promise<Row> {
  const led = await leaders(cluster, active);
  if (led.size !== active) throw new Error(`${active - led.size} of ${active} regions have no leader`);
  const stores = [...cluster.stores.values()];
  const load = new Load(pools, led);
  const running = load.run();
  // Warm-up: long enough for every lane to go round a few times (hibernated groups woken,
  // the pipeline full), however slow a request is at this point.
  const warmupUntil = performance.now() + WARMUP_S * 1000;
  await waitFor('warm-up', () => performance.now() >= warmupUntil && load.completed >= WARMUP_REQUESTS_PER_LANE * LANES, 120_000);
  const logWrites0 = await sumMetric(stores, 'flotilla_store_log_writes_total');
  const messages0 = await sumMetric(stores, 'flotilla_store_raft_messages_sent_total');
  const cpu0 = stores.map((s) => cpuMs(s.child.pid!));
  const waits0 = stores.map((s) => threadRunQueueWaits(s.child.pid!));
  const self0 = process.cpuUsage();
  const machine0 = machineCpuMs();
  const t0 = performance.now();
  load.measure(true);
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  load.measure(false);
  const elapsedMs = performance.now() - t0;
  const cpu1 = stores.map((s) => cpuMs(s.child.pid!));
  const waits1 = stores.map((s) => threadRunQueueWaits(s.child.pid!));
  const self1 = process.cpuUsage(self0);
  const machine1 = machineCpuMs();
  const logWrites1 = await sumMetric(stores, 'flotilla_store_log_writes_total');
  const messages1 = await sumMetric(stores, 'flotilla_store_raft_messages_sent_total');
  load.stop();
  await running;
  const sorted = load.latencies.sort((a, b) => a - b);
  const quantile = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  const perStore = STORES.map((id) => [...led.values()].filter((s) => s === id).length);
  return {
    regions: active,
    opsPerS: load.ops / (elapsedMs / 1000),
    requestsPerS: load.requests / (elapsedMs / 1000),
    p50Ms: quantile(0.5),
    p99Ms: quantile(0.99),
    refused: load.refused,
    storeCpuPct: (cpu1.reduce((s, c, i) => s + c - cpu0[i]!, 0) / elapsedMs) * 100,
    storeMainThreadWaitPct: stores.map((s, i) => (runQueueWaitedMs(s.child.pid!, waits0[i]!, waits1[i]!).mainThread / elapsedMs) * 100),
    clientCpuPct: ((self1.user + self1.system) / 1000 / elapsedMs) * 100,
    machineCpuPct: ((machine1 - machine0) / elapsedMs) * 100,
    logWritesPerS: (logWrites1 - logWrites0) / (elapsedMs / 1000),
    messagesPerPut: load.ops === 0 ? 0 : (messages1 - messages0) / load.ops,
    leadersPerStore: perStore,
  };
}

async function sumMetric(stores: readonly StoreHandle[], name: string): Promise<number> {
  const values = await Promise.all(stores.map((s) => scrape(s, [name])));
  return values.reduce((sum, v) => sum + v.get(name)!, 0);
}

async function main(): Promise<void> {
  useStoreMallocEnv();
  const cluster = new ProcessCluster({ tickMs: TICK_MS, ...(apiTls ? { apiTls: tlsFiles('peer') } : {}) });
  const pools = new Map<number, Pool>();
  const rows: Row[] = [];
  const leaderLines: string[] = [];
  try {
    for (const id of STORES) await cluster.startStore(id);
    const regions = Array.from({ length: REGIONS }, (_, i) => region(i));
    // In chunks: a bootstrap call's JSON body stays under the admin API's 1 MiB bound.
    for (let at = 0; at < regions.length; at += BOOTSTRAP_CHUNK) {
      for (const id of STORES) await cluster.expectAdmin(id, 'POST', '/v1/admin/bootstrap', { regions: regions.slice(at, at + BOOTSTRAP_CHUNK) });
    }
    await waitFor('every region has a leader', async () => (await leaders(cluster, REGIONS)).size === REGIONS, 300_000);
    leaderLines.push(`after the elections: ${leadersLine(await leaders(cluster, REGIONS))}`);
    process.stderr.write(`leaders ${leaderLines[0]}\n`);
    leaderLines.push(`after balancing: ${leadersLine(await balanceLeaders(cluster))}`);
    process.stderr.write(`leaders ${leaderLines[1]}\n`);
    for (const store of cluster.stores.values()) {
      const origin = `${apiTls ? 'https' : 'http'}://${store.api.host}:${store.api.port}`;
      pools.set(store.id, new Pool(origin, { connections: CONNECTIONS_PER_STORE, ...(apiTls ? { connect: tlsCredentials('peer') } : {}) }));
    }
    for (const active of ACTIVE) {
      const row = await scenario(cluster, pools, active);
      rows.push(row);
      process.stderr.write(`${active} regions: ${fmt(row.opsPerS)} puts/s, p99 ${row.p99Ms.toFixed(1)} ms, machine CPU ${row.machineCpuPct.toFixed(0)}%\n`);
    }
  } finally {
    for (const pool of pools.values()) await pool.close();
    await cluster.close();
  }
  report(rows, leaderLines);
}

function report(rows: readonly Row[], leaderLines: readonly string[]): void {
  const verdict = curveVerdict(rows);
  const lines = [
    '# Flotilla cluster write-throughput benchmark',
    '',
    `- date: ${new Date().toISOString()}`,
    `- command: node --import tsx benchmarks/cluster/write.ts ${process.argv.slice(2).join(' ')}`.trimEnd(),
    `- node: ${process.version} (${process.platform}/${process.arch})`,
    `- machine: ${machineLine()}`,
    `- config: 3 store processes on loopback (fsync on, 1 appender shard each, tick ${TICK_MS} ms), ${fmt(REGIONS)} regions with a voter on every store; client in the benchmark process: ${LANES} requests in flight, ${OPS_PER_REQUEST} puts of ${VALUE_BYTES}-byte values per request (all for regions one store leads; new keys at random within each region's range), ${WARMUP_S} s warm-up (and ${WARMUP_REQUESTS_PER_LANE} requests per lane at least), ${seconds} s measured per point${apiTls ? '; the API over HTTPS with client certificates (--api-tls)' : ''}`,
    `- leaders per store (of ${fmt(REGIONS)}): ${leaderLines.join('; ')}`,
    '',
    '| active regions | leaders per store | puts/s | requests/s | p50 ms | p99 ms | refused ops | store CPU % (3 procs) | store CPU µs per put | store main threads wait % (1 / 2 / 3) | client CPU % | machine CPU % (of 200) | log writes/s (3 stores) | raft messages per put |',
    '|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${fmt(r.regions)} | ${r.leadersPerStore.join(' / ')} | ${fmt(r.opsPerS)} | ${fmt(r.requestsPerS)} | ${r.p50Ms.toFixed(1)} | ${r.p99Ms.toFixed(1)} | ${fmt(r.refused)} | ${r.storeCpuPct.toFixed(0)} | ${fmt((r.storeCpuPct * 10_000) / r.opsPerS, 1)} | ${r.storeMainThreadWaitPct.map(pctCell).join(' / ')} | ${r.clientCpuPct.toFixed(0)} | ${r.machineCpuPct.toFixed(0)} | ${fmt(r.logWritesPerS)} | ${r.messagesPerPut.toFixed(2)} |`,
    ),
    '',
    'On a shared machine other processes take CPU too (machine CPU above stores + client): compare the stores\' CPU per put, not only puts/s.',
    'Raft messages per put: all the stores sent (heartbeats included) over the puts answered; 4 means one raft entry per put (an append to each of two followers and their answers).',
    'Store main threads wait: the share of the window each store\'s event loop (its whole ready loop) was ready to run but waited in a run queue (/proc schedstat) — the cores were full.',
    '',
    '## Target',
    '',
    `- the curve rises with regions until the cores saturate, not falls: ${verdict.text}`,
    '',
  ];
  process.stdout.write(lines.join('\n'));
}

await main();
