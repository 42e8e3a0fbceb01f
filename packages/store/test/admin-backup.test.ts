/**
 * GET /v1/admin/regions/:regionId/backup: the leader streams a point-in-time snapshot of the
 * region (the KV engine's checksummed frames, back to back) after a read barrier; any other
 * replica answers NotLeader with the hint; streams are bounded and always release their slot.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MemoryKvEngine, StorageError, type KvEngine, type RegionSnapshotSource } from '@flotilla/storage';
import { Client } from 'undici';
import { ADMIN_PATH_PREFIX, StoreServer, decodeApiError, type ApiErrorCode } from '../src/index.ts';
import { BACKUP_CONTENT_TYPE, backupLimits, type AdminKv } from '../src/admin-api.ts';
import { REGION, TestCluster, put, run, text, waitFor, type MemoryStore } from './harness.ts';

/** A store's admin API on port 0, with the KV engine the test chooses (a gated one, say). */
interface Served {
  readonly server: StoreServer;
  readonly client: Client;
}

async function serve(store: MemoryStore, kv: AdminKv = store.kv): Promise<Served> {
  const server = new StoreServer({ service: store.service, host: store.host, transport: store.transport, defaultMetrics: false, admin: { host: store.host, transport: store.transport, kv } });
  const { port } = await server.listen();
  return { server, client: new Client(`http://127.0.0.1:${port}`, { pipelining: 0 }) };
}

async function stop(served: Served): Promise<void> {
  await served.client.close();
  await served.server.close();
}

/** Splits a backup body into its frames: each starts with its own u32 (big-endian) length. */
function framesOf(body: Buffer): Uint8Array[] {
  const frames: Uint8Array[] = [];
  for (let at = 0; at < body.byteLength; ) {
    assert.ok(at + 4 <= body.byteLength, 'a frame length is cut off');
    const length = body.readUInt32BE(at);
    assert.ok(length >= 16 && at + length <= body.byteLength, `frame at ${at}: length ${length}`);
    frames.push(new Uint8Array(body.subarray(at, at + length)));
    at += length;
  }
  return frames;
}

async function* each<T>(items: readonly T[]): AsyncGenerator<T> {
  yield* items;
}

async function backup(served: Served, path = 'regions/1/backup', method: 'GET' | 'POST' = 'GET'): Promise<{ status: number; contentType: string; body: Buffer }> {
  const res = await served.client.request({ path: `${ADMIN_PATH_PREFIX}${path}`, method });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, contentType: String(res.headers['content-type']), body };
}

function expectError(answer: { status: number; body: Buffer }, status: number, code: ApiErrorCode): Record<string, unknown> {
  const error = decodeApiError(answer.body.toString('utf8'));
  assert.ok(error, `not an API error: ${answer.body.toString('utf8')}`);
  assert.equal(error.code, code, error.message);
  assert.equal(answer.status, status, error.message);
  return { message: error.message, ...error.details };
}

/**
 * A KV engine whose snapshots stop after their header frame until `open()`; counts the
 * sources that ended (to the trailer, or stopped early by the server). A hand-written
 * iterator: an async generator waiting at the gate could not be stopped until it opened.
 */
class GatedKv implements AdminKv {
  ended = 0;
  private release: () => void = () => {};
  private readonly gate = new Promise<void>((resolve) => (this.release = resolve));

  constructor(private readonly kv: KvEngine) {}

  open(): void {
    this.release();
  }

  snapshot(regionId: number): RegionSnapshotSource {
    const source = this.kv.snapshot(regionId);
    return { state: source.state, frames: () => ({ [Symbol.asyncIterator]: () => this.gated(source.frames()[Symbol.asyncIterator]()) }), close: () => source.close() };
  }

  private gated(inner: AsyncIterator<Uint8Array>): AsyncIterator<Uint8Array> {
    let pulled = 0;
    let ended = false;
    const end = (): void => {
      if (!ended) this.ended++;
      ended = true;
    };
    return {
      next: async () => {
        if (pulled++ === 1) await this.gate;
        const step = await inner.next();
        if (step.done === true) end();
        return step;
      },
      return: async () => {
        end();
        await inner.return?.();
        return { done: true, value: undefined };
      },
    };
  }
}

