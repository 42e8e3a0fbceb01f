/**
 * deploy/ without running anything: the committed YAML is what the TypeScript renders; every
 * object validates against the Kubernetes API schemas (kubernetes-models) and compiles as a
 * kubernetes-types literal (unknown fields caught); the overlays build from their files to what
 * their profiles render (our kustomize subset, and kubectl's when installed); the pods are
 * shaped the way the processes need (flags, probes, grace periods, spreading, budgets); the
 * dashboard and alerts read only metrics that exist; the Dockerfile keeps its promises.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, it } from 'node:test';
import { PD, STORE, STORE_MALLOC_ENV } from '../deploy/src/constants.ts';
import type { Container, NetworkPolicy, StatefulSet } from '../deploy/src/kube-types.ts';
import { overlayObjects, type KubeObject } from '../deploy/src/kustomize.ts';
import { ALERT_RULES, allQueries, metricNames } from '../deploy/src/monitoring.ts';
import { OVERLAY_PROFILES, type Profile } from '../deploy/src/profile.ts';
import { RENDERED_DIR, renderAll } from '../deploy/src/render.ts';
import { buildRendered, parseManifests, readLayout } from '../deploy/src/rendered.ts';
import { typecheckObjects, validateWithSchemas } from '../deploy/src/validate.ts';
import { pdUsage } from '../packages/pd/src/process/config.ts';
import { storeMallocEnv } from '../packages/store/src/constants.ts';
import { usage as storeUsage } from '../packages/store/src/process/config.ts';
import { NODE_TOPOLOGY_SCRIPT, PD_CONFIG_SCRIPT, PD_START_SCRIPT, STORE_START_SCRIPT } from '../deploy/src/scripts.ts';
import { expandVariables } from './support/kubelet.ts';
import { REPO } from './support/process.ts';

const key = (o: KubeObject): string => `${o.kind}/${o.metadata?.namespace ?? ''}/${o.metadata?.name}`;
const byKey = (objects: readonly KubeObject[]): Map<string, KubeObject> => new Map(objects.map((o) => [key(o), o]));
const overlayDir = (profile: Profile): string => `overlays/${profile.name}`;
const built = OVERLAY_PROFILES.map((profile) => ({ profile, objects: buildRendered(overlayDir(profile)) }));
const baseObjects = [...readLayout().values()].flatMap((f) => (f.kind === 'manifest' && f.path.startsWith('base/') ? f.content : []));

function listFiles(dir: string, prefix = ''): string[] {
  return readdirSync(path.join(dir, prefix), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? listFiles(dir, `${prefix}${e.name}/`) : [`${prefix}${e.name}`]));
}

function statefulSet(objects: readonly KubeObject[], name: string): StatefulSet {
  const found = objects.find((o) => o.kind === 'StatefulSet' && o.metadata?.name === name);
  assert.ok(found, `StatefulSet ${name}`);
  return found as StatefulSet;
}

function envValue(container: Container, name: string): string | undefined {
  return container.env?.find((e) => e.name === name)?.value;
}

/** The FLOTILLA_* variables a process reads (its --help lists each flag's variable). */
function envNames(help: string): Set<string> {
  return new Set([...help.matchAll(/env (FLOTILLA_[A-Z_]+)/g)].map((m) => m[1]!));
}

