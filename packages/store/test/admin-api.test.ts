import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MemoryNetwork } from '@flotilla/transport';
import { encodeKvRequest, type KvOp, type KvOpResult, type RegionEpoch } from '@flotilla/wire';
import { Client, Pool } from 'undici';
import {
  ADMIN_PATH_PREFIX,
  StoreServer,
  decodeApiError,
  hex,
  regionJson,
  serverLimits,
  type ApiError,
  type ApiErrorCode,
  type KvHandler,
  type RegionJson,
  type RegionStatusJson,
} from '../src/index.ts';
import { REGION, bytes, leaderOf, memoryStore, text, waitFor, type MemoryStore, type MemoryStoreOptions } from './harness.ts';

/** A store on the in-memory twins behind a StoreServer (port 0) that serves the admin API. */
interface AdminStore extends MemoryStore {
  readonly server: StoreServer;
  readonly client: Pool;
}

class AdminCluster {
  readonly network = new MemoryNetwork();
  readonly stores = new Map<number, AdminStore>();

  constructor(private readonly options: MemoryStoreOptions = {}) {}

  async startStore(id: number): Promise<AdminStore> {
    const base = memoryStore(this.network, id, this.options);
    const { host, service, transport } = base;
    const server = new StoreServer({ service, host, transport, defaultMetrics: false, admin: { host, transport, kv: base.kv } });
    const { port } = await server.listen();
    const store: AdminStore = { ...base, server, client: new Pool(`http://127.0.0.1:${port}`, { connections: 2 }) };
    this.stores.set(id, store);
    await host.start();
    return store;
  }

  /** Tells every store where every other one listens, through PUT /v1/admin/stores/:storeId. */
  async connectAll(): Promise<void> {
    for (const a of this.stores.values()) {
      for (const b of this.stores.values()) {
        if (a === b) continue;
        const answer = await admin(a, 'PUT', `stores/${b.id}`, b.transport.address());
        assert.equal(answer.status, 200, JSON.stringify(answer.body));
      }
    }
  }

  leader(regionId: number): AdminStore {
    const leader = leaderOf(this.stores.values(), regionId);
    assert.ok(leader, `region ${regionId} has no leader`);
    return leader;
  }

  /** A store whose replica of the region is a voter that does not lead. */
  follower(regionId: number): AdminStore {
    const follower = [...this.stores.values()].find((s) => {
      const status = s.host.regionStatus(regionId);
      return status !== undefined && status.raft.role === 'follower' && status.raft.config.voters.includes(status.peerId);
    });
    assert.ok(follower, `region ${regionId} has no voting follower`);
    return follower;
  }

  async closeAll(): Promise<void> {
    for (const store of this.stores.values()) {
      await store.client.close();
      await store.server.close();
      await store.host.close();
    }
    this.stores.clear();
  }
}

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: unknown;
}

type Method = 'GET' | 'PUT' | 'POST' | 'DELETE';

/** One admin request: `body` is sent as JSON, `raw` as given (with `contentType`). */
async function admin(to: AdminStore | Client | Pool, method: Method, path: string, body?: unknown, raw?: { body: string | Buffer; contentType?: string }): Promise<Answer> {
  const client = to instanceof Client || to instanceof Pool ? to : to.client;
  const payload = raw?.body ?? (body === undefined ? undefined : JSON.stringify(body));
  const headers: Record<string, string> = payload === undefined ? {} : { 'content-type': raw?.contentType ?? 'application/json' };
  const res = await client.request({ path: `${ADMIN_PATH_PREFIX}${path}`, method, headers, ...(payload === undefined ? {} : { body: payload }) });
  const answer = await res.body.text();
  assert.equal(res.headers['content-type'], 'application/json', `${method} ${path}: ${res.statusCode} ${answer}`);
  return { status: res.statusCode, headers: res.headers, body: JSON.parse(answer) };
}

/** The answer is the error `code` with `status`; returns the error (with its details). */
function expectError(answer: Answer, status: number, code: ApiErrorCode): ApiError {
  const error = decodeApiError(JSON.stringify(answer.body));
  assert.ok(error, `not an API error: ${JSON.stringify(answer.body)}`);
  assert.equal(error.code, code, error.message);
  assert.equal(answer.status, status, error.message);
  return error;
}

/** A 400 that names the field. */
function expectBadField(answer: Answer, field: string): void {
  const error = expectError(answer, 400, 'FLOTILLA_MALFORMED_REQUEST');
  assert.equal(error.details?.field, field, error.message);
}

function okBody<T>(answer: Answer, status = 200): T {
  assert.equal(answer.status, status, JSON.stringify(answer.body));
  return answer.body as T;
}

let requestIds = 1;

