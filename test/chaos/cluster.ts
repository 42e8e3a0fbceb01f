/**
 * The system under test: 3 PD members and 5 PD-placed stores as real processes (through
 * test/support), with the handles the nemeses need: kill -9 and restart on the same data (PD
 * members on the same ports, so every PD URL stays valid), SIGSTOP/SIGCONT, and partitions
 * and wall-clock jumps through each process's fault control file (`--fault-control`: the
 * transport's FaultSwitch and the process's Date.now), and power loss: where this machine can
 * run FUSE, every store's data directory is a lossyfs mount (test/chaos/lossyfs), which keeps
 * what the store did not fsync in memory and drops it on command.
 *
 * PD calls here carry a timeout: a paused member must not hang the harness.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FAULT_RULES_APPLIED } from '../../packages/store/src/index.ts';
import { ProcessCluster, waitFor, type HostPort } from '../support/cluster.ts';
import { PdProcesses } from '../support/pd.ts';
import { LossyMount, ensureLossyFs } from './lossyfs/lossyfs.ts';

export const PD_MEMBERS = 3;
export const STORES = 5;
/** One PD request from the harness (a paused member would otherwise hang it). */
const PD_CALL_TIMEOUT_MS = 3_000;
/** A process reads its fault control file every 50 ms; a loaded machine may take far longer. */
const FAULT_RULES_DEADLINE_MS = 15_000;

/**
 * Short times so PD reacts within a run: a store down for 8 s has its replicas replaced (a
 * membership change); leaders and regions are balanced (more transfers and peer moves). PD's
 * own merges are off: the nemesis merges on purpose.
 */
const SCHEDULE_CONFIG = {
  maxReplicas: 3,
  storeDisconnectMs: 2_000,
  storeDownMs: 8_000,
  regionMaxBytes: 256 * 1024,
  regionMaxKeys: 2_000,
  regionSplitBytes: 192 * 1024,
  regionSplitKeys: 1_500,
  mergeMaxBytes: 0,
  mergeMaxKeys: 0,
  schedulers: { balanceRegion: { intervalMs: 2_000 }, balanceLeader: { intervalMs: 1_000 }, hotRegion: { enabled: false } },
};
const STORE_ARGS = ['--store-heartbeat-ms', '300', '--region-heartbeat-ms', '1000'];

export interface PdRegion {
  readonly id: number;
  readonly startKey: string;
  readonly endKey: string;
  readonly peers: readonly { readonly id: number; readonly storeId: number; readonly role: string }[];
  readonly leader: { readonly peerId: number; readonly storeId: number } | null;
}

/** What one member of a partition may not reach. */
export interface DropRules {
  readonly dropTo: readonly number[];
  readonly dropFrom: readonly number[];
}

/** Everything a process's fault control file says. */
interface FaultSetting extends DropRules {
  readonly clockOffsetMs: number;
}

const NO_FAULT: FaultSetting = { dropTo: [], dropFrom: [], clockOffsetMs: 0 };
type ProcessKind = 'store' | 'pd';
/** A process's key in the fault maps and in `paused`: `store-3`, `pd-1`. */
const processKey = (kind: ProcessKind, id: number): string => `${kind}-${id}`;

export class ChaosCluster {
  readonly pd = new PdProcesses(['--schedule-interval-ms', '200']);
  readonly stores = new ProcessCluster({ tickMs: 50, pd: () => this.pdUrls(), args: STORE_ARGS });
  /** Every store id the run started, running or not. */
  readonly storeIds: number[] = [];
  readonly pdIds: number[] = [];
  /** PD members' ports, kept for restarts (store and client PD lists name them). */
  private readonly pdPorts = new Map<number, { raft: HostPort; client: number }>();
  /** Each process's fault control file and what it says now, by processKey. */
  private readonly faultFiles = new Map<string, string>();
  private readonly faultSettings = new Map<string, FaultSetting>();
  /** Processes stopped with SIGSTOP, by kind and id. */
  readonly paused = new Set<string>();
  private faultDir: string | undefined;
  /** Each store's lossyfs mount (none where lossyfs is unavailable: see powerLossUnavailable). */
  private readonly disks = new Map<number, LossyMount>();
  /** Why stores run on plain directories, if they do (power loss is then skipped). */
  powerLossUnavailable: string | null = null;

  pdUrls(): string[] {
    return this.pdIds.map((id) => `http://127.0.0.1:${this.pdPorts.get(id)!.client}`);
  }