describe('deploy/rendered', () => {
  it('is exactly what deploy/src renders (run `pnpm deploy:render` after changing deploy/src)', () => {
    const rendered = renderAll();
    assert.deepEqual(listFiles(RENDERED_DIR).sort(), [...rendered.keys()].sort(), 'the same files');
    for (const [file, text] of rendered) assert.equal(readFileSync(path.join(RENDERED_DIR, file), 'utf8'), text, `${file} is up to date`);
  });

  it('validates every object against the Kubernetes API schemas', () => {
    const all = [...baseObjects, ...built.flatMap((b) => b.objects)];
    assert.ok(all.length >= 20, `objects checked: ${all.length}`);
    for (const o of all) validateWithSchemas(o);
    // The schemas catch wrong types …
    const wrong = structuredClone(statefulSet(all, STORE.name)) as KubeObject & { spec: { replicas: unknown } };
    wrong.spec.replicas = 'three';
    assert.throws(() => validateWithSchemas(wrong), /replicas must be integer/);
  });

  it('compiles every object as a kubernetes-types literal, so an unknown field fails', () => {
    const all = [...baseObjects, ...built.flatMap((b) => b.objects)];
    const checked = typecheckObjects(all);
    assert.ok(checked.ok, checked.output);
    // … which the schemas let through: a misspelt field only the type check sees.
    const misspelt = structuredClone(statefulSet(all, STORE.name)) as StatefulSet;
    (misspelt.spec!.template.spec!.containers[0] as unknown as Record<string, unknown>)['readinessProbes'] = { httpGet: { path: '/ready', port: 'api' } };
    validateWithSchemas(misspelt as KubeObject);
    const caught = typecheckObjects([misspelt as KubeObject]);
    assert.equal(caught.ok, false);
    assert.match(caught.output, /readinessProbes/);
    // The same check guards the TypeScript that renders the manifests.
    // @ts-expect-error -- 'readinessProbes' does not exist in type 'Container'.
    const typo: Container = { name: 'x', readinessProbes: {} };
    assert.ok(typo);
  });

  for (const { profile, objects } of built) {
    it(`overlay ${profile.name}: its files build to what its profile renders`, () => {
      const expected = byKey(overlayObjects(profile));
      const actual = byKey(objects);
      assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
      for (const [k, o] of expected) assert.deepEqual(actual.get(k), o, k);
      for (const o of objects) if (!['Namespace', 'ClusterRole', 'ClusterRoleBinding'].includes(o.kind!)) assert.equal(o.metadata?.namespace, profile.namespace, `${key(o)} in the overlay's namespace`);
    });
  }

  const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
  it('kubectl kustomize builds the overlays to the same objects', { skip: kubectl.status !== 0 && 'kubectl is not installed' }, () => {
    for (const { profile, objects } of built) {
      const run = spawnSync('kubectl', ['kustomize', path.join(RENDERED_DIR, overlayDir(profile))], { encoding: 'utf8' });
      assert.equal(run.status, 0, run.stderr);
      const fromKubectl = byKey(parseManifests(run.stdout, 'kubectl kustomize'));
      assert.deepEqual(fromKubectl, byKey(objects), `overlay ${profile.name}`);
    }
  });
});

