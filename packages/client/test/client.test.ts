/**
 * The client against fake stores (node:http servers speaking the KV protocol) and a fake PD:
 * coalescing, the retry policy (what is retried, what is not), cache repair, deadlines.
 */
import assert from 'node:assert/strict';
import { after, beforeEach, describe, it } from 'node:test';
import type { KvError, KvOp, KvOpResult, KvRequest, KvResponse, RegionMeta } from '@flotilla/wire';
import { createClient, isClientError, isRetryable, type FlotillaClient } from '../src/index.ts';
import { FakePd, FakeStore, waitFor } from './fake-store.ts';

const b = (s: string): Uint8Array => Buffer.from(s);
const peers = (id: number): RegionMeta['peers'] => [
  { id: id * 10 + 1, storeId: 1, role: 'voter' },
  { id: id * 10 + 2, storeId: 2, role: 'voter' },
];
const LEFT: RegionMeta = { id: 1, startKey: b(''), endKey: b('m'), epoch: { version: 1, confVer: 1 }, peers: peers(1) };
const RIGHT: RegionMeta = { id: 2, startKey: b('m'), endKey: b(''), epoch: { version: 1, confVer: 1 }, peers: peers(2) };

/** A tiny store: one map, every op answered; `override` may answer an op first. */
function serve(data: Map<string, Buffer>, override?: (op: KvOp) => KvError | undefined): (request: KvRequest) => KvResponse {
  return (request) => ({
    requestId: request.requestId,
    results: request.ops.map((op): KvOpResult => {
      const error = override?.(op);
      if (error) return { op: 'error', error };
      switch (op.op) {
        case 'get':
          return { op: 'get', value: data.get(Buffer.from(op.key).toString()) ?? null };
        case 'put':
          data.set(Buffer.from(op.key).toString(), Buffer.from(op.value));
          return { op: 'put' };
        case 'delete':
          data.delete(Buffer.from(op.key).toString());
          return { op: 'delete' };
        default:
          return { op: 'error', error: { code: 'FLOTILLA_TIMEOUT' } };
      }
    }),
  });
}