  /** Starts everything; resolves once region 1 has three voters and a leader. */
  async start(log: (line: string) => void): Promise<void> {
    this.faultDir = await mkdtemp(path.join(os.tmpdir(), 'flotilla-chaos-faults-'));
    for (let id = 1; id <= PD_MEMBERS; id++) {
      const member = await this.pd.start(id, ['--fault-control', this.faultFile('pd', id)]);
      const raft = member.started.raftAddress as HostPort;
      this.pdPorts.set(id, { raft, client: Number(new URL(member.url).port) });
      this.pdIds.push(id);
      if (id === 1) await waitFor('PD member 1 to lead', async () => (await this.pdLeader()) === 1);
    }
    await waitFor(`${PD_MEMBERS} PD voters`, async () => ((await this.pdCall<{ voters: number[] }>('GET', '/pd/api/v1/members')).body?.voters.length ?? 0) === PD_MEMBERS, 60_000);
    await this.pdExpect('PUT', '/pd/api/v1/config', SCHEDULE_CONFIG);
    log(`pd: ${this.pdUrls().join(', ')}`);
    const lossy = await ensureLossyFs();
    this.powerLossUnavailable = 'unavailable' in lossy ? lossy.unavailable : null;
    log(this.powerLossUnavailable === null ? 'stores: data on lossyfs mounts (power loss on)' : `stores: plain data directories, power loss off (${this.powerLossUnavailable})`);
    for (let i = 1; i <= STORES; i++) {
      const file = path.join(this.faultDir, `store-new-${i}.json`);
      const disk = 'binary' in lossy ? await LossyMount.mount(lossy.binary, await mkdirIn(this.faultDir, `disk-${i}`), await mkdirIn(this.faultDir, `mnt-${i}`)) : undefined;
      const store = await this.stores.startNewStore(['--fault-control', file, ...(disk ? ['--data-dir', disk.mountpoint] : [])]);
      if (disk) this.disks.set(store.id, disk);
      this.faultFiles.set(processKey('store', store.id), file);
      this.storeIds.push(store.id);
    }
    log(`stores: ${this.storeIds.join(', ')}`);
    await waitFor('region 1 on three voters with a leader', async () => {
      const regions = await this.regions();
      return regions.length >= 1 && regions.every((r) => r.leader !== null && r.peers.filter((p) => p.role === 'voter').length === 3);
    }, 90_000);
  }

  // ---- PD ---------------------------------------------------------------------------------------