describe('the pods', () => {
  const storeEnv = envNames(storeUsage());
  const pdEnv = envNames(pdUsage());

  for (const { profile, objects } of built) {
    it(`overlay ${profile.name}: PD members find each other and stores find PD`, () => {
      const pd = statefulSet(objects, PD.name);
      const store = statefulSet(objects, STORE.name);
      const pdContainer = pd.spec!.template.spec!.containers[0]!;
      const storeContainer = store.spec!.template.spec!.containers[0]!;
      for (const name of (pdContainer.env ?? []).map((e) => e.name).filter((n) => n.startsWith('FLOTILLA_'))) assert.ok(pdEnv.has(name), `${name} is a flag of flotilla pd`);
      for (const name of (storeContainer.env ?? []).map((e) => e.name).filter((n) => n.startsWith('FLOTILLA_'))) assert.ok(storeEnv.has(name), `${name} is a flag of flotilla store`);

      const members = envValue(pdContainer, 'FLOTILLA_INITIAL_MEMBERS')!.split(',');
      assert.equal(members.length, pd.spec!.replicas, 'every PD pod is a founding member');
      members.forEach((m, i) => assert.equal(m, `${i + 1}=${PD.name}-${i}.${PD.peerService}:${PD.raftPort}@http://${PD.name}-${i}.${PD.peerService}:${PD.clientPort}`));
      assert.equal(pd.spec!.serviceName, PD.peerService);
      assert.equal(envValue(storeContainer, 'FLOTILLA_PD'), members.map((m) => m.slice(m.indexOf('@') + 1)).join(','), 'stores know every PD member');
      // A process tells others the host it listens on unless it advertises another: a wildcard
      // listener must advertise its stable name. (The pods test maps 0.0.0.0 to each pod's
      // loopback address, so it cannot see this; hence these checks.)
      assert.equal(envValue(storeContainer, 'FLOTILLA_RAFT_ADVERTISE_HOST'), `$(POD_NAME).${STORE.peerService}`);
      assert.equal(envValue(pdContainer, 'FLOTILLA_RAFT_ADVERTISE_HOST'), `$(POD_NAME).${PD.peerService}`);
      assert.equal(envValue(pdContainer, 'FLOTILLA_ADVERTISE_CLIENT_URL'), `http://$(POD_NAME).${PD.peerService}:${PD.clientPort}`);
      assert.equal(envValue(storeContainer, 'FLOTILLA_API_LISTEN'), `0.0.0.0:${STORE.apiPort}`);
      assert.equal(envValue(storeContainer, 'FLOTILLA_API_ADVERTISE_HOST'), `$(POD_NAME).${STORE.peerService}`, 'a wildcard API listener advertises its stable name to PD');
      assert.equal(store.spec!.serviceName, STORE.peerService);
      for (const set of [pd, store]) {
        assert.equal(set.spec!.podManagementPolicy, 'Parallel', `${set.metadata!.name}: pods start together (PD needs a quorum to be ready)`);
        const headless = objects.find((o) => o.kind === 'Service' && o.metadata?.name === set.spec!.serviceName) as KubeObject & { spec: { clusterIP: string; publishNotReadyAddresses: boolean; selector: Record<string, string> } };
        assert.equal(headless.spec.clusterIP, 'None');
        assert.equal(headless.spec.publishNotReadyAddresses, true, 'peers resolve before they are ready');
        for (const [k, v] of Object.entries(headless.spec.selector)) assert.equal(set.spec!.template.metadata!.labels![k], v);
      }
      assert.ok(store.spec!.replicas! >= 3, 'at least three stores');
      assert.equal(pd.spec!.replicas, 3);
    });

    it(`overlay ${profile.name}: probes, resources, grace periods, spreading and budgets`, () => {
      for (const set of [statefulSet(objects, PD.name), statefulSet(objects, STORE.name)]) {
        const spec = set.spec!.template.spec!;
        const main = spec.containers[0]!;
        const name = set.metadata!.name!;
        assert.equal(main.readinessProbe?.httpGet?.path, '/ready', `${name} readiness`);
        assert.equal(main.livenessProbe?.httpGet?.path, '/health', `${name} liveness`);
        for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
          assert.ok(c.resources?.requests?.['cpu'] && c.resources.requests['memory'], `${name}/${c.name} requests`);
          assert.ok(c.resources?.limits?.['cpu'] && c.resources.limits['memory'], `${name}/${c.name} limits`);
          assert.equal(c.securityContext?.allowPrivilegeEscalation, false);
        }
        assert.equal(spec.securityContext?.runAsNonRoot, true);
        const shutdownMs = Number(envValue(main, 'FLOTILLA_SHUTDOWN_TIMEOUT_MS'));
        assert.ok(spec.terminationGracePeriodSeconds! * 1000 > shutdownMs, `${name}: the grace period (${spec.terminationGracePeriodSeconds} s) outlasts the shutdown timeout (${shutdownMs} ms)`);
        const anti = spec.affinity?.podAntiAffinity;
        const hostTerms = profile.hostSpread === 'required' ? anti?.requiredDuringSchedulingIgnoredDuringExecution : anti?.preferredDuringSchedulingIgnoredDuringExecution?.map((p) => p.podAffinityTerm);
        assert.equal(hostTerms?.[0]?.topologyKey, 'kubernetes.io/hostname', `${name}: one pod per node`);
        const zoneSpread = spec.topologySpreadConstraints?.find((t) => t.topologyKey === 'topology.kubernetes.io/zone');
        assert.equal(zoneSpread?.whenUnsatisfiable, profile.zoneSpread, `${name}: spread over zones`);
        assert.equal(set.spec!.volumeClaimTemplates?.[0]?.metadata?.name, main.volumeMounts?.[0]?.name, `${name}: data on its claim`);
        const budget = objects.find((o) => o.kind === 'PodDisruptionBudget' && o.metadata?.name === name) as KubeObject & { spec: { maxUnavailable: number; selector: { matchLabels: Record<string, string> } } };
        assert.equal(budget.spec.maxUnavailable, 1, `${name}: one pod disrupted at a time`);
        assert.deepEqual(budget.spec.selector.matchLabels, set.spec!.selector.matchLabels);
      }
    });
  }
});