/** Puts through the KV service of the region's leader, with the region's current epoch. */
async function putAll(store: AdminStore, regionId: number, pairs: readonly [string, string][]): Promise<void> {
  const epoch: RegionEpoch = store.host.regionStatus(regionId)!.region.epoch;
  const ops: KvOp[] = pairs.map(([key, value]) => ({ op: 'put', regionId, regionEpoch: epoch, key: bytes(key), value: bytes(value) }));
  const response = await store.service.handle({ requestId: requestIds++, timeoutMs: 5_000, ops });
  assert.ok('results' in response);
  assert.deepEqual(response.results, ops.map((): KvOpResult => ({ op: 'put' })));
}

const peerIdOn = (store: AdminStore, regionId: number): number => store.host.regionStatus(regionId)!.peerId;
const peersOf = (status: { peers: RegionJson['peers'] }): string => status.peers.map((p) => `${p.id}@${p.storeId}:${p.role}`).join(' ');

/** `name{labels} value` from Prometheus text, labels in any order. */
function sample(exposition: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of exposition.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = new Map<string, string>();
    for (const pair of match[2]!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) found.set(pair[1]!, pair[2]!);
    if (found.size === Object.keys(labels).length && Object.entries(labels).every(([k, v]) => found.get(k) === v)) return Number(match[3]);
  }
  return undefined;
}

