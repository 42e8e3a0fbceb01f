/**
 * Runs pods of rendered manifests as local processes, the way a kubelet would run them: the
 * containers' command and args, their env (values, the downward API's fields, `$(NAME)`
 * expansion, the service variables of the API server), init containers to completion before
 * the main container, volumes as directories (a claim outlives its pod, an emptyDir does not),
 * the service-account token, readiness over HTTP, SIGTERM then SIGKILL after the grace period.
 *
 * The cluster network is mapped onto loopback: every pod has its own 127.x.y.z address, its
 * stable DNS names (pod.headless-service, in any of their longer forms) resolve to it — the
 * names are replaced in the container's strings — and listening on 0.0.0.0 means its own address
 * (so what a wildcard listener would advertise is checked in deploy-manifests.test.ts instead).
 * The image is this repository: `flotilla` on PATH is packages/cli/bin/flotilla.js, as in
 * deploy/Dockerfile. Every process started is killed by `killAll()` (and if the test exits).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Container, EnvVar, PodSpec, StatefulSet } from '../../deploy/src/kube-types.ts';
import { SERVICE_ACCOUNT_DIR } from '../../deploy/src/constants.ts';
import type { FakeKubeApi } from './kube-api.ts';
import { waitFor } from '../../packages/store/test/harness.ts';
import { REPO, deadline } from './process.ts';

/** Log lines kept per container for failure reports. */
const LOG_LINES_KEPT = 400;
/** How long an init container or a job may run. */
const RUN_TO_COMPLETION_MS = 60_000;
const READINESS_POLL_MS = 200;
const DEFAULT_GRACE_SECONDS = 30;

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) killGroup(child, 'SIGKILL');
});

export interface PodAddress {
  readonly name: string;
  readonly ip: string;
  readonly nodeName: string;
}

/** The emulated cluster: namespace, where pods live on disk and how names resolve. */
export interface ClusterNetwork {
  readonly namespace: string;
  /** A fresh temporary directory: pods' volumes, the `flotilla` binary's directory. */
  readonly root: string;
  readonly kubeApi: FakeKubeApi;
  /** Pod name → its address and node (every pod of the test, so names resolve before start). */
  readonly pods: ReadonlyMap<string, PodAddress>;
  /** Pod name → the headless Service its StatefulSet names (for its DNS names). */
  readonly peerServices: ReadonlyMap<string, string>;
}

interface RunningContainer {
  readonly child: ChildProcess;
  readonly logs: string[];
  readonly exited: Promise<number | null>;
}

export class Kubelet {
  private readonly binDir: string;
  private readonly pods = new Map<string, RunningPod>();
  private generation = 0;

  constructor(readonly network: ClusterNetwork) {
    this.binDir = path.join(network.root, 'bin');
  }

  /** The image's entrypoint on PATH. */
  async install(): Promise<void> {
    await mkdir(this.binDir, { recursive: true });
    await symlink(path.join(REPO, 'packages/cli/bin/flotilla.js'), path.join(this.binDir, 'flotilla'));
  }

