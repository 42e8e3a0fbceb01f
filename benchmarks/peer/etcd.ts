/**
 * The peer system: a 3-member etcd cluster on loopback, Debian's `etcd-server` package
 * (installed with apt-get when `etcd` is missing), default durability (every WAL write
 * fsynced), data directories in one temporary folder, ports chosen free. Every member
 * started is stopped by stop(), and SIGKILLed by an exit hook if the benchmark dies first.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { reservedPorts } from '../../test/support/ports.ts';
import { metricSum } from '../pd/pd-view.ts';
import { EtcdAdapter } from './adapters.ts';
import type { SystemUnderTest } from './load.ts';
import { BenchError, killOnExit, pollUntil, stopChild } from './processes.ts';

export const etcdLimits = Object.freeze({
  members: 3,
  startDeadlineMs: 60_000,
  /** apt-get update + install of etcd-server. */
  installDeadlineMs: 300_000,
  /** Output lines kept per member for failure reports. */
  tailLines: 40,
});

/** The etcd binary: on PATH, else installed from Debian's etcd-server; its version line. */
export function ensureEtcd(log: (line: string) => void): { binary: string; version: string } {
  let binary = which('etcd');
  if (binary === undefined) {
    log('etcd not found: installing Debian package etcd-server (apt-get install -y etcd-server)');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const install = (): ReturnType<typeof spawnSync> => spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'etcd-server'], { env, encoding: 'utf8', timeout: etcdLimits.installDeadlineMs });
    let result = install();
    if (result.status !== 0) {
      spawnSync('apt-get', ['update'], { env, encoding: 'utf8', timeout: etcdLimits.installDeadlineMs });
      result = install();
    }
    binary = which('etcd');
    if (result.status !== 0 || binary === undefined) {
      const detail = result.error?.message ?? String(result.stderr ?? '').trim().split('\n').slice(-3).join(' | ');
      throw new BenchError('BENCH_ETCD_UNAVAILABLE', `cannot install etcd: \`apt-get install -y etcd-server\` failed (${detail || `exit ${result.status}`}); install etcd 3.4+ on PATH and run again`);
    }
  }
  const version = execFileSync(binary, ['--version'], { encoding: 'utf8' }).split('\n')[0]?.trim() ?? 'unknown';
  return { binary, version };
}

function which(command: string): string | undefined {
  const result = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' });
  const found = result.stdout.trim();
  return result.status === 0 && found !== '' ? found : undefined;
}


export interface EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly child: ChildProcess;
  readonly tail: string[];
}

export class EtcdCluster {
  readonly members: EtcdMember[] = [];
  private root: string | undefined;

  constructor(private readonly binary: string) {}

  get clientUrls(): string[] {
    return this.members.map((m) => m.clientUrl);
  }

  get pids(): number[] {
    return this.members.map((m) => m.child.pid!);
  }

  /** Starts the members and resolves once every one reports itself healthy. */
  async start(): Promise<void> {
    this.root = await mkdtemp(path.join(os.tmpdir(), 'flotilla-peer-etcd-'));
    // etcd's --initial-cluster needs every peer URL up front: ports outside the ephemeral range.
    const free = await reservedPorts(2 * etcdLimits.members);
    const ports = Array.from({ length: etcdLimits.members }, (_, i) => ({ peer: free[2 * i]!, client: free[2 * i + 1]! }));
    const names = ports.map((_, i) => `m${i + 1}`);
    const initialCluster = ports.map((p, i) => `${names[i]}=http://127.0.0.1:${p.peer}`).join(',');
    for (const [i, p] of ports.entries()) {
      const clientUrl = `http://127.0.0.1:${p.client}`;
      const args = [
        '--name', names[i]!,
        '--data-dir', path.join(this.root, names[i]!),
        '--listen-peer-urls', `http://127.0.0.1:${p.peer}`,
        '--initial-advertise-peer-urls', `http://127.0.0.1:${p.peer}`,
        '--listen-client-urls', clientUrl,
        '--advertise-client-urls', clientUrl,
        '--initial-cluster', initialCluster,
        '--initial-cluster-token', 'flotilla-peer-bench',
        '--initial-cluster-state', 'new',
        '--logger', 'zap',
        '--log-level', 'warn',
      ];
      const child = spawn(this.binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      killOnExit(child);
      const tail: string[] = [];
      const keep = (chunk: Buffer): void => {
        tail.push(...chunk.toString().split('\n').filter((l) => l !== ''));
        tail.splice(0, Math.max(0, tail.length - etcdLimits.tailLines));
      };
      child.stdout!.on('data', keep);
      child.stderr!.on('data', keep);
      this.members.push({ name: names[i]!, clientUrl, child, tail });
    }
    await pollUntil('every etcd member healthy', async () => {
      const exited = this.members.find((m) => m.child.exitCode !== null || m.child.signalCode !== null);
      if (exited) throw new BenchError('BENCH_ETCD_FAILED', `etcd ${exited.name} exited while starting:\n${exited.tail.join('\n')}`);
      const health = await Promise.all(this.members.map((m) => healthy(m.clientUrl)));
      return health.every(Boolean);
    }, etcdLimits.startDeadlineMs);
  }

  /** Sums over the members of metrics of their /metrics endpoints. */
  async metrics(names: readonly string[]): Promise<Map<string, number>> {
    const texts = await Promise.all(this.members.map(async (m) => (await fetch(`${m.clientUrl}/metrics`)).text()));
    return new Map(names.map((name) => [name, texts.reduce((sum, text) => sum + metricSum(text, name), 0)]));
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => stopChild(m.child)));
    if (this.root) await rm(this.root, { recursive: true, force: true });
  }
}

async function healthy(clientUrl: string): Promise<boolean> {
  try {
    const res = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(2_000) });
    const body = (await res.json()) as { health?: string };
    return body.health === 'true';
  } catch {
    return false;
  }
}

export const ETCD_SYNC_METRIC = 'etcd_disk_wal_fsync_duration_seconds_count';
/** Read at every point: syncs (WAL and bbolt commits) and signs of trouble (elections, slow applies). */
const ETCD_COUNTERS = [ETCD_SYNC_METRIC, 'etcd_disk_wal_fsync_duration_seconds_sum', 'etcd_disk_backend_commit_duration_seconds_count', 'etcd_server_leader_changes_seen_total', 'etcd_server_slow_apply_total', 'etcd_server_heartbeat_send_failures_total', 'etcd_server_proposals_failed_total'];

/** The etcd cluster with its etcd3 client, as the load generator sees it. */
export class EtcdSystem implements SystemUnderTest {
  readonly name = 'etcd';
  readonly syncMetric = ETCD_SYNC_METRIC;
  readonly cluster: EtcdCluster;
  private client: EtcdAdapter | undefined;

  constructor(binary: string) {
    this.cluster = new EtcdCluster(binary);
  }

  get adapter(): EtcdAdapter {
    if (!this.client) throw new BenchError('BENCH_SETUP_FAILED', 'etcd: start() first');
    return this.client;
  }

  async start(): Promise<void> {
    await this.cluster.start();
    this.client = new EtcdAdapter(this.cluster.clientUrls);
  }

  processes(): { name: string; pid: number }[] {
    return this.cluster.members.map((m) => ({ name: `etcd ${m.name}`, pid: m.child.pid! }));
  }

  counters(): Promise<Map<string, number>> {
    return this.cluster.metrics(ETCD_COUNTERS);
  }

  async stop(): Promise<void> {
    try {
      await this.client?.close();
    } finally {
      await this.cluster.stop();
    }
  }
}
