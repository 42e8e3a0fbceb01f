/**
 * A store whose data disk is below its reserve refuses puts to the regions it leads
 * (FLOTILLA_DISK_FULL) although their other replicas have room. It says so in its store
 * heartbeat, and PD's balance-leader moves its leaderships to replicas on stores with room —
 * real processes: one PD member, three stores that join through it, the third started with a
 * reserve of 1.5 × the free space (short of space, not yet critically: it still takes replicas).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, statfs, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { flotilla } from '../packages/cli/test/cli-process.ts';
import { ProcessCluster, waitFor } from './support/cluster.ts';
import { PdProcesses } from './support/pd.ts';

interface PdRegion {
  readonly id: number;
  readonly peers: readonly { readonly id: number; readonly storeId: number; readonly role: string }[];
  readonly leader: { readonly storeId: number } | null;
}

const STORE_ARGS = ['--store-heartbeat-ms', '300', '--region-heartbeat-ms', '1000'];
// No store is kept from replicas by the machine's own free share (lowSpaceRatio 0): the test is about the reserve.
const SCHEDULE_CONFIG = { maxReplicas: 3, lowSpaceRatio: 0, schedulers: { balanceRegion: { intervalMs: 200 }, balanceLeader: { intervalMs: 200 }, hotRegion: { enabled: false } } };

describe('PD moves leaderships off a store that refuses writes', () => {
  const pd = new PdProcesses(['--schedule-interval-ms', '100']);
  const cluster = new ProcessCluster({ tickMs: 50, pd: () => [...pd.members.values()].map((m) => m.url), args: STORE_ARGS });
  after(async () => {
    await cluster.close();
    await pd.close();
  });
  /** The cluster's one region (its id is PD's to choose). */
  const onlyRegion = async (): Promise<PdRegion | undefined> => (await pd.expect<{ regions: PdRegion[] }>(1, 'GET', '/pd/api/v1/regions?limit=10')).regions[0];

  it('the store reports it in its heartbeat and PD moves its leadership to a store with room', async () => {
    await pd.start(1);
    await waitFor('PD member 1 to lead', async () => (await pd.leader()) === 1);
    await pd.expect(1, 'PUT', '/pd/api/v1/config', SCHEDULE_CONFIG);
    await cluster.startNewStore();
    await cluster.startNewStore();
    const disk = await statfs(os.tmpdir());
    const short = await cluster.startNewStore(['--disk-reserve-bytes', String(Math.floor(disk.bavail * disk.bsize * 1.5))]);
    await waitFor('the region on the three stores', async () => new Set((await onlyRegion())?.peers.filter((p) => p.role === 'voter').map((p) => p.storeId)).size === 3, 60_000).catch(async (err: unknown) => {
      const state = await Promise.all(['regions?limit=10', 'stores', 'operators', 'history?limit=20'].map((what) => pd.call(1, 'GET', `/pd/api/v1/${what}`)));
      throw new Error(`${(err as Error).message}\n${JSON.stringify(state.map((a) => a.body), null, 1)}`);
    });
    await waitFor('PD knows the store refuses writes', async () => {
      const { stores } = await pd.expect<{ stores: { id: number; refusingWrites: boolean }[] }>(1, 'GET', '/pd/api/v1/stores');
      return stores.find((s) => s.id === short.id)?.refusingWrites === true && stores.filter((s) => s.refusingWrites).length === 1;
    });

    const table = await flotilla(['ctl', 'stores'], { env: { FLOTILLA_PD: pd.members.get(1)!.url } });
    assert.equal(table.code, 0, table.stderr);
    const rows = table.stdout.split('\n').filter((line) => line.includes('(refusing writes)'));
    assert.equal(rows.length, 1, table.stdout);
    assert.match(rows[0]!, new RegExp(`^${short.id}\\s`), 'ctl stores marks the short store');

    // Hand it the leadership (as a restart or an election could); PD takes it away again.
    const region = (await onlyRegion())!;
    const leaderStore = region.leader!.storeId;
    const toPeerId = region.peers.find((p) => p.storeId === short.id)!.id;
    if (leaderStore !== short.id) await cluster.expectAdmin(leaderStore, 'POST', `/v1/admin/regions/${region.id}/transfer-leader`, { toPeerId });
    await waitFor('PD moved the leadership off the short store', async () => {
      const { history } = await pd.expect<{ history: { origin: string; reason: string; regionId: number }[] }>(1, 'GET', '/pd/api/v1/history?limit=50');
      const leader = (await onlyRegion())?.leader?.storeId;
      return leader !== undefined && leader !== short.id && history.some((h) => h.origin === 'balance-leader' && h.regionId === region.id && /refuses writes/.test(h.reason));
    }, 60_000);

    // Led from a store with room, the region takes writes again.
    const leader = (await onlyRegion())!.leader!.storeId;
    const { epoch } = await cluster.expectAdmin<{ epoch: { version: number; confVer: number } }>(leader, 'GET', `/v1/admin/regions/${region.id}`);
    const { response } = await cluster.kv(leader, { requestId: 1, timeoutMs: 5_000, ops: [{ op: 'put', regionId: region.id, regionEpoch: epoch, key: new TextEncoder().encode('k'), value: new TextEncoder().encode('v') }] });
    assert.deepEqual('results' in response ? response.results : response, [{ op: 'put' }]);
  });
});

describe('a store tells PD at once when its disk crosses its reserve', () => {
  const pd = new PdProcesses([]);
  // Store heartbeats every 10 minutes: PD can hear of the change in time only through the heartbeat the change sends.
  const cluster = new ProcessCluster({ tickMs: 50, pd: () => [...pd.members.values()].map((m) => m.url), args: ['--store-heartbeat-ms', '600000'] });
  let faultDir: string | undefined;
  after(async () => {
    await cluster.close();
    await pd.close();
    if (faultDir !== undefined) await rm(faultDir, { recursive: true, force: true });
  });
  const refusing = async (storeId: number): Promise<boolean | undefined> => {
    const { stores } = await pd.expect<{ stores: { id: number; refusingWrites: boolean }[] }>(1, 'GET', '/pd/api/v1/stores');
    return stores.find((s) => s.id === storeId)?.refusingWrites;
  };

  it('below the reserve and back, each without waiting for the next heartbeat', async () => {
    await pd.start(1);
    await waitFor('PD member 1 to lead', async () => (await pd.leader()) === 1);
    faultDir = await mkdtemp(path.join(os.tmpdir(), 'flotilla-pd-disk-'));
    const faults = path.join(faultDir, 'store.json');
    const store = await cluster.startNewStore(['--disk-reserve-bytes', String(1024 ** 2), '--fault-control', faults]);
    await waitFor('PD heard the store with room', async () => (await refusing(store.id)) === false);
    await writeFile(faults, JSON.stringify({ diskAvailableBytes: 0 }));
    await waitFor('PD heard the store refuses writes', async () => (await refusing(store.id)) === true);
    await rm(faults);
    await waitFor('PD heard the store has room again', async () => (await refusing(store.id)) === false);
  });
});