describe('GET /v1/admin/regions/:regionId/backup', () => {
  const cluster = new TestCluster();
  const keys = Array.from({ length: 300 }, (_, i) => `k${String(i).padStart(4, '0')}`);

  before(async () => {
    for (const id of [1, 2, 3]) await cluster.startStore(id);
    for (const store of cluster.stores.values()) await store.host.bootstrapRegion(REGION);
    await waitFor('a leader', () => cluster.leaderOf(1) !== undefined);
    const leader = cluster.leaderOf(1)!;
    for (let i = 0; i < keys.length; i += 100) await run(leader, ...keys.slice(i, i + 100).map((k) => put(k, `value of ${k}`)));
  });
  after(() => cluster.closeAll());

  test('the leader streams the region as snapshot frames that install as the region, every acknowledged write included', async () => {
    const leader = cluster.leaderOf(1)!;
    const served = await serve(leader);
    try {
      // Acknowledged just before the backup is asked for: it must be in it.
      await run(leader, put('k9999', 'last'));
      const appliedBefore = leader.host.regionStatus(1)!.applied;
      const answer = await backup(served);
      assert.equal(answer.status, 200, answer.body.toString('utf8').slice(0, 300));
      assert.equal(answer.contentType, BACKUP_CONTENT_TYPE);

      const frames = framesOf(answer.body);
      assert.ok(frames.length >= 3, 'a header, data and a trailer');
      const restored = new MemoryKvEngine();
      const state = await restored.applySnapshot(1, each(frames));
      assert.equal(state.region.id, 1);
      assert.deepEqual(state.region.epoch, REGION.epoch);
      assert.ok(state.appliedIndex >= appliedBefore, `applied ${state.appliedIndex} < ${appliedBefore}`);
      const scanned = await restored.scan({ start: REGION.startKey, end: REGION.endKey, limit: 10_000 });
      assert.deepEqual(
        scanned.pairs.map((p) => [text(p.key), text(p.value)]),
        [...keys.map((k) => [k, `value of ${k}`]), ['k9999', 'last']],
      );
    } finally {
      await stop(served);
    }
  });

  test('a replica that does not lead answers NotLeader with the leader; an unknown region 404; no query, GET only', async () => {
    const leader = cluster.leaderOf(1)!;
    const follower = [...cluster.stores.values()].find((s) => s !== leader)!;
    const served = await serve(follower);
    try {
      const notLeader = expectError(await backup(served), 409, 'FLOTILLA_NOT_LEADER');
      assert.deepEqual(notLeader.leader, { peerId: leader.host.regionStatus(1)!.peerId, storeId: leader.id });
      assert.equal(notLeader.regionId, 1);
      expectError(await backup(served, 'regions/77/backup'), 404, 'FLOTILLA_REGION_NOT_FOUND');
      expectError(await backup(served, 'regions/1/backup?since=3'), 400, 'FLOTILLA_MALFORMED_REQUEST');
      expectError(await backup(served, 'regions/1/backup', 'POST'), 405, 'FLOTILLA_METHOD_NOT_ALLOWED');
    } finally {
      await stop(served);
    }
  });

  test(`at most ${backupLimits.streamsMax} backups stream at once; one the client leaves frees its slot`, async () => {
    const leader = cluster.leaderOf(1)!;
    const gated = new GatedKv(leader.kv);
    const served = await serve(leader, gated);
    const origin = `http://127.0.0.1:${served.server.address().port}`;
    const streaming = Array.from({ length: backupLimits.streamsMax }, () => new Client(origin));
    try {
      // Each admitted backup sends its header frame, then waits at the gate.
      const bodies = await Promise.all(streaming.map((c) => c.request({ path: `${ADMIN_PATH_PREFIX}regions/1/backup`, method: 'GET' })));
      for (const res of bodies) assert.equal(res.statusCode, 200);
      const busy = expectError(await backup(served), 503, 'FLOTILLA_SERVER_BUSY');
      assert.match(String(busy.message), /backups are streaming/);

      // One client goes away mid-stream: its slot is freed (and its source ended).
      bodies[0]!.body.destroy();
      await streaming[0]!.destroy();
      await waitFor('the abandoned stream ends', () => gated.ended === 1);
      gated.open();
      const whole = await backup(served);
      assert.equal(whole.status, 200);
      assert.ok(framesOf(whole.body).length >= 3);
      // The other one completes once the gate opens.
      assert.ok(framesOf(Buffer.from(await bodies[1]!.body.arrayBuffer())).length >= 3);
      await waitFor('every stream ended', () => gated.ended === 3);
    } finally {
      gated.open();
      for (const c of streaming) await c.destroy();
      await stop(served);
    }
  });

  test('a region whose snapshot is installing is busy, not an internal error', async () => {
    const leader = cluster.leaderOf(1)!;
    const installing: AdminKv = {
      snapshot: () => {
        throw new StorageError('FLOTILLA_STORAGE_REGION_BUSY', 'region 1 is applyingSnapshot');
      },
    };
    const served = await serve(leader, installing);
    try {
      expectError(await backup(served), 503, 'FLOTILLA_SERVER_BUSY');
    } finally {
      await stop(served);
    }
  });
});