describe('the admin API on a cluster of stores', () => {
  const cluster = new AdminCluster();
  before(async () => {
    for (const id of [1, 2, 3]) await cluster.startStore(id);
  });
  after(() => cluster.closeAll());

  test('GET store; unknown paths 404, wrong methods 405, bad ids in the path 400; no admin option: 404', async () => {
    const store = cluster.stores.get(1)!;
    const info = okBody<{ storeId: number; state: string; raftAddress: { host: string; port: number }; stats: { peers: number } }>(await admin(store, 'GET', 'store'));
    assert.equal(info.storeId, 1);
    assert.equal(info.state, 'running');
    assert.deepEqual(info.raftAddress, store.transport.address());
    assert.equal(info.stats.peers, 0);

    expectError(await admin(store, 'GET', 'nowhere'), 404, 'FLOTILLA_NOT_FOUND');
    expectError(await admin(store, 'GET', 'regions/1/members/extra'), 404, 'FLOTILLA_NOT_FOUND');
    const wrongMethod = await admin(store, 'POST', 'store');
    expectError(wrongMethod, 405, 'FLOTILLA_METHOD_NOT_ALLOWED');
    assert.equal(wrongMethod.headers.allow, 'GET');
    assert.equal((await admin(store, 'PATCH' as Method, 'stores/2')).headers.allow, 'PUT, DELETE');
    expectBadField(await admin(store, 'GET', 'regions/abc'), 'regionId in the path');
    expectBadField(await admin(store, 'GET', 'regions/0'), 'regionId in the path');
    expectBadField(await admin(store, 'GET', 'store?verbose=1'), 'query verbose');
    expectBadField(await admin(store, 'GET', 'store', { verbose: true }), 'verbose');

    // The same host behind a server without the admin option.
    const plain = new StoreServer({ service: store.service, host: store.host, transport: store.transport, defaultMetrics: false });
    const client = new Client(`http://127.0.0.1:${(await plain.listen()).port}`);
    try {
      expectError(await admin(client, 'GET', 'store'), 404, 'FLOTILLA_NOT_FOUND');
    } finally {
      await client.close();
      await plain.close();
    }
  });

  test('PUT and DELETE stores/:storeId tell the transport where stores listen; bad bodies are 400s naming the field', async () => {
    const [one, two] = [cluster.stores.get(1)!, cluster.stores.get(2)!];
    await cluster.connectAll();
    assert.deepEqual(okBody(await admin(one, 'PUT', 'stores/2', two.transport.address())), { storeId: 2, ...two.transport.address() });
    assert.deepEqual(okBody(await admin(one, 'DELETE', 'stores/9')), { storeId: 9, removed: true });

    expectBadField(await admin(one, 'PUT', 'stores/2', { host: 'memory', port: '1' }), 'port');
    expectBadField(await admin(one, 'PUT', 'stores/2', { host: 'memory', port: 70_000 }), 'port');
    expectBadField(await admin(one, 'PUT', 'stores/2', { port: 1 }), 'host');
    expectBadField(await admin(one, 'PUT', 'stores/2', { ...two.transport.address(), weight: 1 }), 'weight');
    expectBadField(await admin(one, 'PUT', 'stores/2', [1, 2]), 'body');
    expectBadField(await admin(one, 'PUT', 'stores/2', undefined, { body: '{"host": "memory", ' }), 'body');
    expectBadField(await admin(one, 'PUT', 'stores/2'), 'body');
    // The transport refuses itself as a peer.
    expectError(await admin(one, 'PUT', 'stores/1', one.transport.address()), 400, 'FLOTILLA_MALFORMED_REQUEST');
    expectError(await admin(one, 'PUT', 'stores/2', undefined, { body: 'host=memory', contentType: 'text/plain' }), 415, 'FLOTILLA_UNSUPPORTED_MEDIA_TYPE');
    // The links still work: every store's transport sees the others up.
    await waitFor('every link up', () => [...cluster.stores.values()].every((s) => [...s.transport.stats().values()].filter((p) => p.state === 'up').length === 2));
  });

  test('POST bootstrap creates founding replicas; twice is 409 REGION_EXISTS; invalid regions are 400s', async () => {
    for (const store of cluster.stores.values()) {
      const created = okBody<RegionStatusJson>(await admin(store, 'POST', 'bootstrap', { region: regionJson(REGION) }), 201);
      assert.equal(created.id, 1);
      assert.equal(created.startKey, hex(bytes('a')));
      assert.equal(created.peerId, 10 + store.id);
    }
    await waitFor('a leader', () => leaderOf(cluster.stores.values(), 1) !== undefined);

    const one = cluster.stores.get(1)!;
    const twice = expectError(await admin(one, 'POST', 'bootstrap', { region: regionJson(REGION) }), 409, 'FLOTILLA_REGION_EXISTS');
    assert.match(twice.message, /region 1/);
    const valid = regionJson({ ...REGION, id: 50 });
    expectBadField(await admin(one, 'POST', 'bootstrap', { region: { ...valid, id: '50' } }), 'region.id');
    expectBadField(await admin(one, 'POST', 'bootstrap', { region: { ...valid, startKey: 'zz' } }), 'region.startKey');
    expectBadField(await admin(one, 'POST', 'bootstrap', { region: { ...valid, startKey: '6E' } }), 'region.startKey');
    expectBadField(await admin(one, 'POST', 'bootstrap', { region: { ...valid, endKey: valid.startKey } }), 'region.endKey');
    expectBadField(await admin(one, 'POST', 'bootstrap', { region: { ...valid, epoch: { version: 1 } } }), 'region.epoch.confVer');
    expectBadField(await admin(one, 'POST', 'bootstrap', { region: { ...valid, peers: [{ id: 1, storeId: 1, role: 'witness' }] } }), 'region.peers[0].role');
    expectBadField(await admin(one, 'POST', 'bootstrap', { region: { ...valid, peers: [{ id: 1, storeId: 1, role: 'learner' }] } }), 'region.peers');
    // Not a replica here: refused before anything is written.
    expectError(await admin(one, 'POST', 'bootstrap', { region: { ...valid, peers: [{ id: 1, storeId: 2, role: 'voter' }] } }), 400, 'FLOTILLA_MALFORMED_REQUEST');
    assert.equal(one.host.regionStatus(50), undefined);
    assert.equal(one.kv.region(50), null, 'nothing of region 50 reached the KV engine');
  });

  test('GET regions/:id: role, leader, indexes; progress on the leader only; 404 for an unknown region', async () => {
    const leader = cluster.leader(1);
    const follower = cluster.follower(1);
    const led = okBody<RegionStatusJson>(await admin(leader, 'GET', 'regions/1'));
    assert.equal(led.role, 'leader');
    assert.deepEqual(led.leader, { peerId: peerIdOn(leader, 1), storeId: leader.id });
    assert.deepEqual(led.epoch, REGION.epoch);
    assert.deepEqual([led.startKey, led.endKey], ['61', '6e']);
    assert.deepEqual(led.progress?.map((p) => [p.peerId, p.storeId]), [[11, 1], [12, 2], [13, 3]]);
    assert.ok(led.commit >= 6 && led.applied >= 6 && led.lastIndex >= led.commit, JSON.stringify(led));
    assert.equal(led.firstIndex, 6, 'the log starts after the bootstrap snapshot (index 5)');
    assert.equal(led.placeholder, false);

    const seen = okBody<RegionStatusJson>(await admin(follower, 'GET', 'regions/1'));
    assert.equal(seen.role, 'follower');
    assert.deepEqual(seen.leader, led.leader);
    assert.equal(seen.progress, undefined);

    const missing = expectError(await admin(leader, 'GET', 'regions/77'), 404, 'FLOTILLA_REGION_NOT_FOUND');
    assert.equal(missing.details?.regionId, 77);
  });

  test('GET regions pages in region id order; limit and after are checked', async () => {
    const one = cluster.stores.get(1)!;
    // Single-replica regions on store 1 only, created out of order, in one bootstrap.
    const single = (id: number): RegionJson => regionJson({ ...REGION, id, startKey: bytes(`r${id}`), endKey: bytes(`r${id}~`), peers: [{ id: id * 10, storeId: 1, role: 'voter' }] });
    expectBadField(await admin(one, 'POST', 'bootstrap', { regions: [single(100), single(100)] }), 'regions');
    expectBadField(await admin(one, 'POST', 'bootstrap', { region: single(100), regions: [single(101)] }), 'body');
    expectBadField(await admin(one, 'POST', 'bootstrap', { regions: [single(100), { ...single(101), endKey: 7 }] }), 'regions[1].endKey');
    // All or nothing: one region that exists refuses the whole batch.
    expectError(await admin(one, 'POST', 'bootstrap', { regions: [single(100), regionJson(REGION)] }), 409, 'FLOTILLA_REGION_EXISTS');
    assert.equal(one.host.regionStatus(100), undefined);
    const created = okBody<{ regionIds: number[] }>(await admin(one, 'POST', 'bootstrap', { regions: [104, 101, 103, 100, 102].map(single) }), 201);
    assert.deepEqual(created.regionIds, [104, 101, 103, 100, 102]);
    const pages: number[][] = [];
    let after = 0;
    for (;;) {
      const page = okBody<{ regions: RegionStatusJson[]; next: number | null }>(await admin(one, 'GET', `regions?limit=2&after=${after}`));
      pages.push(page.regions.map((r) => r.id));
      if (page.next === null) break;
      after = page.next;
    }
    assert.deepEqual(pages, [[1, 100], [101, 102], [103, 104]]);
    const all = okBody<{ regions: RegionStatusJson[]; next: number | null }>(await admin(one, 'GET', 'regions'));
    assert.deepEqual(all.regions.map((r) => r.id), [1, 100, 101, 102, 103, 104]);
    assert.equal(all.next, null);
    assert.deepEqual(okBody<{ regions: unknown[] }>(await admin(one, 'GET', 'regions?after=104')).regions, []);

    expectBadField(await admin(one, 'GET', 'regions?limit=0'), 'query limit');
    expectBadField(await admin(one, 'GET', 'regions?limit=10001'), 'query limit');
    expectBadField(await admin(one, 'GET', 'regions?after=-1'), 'query after');
    expectBadField(await admin(one, 'GET', 'regions?from=3'), 'query from');
  });

  test('POST regions/:id/campaign makes the replica campaign; 404 for an unknown region', async () => {
    const follower = cluster.follower(1);
    const answer = okBody<RegionStatusJson>(await admin(follower, 'POST', 'regions/1/campaign'), 202);
    // Pre-vote first: a campaign against a live leader's lease changes nothing else.
    assert.equal(answer.role, 'preCandidate');
    expectError(await admin(follower, 'POST', 'regions/77/campaign'), 404, 'FLOTILLA_REGION_NOT_FOUND');
    await waitFor('a leader', () => leaderOf(cluster.stores.values(), 1) !== undefined);
  });

  test('POST regions/:id/transfer-leader waits until the target leads; NotLeader with the hint; a stuck transfer times out', async () => {
    const leader = cluster.leader(1);
    const target = cluster.follower(1);
    const moved = okBody<RegionStatusJson>(await admin(leader, 'POST', 'regions/1/transfer-leader', { toPeerId: peerIdOn(target, 1) }));
    assert.deepEqual(moved.leader, { peerId: peerIdOn(target, 1), storeId: target.id });
    await waitFor('the target leads', () => cluster.leader(1) === target);

    // The old leader no longer leads: NotLeader, with the new leader in the hint.
    const notLeader = expectError(await admin(leader, 'POST', 'regions/1/transfer-leader', { toPeerId: peerIdOn(leader, 1) }), 409, 'FLOTILLA_NOT_LEADER');
    assert.deepEqual(notLeader.details?.leader, { peerId: peerIdOn(target, 1), storeId: target.id });
    expectError(await admin(target, 'POST', 'regions/1/transfer-leader', { toPeerId: 99 }), 409, 'FLOTILLA_CONFLICT');
    expectError(await admin(target, 'POST', 'regions/77/transfer-leader', { toPeerId: 11 }), 404, 'FLOTILLA_REGION_NOT_FOUND');
    expectBadField(await admin(target, 'POST', 'regions/1/transfer-leader', { toPeerId: '11' }), 'toPeerId');
    expectBadField(await admin(target, 'POST', 'regions/1/transfer-leader', { toPeerId: 11, timeoutMs: 3_600_000 }), 'timeoutMs');
    // Already the leader: nothing to do.
    assert.equal(okBody<RegionStatusJson>(await admin(target, 'POST', 'regions/1/transfer-leader', { toPeerId: peerIdOn(target, 1) })).role, 'leader');

    // The leader can't reach the target (its TimeoutNow is dropped, never delayed): first the
    // request's own deadline passes, then the core gives up after an election timeout.
    const unreachable = cluster.follower(1);
    okBody(await admin(target, 'DELETE', `stores/${unreachable.id}`));
    try {
      const deadline = expectError(await admin(target, 'POST', 'regions/1/transfer-leader', { toPeerId: peerIdOn(unreachable, 1), timeoutMs: 1 }), 504, 'FLOTILLA_TIMEOUT');
      assert.match(deadline.message, /does not lead after 1 ms/);
      const gaveUp = expectError(await admin(target, 'POST', 'regions/1/transfer-leader', { toPeerId: peerIdOn(unreachable, 1), timeoutMs: 5_000 }), 504, 'FLOTILLA_TIMEOUT');
      assert.match(gaveUp.message, /gave up/);
    } finally {
      okBody(await admin(target, 'PUT', `stores/${unreachable.id}`, unreachable.transport.address()));
    }
    assert.equal(cluster.leader(1), target, 'the leader stays');
  });

  test('POST regions/:id/snapshot compacts the log at the applied index; a lagging follower is caught up by a snapshot', async () => {
    const leader = cluster.leader(1);
    const lagging = cluster.follower(1);
    // The leader stops reaching one follower, which falls behind.
    okBody(await admin(leader, 'DELETE', `stores/${lagging.id}`));
    await putAll(leader, 1, Array.from({ length: 20 }, (_, i): [string, string] => [`lag-${i}`, `v${i}`]));
    const point = okBody<{ index: number; term: number }>(await admin(leader, 'POST', 'regions/1/snapshot'));
    const status = leader.host.regionStatus(1)!;
    assert.equal(point.index, status.applied, 'compacted up to the applied index');
    assert.equal(point.term, status.raft.term);
    assert.equal(okBody<RegionStatusJson>(await admin(leader, 'GET', 'regions/1')).firstIndex, point.index + 1);
    assert.ok(lagging.host.regionStatus(1)!.applied < point.index, 'the follower is behind the compacted log');

    const sent = leader.host.stats().snapshotsSent;
    const received = lagging.host.stats().snapshotsReceived;
    okBody(await admin(leader, 'PUT', `stores/${lagging.id}`, lagging.transport.address()));
    await waitFor('the follower installs a snapshot and catches up', async () => lagging.host.stats().snapshotsReceived > received && text(await lagging.kv.get(bytes('lag-19'))) === 'v19');
    assert.ok(leader.host.stats().snapshotsSent > sent);
    assert.ok(lagging.host.regionStatus(1)!.applied >= point.index);

    expectError(await admin(leader, 'POST', 'regions/77/snapshot'), 404, 'FLOTILLA_REGION_NOT_FOUND');
    expectBadField(await admin(leader, 'POST', 'regions/1/snapshot', { force: true }), 'force');
    // A follower may compact its own log too (hashicorp's Snapshot() is local).
    assert.equal(okBody<{ index: number }>(await admin(lagging, 'POST', 'regions/1/snapshot')).index, lagging.host.regionStatus(1)!.applied);
  });

  test('POST regions/:id/members: a learner on a 4th store (caught up by a snapshot after compaction), promoted, an old voter removed', async () => {
    const newcomer = await cluster.startStore(4);
    await cluster.connectAll();
    const leader = cluster.leader(1);
    const confVer = leader.host.regionStatus(1)!.region.epoch.confVer;

    // Refusals first: not the leader, impossible changes, malformed ones.
    const follower = cluster.follower(1);
    const notLeader = expectError(await admin(follower, 'POST', 'regions/1/members', { changes: [{ type: 'addLearner', peerId: 14, storeId: 4 }] }), 409, 'FLOTILLA_NOT_LEADER');
    assert.deepEqual(notLeader.details?.leader, { peerId: peerIdOn(leader, 1), storeId: leader.id });
    const voters = leader.host.regionStatus(1)!.raft.config.voters;
    expectError(await admin(leader, 'POST', 'regions/1/members', { changes: voters.map((peerId) => ({ type: 'remove', peerId })) }), 409, 'FLOTILLA_CONFLICT');
    expectError(await admin(leader, 'POST', 'regions/1/members', { changes: [{ type: 'addLearner', peerId: 14, storeId: leader.id }] }), 409, 'FLOTILLA_CONFLICT');
    expectError(await admin(leader, 'POST', 'regions/1/members', { changes: [{ type: 'remove', peerId: 99 }] }), 409, 'FLOTILLA_CONFLICT');
    expectError(await admin(leader, 'POST', 'regions/1/members', { changes: [] }), 409, 'FLOTILLA_CONFLICT');
    expectBadField(await admin(leader, 'POST', 'regions/1/members', { changes: [{ type: 'addWitness', peerId: 14, storeId: 4 }] }), 'changes[0].type');
    expectBadField(await admin(leader, 'POST', 'regions/1/members', { changes: [{ type: 'addLearner', peerId: 14 }] }), 'changes[0].storeId');
    expectBadField(await admin(leader, 'POST', 'regions/1/members', { changes: [{ type: 'addLearner', peerId: 14, storeId: 4 }], transition: 'later' }), 'transition');
    expectBadField(await admin(leader, 'POST', 'regions/1/members', { changes: 'all' }), 'changes');
    expectError(await admin(leader, 'POST', 'regions/77/members', { changes: [{ type: 'remove', peerId: 1 }] }), 404, 'FLOTILLA_REGION_NOT_FOUND');
    assert.equal(leader.host.regionStatus(1)!.region.epoch.confVer, confVer, 'no refused change reached the log');

    // The log is compacted first: the new replica can only be brought up by a snapshot.
    await putAll(leader, 1, [['member-key', 'present']]);
    const point = okBody<{ index: number }>(await admin(leader, 'POST', 'regions/1/snapshot'));
    const sent = leader.host.stats().snapshotsSent;
    const learner = okBody<RegionStatusJson>(await admin(leader, 'POST', 'regions/1/members', { changes: [{ type: 'addLearner', peerId: 14, storeId: 4 }] }));
    assert.equal(learner.epoch.confVer, confVer + 1);
    assert.ok(learner.peers.some((p) => p.id === 14 && p.storeId === 4 && p.role === 'learner'), peersOf(learner));
    await waitFor('the learner on store 4 installs a snapshot', async () => text(await newcomer.kv.get(bytes('member-key'))) === 'present' && newcomer.host.regionStatus(1)?.placeholder === false);
    assert.ok(newcomer.host.stats().snapshotsReceived >= 1);
    assert.ok(leader.host.stats().snapshotsSent > sent);
    assert.ok(newcomer.host.regionStatus(1)!.applied >= point.index);
    assert.equal(okBody<RegionStatusJson>(await admin(newcomer, 'GET', 'regions/1')).role, 'learner');

    const promoted = okBody<RegionStatusJson>(await admin(leader, 'POST', 'regions/1/members', { changes: [{ type: 'addVoter', peerId: 14, storeId: 4 }] }));
    assert.ok(promoted.peers.some((p) => p.id === 14 && p.role === 'voter'), peersOf(promoted));
    expectError(await admin(leader, 'POST', 'regions/1/members', { changes: [{ type: 'addVoter', peerId: 14, storeId: 4 }] }), 409, 'FLOTILLA_CONFLICT');

    const victim = [...cluster.stores.values()].find((s) => s !== leader && s !== newcomer)!;
    const victimPeer = peerIdOn(victim, 1);
    const removed = okBody<RegionStatusJson>(await admin(leader, 'POST', 'regions/1/members', { changes: [{ type: 'remove', peerId: victimPeer }] }));
    assert.ok(!removed.peers.some((p) => p.id === victimPeer), peersOf(removed));
    assert.equal(removed.epoch.confVer, confVer + 3);
    assert.equal(removed.progress?.length, 3);
    await waitFor('store 4 votes in the new configuration', () => newcomer.host.regionStatus(1)?.raft.config.voters.includes(14) === true && newcomer.host.regionStatus(1)?.region.epoch.confVer === confVer + 3);
  });

  test('POST regions/:id/members with an explicit transition: joint until an empty change list leaves it', async () => {
    const leader = cluster.leader(1);
    // A voter of the leader's region (a removed replica may still think it votes).
    const member = leader.host.regionStatus(1)!.region.peers.find((p) => p.id !== peerIdOn(leader, 1) && p.role === 'voter')!;
    const { id: peerId, storeId } = member;
    const joint = okBody<RegionStatusJson>(await admin(leader, 'POST', 'regions/1/members', { changes: [{ type: 'addLearner', peerId, storeId }], transition: 'explicit' }));
    assert.ok(joint.config.votersOutgoing.length > 0, 'joint');
    assert.deepEqual(joint.config.learnersNext, [peerId]);
    expectError(await admin(leader, 'POST', 'regions/1/members', { changes: [{ type: 'addVoter', peerId, storeId }] }), 409, 'FLOTILLA_CONFLICT');
    const left = okBody<RegionStatusJson>(await admin(leader, 'POST', 'regions/1/members', { changes: [] }));
    assert.deepEqual(left.config.votersOutgoing, []);
    assert.deepEqual(left.config.learners, [peerId]);
    const back = okBody<RegionStatusJson>(await admin(leader, 'POST', 'regions/1/members', { changes: [{ type: 'addVoter', peerId, storeId }] }));
    assert.ok(back.config.voters.includes(peerId));
  });

  test('POST regions/:id/split answers both regions; a stale key is 409 EPOCH_NOT_MATCH with the current region', async () => {
    const leader = cluster.leader(1);
    const members = leader.host.regionStatus(1)!.region.peers;
    const newPeerIds = members.map((_, i) => 21 + i);
    expectError(await admin(cluster.follower(1), 'POST', 'regions/1/split', { splitKey: hex(bytes('g')), newRegionId: 2, newPeerIds }), 409, 'FLOTILLA_NOT_LEADER');
    expectBadField(await admin(leader, 'POST', 'regions/1/split', { splitKey: 'g', newRegionId: 2, newPeerIds }), 'splitKey');
    expectBadField(await admin(leader, 'POST', 'regions/1/split', { splitKey: hex(bytes('g')), newRegionId: 2, newPeerIds: [21, 21, 23] }), 'newPeerIds');
    expectBadField(await admin(leader, 'POST', 'regions/1/split', { splitKey: hex(bytes('g')), newRegionId: 2 }), 'newPeerIds');
    expectError(await admin(leader, 'POST', 'regions/1/split', { splitKey: hex(bytes('g')), newRegionId: 1, newPeerIds }), 409, 'FLOTILLA_REGION_EXISTS');

    const version = leader.host.regionStatus(1)!.region.epoch.version;
    const split = okBody<{ parent: RegionJson; child: RegionJson }>(await admin(leader, 'POST', 'regions/1/split', { splitKey: hex(bytes('g')), newRegionId: 2, newPeerIds }));
    assert.deepEqual([split.parent.id, split.parent.startKey, split.parent.endKey, split.parent.epoch.version], [1, '61', '67', version + 1]);
    assert.deepEqual([split.child.id, split.child.startKey, split.child.endKey, split.child.epoch.version], [2, '67', '6e', version + 1]);
    assert.deepEqual(split.child.peers.map((p) => [p.id, p.storeId]), members.map((p, i) => [newPeerIds[i], p.storeId]));
    assert.deepEqual(okBody<RegionStatusJson>(await admin(leader, 'GET', 'regions/1')).endKey, '67');
    await waitFor('the new region has a leader', () => leaderOf(cluster.stores.values(), 2) !== undefined);

    // The same split again, and a key the region no longer holds: stale.
    for (const key of ['g', 'k']) {
      const stale = expectError(await admin(cluster.leader(1), 'POST', 'regions/1/split', { splitKey: hex(bytes(key)), newRegionId: 3, newPeerIds }), 409, 'FLOTILLA_EPOCH_NOT_MATCH');
      const current = stale.details?.currentRegions as RegionJson[];
      assert.deepEqual(current.map((r) => [r.id, r.startKey, r.endKey]), [[1, '61', '67']]);
    }
  });

  test('members and split of a region whose voters are too many on stores critically short of disk: 507 DISK_FULL at once, nothing proposed', async () => {
    const leader = cluster.leader(1);
    const status = leader.host.regionStatus(1)!;
    const others = status.region.peers.filter((p) => p.role === 'voter' && p.storeId !== leader.id);
    assert.ok(others.length >= 2, JSON.stringify(status.region.peers));
    // What the transport hands the host when those stores say they take no entries.
    const full = { refusesReplication: true, availableBytes: 10, reserveBytes: 1_000 };
    for (const p of others) leader.host.onPeerDiskState(p.storeId, full);
    try {
      const removal = expectError(await admin(leader, 'POST', 'regions/1/members', { changes: [{ type: 'remove', peerId: others[0]!.id }] }), 507, 'FLOTILLA_DISK_FULL');
      assert.deepEqual(removal.details, { storeId: others[0]!.storeId, availableBytes: 10, reserveBytes: 1_000 }, removal.message);
      const newPeerIds = status.region.peers.map((_, i) => 41 + i);
      expectError(await admin(leader, 'POST', 'regions/1/split', { splitKey: hex(bytes('c')), newRegionId: 4, newPeerIds }), 507, 'FLOTILLA_DISK_FULL');
      const after = leader.host.regionStatus(1)!;
      assert.deepEqual([after.raft.lastIndex, after.region.epoch], [status.raft.lastIndex, status.region.epoch], 'nothing was proposed');
    } finally {
      for (const p of others) leader.host.onPeerDiskState(p.storeId, null);
    }
  });

  test('an admin body over adminBodyBytesMax is refused with 413 while it streams', async () => {
    const store = cluster.stores.get(1)!;
    const client = new Client(`http://127.0.0.1:${store.server.address().port}`);
    try {
      const before = store.server.stats().refusedTooLarge;
      const answer = await admin(client, 'POST', 'bootstrap', undefined, { body: Buffer.alloc(serverLimits.adminBodyBytesMax + 1, 0x20) });
      expectError(answer, 413, 'FLOTILLA_REQUEST_TOO_LARGE');
      assert.equal(store.server.stats().refusedTooLarge, before + 1);
      assert.ok(store.server.stats().bodyBytesInFlightPeak <= serverLimits.adminBodyBytesMax);
      await waitFor('nothing held', () => store.server.stats().bodyBytesInFlight === 0 && store.server.stats().requestsInFlight === 0);
      // A body at the bound is read (and refused for what it says, not for its size).
      expectBadField(await admin(client, 'POST', 'bootstrap', undefined, { body: Buffer.alloc(serverLimits.adminBodyBytesMax, 0x20) }), 'body');
    } finally {
      await client.close();
    }
  });

  test('/metrics counts admin requests by endpoint and code', async () => {
    const store = cluster.stores.get(1)!;
    const metrics = await store.client.request({ path: '/metrics', method: 'GET' });
    const exposition = await metrics.body.text();
    assert.ok((sample(exposition, 'flotilla_store_admin_requests_total', { endpoint: 'GET store', code: 'OK' }) ?? 0) >= 1);
    assert.ok((sample(exposition, 'flotilla_store_admin_requests_total', { endpoint: 'POST bootstrap', code: 'FLOTILLA_REGION_EXISTS' }) ?? 0) >= 1);
    assert.ok((sample(exposition, 'flotilla_store_admin_requests_total', { endpoint: 'unknown', code: 'FLOTILLA_NOT_FOUND' }) ?? 0) >= 1);
    assert.ok((sample(exposition, 'flotilla_store_admin_request_duration_seconds_count', { endpoint: 'GET regions' }) ?? 0) >= 1);
  });
});