  /** Creates pod `ordinal` of `set` (a new pod: fresh emptyDirs, the claims it had before). */
  async startPod(set: StatefulSet, ordinal: number): Promise<RunningPod> {
    const name = `${set.metadata!.name!}-${ordinal}`;
    if (this.pods.has(name)) throw new Error(`pod ${name} is already running`);
    const address = this.network.pods.get(name);
    if (!address) throw new Error(`pod ${name} has no address in the test's network`);
    const spec = set.spec!.template.spec!;
    const claims = new Set((set.spec!.volumeClaimTemplates ?? []).map((c) => c.metadata!.name!));
    const podDir = path.join(this.network.root, 'pods', name);
    const runDir = path.join(podDir, `run-${++this.generation}`);
    const volumes = new Map<string, string>();
    for (const volume of spec.volumes ?? []) {
      if (!volume.emptyDir) throw new Error(`pod ${name}: volume ${volume.name} is neither an emptyDir nor a claim`);
      volumes.set(volume.name, path.join(runDir, volume.name));
    }
    for (const claim of claims) volumes.set(claim, path.join(podDir, `claim-${claim}`));
    if (spec.automountServiceAccountToken !== false) {
      const dir = path.join(runDir, 'serviceaccount');
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, 'token'), this.network.kubeApi.token);
      await writeFile(path.join(dir, 'ca.crt'), this.network.kubeApi.caPem);
      await writeFile(path.join(dir, 'namespace'), this.network.namespace);
    }
    for (const dir of volumes.values()) await mkdir(dir, { recursive: true });
    const pod = new RunningPod(this, address, spec, volumes, runDir);
    this.pods.set(name, pod);
    try {
      for (const init of spec.initContainers ?? []) await pod.runToCompletion(init);
      pod.main = pod.spawnContainer(onlyContainer(spec, name));
    } catch (err) {
      this.pods.delete(name);
      throw err;
    }
    return pod;
  }

  /** Runs a job's pod once (its containers in turn) and resolves when they exited 0. */
  async runJob(spec: PodSpec, name: string, address: PodAddress): Promise<string[]> {
    const pod = new RunningPod(this, address, spec, new Map(), path.join(this.network.root, 'jobs', name));
    const logs: string[] = [];
    for (const container of spec.containers) logs.push(...(await pod.runToCompletion(container)));
    return logs;
  }

  pod(name: string): RunningPod {
    const pod = this.pods.get(name);
    if (!pod) throw new Error(`pod ${name} is not running`);
    return pod;
  }

  /** Deletes a pod the way a StatefulSet update does: SIGTERM, the grace period, SIGKILL. */
  async deletePod(name: string): Promise<number | null> {
    const pod = this.pod(name);
    this.pods.delete(name);
    return pod.terminate();
  }

  killAll(): void {
    for (const pod of this.pods.values()) pod.kill();
    this.pods.clear();
  }

  /** The process' strings with the cluster's names and paths mapped onto this machine. */
  localize(text: string, pod: PodAddress, mounts: ReadonlyMap<string, string>): string {
    const replacements = new Map<string, string>([['0.0.0.0', pod.ip], ...mounts]);
    for (const [other, address] of this.network.pods) {
      const service = this.network.peerServices.get(other);
      if (service === undefined) continue;
      const short = `${other}.${service}`;
      for (const suffix of ['', `.${this.network.namespace}`, `.${this.network.namespace}.svc`, `.${this.network.namespace}.svc.cluster.local`]) replacements.set(`${short}${suffix}`, address.ip);
    }
    // One pass, longest first: a replaced text is never replaced again.
    const keys = [...replacements.keys()].sort((a, b) => b.length - a.length).map(escapeRegExp);
    return text.replace(new RegExp(`(${keys.join('|')})(?![A-Za-z0-9-])`, 'g'), (found) => replacements.get(found)!);
  }

  get path(): string {
    return [this.binDir, path.dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'].join(':');
  }
}

export class RunningPod {
  main: RunningContainer | null = null;

  constructor(
    private readonly kubelet: Kubelet,
    readonly address: PodAddress,
    private readonly spec: PodSpec,
    private readonly volumes: ReadonlyMap<string, string>,
    private readonly runDir: string,
  ) {}

  get name(): string {
    return this.address.name;
  }

  get logs(): readonly string[] {
    return this.main?.logs ?? [];
  }

