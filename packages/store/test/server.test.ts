import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { MemoryNetwork } from '@flotilla/transport';
import { decodeKvResponse, encodeKvRequest, type KvOp, type KvRequest, type KvResponse } from '@flotilla/wire';
import { Packr } from 'msgpackr';
import { Client, Pool } from 'undici';
import { KV_PATH, MSGPACK_CONTENT_TYPE, StoreServer, decodeApiError, type KvHandler } from '../src/index.ts';
import { EPOCH, REGION, bytes, connectAll, leaderOf, memoryStore, text, waitFor, type MemoryStore } from './harness.ts';

/** The bound the test servers enforce on a request body (the default is 32 MiB). */
const BODY_BYTES_MAX = 64 * 1024;

interface TestStore extends MemoryStore {
  readonly server: StoreServer;
  /** undici, as a client would use it: 4 connections, 10 pipelined requests each. */
  readonly pool: Pool;
  /** What GET /ready answered before host.start(). */
  readonly readyBeforeStart: { status: number; body: unknown };
}

/** Three stores on the in-memory twins (as host.test.ts), each behind a StoreServer on port 0. */
class TestCluster {
  readonly network = new MemoryNetwork();
  readonly stores = new Map<number, TestStore>();

  async startStore(id: number): Promise<TestStore> {
    const base = memoryStore(this.network, id);
    const { host, service, transport } = base;
    const server = new StoreServer({ service, host, transport, requestBodyBytesMax: BODY_BYTES_MAX });
    const { port } = await server.listen();
    const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 4, pipelining: 10 });
    const readyBeforeStart = await getJson(pool, '/ready');
    await host.start();
    const store: TestStore = { ...base, server, pool, readyBeforeStart };
    this.stores.set(id, store);
    connectAll(this.stores.values());
    return store;
  }

  leaderOf(regionId: number): TestStore | undefined {
    return leaderOf(this.stores.values(), regionId);
  }

  async closeAll(): Promise<void> {
    for (const store of this.stores.values()) {
      await store.pool.close();
      await store.server.close();
      await store.host.close();
    }
    this.stores.clear();
  }
}

const put = (key: string, value: string, regionId = 1): KvOp => ({ op: 'put', regionId, regionEpoch: EPOCH, key: bytes(key), value: bytes(value) });
const get = (key: string, regionId = 1): KvOp => ({ op: 'get', regionId, regionEpoch: EPOCH, key: bytes(key), consistency: { level: 'linearizable' } });

let requestIds = 1;
const request = (...ops: KvOp[]): KvRequest => ({ requestId: requestIds++, timeoutMs: 5_000, ops });

interface KvExchange {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly response: KvResponse;
}

type Dispatcher = Pool | Client;

/** POSTs a KvRequest as undici pipelines it (idempotent, non-blocking) and decodes the answer. */
async function postKv(client: Dispatcher, body: KvRequest): Promise<KvExchange> {
  const res = await client.request({
    path: KV_PATH,
    method: 'POST',
    headers: { 'content-type': MSGPACK_CONTENT_TYPE },
    body: encodeKvRequest(body),
    idempotent: true,
    blocking: false,
  });
  const payload = new Uint8Array(await res.body.arrayBuffer());
  assert.equal(res.headers['content-type'], MSGPACK_CONTENT_TYPE, `status ${res.statusCode}: ${Buffer.from(payload).toString()}`);
  return { status: res.statusCode, headers: res.headers, response: decodeKvResponse(payload) };
}

/** POSTs raw bytes to the KV endpoint; the answer's body as text. */
async function postRaw(client: Dispatcher, body: Uint8Array | Readable, contentType = MSGPACK_CONTENT_TYPE): Promise<{ status: number; contentType: string | undefined; body: Buffer }> {
  const res = await client.request({ path: KV_PATH, method: 'POST', headers: { 'content-type': contentType }, body, idempotent: true, blocking: false });
  const payload = Buffer.from(await res.body.arrayBuffer());
  const type = res.headers['content-type'];
  return { status: res.statusCode, contentType: typeof type === 'string' ? type : undefined, body: payload };
}

