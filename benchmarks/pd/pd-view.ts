/**
 * What the PD benchmarks read from a PD member's JSON API and /metrics, and the figures they
 * compute from it (spread of regions and leaders over stores, fully replicated regions).
 */
import { execFileSync } from 'node:child_process';
import type { PdProcesses } from '../../test/support/pd.ts';
import { REPO } from '../../test/support/process.ts';
import { waitFor } from '../../test/support/wait.ts';
import { machineLine } from '../cluster/proc.ts';

export interface PdPeer {
  readonly id: number;
  readonly storeId: number;
  readonly role: 'voter' | 'learner';
}

export interface PdRegion {
  readonly id: number;
  readonly startKey: string;
  readonly endKey: string;
  readonly epoch: { readonly version: number; readonly confVer: number };
  readonly peers: readonly PdPeer[];
  readonly leader: { readonly peerId: number; readonly storeId: number } | null;
  readonly downPeerIds: readonly number[];
  readonly pendingPeerIds: readonly number[];
}

export interface PdStore {
  readonly id: number;
  readonly state: string;
  readonly regionCount: number;
  readonly leaderCount: number;
}

/** The regions page bound of PD's API. */
const REGIONS_PAGE_MAX = 10_000;

/** Every region PD knows, in key order (paged by start key). */
export async function pdRegions(pd: PdProcesses, member: number): Promise<PdRegion[]> {
  const all: PdRegion[] = [];
  let start = '';
  for (;;) {
    const page = await pd.expect<{ regions: PdRegion[]; more: boolean }>(member, 'GET', `/pd/api/v1/regions?start=${start}&limit=${REGIONS_PAGE_MAX}`);
    // A page after the first starts with the region holding `start`: the last one of the previous page.
    const fresh = all.length === 0 ? page.regions : page.regions.filter((r) => r.startKey >= start && r.id !== all.at(-1)?.id);
    all.push(...fresh);
    const last = page.regions.at(-1);
    if (!page.more || !last || last.endKey === '') return all;
    start = last.endKey;
  }
}

export async function pdStores(pd: PdProcesses, member: number): Promise<PdStore[]> {
  return (await pd.expect<{ stores: PdStore[] }>(member, 'GET', '/pd/api/v1/stores')).stores;
}

export async function runningOperators(pd: PdProcesses, member: number): Promise<number> {
  return (await pd.expect<{ operators: unknown[] }>(member, 'GET', '/pd/api/v1/operators')).operators.length;
}

/** maxReplicas voters, no learner, all on distinct live stores, and a leader PD knows. */
export function fullyReplicated(region: PdRegion, live: ReadonlySet<number>, replicas = 3): boolean {
  return (
    region.peers.length === replicas &&
    region.peers.every((p) => p.role === 'voter' && live.has(p.storeId)) &&
    new Set(region.peers.map((p) => p.storeId)).size === replicas &&
    region.leader !== null
  );
}

export interface Spread {
  /** Store id -> replicas (any role) held there, per PD's region map. */
  readonly replicas: ReadonlyMap<number, number>;
  /** Store id -> regions led there. */
  readonly leaders: ReadonlyMap<number, number>;
  readonly replicaRatio: number;
  readonly leaderRatio: number;
}

/** Replicas and leaders per live store, and max/min of each (Infinity when a store has none). */
export function spreadOf(regions: readonly PdRegion[], live: readonly number[]): Spread {
  const replicas = new Map(live.map((id) => [id, 0]));
  const leaders = new Map(live.map((id) => [id, 0]));
  for (const region of regions) {
    for (const peer of region.peers) if (replicas.has(peer.storeId)) replicas.set(peer.storeId, replicas.get(peer.storeId)! + 1);
    const leader = region.leader?.storeId;
    if (leader !== undefined && leaders.has(leader)) leaders.set(leader, leaders.get(leader)! + 1);
  }
  const ratio = (m: ReadonlyMap<number, number>): number => {
    const values = [...m.values()];
    const min = Math.min(...values);
    return min === 0 ? Infinity : Math.max(...values) / min;
  };
  return { replicas, leaders, replicaRatio: ratio(replicas), leaderRatio: ratio(leaders) };
}

/** The sum over label sets of each named metric in a Prometheus text, filtered by labels. */
export function metricSum(text: string, name: string, labels: Readonly<Record<string, string>> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    if (!Object.entries(labels).every(([k, v]) => rest.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

export async function pdMetrics(pd: PdProcesses, member: number): Promise<string> {
  return (await pd.call<string>(member, 'GET', '/metrics')).body;
}

/** The short commit, and whether the working tree had uncommitted changes (read-only git calls). */
export function commitOf(repo: string): string {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repo, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: repo, encoding: 'utf8' }).trim() !== '';
    return dirty ? `${sha} + uncommitted changes` : sha;
  } catch {
    return 'unknown';
  }
}

/**
 * The lines every PD benchmark report starts with: its title, then what the benchmark rules ask
 * of every result (date, command, commit, node, machine). The config lines follow.
 */
export function reportHead(title: string, startedAt: Date, command: string): string[] {
  return [`# ${title}`, '', `- date: ${startedAt.toISOString()}`, `- command: ${command}`, `- commit: ${commitOf(REPO)}`, `- node: ${process.version} (${process.platform}/${process.arch})`, `- machine: ${machineLine()}`];
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `condition` every `everyMs` until it holds; throws after `deadlineMs`. */
export function pollUntil(what: string, condition: () => boolean | Promise<boolean>, deadlineMs: number, everyMs = 250): Promise<void> {
  return waitFor(what, condition, deadlineMs, everyMs);
}

export function ratioText(r: number): string {
  return Number.isFinite(r) ? `${r.toFixed(2)}` : '∞';
}