  /** Starts a container's process with its command, args and environment, as the kubelet would. */
  spawnContainer(container: Container): RunningContainer {
    const { env, mounts } = this.environment(container);
    const expand = (s: string): string => this.kubelet.localize(expandVariables(s, env), this.address, mounts);
    const argv = [...(container.command ?? []), ...(container.args ?? [])].map(expand);
    if (argv.length === 0) throw new Error(`container ${container.name}: no command (the image's entrypoint is not emulated)`);
    const localEnv = Object.fromEntries([...env].map(([k, v]) => [k, this.kubelet.localize(v, this.address, mounts)]));
    const child = spawn(argv[0]!, argv.slice(1), { cwd: REPO, env: localEnv, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    const logs: string[] = [];
    const keep = (line: string): void => {
      logs.push(line);
      if (logs.length > LOG_LINES_KEPT) logs.shift();
    };
    createInterface({ input: child.stdout! }).on('line', keep);
    createInterface({ input: child.stderr! }).on('line', keep);
    const exited = new Promise<number | null>((resolve) => {
      child.once('close', (code) => {
        live.delete(child);
        resolve(code);
      });
      child.once('error', (err) => {
        keep(`spawn failed: ${err.message}`);
        live.delete(child);
        resolve(null);
      });
    });
    return { child, logs, exited };
  }

  /** An init container or a job's container: runs until it exits, which must be 0. */
  async runToCompletion(container: Container): Promise<string[]> {
    const run = this.spawnContainer(container);
    const code = await deadline(run.exited, RUN_TO_COMPLETION_MS, `container ${container.name} of ${this.name} to finish`).catch((err: unknown) => {
      killGroup(run.child, 'SIGKILL');
      throw err;
    });
    if (code !== 0) throw new Error(`container ${container.name} of ${this.name} exited ${code}:\n${run.logs.join('\n')}`);
    return run.logs;
  }

  /** Polls the main container's readiness probe (HTTP GET on the pod's address) until it answers 2xx/3xx. */
  async waitReady(ms: number): Promise<void> {
    const container = onlyContainer(this.spec, this.name);
    const probe = container.readinessProbe?.httpGet;
    if (!probe) throw new Error(`container ${container.name} has no HTTP readiness probe`);
    const port = typeof probe.port === 'number' ? probe.port : container.ports?.find((p) => p.name === probe.port)?.containerPort;
    if (port === undefined) throw new Error(`readiness probe port ${String(probe.port)} is not a port of ${container.name}`);
    const url = `http://${this.address.ip}:${port}${probe.path ?? '/'}`;
    const until = Date.now() + ms;
    for (;;) {
      const main = this.main;
      if (main && main.child.exitCode !== null) throw new Error(`${this.name} exited (${main.child.exitCode}) before it was ready:\n${main.logs.join('\n')}`);
      const status = await fetch(url, { signal: AbortSignal.timeout(2_000) }).then((r) => r.status, () => 0);
      if (status >= 200 && status < 400) return;
      if (Date.now() > until) throw new Error(`${this.name} not ready at ${url} after ${ms} ms (last status ${status}):\n${this.logs.slice(-40).join('\n')}`);
      await new Promise((resolve) => setTimeout(resolve, READINESS_POLL_MS));
    }
  }

  /** SIGTERM; SIGKILL once the grace period is over. Resolves with the exit code (null: killed). */
  async terminate(): Promise<number | null> {
    const main = this.main;
    if (!main) return null;
    killGroup(main.child, 'SIGTERM');
    const graceMs = (this.spec.terminationGracePeriodSeconds ?? DEFAULT_GRACE_SECONDS) * 1000;
    const timer = setTimeout(() => killGroup(main.child, 'SIGKILL'), graceMs);
    try {
      return await main.exited;
    } finally {
      clearTimeout(timer);
      await rm(this.runDir, { recursive: true, force: true });
    }
  }

  kill(): void {
    if (this.main) killGroup(this.main.child, 'SIGKILL');
  }

  /** The container's variables in kubelet order (service variables, then env in order) and its mounts. */
  private environment(container: Container): { env: Map<string, string>; mounts: Map<string, string> } {
    const api = this.kubelet.network.kubeApi;
    const env = new Map<string, string>([
      ['PATH', this.kubelet.path],
      ['HOSTNAME', this.name],
      ['KUBERNETES_SERVICE_HOST', api.host],
      ['KUBERNETES_SERVICE_PORT', String(api.port)],
    ]);
    const mounts = new Map<string, string>();
    for (const mount of container.volumeMounts ?? []) {
      const dir = this.volumes.get(mount.name);
      if (dir === undefined) throw new Error(`container ${container.name}: mount of unknown volume ${mount.name}`);
      // /tmp is where Node puts temporary files: point TMPDIR there instead of rewriting paths.
      if (mount.mountPath === '/tmp') env.set('TMPDIR', dir);
      else mounts.set(mount.mountPath, dir);
    }
    if (this.spec.automountServiceAccountToken !== false) mounts.set(SERVICE_ACCOUNT_DIR, path.join(this.runDir, 'serviceaccount'));
    for (const variable of container.env ?? []) env.set(variable.name, this.valueOf(variable, env));
    return { env, mounts };
  }

  private valueOf(variable: EnvVar, env: ReadonlyMap<string, string>): string {
    if (variable.value !== undefined) return expandVariables(variable.value, env);
    const field = variable.valueFrom?.fieldRef?.fieldPath;
    switch (field) {
      case 'metadata.name':
        return this.name;
      case 'metadata.namespace':
        return this.kubelet.network.namespace;
      case 'status.podIP':
        return this.address.ip;
      case 'spec.nodeName':
        return this.address.nodeName;
      default:
        throw new Error(`env ${variable.name}: the test does not emulate ${JSON.stringify(variable.valueFrom)}`);
    }
  }
}

/** waitFor polling every READINESS_POLL_MS: conditions here ask PD over HTTP, and a tighter loop would only load the machine the pods share. */
export function pollUntil(what: string, condition: () => Promise<boolean>, ms: number, intervalMs = READINESS_POLL_MS): Promise<void> {
  return waitFor(what, condition, ms, intervalMs);
}

/** Kubelet's `$(NAME)` expansion: a defined NAME is replaced, `$$` is a `$`, anything else stays. */
export function expandVariables(text: string, env: ReadonlyMap<string, string>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (found, name: string | undefined) => {
    if (name === undefined) return '$';
    return env.get(name) ?? found;
  });
}

function onlyContainer(spec: PodSpec, pod: string): Container {
  if (spec.containers.length !== 1) throw new Error(`pod ${pod}: the test runs pods of one container, not ${spec.containers.length}`);
  return spec.containers[0]!;
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
