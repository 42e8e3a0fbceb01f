/**
 * HTTPS on the HTTP APIs (--api-tls-ca/--api-tls-cert/--api-tls-key), real processes: two PD
 * members (the second joins over HTTPS) and three PD-placed stores, every API HTTPS with client
 * certificates. The stores reach PD with their certificates; the SDK with the cluster's
 * credentials writes and reads through a PD follower; a client without the cluster's
 * certificate, or one that does not trust the cluster's CA, is refused at once with
 * FLOTILLA_UNAUTHENTICATED; probes and scrapes reach /health, /ready and /metrics without one;
 * plain HTTP gets nothing.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Agent, request } from 'undici';
import { createClient, isClientError, type FlotillaClient } from '../packages/client/src/index.ts';
import { ProcessCluster, waitFor } from './support/cluster.ts';
import { PdProcesses } from './support/pd.ts';
import { tlsCredentials, tlsFiles } from './support/tls.ts';

const STORE_ARGS = ['--store-heartbeat-ms', '300', '--region-heartbeat-ms', '1000'];

interface RegionJson {
  readonly peers: readonly { readonly role: string }[];
  readonly leader: unknown;
}

describe('a cluster whose HTTP APIs are HTTPS with client certificates', () => {
  const pd = new PdProcesses(['--schedule-interval-ms', '100'], tlsFiles('peer'));
  const cluster = new ProcessCluster({ tickMs: 50, pd: () => [...pd.members.values()].map((m) => m.url), args: STORE_ARGS, apiTls: tlsFiles('peer') });
  const clients: FlotillaClient[] = [];
  const agents: Agent[] = [];
  after(async () => {
    for (const client of clients) await client.close();
    for (const agent of agents) await agent.close();
    await cluster.close();
    await pd.close();
  });

  test('PD members join, stores register and the SDK writes and reads, all over HTTPS', async () => {
    await pd.startGroup(2); // member 2 joins through member 1 over HTTPS
    assert.match(pd.running(2).url, /^https:\/\//, 'members advertise https:// URLs');
    for (let i = 0; i < 3; i++) await cluster.startNewStore();
    await waitFor('region 1 on three voters with a leader (stores reached PD with their certificates)', async () => {
      const { regions } = await pd.expect<{ regions: RegionJson[] }>(1, 'GET', '/pd/api/v1/regions');
      return regions.length === 1 && regions[0]!.leader !== null && regions[0]!.peers.filter((p) => p.role === 'voter').length === 3;
    }, 60_000);

    // Through the follower: routing look-ups that need PD's leader are forwarded over HTTPS.
    const client = createClient({ pd: [pd.running(2).url], tls: tlsCredentials('peer') });
    clients.push(client);
    for (let i = 0; i < 20; i++) await client.put(`key-${i}`, `value-${i}`);
    for (let i = 0; i < 20; i++) assert.equal((await client.get(`key-${i}`))?.toString(), `value-${i}`);
  });

  test('a client without the cluster\'s certificate, or not trusting its CA, is refused at once', async () => {
    const stranger = tlsCredentials('stranger');
    const peer = tlsCredentials('peer');
    for (const [who, tls] of [
      ['a stranger\'s certificate', { ca: peer.ca, cert: stranger.cert, key: stranger.key }],
      ['another CA trusted', { ca: stranger.ca, cert: peer.cert, key: peer.key }],
    ] as const) {
      const client = createClient({ pd: [pd.running(1).url], tls, timeoutMs: 20_000 });
      clients.push(client);
      // Retried until its deadline, the call would end FLOTILLA_DEADLINE_EXCEEDED instead.
      await assert.rejects(client.get('key-0'), (err: unknown) => isClientError(err, 'FLOTILLA_UNAUTHENTICATED'), who);
    }
    // Straight to a store, as a tool without a certificate would: 401 with the reason.
    const { api } = cluster.running([...cluster.stores.keys()][0]!);
    const noCertificate = new Agent({ connect: { ca: peer.ca } });
    agents.push(noCertificate);
    const refused = await request(`https://${api.host}:${api.port}/v1/admin/regions`, { dispatcher: noCertificate });
    assert.equal(refused.statusCode, 401);
    assert.equal(((await refused.body.json()) as { error: { code: string } }).error.code, 'FLOTILLA_UNAUTHENTICATED');
  });

  test('probes and scrapes need no certificate; plain HTTP gets nothing', async () => {
    const noCertificate = new Agent({ connect: { ca: tlsCredentials('peer').ca } });
    agents.push(noCertificate);
    const storeId = [...cluster.stores.keys()][0]!;
    const { api } = cluster.running(storeId);
    const origins = [`https://${api.host}:${api.port}`, pd.running(1).url];
    for (const origin of origins) {
      for (const path of ['/health', '/ready', '/metrics']) {
        const res = await request(`${origin}${path}`, { dispatcher: noCertificate });
        await res.body.text();
        assert.equal(res.statusCode, 200, `${origin}${path}`);
      }
      await assert.rejects(request(`${origin.replace('https:', 'http:')}/health`).then((res) => res.body.text()), `plain HTTP to ${origin}`);
    }
    assert.ok((await cluster.metric(storeId, 'flotilla_store_http_connections')) >= 1, 'the harness reads metrics over HTTPS');
  });
});
