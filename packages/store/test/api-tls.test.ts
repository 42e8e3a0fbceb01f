/**
 * The store's HTTP API over HTTPS (StoreServer's `tls`, --api-tls-*; api-tls.ts): requests
 * with a certificate of the cluster's CA are served; without one, or with a stranger's, every
 * path but /health, /ready and /metrics answers 401 FLOTILLA_UNAUTHENTICATED; renewed
 * credentials reach new connections; close() does not wait for a client stuck in its handshake.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { MemoryNetwork } from '@flotilla/transport';
import { decodeKvResponse, encodeKvRequest, type KvRequest, type KvResponse } from '@flotilla/wire';
import { Agent, request, type Dispatcher } from 'undici';
import { API_TLS_HANDSHAKE_TIMEOUT_MS, KV_PATH, MSGPACK_CONTENT_TYPE, StoreServer, decodeApiError, type KvHandler } from '../src/index.ts';
import { EPOCH, bytes, memoryStore, type MemoryStore } from './harness.ts';
import { tlsCredentials } from '../../../test/support/tls.ts';

/** Answers every get with "v": the test is about who may ask, not about the KV service. */
const SERVICE: KvHandler = {
  handle: async (req: KvRequest): Promise<KvResponse> => ({ requestId: req.requestId, results: req.ops.map(() => ({ op: 'get', value: bytes('v') })) }),
};

const GET: KvRequest = { requestId: 7, timeoutMs: 1_000, ops: [{ op: 'get', regionId: 1, regionEpoch: EPOCH, key: bytes('k'), consistency: { level: 'linearizable' } }] };

type Who = 'peer' | 'stranger' | 'no certificate';

/** An undici agent dialing like a client of the cluster: it trusts the cluster's CA and presents `who`'s certificate. */
function agentOf(who: Who): Agent {
  const cluster = tlsCredentials('peer');
  const own = who === 'no certificate' ? {} : { cert: tlsCredentials(who).cert, key: tlsCredentials(who).key };
  return new Agent({ connect: { ca: cluster.ca, ...own } });
}

/** One exchange; `reset` closes its connection after it (the next one opens a new one). */
async function call(origin: string, dispatcher: Dispatcher, method: 'GET' | 'POST', path: string, reset = false): Promise<{ status: number; contentType: string; body: Buffer }> {
  const res = await request(`${origin}${path}`, {
    method,
    dispatcher,
    reset,
    ...(method === 'POST' ? { headers: { 'content-type': MSGPACK_CONTENT_TYPE }, body: encodeKvRequest(GET) } : {}),
  });
  return { status: res.statusCode, contentType: String(res.headers['content-type']), body: Buffer.from(await res.body.arrayBuffer()) };
}

describe('the store API over HTTPS', () => {
  let store: MemoryStore;
  let server: StoreServer;
  let origin: string;
  const agents = new Map<Who, Agent>();
  before(async () => {
    store = memoryStore(new MemoryNetwork(), 1);
    await store.host.start();
    server = new StoreServer({ service: SERVICE, host: store.host, transport: store.transport, defaultMetrics: false, tls: tlsCredentials('peer') });
    const { port } = await server.listen();
    origin = `https://127.0.0.1:${port}`;
    for (const who of ['peer', 'stranger', 'no certificate'] as const) agents.set(who, agentOf(who));
  });
  after(async () => {
    for (const agent of agents.values()) await agent.close();
    await server.close();
    await store.host.close();
  });

  test('a client with a certificate of the cluster\'s CA is served, on new connections too', async () => {
    const answer = await call(origin, agents.get('peer')!, 'POST', KV_PATH);
    assert.equal(answer.status, 200, answer.body.toString());
    assert.deepEqual(decodeKvResponse(answer.body), { requestId: 7, results: [{ op: 'get', value: bytes('v') }] });
    // Each exchange on a connection of its own: the later ones resume the TLS session.
    for (let i = 0; i < 3; i++) assert.equal((await call(origin, agents.get('peer')!, 'POST', KV_PATH, true)).status, 200);
  });

  for (const who of ['no certificate', 'stranger'] as const) {
    test(`${who}: the KV and admin API answer 401 FLOTILLA_UNAUTHENTICATED, on resumed TLS sessions too`, async () => {
      // A connection each: the second and third resume the first one's TLS session.
      for (const [method, path] of [['POST', KV_PATH], ['GET', '/v1/admin/regions'], ['POST', KV_PATH]] as const) {
        const answer = await call(origin, agents.get(who)!, method, path, true);
        assert.equal(answer.status, 401, `${method} ${path}`);
        const error = decodeApiError(answer.body.toString());
        assert.equal(error?.code, 'FLOTILLA_UNAUTHENTICATED');
        assert.match(error?.message ?? '', who === 'stranger' ? /client certificate signed by the cluster's CA .*the one presented does not verify/ : /client certificate signed by the cluster's CA .*none was presented/);
      }
    });
  }

  test('/health, /ready and /metrics stay open to a client without a certificate', async () => {
    const none = agents.get('no certificate')!;
    assert.equal((await call(origin, none, 'GET', '/health')).status, 200);
    assert.equal((await call(origin, none, 'GET', '/ready')).status, 200);
    const metrics = await call(origin, none, 'GET', '/metrics');
    assert.equal(metrics.status, 200);
    const page = metrics.body.toString();
    assert.match(page, /flotilla_store_kv_requests_total\{[^}]*code="FLOTILLA_UNAUTHENTICATED"[^}]*\} 4/, 'KV refusals are counted as KV requests (2 clients x 2)');
    assert.match(page, /flotilla_store_admin_requests_total\{[^}]*code="FLOTILLA_UNAUTHENTICATED"[^}]*\} 2/, 'admin refusals as admin requests');
  });

  test('plain HTTP on the HTTPS port gets no answer', async () => {
    const plain = `http://127.0.0.1:${server.address().port}`;
    await assert.rejects(request(`${plain}/health`).then((res) => res.body.text()));
  });

  test('renewed credentials reach new connections', async () => {
    const stranger = tlsCredentials('stranger');
    server.setTls(stranger);
    try {
      // The cluster's CA no longer verifies the server: a fresh agent refuses it.
      const fresh = agentOf('peer');
      await assert.rejects(call(origin, fresh, 'GET', '/health'), (err: unknown) => (err as { code?: string }).code === 'SELF_SIGNED_CERT_IN_CHAIN');
      await fresh.close();
      // A client of the new CA is served, its certificate checked against the new CA.
      const renewed = new Agent({ connect: { ca: stranger.ca, cert: stranger.cert, key: stranger.key, servername: 'localhost' } });
      const answer = await call(origin, renewed, 'POST', KV_PATH);
      await renewed.close();
      assert.equal(answer.status, 200, answer.body.toString());
    } finally {
      server.setTls(tlsCredentials('peer'));
    }
  });
});

// Without ending it, close() would wait for the server's handshake timeout: the test's deadline is half of it.
test('close() ends a connection stuck in its TLS handshake', { timeout: API_TLS_HANDSHAKE_TIMEOUT_MS / 2 }, async () => {
  const store = memoryStore(new MemoryNetwork(), 1);
  const server = new StoreServer({ service: SERVICE, host: store.host, transport: store.transport, defaultMetrics: false, tls: tlsCredentials('peer') });
  const { port } = await server.listen();
  const socket = net.connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => {});
  await server.close();
  await ended;
  await store.host.close();
});
