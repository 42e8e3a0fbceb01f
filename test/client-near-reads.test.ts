/**
 * Stale reads near the client, on a real cluster: three PD-placed stores in zones z1, z2, z3
 * (`--labels`), and clients that say where they run (`labels`). Each client's stale reads go to
 * the replica in its own zone, a follower; its writes and linearizable reads to the leader.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createClient, type FlotillaClient } from '../packages/client/src/index.ts';
import { SdkCluster } from './support/sdk-cluster.ts';

const GETS = 'flotilla_store_kv_operations_total{op="get",code="OK"}';
const READS = 20;

describe('stale reads near the client (location labels)', () => {
  const sdk = new SdkCluster();
  const clients: FlotillaClient[] = [];
  before(() => sdk.start(3, (i) => ['--labels', `zone=z${i + 1}`]));
  after(async () => {
    for (const c of clients) await c.close();
    await sdk.close();
  });

  /** Gets each store served so far (0 before its first). */
  const served = async (): Promise<Map<number, number>> => {
    const out = new Map<number, number>();
    for (const id of sdk.cluster.stores.keys()) out.set(id, (await sdk.cluster.metric(id, GETS)) || 0);
    return out;
  };

  it("each client's stale reads go to the follower in its zone", async () => {
    const writer = createClient({ pd: sdk.urls() });
    clients.push(writer);
    for (let i = 0; i < READS; i++) await writer.put(`near/${i}`, `v${i}`);
    const [region] = await sdk.regions();
    const stores = (await sdk.pd.expect<{ stores: { id: number; labels: Record<string, string> }[] }>(1, 'GET', '/pd/api/v1/stores')).stores;
    const zoneOf = new Map(stores.map((s) => [s.id, s.labels['zone']!]));
    const followers = region!.peers.filter((p) => p.storeId !== region!.leader!.storeId).map((p) => p.storeId);
    assert.equal(followers.length, 2);
    for (const follower of followers) {
      // random 0: without labels this client's first choice would be the region's replica at (0 + region id) % 3.
      const client = createClient({ pd: sdk.urls(), labels: { zone: zoneOf.get(follower)! }, random: () => 0 });
      clients.push(client);
      const before = await served();
      for (let i = 0; i < READS; i++) assert.equal((await client.get(`near/${i}`, { consistency: { maxStalenessMs: 60_000 } }))?.toString(), `v${i}`);
      const after = await served();
      const delta = [...after].map(([id, n]) => [id, n - before.get(id)!] as const);
      assert.deepEqual(delta.filter(([, n]) => n > 0), [[follower, READS]], `gets per store: ${JSON.stringify(delta)}; zones ${JSON.stringify([...zoneOf])}`);
    }
  });
});