async function getJson(client: Dispatcher, path: string, method: 'GET' | 'POST' = 'GET'): Promise<{ status: number; body: unknown }> {
  const res = await client.request({ path, method });
  return { status: res.statusCode, body: await res.body.json() };
}

async function getText(client: Dispatcher, path: string): Promise<{ status: number; contentType: string; text: string }> {
  const res = await client.request({ path, method: 'GET' });
  return { status: res.statusCode, contentType: String(res.headers['content-type']), text: await res.body.text() };
}

/** One sample of the exposition text: `name{labels} value` with the labels in any order. */
function sample(exposition: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of exposition.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = new Map<string, string>();
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) found.set(pair[1]!, pair[2]!);
    if (found.size !== Object.keys(labels).length) continue;
    if (Object.entries(labels).every(([k, v]) => found.get(k) === v)) return Number(match[3]);
  }
  return undefined;
}

describe('the client API server in front of a 3-store cluster', () => {
  const cluster = new TestCluster();
  before(async () => {
    for (const id of [1, 2, 3]) await cluster.startStore(id);
    for (const store of cluster.stores.values()) await store.host.bootstrapRegion(REGION);
    await waitFor('a leader', () => cluster.leaderOf(1) !== undefined);
  });
  after(() => cluster.closeAll());

  const leader = (): TestStore => cluster.leaderOf(1)!;
  const follower = (): TestStore => [...cluster.stores.values()].find((s) => s !== leader())!;

  test('/ready: 503 with a reason before the host starts, 200 after; /health: 200', async () => {
    for (const store of cluster.stores.values()) {
      assert.equal(store.readyBeforeStart.status, 503);
      assert.match(String((store.readyBeforeStart.body as { reason?: unknown }).reason), /not started/);
      assert.deepEqual(await getJson(store.pool, '/ready'), { status: 200, body: { ready: true } });
      assert.deepEqual(await getJson(store.pool, '/health'), { status: 200, body: { status: 'ok' } });
    }
  });

  test('put and get round trips through HTTP', async () => {
    const put1 = await postKv(leader().pool, request(put('apple', 'red')));
    assert.equal(put1.status, 200);
    assert.deepEqual(put1.response, { requestId: requestIds - 1, results: [{ op: 'put' }] });
    const read = await postKv(leader().pool, request(get('apple'), get('absent')));
    assert.equal(read.status, 200);
    assert.ok('results' in read.response);
    const [apple, absent] = read.response.results;
    assert.equal(apple?.op === 'get' ? text(apple.value) : undefined, 'red');
    assert.deepEqual(absent, { op: 'get', value: null });
  });

  test("a follower's server answers NotLeader with the leader's hint", async () => {
    const { status, response } = await postKv(follower().pool, request(put('apple', 'green')));
    assert.equal(status, 200, 'a per-operation error travels in a 200 KvResponse');
    assert.ok('results' in response);
    const [result] = response.results;
    assert.ok(result?.op === 'error' && result.error.code === 'FLOTILLA_NOT_LEADER', JSON.stringify(result));
    assert.equal(result.error.leader?.storeId, leader().id);
    assert.equal(result.error.leader?.peerId, leader().host.peer(1)!.peerId);
  });

  test('malformed bodies get 400 with a typed JSON error; wrong media type, path and method too; the connection stays usable', async () => {
    const client = new Client(`http://127.0.0.1:${leader().server.address().port}`, { pipelining: 1 });
    try {
      // 0xc1 is never valid msgpack; a valid msgpack map is not a KvRequest.
      for (const body of [Uint8Array.of(0xc1, 0x00, 0x01), Uint8Array.of(0x81, 0xa1, 0x61, 0x01), new Uint8Array(0)]) {
        const answer = await postRaw(client, body);
        assert.equal(answer.status, 400);
        assert.equal(answer.contentType, 'application/json');
        assert.equal(decodeApiError(answer.body.toString())?.code, 'FLOTILLA_MALFORMED_REQUEST');
      }
      const wrongType = await postRaw(client, encodeKvRequest(request(get('apple'))), 'application/json');
      assert.equal(wrongType.status, 415);
      assert.equal(decodeApiError(wrongType.body.toString())?.code, 'FLOTILLA_UNSUPPORTED_MEDIA_TYPE');
      assert.equal((await getJson(client, '/nowhere')).status, 404);
      const wrongMethod = await getJson(client, KV_PATH);
      assert.equal(wrongMethod.status, 405);
      assert.equal(decodeApiError(JSON.stringify(wrongMethod.body))?.code, 'FLOTILLA_METHOD_NOT_ALLOWED');
      // The same connection still serves requests.
      const after = await postKv(client, request(get('apple')));
      assert.equal(after.status, 200);
    } finally {
      await client.close();
    }
  });

  test('a body over the bound gets 413 without the server reading or holding it', async () => {
    const server = leader().server;
    const origin = `http://127.0.0.1:${server.address().port}`;
    const refusedBefore = server.stats().refusedTooLarge;

    // A declared length over the bound: refused from the headers alone.
    const declared = await postRaw(leader().pool, new Uint8Array(BODY_BYTES_MAX + 1));
    assert.equal(declared.status, 413);
    const declaredError = decodeKvResponse(declared.body);
    assert.deepEqual(declaredError, { requestId: 0, error: { code: 'FLOTILLA_REQUEST_TOO_LARGE', requestBytesMax: BODY_BYTES_MAX, opsMax: 16 * 1024 } });

    // Within the byte bound but over the wire's key bound (8 KiB): read whole, then refused alike.
    const bigKey = new Packr({ useRecords: false }).pack([requestIds++, 0, [[2, 1, [1, 1], Buffer.alloc(9000, 0x61), Buffer.from('v')]]]);
    const overKey = await postRaw(leader().pool, bigKey);
    assert.equal(overKey.status, 413);
    assert.deepEqual(decodeKvResponse(overKey.body), declaredError);

    // A chunked stream of 64 MiB (1,000 times the bound): counted as it streams, refused at the bound.
    const client = new Client(origin, { pipelining: 1 });
    let disconnected = false;
    client.on('disconnect', () => {
      disconnected = true;
    });
    try {
      const streamBytesMax = 64 * 1024 * 1024;
      let produced = 0;
      const body = Readable.from(
        (function* chunks() {
          while (produced < streamBytesMax) {
            produced += 16 * 1024;
            yield Buffer.alloc(16 * 1024, 0x90);
          }
        })(),
      );
      const streamed = await postRaw(client, body);
      assert.equal(streamed.status, 413);
      assert.equal(streamed.contentType, MSGPACK_CONTENT_TYPE);
      const error = decodeKvResponse(streamed.body);
      assert.ok('error' in error && error.error.code === 'FLOTILLA_REQUEST_TOO_LARGE');
      assert.ok(produced < streamBytesMax / 4, `the client could push ${produced} bytes: the server kept reading`);
      // The server closed that connection (the rest of the body was never read) and let go of everything.
      await waitFor('the refused connection to close', () => disconnected);
      assert.equal(server.stats().refusedTooLarge, refusedBefore + 2);
      assert.ok(server.stats().bodyBytesInFlightPeak <= BODY_BYTES_MAX, `held ${server.stats().bodyBytesInFlightPeak} bytes at once`);
      await waitFor('nothing held', () => server.stats().bodyBytesInFlight === 0 && server.stats().requestsInFlight === 0);
      // The client reconnects and is served.
      const after = await postKv(client, request(get('apple')));
      assert.equal(after.status, 200);
    } finally {
      await client.close();
    }
  });

  test('200 pipelined concurrent requests are all answered correctly and in order per connection', async () => {
    const store = leader();
    // Writes wait for consensus; reads of an unknown region are refused at once: on one
    // connection, later requests finish first, and must still be answered in order.
    const sent = Array.from({ length: 200 }, (_, i) =>
      i % 3 === 0 ? request(get(`key-${i}`, 99)) : i % 3 === 1 ? request(put(`key-${i}`, `value-${i}`)) : request(get('apple')),
    );
    const answers = await Promise.all(sent.map((r) => postKv(store.pool, r)));
    answers.forEach(({ status, response }, i) => {
      // undici pairs answers to requests by their order on the connection: an answer out of
      // order would carry another request's id.
      assert.equal(status, 200);
      assert.equal(response.requestId, sent[i]!.requestId, `answer ${i} belongs to another request`);
      assert.ok('results' in response);
      const [result] = response.results;
      if (i % 3 === 0) assert.ok(result?.op === 'error' && result.error.code === 'FLOTILLA_REGION_NOT_FOUND');
      else if (i % 3 === 1) assert.deepEqual(result, { op: 'put' });
      else assert.equal(result?.op === 'get' ? text(result.value) : undefined, 'red');
    });
    assert.ok(store.server.stats().pipelinedMax > 1, `no connection carried more than ${store.server.stats().pipelinedMax} request at once`);
    // Every write landed, and only those: key-198 was a read of an unknown region.
    const check = await postKv(store.pool, request(get('key-198'), get('key-100')));
    assert.ok('results' in check.response);
    assert.deepEqual(check.response.results.map((r) => (r.op === 'get' ? text(r.value) : r.op)), [null, 'value-100']);
  });

  test('/metrics: the request counters count, host and transport gauges are read at scrape time', async () => {
    const store = leader();
    const before = (await getText(store.pool, '/metrics')).text;
    const count = (exposition: string, op: string, code: string): number => sample(exposition, 'flotilla_store_kv_requests_total', { op, code }) ?? 0;
    for (let i = 0; i < 3; i++) assert.equal((await postKv(store.pool, request(put(`metric-${i}`, 'x')))).status, 200);
    await postKv(store.pool, request(put('metric-mixed', 'x'), get('apple')));
    assert.equal((await postRaw(store.pool, Uint8Array.of(0xc1))).status, 400);
    const notLeader = await postKv(follower().pool, request(put('elsewhere', 'x')));
    assert.ok('results' in notLeader.response);

    const scraped = await getText(store.pool, '/metrics');
    assert.equal(scraped.status, 200);
    assert.match(scraped.contentType, /^text\/plain; version=0\.0\.4/);
    const after = scraped.text;
    assert.equal(count(after, 'put', 'OK') - count(before, 'put', 'OK'), 3);
    assert.equal(count(after, 'mixed', 'OK') - count(before, 'mixed', 'OK'), 1);
    assert.equal(count(after, 'none', 'FLOTILLA_MALFORMED_REQUEST') - count(before, 'none', 'FLOTILLA_MALFORMED_REQUEST'), 1);
    const ops = (exposition: string, op: string, code: string): number => sample(exposition, 'flotilla_store_kv_operations_total', { op, code }) ?? 0;
    assert.equal(ops(after, 'put', 'OK') - ops(before, 'put', 'OK'), 4);
    const latencyCount = (exposition: string): number => sample(exposition, 'flotilla_store_kv_request_duration_seconds_count', { op: 'put' }) ?? 0;
    assert.equal(latencyCount(after) - latencyCount(before), 3);
    assert.equal(sample(after, 'flotilla_store_kv_request_duration_seconds_bucket', { op: 'put', le: '+Inf' }), latencyCount(after));
    assert.equal(sample(after, 'flotilla_store_kv_requests_in_flight'), 0);
    // The follower counted its NotLeader per operation.
    const followerMetrics = (await getText(follower().pool, '/metrics')).text;
    assert.ok(ops(followerMetrics, 'put', 'FLOTILLA_NOT_LEADER') >= 2);

    // Host gauges, read from host.stats() at scrape time.
    const stats = store.host.stats();
    assert.equal(sample(after, 'flotilla_store_peers'), 1);
    const logWrites = sample(after, 'flotilla_store_log_writes_total') ?? 0;
    assert.ok(logWrites > 0 && logWrites <= stats.logWrites, `scraped ${logWrites} log writes, the host counts ${stats.logWrites} since`);
    const logSyncs = sample(after, 'flotilla_store_log_syncs_total') ?? 0;
    assert.ok(logSyncs > 0 && logSyncs <= stats.logSyncs, `scraped ${logSyncs} log fsyncs, the log engine counts ${stats.logSyncs} since`);
    for (const name of ['ready_cycles', 'group_ticks', 'log_writes', 'log_syncs', 'apply_batches', 'raft_messages_sent', 'raft_messages_dropped', 'snapshots_sent', 'snapshots_received', 'log_compactions']) {
      assert.notEqual(sample(after, `flotilla_store_${name}_total`), undefined, `flotilla_store_${name}_total is missing`);
    }
    // The ready loop's histograms and the replica states.
    const histogram = (exposition: string, name: string): number => sample(exposition, `${name}_count`) ?? 0;
    assert.ok(histogram(after, 'flotilla_store_log_write_duration_seconds') > histogram(before, 'flotilla_store_log_write_duration_seconds'), 'log writes timed');
    assert.ok(histogram(after, 'flotilla_store_apply_duration_seconds') > histogram(before, 'flotilla_store_apply_duration_seconds'), 'apply batches timed');
    assert.ok(histogram(after, 'flotilla_store_ready_cycle_groups') > 0, 'groups per cycle');
    assert.ok(histogram(after, 'flotilla_store_proposal_apply_duration_seconds') - histogram(before, 'flotilla_store_proposal_apply_duration_seconds') >= 4, 'every proposal made here timed to its apply');
    assert.equal(sample(after, 'flotilla_store_replicas', { state: 'leader' }), 1);
    assert.equal(sample(after, 'flotilla_store_replicas', { state: 'without_leader' }), 0);
    assert.equal(sample(followerMetrics, 'flotilla_store_replicas', { state: 'leader' }), 0);
    // Transport stats per peer store.
    for (const peer of [...cluster.stores.keys()].filter((id) => id !== store.id)) {
      const labels = { peer_store: String(peer) };
      assert.ok((sample(after, 'flotilla_transport_frames_sent_total', labels) ?? 0) > 0);
      assert.ok((sample(after, 'flotilla_transport_bytes_sent_total', labels) ?? 0) > 0);
      assert.notEqual(sample(after, 'flotilla_transport_queued_messages', labels), undefined);
      assert.equal(sample(after, 'flotilla_transport_peer_state', { ...labels, state: 'up' }), 1);
      assert.equal(sample(after, 'flotilla_transport_peer_state', { ...labels, state: 'down' }), 0);
    }
    // Default process metrics on the store's own registry.
    assert.notEqual(sample(after, 'process_cpu_user_seconds_total'), undefined);
    assert.notEqual(sample(after, 'nodejs_eventloop_lag_seconds'), undefined);
  });
});

