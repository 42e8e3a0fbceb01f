/**
 * PD on real processes: a 3-member PD group grown from one member, stores joining through any
 * member, the leader killed with SIGKILL, and every bit of metadata still there under the new
 * leader; bad input answered with typed errors.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { waitFor } from './support/cluster.ts';
import { PdProcesses } from './support/pd.ts';

interface Members {
  leader: number | null;
  voters: number[];
  learners: number[];
  members: { id: number; clientUrl: string }[];
}
interface Join {
  clusterId: number;
  storeId: number;
  bootstrapRegion?: { id: number; peers: { id: number; storeId: number }[] };
}
interface ErrorBody {
  error: { code: string; message: string };
}

const join = (token: string) => ({ clusterId: 1, token, raftAddress: `127.0.0.1:${token.length}`, apiAddress: '127.0.0.1:9', labels: { zone: `z-${token}` } });

describe('PD members (real processes)', () => {
  const pd = new PdProcesses(['--schedule-interval-ms', '100']);
  after(() => pd.close());

  it('grows from 1 to 3 members, serves through followers, and survives kill -9 of its leader', async () => {
    await pd.startGroup(3);

    const founder = await pd.expect<Join>(2, 'POST', '/pd/api/v1/join', join('a'));
    assert.ok(founder.bootstrapRegion, 'the first store to join founds the cluster (asked through a follower)');
    const second = await pd.expect<Join>(3, 'POST', '/pd/api/v1/join', join('bb'));
    assert.equal(second.bootstrapRegion, undefined);
    assert.deepEqual(await pd.expect<Join>(3, 'POST', '/pd/api/v1/join', join('a')), founder, 'a retried join answers the same');
    const before = await pd.expect<{ ids: number[] }>(1, 'POST', '/pd/api/v1/alloc-ids', { count: 3 });

    const oldLeader = (await pd.leader())!;
    await pd.kill9(oldLeader);
    const survivor = [...pd.members.keys()][0]!;
    await waitFor('a new PD leader', async () => {
      const leader = await pd.leader();
      return leader !== undefined && leader !== oldLeader;
    });
    const stores = await pd.expect<{ stores: { id: number; state: string }[] }>(survivor, 'GET', '/pd/api/v1/stores');
    assert.deepEqual(stores.stores.map((s) => s.id).sort((a, b) => a - b), [founder.storeId, second.storeId].sort((a, b) => a - b));
    assert.deepEqual(await pd.expect<Join>(survivor, 'POST', '/pd/api/v1/join', join('a')), founder, 'the new leader answers the founder the same');
    const region = await pd.expect<{ id: number }>(survivor, 'GET', '/pd/api/v1/region-by-key?key=00');
    assert.equal(region.id, founder.bootstrapRegion.id);
    const afterKill = await pd.expect<{ ids: number[] }>(survivor, 'POST', '/pd/api/v1/alloc-ids', { count: 1 });
    assert.ok(afterKill.ids[0]! > Math.max(...before.ids), 'no id is handed out twice across leaders');

    await pd.start(oldLeader);
    await waitFor('the killed member back as a voter with the others', async () => {
      const members = await pd.call<Members>(oldLeader, 'GET', '/pd/api/v1/members');
      return members.status === 200 && members.body.voters.length === 3 && members.body.leader !== null;
    });
    assert.equal((await pd.expect<{ stores: unknown[] }>(oldLeader, 'GET', '/pd/api/v1/stores')).stores.length, 2, 'a restarted member serves through the leader');
  });

  it('answers bad input with typed errors and keeps serving', async () => {
    const id = [...pd.members.keys()][0]!;
    const cases: [string, string, unknown, number, string][] = [
      ['POST', '/pd/api/v1/join', '{not json', 400, 'FLOTILLA_PD_INVALID_ARGUMENT'],
      ['POST', '/pd/api/v1/join', { clusterId: 'one' }, 400, 'FLOTILLA_PD_INVALID_ARGUMENT'],
      ['POST', '/pd/api/v1/join', { ...join('c'), clusterId: 2 }, 409, 'FLOTILLA_PD_CLUSTER_MISMATCH'],
      ['POST', '/pd/api/v1/store-heartbeat', { storeId: 999_999, capacityBytes: 1, availableBytes: 1, usedBytes: 0, regionCount: 0, leaderCount: 0, rates: {} }, 404, 'FLOTILLA_PD_STORE_NOT_FOUND'],
      ['GET', '/pd/api/v1/regions/999999', undefined, 404, 'FLOTILLA_PD_REGION_NOT_FOUND'],
      ['GET', '/pd/api/v1/region-by-key?key=zz', undefined, 400, 'FLOTILLA_PD_INVALID_ARGUMENT'],
      ['GET', '/pd/api/v1/nothing', undefined, 404, 'FLOTILLA_PD_INVALID_ARGUMENT'],
      ['POST', '/pd/api/v1/alloc-ids', { count: 1e9 }, 400, 'FLOTILLA_PD_INVALID_ARGUMENT'],
      ['PUT', '/pd/api/v1/config', { maxReplicas: -1 }, 400, 'FLOTILLA_PD_INVALID_ARGUMENT'],
      ['POST', '/pd/api/v1/operators', { type: 'split', regionId: 999_999 }, 404, 'FLOTILLA_PD_REGION_NOT_FOUND'],
      ['DELETE', '/pd/api/v1/operators/999999', undefined, 404, 'FLOTILLA_PD_OPERATOR_NOT_FOUND'],
      ['POST', '/pd/api/v1/schedulers/nope/pause', undefined, 400, 'FLOTILLA_PD_INVALID_ARGUMENT'],
      ['POST', '/pd/api/v1/join', 'x'.repeat(5 * 1024 * 1024), 413, 'FLOTILLA_PD_REQUEST_TOO_LARGE'],
    ];
    for (const [method, pathname, body, status, code] of cases) {
      const answer = await pd.call<ErrorBody>(id, method, pathname, body);
      assert.equal(answer.status, status, `${method} ${pathname}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.error.code, code, `${method} ${pathname}`);
    }
    const config = await pd.expect<{ maxReplicas: number }>(id, 'PUT', '/pd/api/v1/config', { maxReplicas: 5 });
    assert.equal(config.maxReplicas, 5, 'a valid patch is applied');
    assert.equal((await pd.expect<{ maxReplicas: number }>(id, 'GET', '/pd/api/v1/config')).maxReplicas, 5);
    const metrics = await pd.call<string>(id, 'GET', '/metrics');
    assert.match(metrics.body, /flotilla_pd_heartbeats_total/);
  });
});
