/**
 * Flotilla as the benchmark runs it: one PD member and N PD-placed store processes on loopback
 * (test/support's harness), the store's production settings (100 ms tick, one log shard with
 * a worker appender, fsync on, the default 60 s between a quiet region's heartbeats to PD: a
 * region heartbeat may count the region's rows, which once every second cost a third of the
 * throughput) unless a curve changes one, 3 replicas per region. The key space
 * is pre-split into `regions` equal ranges (PD split operators) and their leaderships are spread
 * evenly over the stores (PD transfer-leader operators), as PD's balance-leader scheduler would.
 * PD's own schedulers stay off while measuring, so nothing moves during a point.
 */
import { ProcessCluster } from '../../test/support/cluster.ts';
import { SdkCluster } from '../../test/support/sdk-cluster.ts';
import { scrape } from '../cluster/proc.ts';
import { fullyReplicated, pdRegions, runningOperators, spreadOf } from '../pd/pd-view.ts';
import { FlotillaAdapter } from './adapters.ts';
import type { SystemUnderTest } from './load.ts';
import { BenchError, pollUntil } from './processes.ts';
import { splitKeys } from './workloads.ts';

export interface FlotillaOptions {
  readonly stores: number;
  readonly regions: number;
  readonly appender: 'worker' | 'inline';
}

/** The counter of the raft log's fsyncs the store exports (etcd's column counts its WAL fsyncs). */
export const FLOTILLA_SYNC_METRIC = 'flotilla_store_log_syncs_total';
/**
 * Read at every point: log writes, the work per operation they cost (cycles, messages), and the
 * time spent in log writes, applies and from proposal to apply (histogram sums and counts;
 * absent from stores built before those metrics, and then read as 0).
 */
const FLOTILLA_COUNTERS = [
  FLOTILLA_SYNC_METRIC,
  'flotilla_store_ready_cycles_total',
  'flotilla_store_apply_batches_total',
  'flotilla_store_raft_messages_sent_total',
  'flotilla_transport_frames_sent_total',
  ...['log_write', 'apply', 'proposal_apply'].flatMap((h) => [`flotilla_store_${h}_duration_seconds_sum`, `flotilla_store_${h}_duration_seconds_count`]),
];
const TICK_MS = 100;
const REPLICAS = 3;
const BALANCE_DEADLINE_MS = 120_000;
const SPLIT_DEADLINE_MS = 180_000;

/** SdkCluster with the store's production tick and log shards instead of the tests' fast ones. */
class BenchCluster extends SdkCluster {
  override readonly cluster: ProcessCluster;

  constructor(options: FlotillaOptions) {
    super();
    this.cluster = new ProcessCluster({
      tickMs: TICK_MS,
      pd: () => this.urls(),
      args: ['--store-heartbeat-ms', '300', '--appender', options.appender],
    });
  }
}

export class FlotillaSystem implements SystemUnderTest {
  readonly name = 'flotilla';
  readonly syncMetric = FLOTILLA_SYNC_METRIC;
  private readonly sdk: BenchCluster;
  private client: FlotillaAdapter | undefined;

  constructor(readonly options: FlotillaOptions) {
    this.sdk = new BenchCluster(options);
  }

  get adapter(): FlotillaAdapter {
    if (!this.client) throw new BenchError('BENCH_SETUP_FAILED', 'flotilla: start() first');
    return this.client;
  }

  async start(log: (line: string) => void): Promise<void> {
    await this.sdk.start(this.options.stores);
    log(`flotilla: PD and ${this.options.stores} stores up (${this.options.appender} appenders); splitting into ${this.options.regions} regions`);
    if (this.options.regions > 1) await this.sdk.splitAt(splitKeys(this.options.regions), SPLIT_DEADLINE_MS);
    await this.spreadReplicas();
    await this.balanceLeaders();
    this.client = new FlotillaAdapter(this.sdk.urls());
  }