describe('campaign on a cluster whose ticker never fires', () => {
  // A minute per tick: no replica times out, so only the campaign elects a leader.
  const cluster = new AdminCluster({ tickMs: 60_000 });
  after(() => cluster.closeAll());

  test('POST regions/:id/campaign elects the replica it is sent to', async () => {
    for (const id of [1, 2, 3]) await cluster.startStore(id);
    await cluster.connectAll();
    for (const store of cluster.stores.values()) okBody(await admin(store, 'POST', 'bootstrap', { region: regionJson(REGION) }), 201);
    const two = cluster.stores.get(2)!;
    okBody(await admin(two, 'POST', 'regions/1/campaign'), 202);
    await waitFor('store 2 leads', () => leaderOf(cluster.stores.values(), 1) === two);
    await waitFor('store 3 knows it', async () => {
      const seen = okBody<RegionStatusJson>(await admin(cluster.stores.get(3)!, 'GET', 'regions/1'));
      return seen.leader?.storeId === 2 && seen.leader.peerId === 12;
    });
  });
});

describe('admin requests share the server bounds', () => {
  const cluster = new AdminCluster();
  after(() => cluster.closeAll());

  test('an admin request past the in-flight bound, or while stopping, is 503 SERVER_BUSY with Retry-After', async () => {
    const store = await cluster.startStore(1);
    // A server admitting one request at a time, whose KV service waits on a gate.
    let openGate = (): void => {};
    const gate = new Promise<void>((resolve) => {
      openGate = resolve;
    });
    let entered = 0;
    const gated: KvHandler = {
      handle: async (request) => {
        entered++;
        await gate;
        return store.service.handle(request);
      },
    };
    const server = new StoreServer({ service: gated, host: store.host, transport: store.transport, requestsInFlightMax: 1, defaultMetrics: false, admin: { host: store.host, transport: store.transport, kv: store.kv } });
    const origin = `http://127.0.0.1:${(await server.listen()).port}`;
    const kvClient = new Client(origin);
    const adminClient = new Client(origin);
    try {
      const held = kvClient.request({ path: '/v1/kv', method: 'POST', headers: { 'content-type': 'application/x-msgpack' }, body: encodeKvRequest({ requestId: 1, timeoutMs: 1_000, ops: [] }) });
      await waitFor('the KV request is held', () => entered === 1);
      const busy = expectError(await admin(adminClient, 'GET', 'store'), 503, 'FLOTILLA_SERVER_BUSY');
      assert.equal(busy.details?.retryAfterMs, serverLimits.busyRetryAfterMs);
      openGate();
      await (await held).body.arrayBuffer();
      okBody(await admin(adminClient, 'GET', 'store'));

      server.markStopping();
      const stopping = await admin(adminClient, 'GET', 'store');
      expectError(stopping, 503, 'FLOTILLA_SERVER_BUSY');
      assert.equal(stopping.headers['retry-after'], '1');
    } finally {
      openGate();
      await kvClient.destroy();
      await adminClient.destroy();
      await server.close();
    }
  });
});