describe('the client against fake stores', () => {
  const data = new Map<string, Buffer>();
  const store1 = new FakeStore(serve(data));
  const store2 = new FakeStore(serve(data));
  let pd: FakePd;
  let client: FlotillaClient;
  const clients: FlotillaClient[] = [];

  beforeEach(async () => {
    if (!store1.address) await Promise.all([store1.listen(), store2.listen()]);
    store1.handler = serve(data);
    store2.handler = serve(data);
    store1.requests.length = 0;
    store2.requests.length = 0;
    pd = new FakePd(
      [
        { meta: LEFT, leader: { peerId: 11, storeId: 1 } },
        { meta: RIGHT, leader: { peerId: 21, storeId: 1 } },
      ],
      new Map([
        [1, store1.address],
        [2, store2.address],
      ]),
    );
    client = createClient({ pd: [], regionSource: pd, random: () => 0.5 });
    clients.push(client);
  });
  after(async () => {
    for (const c of clients) await c.close();
    await Promise.all([store1.close(), store2.close()]);
  });

  it('coalesces concurrent calls to one store into one request, reads apart from writes', async () => {
    await client.put('warm', 'x'); // loads the cache and opens the channel
    store1.requests.length = 0;
    const keys = Array.from({ length: 200 }, (_, i) => `${i % 2 === 0 ? 'a' : 'z'}${i}`);
    await Promise.all([...keys.map((k) => client.put(k, k)), ...keys.map((k) => client.get(k))]);
    assert.equal(store1.requests.length, 2, 'one request of puts and one of gets (both regions led from store 1)');
    const kinds = store1.requests.map((r) => [...new Set(r.ops.map((o) => o.op))].join());
    assert.deepEqual(kinds.sort(), ['get', 'put']);
    assert.equal(store1.requests.reduce((n, r) => n + r.ops.length, 0), 400);
    assert.deepEqual(
      (await client.getMany(keys)).map((v) => v?.toString()),
      keys,
    );
    assert.equal(store2.requests.length, 0);
  });

  it('holds writes past the in-flight bound in the client, where they coalesce; reads pass meanwhile', async () => {
    const bounded = createClient({ pd: [], regionSource: pd, random: () => 0.5, channel: { writeRequestsInFlightMax: 2 } });
    clients.push(bounded);
    await bounded.put('warm', 'x');
    store1.requests.length = 0;
    const held: (() => void)[] = [];
    const answer = serve(data);
    store1.handler = (request) => (request.ops[0]!.op === 'put' ? new Promise((resolve) => held.push(() => resolve(answer(request)))) : answer(request));
    const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
    const writes: Promise<void>[] = [];
    // One put per event-loop turn: each would be a request of its own.
    for (let i = 0; i < 12; i++) {
      writes.push(bounded.put(`h${i}`, 'v'));
      await turn();
    }
    await waitFor('both write connections busy', () => held.length === 2);
    assert.equal((await bounded.get('warm'))?.toString(), 'x', 'a read is answered while every write connection is held');
    for (let i = 0; i < 6; i++) await turn();
    assert.equal(held.length, 2, 'no third write request reached the store');
    while (held.length > 0) held.shift()!();
    store1.handler = answer;
    await Promise.all(writes);
    const puts = store1.requests.filter((r) => r.ops[0]!.op === 'put').map((r) => r.ops.length);
    // Two requests went out; everything queued while they were held went as ONE request (had
    // the client sent them, the HTTP client would have held several small ones).
    assert.equal(puts.length, 3, `write requests of ${puts.join(', ')} puts`);
    assert.equal(puts[0]! + puts[1]! + puts[2]!, 12);
    assert.ok(puts[2]! >= 6, `the coalesced request carries every later put (${puts.join(', ')})`);
  });

  it('follows a NotLeader hint at once and remembers the leader', async () => {
    store1.handler = serve(data, (op) => (op.regionId === 1 ? { code: 'FLOTILLA_NOT_LEADER', regionId: 1, leader: { peerId: 12, storeId: 2 } } : undefined));
    await client.put('b', 'bee');
    assert.equal(store1.requests.length, 1);
    assert.equal(store2.requests.length, 1);
    assert.equal((await client.get('b'))?.toString(), 'bee');
    assert.equal(store1.requests.length, 1, 'the next call goes to the new leader directly');
    assert.deepEqual(client.stats().retries, { FLOTILLA_NOT_LEADER: 1 });
  });

  it('repairs the cache from EpochNotMatch without asking PD', async () => {
    await client.get('c');
    const loads = pd.loads;
    const split: RegionMeta = { ...LEFT, endKey: b('g'), epoch: { version: 2, confVer: 1 } };
    store1.handler = serve(data, (op) =>
      op.regionEpoch.version === 1 && op.regionId === 1 ? { code: 'FLOTILLA_EPOCH_NOT_MATCH', regionId: 1, currentRegions: [split] } : undefined,
    );
    await client.put('c', 'sea');
    assert.equal(pd.loads, loads, 'no PD load');
    assert.equal(store1.requests.at(-1)?.ops[0]?.regionEpoch.version, 2);
  });

  it('never retries a write that timed out; retries a read that did', async () => {
    let timeouts = 1;
    store1.handler = serve(data, () => (timeouts-- > 0 ? { code: 'FLOTILLA_TIMEOUT' } : undefined));
    await assert.rejects(client.put('d', 'x'), (err: unknown) => isClientError(err, 'FLOTILLA_TIMEOUT') && err.unknownOutcome && !isRetryable(err));
    assert.equal(store1.requests.length + store2.requests.length, 1, 'sent once');
    timeouts = 1;
    assert.equal(await client.get('never-written'), null, 'the read was retried');
    assert.equal(store1.requests.length + store2.requests.length, 3);
  });

  it("surfaces a store's DiskFull at once: not retried, nothing written, not retryable", async () => {
    store1.handler = serve(data, (op) => (op.op === 'put' ? { code: 'FLOTILLA_DISK_FULL', storeId: 1, availableBytes: 10, reserveBytes: 100 } : undefined));
    await assert.rejects(client.put('full', 'x'), (err: unknown) => isClientError(err, 'FLOTILLA_DISK_FULL') && !err.unknownOutcome && !isRetryable(err) && /store 1 is short of disk space/.test(err.message) && err.kvError?.code === 'FLOTILLA_DISK_FULL');
    assert.equal(store1.requests.length + store2.requests.length, 1, 'sent once');
    assert.equal(await client.get('full'), null, 'reads go on');
  });

  it('backs off on ServerBusy and RegionNotFound, then succeeds', async () => {
    let busy = 2;
    store1.handler = (request) => (busy-- > 0 ? { requestId: request.requestId, error: { code: 'FLOTILLA_SERVER_BUSY', retryAfterMs: 5 } } : serve(data)(request));
    await client.put('e', 'x');
    let gone = 1;
    store1.handler = serve(data, (op) => (gone-- > 0 ? { code: 'FLOTILLA_REGION_NOT_FOUND', regionId: op.regionId } : undefined));
    await client.put('e', 'y');
    const retries = client.stats().retries;
    assert.equal(retries['FLOTILLA_SERVER_BUSY'], 2);
    assert.equal(retries['FLOTILLA_REGION_NOT_FOUND'], 1);
  });

  it('ends a call at its deadline: a read is retryable, a write in flight has an unknown outcome', async () => {
    await client.get('warm');
    store1.handler = () => 'hang';
    store2.handler = () => 'hang';
    await assert.rejects(client.get('f', { timeoutMs: 100 }), (err: unknown) => isClientError(err, 'FLOTILLA_DEADLINE_EXCEEDED') && isRetryable(err));
    await assert.rejects(client.put('f', 'x', { timeoutMs: 100 }), (err: unknown) => isClientError(err, 'FLOTILLA_DEADLINE_EXCEEDED') && err.unknownOutcome && !isRetryable(err));
    const controller = new AbortController();
    const call = client.get('g', { signal: controller.signal });
    controller.abort();
    await assert.rejects(call, (err: unknown) => isClientError(err, 'FLOTILLA_ABORTED'));
  });

  it('a write still queued in the client when its call ends was never sent: not applied, and it never leaves later', async () => {
    const bounded = createClient({ pd: [], regionSource: pd, random: () => 0.5, channel: { writeRequestsInFlightMax: 1 } });
    clients.push(bounded);
    await bounded.put('warm', 'x');
    const held: (() => void)[] = [];
    const answer = serve(data);
    store1.handler = (request) => new Promise((resolve) => held.push(() => resolve(answer(request))));
    const first = bounded.put('q1', 'v', { timeoutMs: 5_000 });
    await waitFor('the only write connection busy', () => held.length === 1);
    // Queued behind it: one ends at its deadline, one by its signal.
    await assert.rejects(bounded.put('q2', 'v', { timeoutMs: 50 }), (err: unknown) => isClientError(err, 'FLOTILLA_DEADLINE_EXCEEDED') && !err.unknownOutcome && isRetryable(err));
    const controller = new AbortController();
    const aborted = bounded.put('q3', 'v', { signal: controller.signal });
    controller.abort();
    await assert.rejects(aborted, (err: unknown) => isClientError(err, 'FLOTILLA_ABORTED') && !err.unknownOutcome);
    store1.handler = answer;
    held.shift()!();
    await first;
    await bounded.put('q4', 'v');
    assert.deepEqual(
      store1.requests.flatMap((r) => r.ops.map((op) => Buffer.from((op as { key: Uint8Array }).key).toString())).filter((k) => k.startsWith('q')),
      ['q1', 'q4'],
      'the cancelled writes were never sent',
    );
  });

  it('a broken connection: a read moves to another replica, a write reports an unknown outcome', async () => {
    await client.get('warm');
    store1.handler = () => 'destroy';
    assert.equal(await client.get('h'), null, 'served by store 2 after the failure');
    assert.ok(store2.requests.length >= 1);
    store1.handler = () => 'destroy';
    store2.handler = serve(data, () => ({ code: 'FLOTILLA_NOT_LEADER', regionId: 1, leader: { peerId: 11, storeId: 1 } }));
    await assert.rejects(client.put('h', 'x', { timeoutMs: 2_000 }), (err: unknown) => isClientError(err, 'FLOTILLA_STORE_UNAVAILABLE') && err.unknownOutcome);
  });

  it('sends a client\'s stale reads of a region to one replica while it answers, then to the next', async () => {
    const stale = { consistency: { maxStalenessMs: 5_000 } } as const;
    await client.get('a', stale); // region 1 ([, m)): loads the cache, picks its replica
    const first = store1.requests.length > 0 ? store1 : store2;
    const other = first === store1 ? store2 : store1;
    first.requests.length = 0;
    other.requests.length = 0;
    // One read after the other (not coalesced): each is a request of its own.
    for (let i = 0; i < 10; i++) await client.get(`a${i}`, stale);
    assert.equal(first.requests.length, 10, 'every stale read of the region to the same replica (its state only moves forward)');
    assert.equal(other.requests.length, 0);
    // The region's replica there is gone: the read moves on, and the region's later reads stay there.
    first.handler = serve(data, () => ({ code: 'FLOTILLA_REGION_NOT_FOUND', regionId: 1 }));
    assert.equal(await client.get('h', stale), null);
    first.handler = serve(data);
    first.requests.length = 0;
    other.requests.length = 0;
    for (let i = 0; i < 5; i++) await client.get(`a${i}`, stale);
    assert.deepEqual([first.requests.length, other.requests.length], [0, 5], 'the next replica keeps the region\'s stale reads');
    // A linearizable read still goes to the leader.
    store1.requests.length = 0;
    await client.get('k', { consistency: 'linearizable' });
    assert.equal(store1.requests.length, 1, 'the leader (store 1) serves a linearizable read');
  });

  it('sends stale reads to a replica near the client by location labels; a client elsewhere spreads them', async () => {
    pd.labels = new Map([
      [1, { zone: 'a', host: 'h1' }],
      [2, { zone: 'b', host: 'h2' }],
    ]);
    const near = createClient({ pd: [], regionSource: pd, random: () => 0.5, labels: { zone: 'b' } });
    const elsewhere = createClient({ pd: [], regionSource: pd, random: () => 0.5, labels: { zone: 'c' } });
    clients.push(near, elsewhere);
    const stale = { consistency: { maxStalenessMs: 5_000 } } as const;
    const counts = (): number[] => [store1.requests.length, store2.requests.length];
    // Keys a, b in region 1 ([, m)); x, y in region 2 ([m, )): both have a replica on each store.
    // Region 2 first: without its stores' labels, this client's spread would put it on store 1.
    for (const key of ['x', 'a', 'y', 'b']) await near.get(key, stale);
    assert.deepEqual(counts(), [0, 4], "both regions' stale reads on store 2, in the client's zone");
    store1.requests.length = 0;
    store2.requests.length = 0;
    for (const key of ['a', 'x', 'b', 'y']) await elsewhere.get(key, stale);
    assert.deepEqual(counts(), [2, 2], 'no store in zone c: one region on each store, as without labels');
    store1.requests.length = 0;
    await near.get('k', { consistency: 'linearizable' });
    assert.equal(store1.requests.length, 1, 'a linearizable read still goes to the leader (store 1)');
    assert.throws(() => createClient({ pd: [], regionSource: pd, labels: { zone: '' } }), (err: unknown) => isClientError(err, 'FLOTILLA_INVALID_ARGUMENT'));
    const many = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`l${i}`, 'v']));
    assert.throws(() => createClient({ pd: [], regionSource: pd, labels: many }), (err: unknown) => isClientError(err, 'FLOTILLA_INVALID_ARGUMENT'));
  });

  it('refuses bad arguments and calls after close', async () => {
    await assert.rejects(client.get('k'.repeat(8 * 1024 + 1)), (err: unknown) => isClientError(err, 'FLOTILLA_INVALID_ARGUMENT'));
    await assert.rejects(client.get('k', { consistency: { maxStalenessMs: -1 } }), (err: unknown) => isClientError(err, 'FLOTILLA_INVALID_ARGUMENT'));
    await assert.rejects(client.scan({ limit: 0 }), (err: unknown) => isClientError(err, 'FLOTILLA_INVALID_ARGUMENT'));
    // An in-flight bound of 0 would never send a write: refused when the channel opens.
    const unbounded = createClient({ pd: [], regionSource: pd, random: () => 0.5, channel: { writeRequestsInFlightMax: 0 } });
    clients.push(unbounded);
    await assert.rejects(unbounded.put('k', 'v'), (err: unknown) => isClientError(err, 'FLOTILLA_INVALID_ARGUMENT') && /writeRequestsInFlightMax/.test(err.message));
    await client.close();
    await assert.rejects(client.get('k'), (err: unknown) => isClientError(err, 'FLOTILLA_CLIENT_CLOSED') && !isRetryable(err));
  });
});