  /**
   * With more stores than replicas, PD's balance-region scheduler first spreads the replicas
   * (until every store holds its share), then is switched off again.
   */
  private async spreadReplicas(): Promise<void> {
    const stores = [...this.sdk.cluster.stores.keys()];
    if (stores.length <= REPLICAS) return;
    // PD stops within its tolerance of an even spread (e.g. 8/8/8/6/6 for 36 replicas on 5 stores).
    const share = Math.floor((0.75 * this.options.regions * REPLICAS) / stores.length);
    await this.sdk.pd.expect(1, 'PUT', '/pd/api/v1/config', { schedulers: { balanceRegion: { enabled: true, intervalMs: 500 } } });
    await pollUntil(`every store holding >= ${share} replicas`, async () => {
      const regions = await pdRegions(this.sdk.pd, 1);
      const spread = spreadOf(regions, stores);
      const settled = regions.every((r) => fullyReplicated(r, new Set(stores)));
      return settled && [...spread.replicas.values()].every((n) => n >= share);
    }, BALANCE_DEADLINE_MS, 500);
    await this.sdk.pd.expect(1, 'PUT', '/pd/api/v1/config', { schedulers: { balanceRegion: { enabled: false } } });
    await pollUntil('PD operators finished', async () => (await runningOperators(this.sdk.pd, 1)) === 0, BALANCE_DEADLINE_MS, 500);
  }

  /**
   * Spreads leaderships evenly, as PD's balance-leader scheduler would: regions in key order,
   * each to the store hosting one of its voters that leads the fewest so far; moves leaderships
   * (PD transfer-leader operators) until PD reports every region led where planned.
   */
  private async balanceLeaders(): Promise<void> {
    const plan = new Map<number, number>();
    const led = new Map<number, number>();
    for (const region of await pdRegions(this.sdk.pd, 1)) {
      const voters = region.peers.filter((p) => p.role === 'voter').map((p) => p.storeId);
      const target = voters.reduce((best, s) => ((led.get(s) ?? 0) < (led.get(best) ?? 0) ? s : best), voters[0]!);
      plan.set(region.id, target);
      led.set(target, (led.get(target) ?? 0) + 1);
    }
    await pollUntil('leaders spread evenly over the stores', async () => {
      const misplaced = (await pdRegions(this.sdk.pd, 1)).filter((r) => r.leader?.storeId !== plan.get(r.id));
      for (const region of misplaced) {
        if (region.leader === null || !plan.has(region.id)) continue;
        // Refused while another operator runs on the region: the next poll asks again.
        await this.sdk.pd.call(1, 'POST', '/pd/api/v1/operators', { type: 'transferLeader', regionId: region.id, toStoreId: plan.get(region.id) });
      }
      return misplaced.length === 0;
    }, BALANCE_DEADLINE_MS, 500);
  }

  /** Regions and leaders per store, as PD sees them. */
  async layout(): Promise<{ regions: number; leadersPerStore: Record<string, number> }> {
    const regions = await pdRegions(this.sdk.pd, 1);
    const leadersPerStore: Record<string, number> = {};
    for (const r of regions) if (r.leader) leadersPerStore[`store ${r.leader.storeId}`] = (leadersPerStore[`store ${r.leader.storeId}`] ?? 0) + 1;
    return { regions: regions.length, leadersPerStore };
  }

  processes(): { name: string; pid: number }[] {
    const pd = [...this.sdk.pd.members.values()].map((m) => ({ name: `pd ${m.id}`, pid: m.child.pid! }));
    const stores = [...this.sdk.cluster.stores.values()].map((s) => ({ name: `store ${s.id}`, pid: s.child.pid! }));
    return [...stores, ...pd];
  }

  async counters(): Promise<Map<string, number>> {
    const values = await Promise.all([...this.sdk.cluster.stores.values()].map((s) => scrape(s, FLOTILLA_COUNTERS)));
    return new Map(FLOTILLA_COUNTERS.map((name) => [name, values.reduce((sum, v) => sum + v.get(name)!, 0)]));
  }

  async stop(): Promise<void> {
    try {
      await this.client?.close();
    } finally {
      await this.sdk.close();
    }
  }
}
