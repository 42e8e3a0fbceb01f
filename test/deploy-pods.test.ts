/**
 * The Kubernetes deployment, run for real without a cluster: the dev overlay is built from the
 * committed YAML (deploy/rendered/), and its StatefulSets' pods and the PD configuration job
 * run as local processes exactly as a kubelet would run them (test/support/kubelet.ts: same
 * command, args and env; stable DNS names on loopback addresses; volumes as directories; the
 * init container asks a fake API server for its node's zone). The cluster forms and serves,
 * survives a rolling restart of every pod, one at a time, while a client writes and reads
 * (no error the SDK calls non-retryable), and grows from 3 to 4 stores with regions moving to
 * the new one. The dashboard's and the alerts' metric names are checked on live /metrics pages.
 */
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { PD, STORE } from '../deploy/src/constants.ts';
import type { Job, StatefulSet } from '../deploy/src/kube-types.ts';
import { allQueries, metricNames } from '../deploy/src/monitoring.ts';
import { DEV_PROFILE } from '../deploy/src/profile.ts';
import { buildRendered } from '../deploy/src/rendered.ts';
import { createClient, isRetryable, type FlotillaClient } from '../packages/client/src/index.ts';
import { startFakeKubeApi, type FakeKubeApi } from './support/kube-api.ts';
import { Kubelet, pollUntil as waitFor, type PodAddress } from './support/kubelet.ts';

const ZONES = ['zone-a', 'zone-b', 'zone-c'];
const STORES_AT_START = 3;
const KEYS = 200;
const key = (i: number): string => `user/${String(i).padStart(4, '0')}`;
/** Pre-split points: six regions for the balancer to spread over four stores. */
const SPLIT_KEYS = [30, 60, 90, 120, 150].map(key);
const READY_MS = 90_000;
const CLUSTER_MS = 90_000;
/** Metrics the dashboard and alerts read that Kubernetes and Prometheus provide, not Flotilla. */
const EXTERNAL_METRICS = new Set(['up', 'kubelet_volume_stats_available_bytes', 'kubelet_volume_stats_capacity_bytes']);
/** Series only a process started with --raft-tls-* exports (the rendered pods are not): test/raft-tls.test.ts reads them live. */
const TLS_ONLY_METRICS = new Set(['flotilla_store_raft_tls_certificate_expiry_timestamp_seconds', 'flotilla_pd_raft_tls_certificate_expiry_timestamp_seconds']);

interface PdRegion {
  readonly id: number;
  readonly startKey: string;
  readonly peers: readonly { readonly storeId: number; readonly role: string }[];
  readonly leader: { readonly storeId: number } | null;
}
interface PdStore {
  readonly id: number;
  readonly state: string;
  readonly apiAddress: string;
  readonly labels: Record<string, string>;
  readonly regionCount: number;
}

const hex = (text: string): string => Buffer.from(text).toString('hex');

/** One writer and reader: every answer checked against the last acknowledged write of its key. */
class Workload {
  readonly acknowledged = new Map<string, string>();
  /** Keys whose last write failed: either value may be there until the next acknowledged write. */
  private readonly uncertain = new Set<string>();
  readonly nonRetryable: string[] = [];
  retryable = 0;
  ops = 0;
  private stopped = false;
  private running: Promise<void> | null = null;

  constructor(private readonly client: FlotillaClient) {}