  /** One PD request to the first member that answers (followers forward to the leader). */
  async pdCall<T = unknown>(method: string, pathname: string, body?: unknown): Promise<{ status: number; body: T | undefined }> {
    let last: unknown;
    for (const id of this.livePdIds()) {
      try {
        const member = this.pd.running(id);
        const res = await member.pool.request({
          method: method as 'GET',
          path: pathname,
          headers: { 'content-type': 'application/json' },
          signal: AbortSignal.timeout(PD_CALL_TIMEOUT_MS),
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
        const text = await res.body.text();
        if (res.statusCode === 421 || res.statusCode === 503) {
          last = new Error(`pd ${id}: ${method} ${pathname} answered ${res.statusCode} ${text}`);
          continue;
        }
        return { status: res.statusCode, body: (text === '' ? undefined : JSON.parse(text)) as T };
      } catch (err) {
        last = err;
      }
    }
    throw last instanceof Error ? last : new Error(`no PD member answered ${method} ${pathname}`);
  }

  async pdExpect<T = unknown>(method: string, pathname: string, body?: unknown): Promise<T> {
    const answer = await this.pdCall<T>(method, pathname, body);
    if (answer.status < 200 || answer.status > 299) throw new Error(`PD: ${method} ${pathname} answered ${answer.status} ${JSON.stringify(answer.body)}`);
    return answer.body as T;
  }

  /** The member that serves as PD leader, asking only running, unpaused members. */
  async pdLeader(): Promise<number | undefined> {
    for (const id of this.livePdIds()) {
      const res = await this.pd.running(id).pool.request({ method: 'GET', path: '/ready', signal: AbortSignal.timeout(PD_CALL_TIMEOUT_MS) }).catch(() => undefined);
      const body = res ? ((await res.body.json().catch(() => ({}))) as { leader?: number }) : {};
      if (res?.statusCode === 200 && body.leader === id) return id;
    }
    return undefined;
  }

  async regions(): Promise<PdRegion[]> {
    return (await this.pdExpect<{ regions: PdRegion[] }>('GET', '/pd/api/v1/regions?limit=10000')).regions;
  }

  private livePdIds(): number[] {
    return [...this.pd.members.values()].filter((m) => !this.paused.has(processKey('pd', m.id)) && !exited(m.child)).map((m) => m.id);
  }

  /** Stores running (not exited, paused or not). */
  liveStoreIds(): number[] {
    return this.storeIds.filter((id) => {
      const store = this.stores.stores.get(id);
      return store !== undefined && !exited(store.child);
    });
  }

  /**
   * Processes that exited on their own (a crash is a bug: it fails the run), each with the
   * first line and the last `linesEach` lines of its report.
   */
  crashes(linesEach: number): string[] {
    return [...this.stores.crashes, ...this.pd.crashes].map((crash) => {
      const lines = crash.split('\n');
      return [lines[0]!, ...lines.slice(Math.max(1, lines.length - linesEach))].join('\n');
    });
  }

  /** Drops the handles of processes that crashed, so healAll restarts them (their crash stays recorded). */
  private async forgetCrashed(): Promise<void> {
    for (const store of [...this.stores.stores.values()]) if (exited(store.child) && !store.stopping) await this.stores.kill9(store.id);
    for (const member of [...this.pd.members.values()]) if (exited(member.child) && !member.stopping) await this.pd.kill9(member.id);
  }

  // ---- faults -----------------------------------------------------------------------------------

  async killStore(id: number): Promise<void> {
    await this.resume('store', id);
    await this.stores.kill9(id);
  }

  async restartStore(id: number): Promise<void> {
    const disk = this.disks.get(id);
    await this.stores.startStore(id, ['--fault-control', this.faultFile('store', id), ...(disk ? ['--data-dir', disk.mountpoint] : [])]);
  }

  /**
   * Power loss of one store: kill -9, then its disk drops every write the store had not
   * fsynced (lossyfs). Answers what was dropped. Restart it with restartStore.
   */
  async powerLoss(id: number): Promise<{ bytes: number; files: number }> {
    const disk = this.disks.get(id);
    if (!disk) throw new Error(`store ${id} has no lossyfs disk (${this.powerLossUnavailable ?? 'unknown store'})`);
    await this.killStore(id);
    return disk.powerLoss();
  }

  async killPd(id: number): Promise<void> {
    await this.resume('pd', id);
    await this.pd.kill9(id);
  }

  /** Restarts a PD member on its data and its old ports (the cluster's PD URLs name them). */
  async restartPd(id: number): Promise<void> {
    const ports = this.pdPorts.get(id)!;
    await this.pd.start(id, ['--raft-listen', `${ports.raft.host}:${ports.raft.port}`, '--client-listen', `127.0.0.1:${ports.client}`, '--fault-control', this.faultFile('pd', id)]);
  }

  pause(kind: ProcessKind, id: number): void {
    const child = kind === 'store' ? this.stores.running(id).child : this.pd.running(id).child;
    this.paused.add(processKey(kind, id));
    child.kill('SIGSTOP');
  }

  /** SIGCONT, if it was paused and still runs. */
  async resume(kind: ProcessKind, id: number): Promise<void> {
    if (!this.paused.delete(processKey(kind, id))) return;
    const child = kind === 'store' ? this.stores.stores.get(id)?.child : this.pd.members.get(id)?.child;
    child?.kill('SIGCONT');
  }

  /**
   * Sets the drop rules of every store (or every PD member: their own raft group; those not
   * named: none), and waits until every running, unpaused one logged them as applied: the
   * partition is real. Answers the processes that did not confirm within
   * FAULT_RULES_DEADLINE_MS (none: all did).
   */
  partition(rules: ReadonlyMap<number, DropRules>, kind: ProcessKind = 'store'): Promise<string[]> {
    const changes = new Map<string, FaultSetting>();
    for (const id of kind === 'store' ? this.storeIds : this.pdIds) {
      const key = processKey(kind, id);
      const rule = rules.get(id) ?? NO_FAULT;
      changes.set(key, { ...this.setting(key), dropTo: rule.dropTo, dropFrom: rule.dropFrom });
    }
    return this.applyFaults(changes);
  }

  /** Moves a process's wall clock `offsetMs` from the real one (0: back); answers as partition() does. */
  jumpClock(kind: ProcessKind, id: number, offsetMs: number): Promise<string[]> {
    const key = processKey(kind, id);
    return this.applyFaults(new Map([[key, { ...this.setting(key), clockOffsetMs: offsetMs }]]));
  }

  /** Writes the changed control files (each replaced atomically) and waits for the processes to confirm them. */
  private async applyFaults(changes: ReadonlyMap<string, FaultSetting>): Promise<string[]> {
    for (const [key, setting] of changes) {
      const file = this.faultFiles.get(key)!;
      await writeFile(`${file}.tmp`, JSON.stringify(setting));
      await rename(`${file}.tmp`, file);
      this.faultSettings.set(key, setting);
    }
    const lagging = (): string[] =>
      [...changes.keys()].filter((key) => {
        const proc = this.process(key);
        return proc !== undefined && !this.paused.has(key) && !exited(proc.child) && appliedSetting(proc.logs) !== settingKey(changes.get(key)!);
      });
    await waitFor('every process to apply its fault rules', () => lagging().length === 0, FAULT_RULES_DEADLINE_MS).catch(() => {});
    return lagging();
  }

  private setting(key: string): FaultSetting {
    return this.faultSettings.get(key) ?? NO_FAULT;
  }

  /** The process's control file (its name is fixed at its first start). */
  private faultFile(kind: ProcessKind, id: number): string {
    const key = processKey(kind, id);
    let file = this.faultFiles.get(key);
    if (file === undefined) {
      file = path.join(this.faultDir!, `${key}.json`);
      this.faultFiles.set(key, file);
    }
    return file;
  }

  private process(key: string): { readonly child: ChildProcess; readonly logs: readonly string[] } | undefined {
    const [kind, id] = key.split('-') as [ProcessKind, string];
    return kind === 'store' ? this.stores.stores.get(Number(id)) : this.pd.members.get(Number(id));
  }

  /** Every fault undone: partitions healed, paused processes resumed, stopped ones restarted. */
  async healAll(): Promise<void> {
    await this.forgetCrashed();
    const lagging = await this.applyFaults(new Map([...this.faultFiles.keys()].map((key) => [key, NO_FAULT])));
    if (lagging.length > 0) throw new Error(`${lagging.join(', ')} did not confirm the healed fault rules within ${FAULT_RULES_DEADLINE_MS} ms`);
    for (const key of [...this.paused]) {
      const [kind, id] = key.split('-') as [ProcessKind, string];
      await this.resume(kind, Number(id));
    }
    for (const id of this.pdIds) if (!this.pd.members.has(id)) await this.restartPd(id);
    for (const id of this.storeIds) if (!this.stores.stores.has(id)) await this.restartStore(id);
  }

  /**
   * Stops every process (resumed first, so none is left stopped), and deletes the data. Crashes
   * are not thrown here: the run reads them through crashes() and fails on them.
   */
  async close(): Promise<void> {
    for (const key of [...this.paused]) {
      const [kind, id] = key.split('-') as [ProcessKind, string];
      await this.resume(kind, Number(id));
    }
    try {
      await this.stores.close().catch((err: unknown) => {
        if (this.stores.crashes.length === 0) throw err;
      });
    } finally {
      // A mount left behind would outlive the run: every one is tried, the first failure thrown at the end.
      const unmounted = await Promise.allSettled([...this.disks.values()].map((disk) => disk.unmount()));
      const unmountFailure = unmounted.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      try {
        await this.pd.close().catch((err: unknown) => {
          if (this.pd.crashes.length === 0) throw err;
        });
      } finally {
        if (this.faultDir && unmountFailure === undefined) await rm(this.faultDir, { recursive: true, force: true });
      }
      if (unmountFailure) throw unmountFailure.reason;
    }
  }

  /** The last log lines of every process, for failure reports. */
  logs(linesPerProcess: number): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const [id, store] of this.stores.stores) out[`store-${id}`] = store.logs.slice(-linesPerProcess);
    for (const [id, member] of this.pd.members) out[`pd-${id}`] = member.logs.slice(-linesPerProcess);
    return out;
  }
}

async function mkdirIn(parent: string, name: string): Promise<string> {
  const dir = path.join(parent, name);
  await mkdir(dir);
  return dir;
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function settingKey(setting: FaultSetting): string {
  const sorted = (ids: readonly number[]): number[] => [...ids].sort((a, b) => a - b);
  return JSON.stringify([sorted(setting.dropTo), sorted(setting.dropFrom), setting.clockOffsetMs]);
}

/** The setting a process last logged as applied (none before its first change). */
function appliedSetting(logs: readonly string[]): string {
  for (let i = logs.length - 1; i >= 0; i--) {
    const line = logs[i]!;
    if (!line.includes(FAULT_RULES_APPLIED)) continue;
    const entry = JSON.parse(line) as { msg?: string; dropTo?: number[]; dropFrom?: number[]; clockOffsetMs?: number };
    if (entry.msg === FAULT_RULES_APPLIED) return settingKey({ dropTo: entry.dropTo ?? [], dropFrom: entry.dropFrom ?? [], clockOffsetMs: entry.clockOffsetMs ?? 0 });
  }
  return settingKey(NO_FAULT);
}
