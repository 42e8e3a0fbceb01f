/**
 * A PD member and PD-placed store processes for the SDK's tests (test/client-*.test.ts), with
 * the operations those tests need: manual splits (many at once, by rounds of median keys) and
 * leader transfers through PD's operator API. Every process is stopped by close().
 */
import { ProcessCluster, waitFor } from './cluster.ts';
import { PdProcesses } from './pd.ts';

export interface PdRegionJson {
  readonly id: number;
  readonly startKey: string;
  readonly endKey: string;
  readonly epoch: { readonly version: number; readonly confVer: number };
  readonly peers: readonly { readonly id: number; readonly storeId: number; readonly role: string }[];
  readonly leader: { readonly peerId: number; readonly storeId: number } | null;
}

/** PD schedules nothing on its own: the tests split and move leaders themselves. */
const QUIET_CONFIG = {
  maxReplicas: 3,
  mergeMaxBytes: 0,
  mergeMaxKeys: 0,
  schedulers: { balanceRegion: { enabled: false }, balanceLeader: { enabled: false }, hotRegion: { enabled: false } },
};
const STORE_ARGS = ['--store-heartbeat-ms', '300', '--region-heartbeat-ms', '1000'];
const hex = (key: string): string => Buffer.from(key).toString('hex');

export class SdkCluster {
  readonly pd = new PdProcesses(['--schedule-interval-ms', '100']);
  readonly cluster = new ProcessCluster({ tickMs: 50, pd: () => this.urls(), args: STORE_ARGS });

  urls(): string[] {
    return [...this.pd.members.values()].map((m) => m.url);
  }

  /**
   * One PD member and `stores` stores (the i-th, from 0, with `storeArgs(i)` more flags);
   * resolves once region 1 has a leader and 3 voters.
   */
  async start(stores = 3, storeArgs: (i: number) => readonly string[] = () => []): Promise<void> {
    await this.pd.start(1);
    await waitFor('PD member 1 to lead', async () => (await this.pd.leader()) === 1);
    await this.pd.expect(1, 'PUT', '/pd/api/v1/config', QUIET_CONFIG);
    for (let i = 0; i < stores; i++) await this.cluster.startNewStore(storeArgs(i));
    await waitFor('region 1 on three voters with a leader', async () => {
      const all = await this.regions();
      return all.length === 1 && all[0]!.leader !== null && all[0]!.peers.filter((p) => p.role === 'voter').length === Math.min(3, stores);
    }, 60_000);
  }

  async regions(): Promise<PdRegionJson[]> {
    return (await this.pd.expect<{ regions: PdRegionJson[] }>(1, 'GET', '/pd/api/v1/regions?limit=10000')).regions;
  }

  async regionByKey(key: string): Promise<PdRegionJson> {
    return this.pd.expect<PdRegionJson>(1, 'GET', `/pd/api/v1/region-by-key?key=${hex(key)}`);
  }

  /**
   * Splits so that every key starts a region: each round splits every region holding keys at
   * its median key (one operator per region at a time), until all are region starts.
   */
  async splitAt(keys: readonly string[], deadlineMs = 40_000): Promise<void> {
    const wanted = [...new Set(keys.map(hex))].sort();
    const until = Date.now() + deadlineMs;
    for (;;) {
      const regions = await this.regions();
      const starts = new Set(regions.map((r) => r.startKey));
      const missing = wanted.filter((k) => !starts.has(k));
      if (missing.length === 0) return;
      if (Date.now() > until) {
        const history = await this.pd.expect<{ history: unknown[] }>(1, 'GET', '/pd/api/v1/history?limit=6');
        throw new Error(`splits not done: ${missing.length} keys are not region starts yet; regions ${JSON.stringify(regions.map((r) => [r.id, r.startKey, r.endKey, r.epoch]))}; PD history ${JSON.stringify(history.history)}`);
      }
      const splits: { key: string; answer: Promise<{ status: number; body: unknown }> }[] = [];
      for (const region of regions) {
        const inside = missing.filter((k) => k > region.startKey && (region.endKey === '' || k < region.endKey));
        if (inside.length === 0) continue;
        const median = inside[inside.length >> 1]!;
        splits.push({ key: median, answer: this.pd.call(1, 'POST', '/pd/api/v1/operators', { type: 'split', regionId: region.id, keys: [median] }) });
      }
      const accepted: string[] = [];
      for (const split of splits) {
        const answer = await split.answer;
        if (answer.status === 201) accepted.push(split.key);
        // A region running another operator (a leader transfer), or PD busy: a later round.
        else if (answer.status !== 503 && !/OPERATOR_EXISTS/.test(JSON.stringify(answer.body))) throw new Error(`split refused: ${answer.status} ${JSON.stringify(answer.body)}`);
      }
      const remaining = Math.max(1, until - Date.now());
      if (accepted.length === 0) {
        await waitFor('running operators to finish', async () => (await this.pd.expect<{ operators: unknown[] }>(1, 'GET', '/pd/api/v1/operators')).operators.length === 0, remaining);
        continue;
      }
      await waitFor(`splits at ${accepted.length} keys to be reported`, async () => {
        const now = new Set((await this.regions()).map((r) => r.startKey));
        return accepted.every((k) => now.has(k));
      }, remaining);
    }
  }

  /** Asks PD to move the region's leadership to another store hosting it; the store moved to. */
  async transferLeader(regionId: number): Promise<number | undefined> {
    const region = (await this.regions()).find((r) => r.id === regionId);
    if (!region?.leader) return undefined;
    const target = region.peers.find((p) => p.role === 'voter' && p.storeId !== region.leader!.storeId);
    if (!target) return undefined;
    const answer = await this.pd.call(1, 'POST', '/pd/api/v1/operators', { type: 'transferLeader', regionId, toStoreId: target.storeId });
    return answer.status === 201 ? target.storeId : undefined;
  }

  async close(): Promise<void> {
    try {
      await this.cluster.close();
    } finally {
      await this.pd.close();
    }
  }
}
