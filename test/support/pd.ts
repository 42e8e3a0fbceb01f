/**
 * PD members as real processes on loopback (packages/pd/src/main.ts), for cross-package tests:
 * member 1 founds PD's group alone (any port), later members join through a running one —
 * the way an operator grows PD from 1 to 3 or 5 members. Every process started is stopped
 * by `close()` (or by the exit hook of process.ts if the test crashed).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Pool } from 'undici';
import { REPO, STOP_DEADLINE_MS, deadline, launchProcess, type ChildHandle } from './process.ts';
import { apiTlsFlags, tlsCredentials, type TlsFiles } from './tls.ts';
import { waitFor } from './cluster.ts';

/** How long a PD group of real processes may take to elect and add its members. */
const GROUP_DEADLINE_MS = 30_000;

const PD_MAIN = path.join(REPO, 'packages/pd/src/main.ts');

export interface PdHandle extends ChildHandle {
  readonly id: number;
  readonly url: string;
  readonly pool: Pool;
  stopping: boolean;
}

export interface PdAnswer<T = unknown> {
  readonly status: number;
  readonly body: T;
}

export class PdProcesses {
  readonly members = new Map<number, PdHandle>();
  /** Members that exited on their own, with their last logs. */
  readonly crashes: string[] = [];
  private readonly dirs = new Map<number, string>();
  private root: string | undefined;

  constructor(
    private readonly args: readonly string[] = [],
    /** HTTPS APIs (--api-tls-* with these files); the harness calls them with test/support/tls's `peer` credentials. */
    private readonly apiTls?: TlsFiles,
  ) {}

  /** Starts member `id`: founding alone when no member runs yet, else joining through one. */
  async start(id: number, args: readonly string[] = []): Promise<PdHandle> {
    this.root ??= await mkdtemp(path.join(os.tmpdir(), 'flotilla-pd-'));
    const dir = this.dirs.get(id) ?? path.join(this.root, `pd-${id}`);
    const firstStart = !this.dirs.has(id);
    this.dirs.set(id, dir);
    const through = [...this.members.values()][0];
    const scheme = this.apiTls ? 'https' : 'http';
    const entry = firstStart && !through ? ['--initial-members', `${id}=127.0.0.1:0@${scheme}://127.0.0.1:0`] : firstStart ? ['--join', through!.url] : [];
    const tls = this.apiTls ? apiTlsFlags(this.apiTls) : [];
    const flags = ['--member-id', String(id), '--data-dir', dir, '--raft-listen', '127.0.0.1:0', '--client-listen', '127.0.0.1:0', '--tick-ms', '50', ...entry, ...tls, ...this.args, ...args];
    const handle = await launchProcess(`pd ${id}`, PD_MAIN, flags, 'pd member started');
    const url = handle.started.clientUrl as string;
    const pool = new Pool(url, { connections: 4, ...(this.apiTls ? { connect: tlsCredentials('peer') } : {}) });
    const member: PdHandle = { ...handle, id, url, pool, stopping: false };
    void member.exited.then(({ code, signal }) => {
      if (!member.stopping) this.crashes.push(`pd ${id} exited on its own (${code ?? signal}):\n${member.logs.join('\n')}`);
    });
    this.members.set(id, member);
    return member;
  }

  /**
   * Members 1..`members`: member 1 founds PD's group and leads it, the others join through it;
   * resolves once all of them are voters.
   */
  async startGroup(members: number): Promise<void> {
    await this.start(1);
    await waitFor('PD member 1 to lead', async () => (await this.leader()) === 1, GROUP_DEADLINE_MS);
    for (let id = 2; id <= members; id++) await this.start(id);
    await waitFor(`${members} PD voters`, async () => (await this.expect<{ voters: unknown[] }>(1, 'GET', '/pd/api/v1/members')).voters.length === members, GROUP_DEADLINE_MS);
  }

  /** One API call to member `id` (JSON both ways; a raw string body is sent as is). */
  async call<T = unknown>(id: number, method: string, pathname: string, body?: unknown): Promise<PdAnswer<T>> {
    const res = await this.running(id).pool.request({
      method: method as 'GET',
      path: pathname,
      headers: { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    const text = await res.body.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // metrics and other text answers stay text
    }
    return { status: res.statusCode, body: parsed as T };
  }

  /** A call that must answer 2xx. */
  async expect<T = unknown>(id: number, method: string, pathname: string, body?: unknown): Promise<T> {
    const answer = await this.call<T>(id, method, pathname, body);
    if (answer.status < 200 || answer.status > 299) throw new Error(`pd ${id}: ${method} ${pathname} answered ${answer.status} ${JSON.stringify(answer.body)}`);
    return answer.body;
  }

  /** The member serving as leader (it answers /pd/api/v1/cluster itself), if any. */
  async leader(): Promise<number | undefined> {
    for (const id of this.members.keys()) {
      const answer = await this.call<{ leader?: number; ready?: boolean }>(id, 'GET', '/ready').catch(() => undefined);
      if (answer?.status === 200 && answer.body.leader === id) return id;
    }
    return undefined;
  }

  async kill9(id: number): Promise<void> {
    const member = this.running(id);
    this.members.delete(id);
    member.stopping = true;
    member.child.kill('SIGKILL');
    await member.exited;
    await member.pool.destroy();
  }

  async terminate(id: number): Promise<number | null> {
    const member = this.running(id);
    this.members.delete(id);
    member.stopping = true;
    member.child.kill('SIGTERM');
    const exit = await deadline(member.exited, STOP_DEADLINE_MS, `pd ${id} to stop after SIGTERM`);
    await member.pool.destroy();
    return exit.code;
  }

  async close(): Promise<void> {
    for (const id of [...this.members.keys()]) await this.kill9(id);
    if (this.root) await rm(this.root, { recursive: true, force: true });
    if (this.crashes.length > 0) throw new Error(this.crashes.join('\n\n'));
  }

  running(id: number): PdHandle {
    const member = this.members.get(id);
    if (!member) throw new Error(`pd ${id} is not running`);
    return member;
  }
}