describe('draining', () => {
  const cluster = new TestCluster();
  after(() => cluster.closeAll());

  test('close() finishes an in-flight request, refuses new ones, and closes every connection', async () => {
    for (const id of [1, 2, 3]) await cluster.startStore(id);
    for (const store of cluster.stores.values()) await store.host.bootstrapRegion(REGION);
    await waitFor('a leader', () => cluster.leaderOf(1) !== undefined);
    const leader = cluster.leaderOf(1)!;

    // A second server in front of the leader whose service waits on a gate.
    let openGate = (): void => {};
    const gate = new Promise<void>((resolve) => {
      openGate = resolve;
    });
    let entered = 0;
    const gated: KvHandler = {
      handle: async (r) => {
        entered++;
        await gate;
        return leader.service.handle(r);
      },
    };
    const server = new StoreServer({ service: gated, host: leader.host, transport: leader.transport, defaultMetrics: false });
    const { port } = await server.listen();
    const origin = `http://127.0.0.1:${port}`;
    const client = new Client(origin, { pipelining: 2 });
    const fresh = new Client(origin);
    try {
      const inFlight = postKv(client, request(put('drained', 'yes')));
      await waitFor('the request reaches the service', () => entered === 1);

      const closing = server.close();
      assert.deepEqual(server.readiness(), { ready: false, reason: 'the store is stopping' });
      // A new request on the open connection (pipelined behind the in-flight one) is refused...
      const refused = postKv(client, request(get('drained')));
      await waitFor('the server refuses the pipelined request', () => server.stats().refusedBusy === 1);
      // ...and a new connection is refused outright.
      await assert.rejects(postKv(fresh, request(get('drained'))), (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED');

      openGate();
      const served = await inFlight;
      assert.equal(served.status, 200);
      assert.ok('results' in served.response);
      assert.deepEqual(served.response.results, [{ op: 'put' }]);
      const busy = await refused;
      assert.equal(busy.status, 503);
      assert.equal(busy.headers['retry-after'], '1');
      assert.deepEqual(busy.response, { requestId: 0, error: { code: 'FLOTILLA_SERVER_BUSY', retryAfterMs: 100 } });
      await closing;
      assert.equal(server.stats().connections, 0);
      assert.equal(server.stats().requestsInFlight, 0);
    } finally {
      openGate();
      await client.destroy();
      await fresh.destroy();
      await server.close();
    }
  });

  test('stopping refuses on connections it keeps open: requests pipelined behind a refusal are answered, not cut off', async () => {
    const leader = cluster.leaderOf(1)!; // the cluster the first test started
    const server = new StoreServer({ service: leader.service, host: leader.host, transport: leader.transport, defaultMetrics: false });
    const { port } = await server.listen();
    const client = new Client(`http://127.0.0.1:${port}`, { pipelining: 4 });
    try {
      assert.equal((await postKv(client, request(put('before-stop', 'x')))).status, 200);
      server.markStopping();
      const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => postKv(client, request(get(`k${i}`)))));
      for (const answer of answers) {
        assert.equal(answer.status, 503, 'refused, retryable');
        assert.notEqual(answer.headers['connection'], 'close', 'the connection is not closed under pipelined requests');
      }
      assert.equal(server.stats().connections, 1, 'one connection carried all of them');
      await server.close();
      assert.equal(server.stats().connections, 0, 'close() then closes it');
    } finally {
      await client.destroy();
      await server.close();
    }
  });

  test('a bug while serving is a 500 with a typed JSON error, reported to the log; the server keeps serving', async () => {
    const leader = cluster.leaderOf(1)!; // the cluster the test above started
    const logged: { fields: object; message: string }[] = [];
    const broken: KvHandler = {
      handle: async (r) => {
        if (r.requestId === 666) throw new Error('a bug in the service');
        return leader.service.handle(r);
      },
    };
    const server = new StoreServer({ service: broken, host: leader.host, transport: leader.transport, defaultMetrics: false, log: { error: (fields, message) => logged.push({ fields, message }) } });
    const { port } = await server.listen();
    const client = new Client(`http://127.0.0.1:${port}`);
    try {
      const failed = await postRaw(client, encodeKvRequest({ requestId: 666, ops: [put('bug', 'x')] }));
      assert.equal(failed.status, 500);
      assert.equal(decodeApiError(failed.body.toString())?.code, 'FLOTILLA_INTERNAL');
      assert.equal(logged.length, 1);
      assert.match(logged[0]!.message, /a bug in the service/);
      const served = await postKv(client, request(put('after', 'bug')));
      assert.equal(served.status, 200);
    } finally {
      await client.close();
      await server.close();
    }
  });
});