  start(): void {
    this.running = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  private async loop(): Promise<void> {
    for (let i = 0; !this.stopped; i++) {
      const k = key(i % KEYS);
      const value = `v${i}`;
      await this.attempt(k, async () => {
        await this.client.put(k, value);
        this.acknowledged.set(k, value);
        this.uncertain.delete(k);
      });
      const r = key(randomInt(KEYS));
      await this.attempt(r, async () => {
        const read = (await this.client.get(r))?.toString() ?? null;
        if (!this.uncertain.has(r)) assert.equal(read, this.acknowledged.get(r) ?? null, `read of ${r}`);
      }, false);
    }
  }

  private async attempt(k: string, call: () => Promise<void>, write = true): Promise<void> {
    try {
      await call();
      this.ops++;
    } catch (err) {
      if (err instanceof assert.AssertionError) throw err;
      if (write) this.uncertain.add(k);
      if (isRetryable(err)) this.retryable++;
      else this.nonRetryable.push(`${(err as Error).name}: ${(err as Error).message} (${String((err as { code?: unknown }).code)})`);
    }
  }
}

describe('the Kubernetes manifests, run as pods on loopback', () => {
  const objects = buildRendered(`overlays/${DEV_PROFILE.name}`);
  const statefulSet = (name: string): StatefulSet => objects.find((o) => o.kind === 'StatefulSet' && o.metadata?.name === name) as StatefulSet;
  const pdSet = statefulSet(PD.name);
  const storeSet = statefulSet(STORE.name);
  const job = objects.find((o) => o.kind === 'Job') as Job;
  const subnet = `127.${randomInt(1, 255)}.${randomInt(1, 255)}`;
  const pdPods = Array.from({ length: pdSet.spec!.replicas! }, (_, i) => `${PD.name}-${i}`);
  const storePods = Array.from({ length: STORES_AT_START + 1 }, (_, i) => `${STORE.name}-${i}`);
  const addresses = new Map<string, PodAddress>([
    ...pdPods.map((name, i) => [name, { name, ip: `${subnet}.${10 + i}`, nodeName: `node-${i}` }] as const),
    ...storePods.map((name, i) => [name, { name, ip: `${subnet}.${20 + i}`, nodeName: `node-${i}` }] as const),
  ]);
  const nodes = new Map(storePods.map((_, i) => [`node-${i}`, { 'topology.kubernetes.io/zone': ZONES[i % ZONES.length]! }]));
  const pdUrls = pdPods.map((name) => `http://${addresses.get(name)!.ip}:${PD.clientPort}`);

  let root: string | undefined;
  let kubeApi: FakeKubeApi | undefined;
  let kubelet: Kubelet | undefined;
  let client: FlotillaClient | undefined;
  after(async () => {
    kubelet?.killAll();
    await client?.close();
    await kubeApi?.close();
    if (root) await rm(root, { recursive: true, force: true });
  });

  const pdGet = async <T>(pathname: string): Promise<T> => {
    for (const url of pdUrls) {
      const res = await fetch(`${url}${pathname}`, { signal: AbortSignal.timeout(5_000) }).catch(() => undefined);
      if (res?.ok) return (await res.json()) as T;
    }
    throw new Error(`no PD member answered ${pathname}`);
  };
  const pdPost = async (pathname: string, body: unknown): Promise<number> => {
    for (const url of pdUrls) {
      const res = await fetch(`${url}${pathname}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(5_000) }).catch(() => undefined);
      if (res && res.status !== 503) return res.status;
    }
    return 503;
  };
  const regions = async (): Promise<PdRegion[]> => (await pdGet<{ regions: PdRegion[] }>('/pd/api/v1/regions?limit=10000')).regions;
  const stores = async (): Promise<PdStore[]> => (await pdGet<{ stores: PdStore[] }>('/pd/api/v1/stores')).stores;
  const healthy = async (storeCount: number): Promise<boolean> => {
    const all = await regions();
    const up = (await stores()).filter((s) => s.state === 'up');
    return up.length === storeCount && all.every((r) => r.leader !== null && r.peers.filter((p) => p.role === 'voter').length === 3);
  };

  /** Reports how long each step took (the test's diagnostics). */
  let phase: (name: string) => void = () => {};

  /** On a timeout: what PD knows, for the failure report. */
  const withPdState = async (waiting: Promise<void>): Promise<void> => {
    try {
      await waiting;
    } catch (err) {
      const state = await Promise.all(['/pd/api/v1/regions?limit=100', '/pd/api/v1/stores', '/pd/api/v1/operators', '/pd/api/v1/history?limit=20'].map((p) => pdGet(p).catch((e: unknown) => String(e))));
      throw new Error(`${(err as Error).message}\nPD: ${JSON.stringify(state)}`);
    }
  };

  const startPods = async (set: StatefulSet, names: readonly string[]): Promise<void> => {
    const started = await Promise.all(names.map((name) => kubelet!.startPod(set, Number(name.slice(name.lastIndexOf('-') + 1)))));
    await Promise.all(started.map((pod) => pod.waitReady(READY_MS)));
  };

  /** A StatefulSet rolling update: highest ordinal first, each pod deleted, recreated, ready. */
  const rollingRestart = async (set: StatefulSet, names: readonly string[], workload: Workload, settled: () => Promise<boolean>): Promise<void> => {
    for (const name of [...names].reverse()) {
      const exit = await kubelet!.deletePod(name);
      assert.equal(exit, 0, `${name} stopped on SIGTERM within its grace period`);
      phase(`${name} stopped`);
      await startPods(set, [name]);
      phase(`${name} restarted and ready`);
      await waitFor(`the cluster settled after restarting ${name}`, settled, CLUSTER_MS);
      const before = workload.ops;
      await waitFor(`the client served after restarting ${name}`, async () => workload.ops > before + 20, CLUSTER_MS);
      phase(`${name}: the cluster settled and serves`);
    }
  };

  it('forms, serves, rolls over every pod and scales out', { timeout: 600_000 }, async (t) => {
    const began = Date.now();
    phase = (name) => t.diagnostic(`${((Date.now() - began) / 1000).toFixed(1)} s: ${name}`);
    root = await mkdtemp(path.join(os.tmpdir(), 'flotilla-deploy-'));
    kubeApi = await startFakeKubeApi(nodes);
    const peerServices = new Map([...pdPods.map((n) => [n, pdSet.spec!.serviceName!] as const), ...storePods.map((n) => [n, storeSet.spec!.serviceName!] as const)]);
    kubelet = new Kubelet({ namespace: DEV_PROFILE.namespace!, root, kubeApi, pods: addresses, peerServices });
    await kubelet.install();

    await startPods(pdSet, pdPods);
    phase('PD members ready');
    const jobLogs = await kubelet.runJob(job.spec!.template.spec!, job.metadata!.name!, { name: `${job.metadata!.name!}-job`, ip: `${subnet}.5`, nodeName: 'node-0' });
    const config = await pdGet<{ locationLabels: string[] }>('/pd/api/v1/config');
    assert.deepEqual(config.locationLabels, ['zone', 'host'], `the job set PD's location labels:\n${jobLogs.join('\n')}`);

    phase('PD configured by the job');
    await startPods(storeSet, storePods.slice(0, STORES_AT_START));
    await waitFor('region 1 on three voters with a leader', () => healthy(STORES_AT_START), CLUSTER_MS);
    phase('3 stores, region 1 replicated');
    const placed = await stores();
    for (const store of placed) {
      const pod = storePods.find((name) => store.apiAddress === `${addresses.get(name)!.ip}:${STORE.apiPort}`);
      assert.ok(pod, `store ${store.id} advertises a pod's API address (${store.apiAddress})`);
      const node = addresses.get(pod)!.nodeName;
      assert.deepEqual(store.labels, { zone: nodes.get(node)!['topology.kubernetes.io/zone'], host: node }, `store ${store.id}'s location labels come from its node`);
    }
    assert.equal(new Set(kubeApi.lookups).size, STORES_AT_START, 'each store pod\'s init container read its node');

    // One key per split operator: a split operator with several keys splits at the first only
    // (seen here; reported), so each key is split off its region in turn.
    for (const splitKey of SPLIT_KEYS) {
      // Until the region right of a split reports to PD, no region holds the key (404).
      const holder = (): Promise<PdRegion | undefined> => pdGet<PdRegion>(`/pd/api/v1/region-by-key?key=${hex(splitKey)}`).catch(() => undefined);
      const startsRegion = async (): Promise<boolean> => (await holder())?.startKey === hex(splitKey);
      await waitFor(`PD to accept a split at ${splitKey}`, async () => {
        const region = await holder();
        if (!region) return false;
        // Refused (409) while another operator works on the region (a leader balance): asked again.
        return (await pdPost('/pd/api/v1/operators', { type: 'split', regionId: region.id, keys: [hex(splitKey)] })) === 201;
      }, CLUSTER_MS, 1_000);
      await withPdState(waitFor(`a region to start at ${splitKey}`, startsRegion, CLUSTER_MS));
    }
    phase('splits done');
    await withPdState(waitFor('six regions with leaders and three voters', async () => (await regions()).length === SPLIT_KEYS.length + 1 && (await healthy(STORES_AT_START)), CLUSTER_MS));

    client = createClient({ pd: pdUrls });
    const workload = new Workload(client);
    workload.start();
    await waitFor('the client to write', async () => workload.ops > 50, CLUSTER_MS);

    phase('client writing');
    await rollingRestart(storeSet, storePods.slice(0, STORES_AT_START), workload, () => healthy(STORES_AT_START));
    phase('stores restarted');
    // A new PD leader learns regions' leaders from their next heartbeats (up to a minute):
    // between PD restarts, every member knowing a leader is what keeps PD's quorum.
    const pdLeads = async (): Promise<boolean> => {
      const answers = await Promise.all(pdUrls.map((url) => fetch(`${url}/ready`, { signal: AbortSignal.timeout(2_000) }).then((r) => r.status, () => 0)));
      return answers.every((status) => status === 200);
    };
    await rollingRestart(pdSet, pdPods, workload, pdLeads);

    phase('PD members restarted');
    const newcomer = storePods[STORES_AT_START]!;
    await startPods(storeSet, [newcomer]);
    const newcomerAddress = `${addresses.get(newcomer)!.ip}:${STORE.apiPort}`;
    await waitFor('regions rebalanced onto the fourth store', async () => {
      const fresh = (await stores()).find((s) => s.apiAddress === newcomerAddress);
      return fresh !== undefined && (await regions()).filter((r) => r.peers.some((p) => p.storeId === fresh.id && p.role === 'voter')).length >= 2;
    }, CLUSTER_MS);

    phase('rebalanced onto the fourth store');
    await workload.stop();
    phase(`client: ${workload.ops} calls answered, ${workload.retryable} retryable errors, ${workload.nonRetryable.length} others`);
    assert.deepEqual(workload.nonRetryable, [], `no error the SDK calls non-retryable (${workload.ops} calls, ${workload.retryable} retryable errors)`);
    for (const [k, value] of workload.acknowledged) assert.equal((await client.get(k))?.toString(), value, `acknowledged write of ${k}`);

    const pages = await Promise.all([`http://${addresses.get(storePods[0]!)!.ip}:${STORE.apiPort}/metrics`, `${pdUrls[0]}/metrics`].map(async (url) => (await fetch(url)).text()));
    const exported = new Set(pages.join('\n').split('\n').filter((l) => l.startsWith('# TYPE ')).map((l) => l.split(' ')[2]!));
    const missing = [...new Set(allQueries().flatMap(metricNames))].filter((name) => !EXTERNAL_METRICS.has(name) && !TLS_ONLY_METRICS.has(name) && !exported.has(name.replace(/_(bucket|sum|count)$/, '')));
    assert.deepEqual(missing, [], 'every metric the dashboard and alerts read is on a live /metrics page');
  });
});