describe('network policies', () => {
  for (const { profile, objects } of built) {
    it(`overlay ${profile.name}: a raft port admits only its own component's pods; the client ports stay open`, () => {
      const policies = objects.filter((o): o is NetworkPolicy & KubeObject => o.kind === 'NetworkPolicy');
      for (const [name, raftPortName] of [[PD.name, 'raft'], [STORE.name, 'raft']] as const) {
        const set = statefulSet(objects, name);
        const podLabels = set.spec!.template.metadata!.labels!;
        const selects = (selector: { matchLabels?: Record<string, string> } | undefined): boolean =>
          Object.entries(selector?.matchLabels ?? {}).every(([k, v]) => podLabels[k] === v);
        const mine = policies.filter((p) => selects(p.spec!.podSelector));
        assert.equal(mine.length, 1, `${name}: one policy selects its pods`);
        const rules = mine[0]!.spec!.ingress!;
        assert.deepEqual(mine[0]!.spec!.policyTypes, ['Ingress']);
        // Every port the container listens on is admitted by exactly one rule (a port missing
        // here would be closed to everyone where policies are enforced).
        for (const port of set.spec!.template.spec!.containers[0]!.ports!) {
          const admitting = rules.filter((r) => r.ports!.some((p) => p.port === port.containerPort && p.protocol === 'TCP'));
          assert.equal(admitting.length, 1, `${name}: port ${port.name} is admitted by one rule`);
          const from = admitting[0]!.from;
          if (port.name === raftPortName) {
            assert.equal(from?.length, 1, `${name}: the raft port admits one kind of peer`);
            assert.ok(from![0]!.podSelector && selects(from![0]!.podSelector) && from![0]!.namespaceSelector === undefined && from![0]!.ipBlock === undefined, `${name}: its raft port admits its own pods, in its namespace`);
          } else {
            assert.equal(from, undefined, `${name}: port ${port.name} admits any source (clients, Prometheus, the kubelet)`);
          }
        }
      }
    });
  }
});

describe('the scripts in the pods', () => {
  it('pass through the kubelet\'s $(NAME) expansion unchanged', () => {
    const env = new Map([['POD_NAME', 'flotilla-pd-0'], ['POD_IP', '10.1.2.3'], ['NODE_NAME', 'n1'], ['ordinal', '7']]);
    // What the test kubelet does is what the kubelet does: defined names expand, $$ is $, the rest stays.
    assert.equal(expandVariables('$(POD_NAME).peer $$(POD_NAME) $((ordinal + 1)) $(UNDEFINED)', env), 'flotilla-pd-0.peer $(POD_NAME) $((ordinal + 1)) $(UNDEFINED)');
    for (const script of [PD_START_SCRIPT, STORE_START_SCRIPT, NODE_TOPOLOGY_SCRIPT, PD_CONFIG_SCRIPT]) assert.equal(expandVariables(script, env), script);
  });

  it('PD\'s start script makes pod N member N+1', () => {
    for (const [pod, member] of [['flotilla-pd-0', '1'], ['flotilla-pd-2', '3'], ['flotilla-pd-10', '11']] as const) {
      const run = spawnSync('/bin/sh', ['-c', PD_START_SCRIPT.replace('exec flotilla pd', 'echo "$FLOTILLA_MEMBER_ID"')], { env: { POD_NAME: pod }, encoding: 'utf8' });
      assert.equal(run.stdout.trim(), member, run.stderr);
    }
  });
});

describe('monitoring', () => {
  /** Metric names registered in the source, and prom-client's default metrics (PD's prefixed). */
  const known = (): Set<string> => {
    const names = new Set<string>();
    for (const file of ['packages/store/src/metrics.ts', 'packages/pd/src/server/metrics.ts']) {
      for (const m of readFileSync(path.join(REPO, file), 'utf8').matchAll(/'(flotilla_[a-z0-9_]+)'/g)) names.add(m[1]!);
    }
    const promClient = path.dirname(createRequire(path.join(REPO, 'packages/store/package.json')).resolve('prom-client'));
    for (const file of readdirSync(path.join(promClient, 'lib/metrics')).filter((f) => f.endsWith('.js'))) {
      for (const m of readFileSync(path.join(promClient, 'lib/metrics', file), 'utf8').matchAll(/'((?:nodejs|process)_[a-z0-9_]+)'/g)) {
        names.add(m[1]!);
        names.add(`flotilla_pd_${m[1]!}`);
      }
    }
    return names;
  };
  const EXTERNAL = new Set(['up', 'kubelet_volume_stats_available_bytes', 'kubelet_volume_stats_capacity_bytes']);
  const unknownIn = (names: Set<string>, exprs: readonly string[]): string[] =>
    [...new Set(exprs.flatMap(metricNames))].filter((n) => !EXTERNAL.has(n) && !names.has(n) && !names.has(n.replace(/_(bucket|sum|count)$/, '')));

  it('the dashboard and the alerts read only metrics the store, PD, Node or the kubelet export', () => {
    const names = known();
    assert.ok(names.has('flotilla_store_kv_request_duration_seconds') && names.has('flotilla_pd_is_leader'), 'the source scan finds the registrations');
    assert.deepEqual(unknownIn(names, allQueries()), []);
    assert.deepEqual(unknownIn(names, ['sum by (pod) (rate(flotilla_store_raft_commit_seconds_bucket{job="flotilla"}[5m]))']), ['flotilla_store_raft_commit_seconds_bucket'], 'a metric nobody exports is caught');
  });

  const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
  it('promtool accepts the alert rules', { skip: promtool.status !== 0 && 'promtool is not installed' }, () => {
    const run = spawnSync('promtool', ['check', 'rules', path.join(RENDERED_DIR, 'monitoring/alert-rules.yaml')], { encoding: 'utf8' });
    assert.equal(run.status, 0, `${run.stdout}${run.stderr}`);
    assert.match(run.stdout, new RegExp(`SUCCESS: ${ALERT_RULES.length} rules found`));
  });

  it('alerts on what the issue asks for', () => {
    const alerts = ALERT_RULES.map((r) => r.alert);
    for (const wanted of ['FlotillaRegionsWithoutLeader', 'FlotillaReplicasMissing', 'FlotillaStoreDown', 'FlotillaDiskNearlyFull', 'FlotillaHighCommitLatency']) assert.ok(alerts.includes(wanted), wanted);
    const dashboard = JSON.parse(readFileSync(path.join(RENDERED_DIR, 'monitoring/grafana-dashboard.json'), 'utf8')) as { panels: { type: string; targets?: { expr: string }[] }[] };
    assert.ok(dashboard.panels.filter((p) => p.type === 'timeseries').every((p) => (p.targets?.length ?? 0) > 0));
  });
});

describe('deploy/Dockerfile', () => {
  const dockerfile = readFileSync(path.join(REPO, 'deploy/Dockerfile'), 'utf8');
  it('builds on glibc Node 20, installs from the lockfile, runs `flotilla` as the manifests\' non-root user', () => {
    assert.match(dockerfile, /^ARG NODE_IMAGE=node:20-bookworm-slim$/m, 'Debian bookworm: glibc 2.36 for the RocksDB prebuild');
    const instructions = dockerfile.split('\n').filter((line) => !line.startsWith('#'));
    assert.ok(instructions.filter((line) => line.startsWith('FROM ')).every((line) => line.startsWith('FROM ${NODE_IMAGE}')), 'every stage on that base');
    assert.doesNotMatch(instructions.join('\n'), /alpine/i);
    assert.match(dockerfile, /pnpm install --frozen-lockfile/);
    assert.match(dockerfile, /^ENTRYPOINT \["flotilla"\]$/m);
    const user = /^USER (\d+):(\d+)$/m.exec(dockerfile);
    assert.ok(user && user[1] !== '0', 'a non-root USER');
    const store = statefulSet(built[0]!.objects, STORE.name);
    assert.equal(store.spec!.template.spec!.securityContext!.runAsUser, Number(user[1]), 'the manifests run as the image\'s user');
    const link = /ln -s \/app\/(\S+) \/usr\/local\/bin\/flotilla/.exec(dockerfile);
    assert.ok(link, 'flotilla on PATH');
    assert.ok(readFileSync(path.join(REPO, link[1]!), 'utf8').startsWith('#!/usr/bin/env node'), `${link[1]} is the CLI's bin`);
    assert.match(readFileSync(path.join(REPO, 'deploy/Dockerfile.dockerignore'), 'utf8'), /^\*\*\/node_modules$/m);
  });

  it('starts stores with the store\'s malloc settings, in the image and in the store manifest', () => {
    assert.deepEqual(STORE_MALLOC_ENV, storeMallocEnv, 'deploy/src/constants.ts keeps the store\'s values');
    for (const [name, value] of Object.entries(storeMallocEnv)) {
      assert.match(dockerfile, new RegExp(`^ENV .*\\b${name}=${value}\\b`, 'm'), `the image sets ${name}=${value}`);
      const container = statefulSet(built[0]!.objects, STORE.name).spec!.template.spec!.containers[0]!;
      assert.equal(container.env?.find((e) => e.name === name)?.value, value, `the store container sets ${name}`);
    }
  });
});
