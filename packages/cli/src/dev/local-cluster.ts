/**
 * A local cluster as child processes: one PD member and N stores, each `flotilla pd …` /
 * `flotilla store …` in its own Node process, every data directory and log file under one
 * folder. Used by `flotilla dev`.
 *
 * Children log to `<dataDir>/logs/<name>.log`. A child's output goes through a pipe to this
 * process, so children of a parent that died without stopping them fail their next log write.
 * `stop()` ends every child: SIGTERM (stores first, then PD), SIGKILL past the deadline.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { storeMallocEnv } from '@flotilla/store';
import { clusterError } from '../errors.ts';

/** The CLI's entry point, which children run as `flotilla pd|store`. */
const CLI_MAIN = fileURLToPath(new URL('../main.ts', import.meta.url));

export const localClusterLimits = Object.freeze({
  storesMin: 1,
  storesMax: 7,
  /** Log lines kept per child for error messages. */
  tailLines: 20,
  startDeadlineMs: 60_000,
  /** How long a child may take to stop after SIGTERM before it is SIGKILLed. */
  stopDeadlineMs: 15_000,
});

/** Short intervals: a development cluster converges in seconds, not minutes. */
export const DEV_PD_ARGS: readonly string[] = ['--schedule-interval-ms', '200', '--shutdown-timeout-ms', '2000'];
export const DEV_STORE_ARGS: readonly string[] = ['--store-heartbeat-ms', '300', '--region-heartbeat-ms', '1000', '--log-shards', '1', '--shutdown-timeout-ms', '2000'];

export interface LocalClusterOptions {
  readonly dataDir: string;
  /** host:port of PD's client API (port 0: any free port). */
  readonly pdListen: string;
  readonly stores: number;
  /** Called once when a child exits on its own (not through stop()). */
  readonly onUnexpectedExit?: (name: string, code: number | null, signal: NodeJS.Signals | null, tail: readonly string[]) => void;
}

export interface ChildExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface LocalChild {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  readonly exited: Promise<ChildExit>;
  /** The last lines the child wrote. */
  readonly tail: string[];
}

export interface LocalStore extends LocalChild {
  readonly storeId: number;
  /** http://host:port of the client and admin API. */
  readonly apiUrl: string;
  readonly raftAddress: string;
}

export interface LocalPd extends LocalChild {
  readonly url: string;
}

export class LocalCluster {
  private stopping = false;
  private readonly children: ChildProcess[] = [];

  readonly logDir: string;
  pd: LocalPd | undefined;
  readonly stores: LocalStore[] = [];

  constructor(readonly options: LocalClusterOptions) {
    if (!Number.isSafeInteger(options.stores) || options.stores < localClusterLimits.storesMin || options.stores > localClusterLimits.storesMax) {
      throw new Error(`stores: expected ${localClusterLimits.storesMin}..${localClusterLimits.storesMax}, got ${options.stores}`);
    }
    this.logDir = path.join(options.dataDir, 'logs');
  }

  /**
   * Starts PD, then the stores (in parallel); resolves when every child has started. On a
   * failure, or when stop() was called meanwhile, every child started is stopped first.
   */
  async start(): Promise<void> {
    try {
      await this.startAll();
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  private async startAll(): Promise<void> {
    const { dataDir, pdListen } = this.options;
    await mkdir(this.logDir, { recursive: true });
    const pdStarted = await this.spawnChild(
      'pd',
      ['pd', '--member-id', '1', '--data-dir', path.join(dataDir, 'pd'), '--raft-listen', '127.0.0.1:0', '--client-listen', pdListen, '--initial-members', `1=127.0.0.1:0@http://${pdListen}`, ...DEV_PD_ARGS],
      'pd member started',
    );
    const url = pdStarted.entry['clientUrl'];
    if (typeof url !== 'string') throw clusterError(`pd started without a clientUrl in its log (${pdStarted.child.logFile})`);
    this.pd = { ...pdStarted.child, url };
    const started = await Promise.all(
      Array.from({ length: this.options.stores }, (_, i) =>
        this.spawnChild(
          `store-${i + 1}`,
          ['store', '--pd', url, '--data-dir', path.join(dataDir, `store-${i + 1}`), '--raft-listen', '127.0.0.1:0', '--api-listen', '127.0.0.1:0', ...DEV_STORE_ARGS],
          'store started',
        ),
      ),
    );
    for (const { child, entry } of started) {
      const api = entry['apiAddress'] as { host?: string; port?: number } | undefined;
      const raft = entry['raftAddress'] as { host?: string; port?: number } | undefined;
      const storeId = entry['storeId'];
      if (typeof storeId !== 'number' || !api || !raft) throw clusterError(`${child.name} started without its id and addresses in its log (${child.logFile})`);
      this.stores.push({ ...child, storeId, apiUrl: `http://${api.host}:${api.port}`, raftAddress: `${raft.host}:${raft.port}` });
    }
    this.stores.sort((a, b) => a.storeId - b.storeId);
  }

  /** Every child started and still running. */
  get processes(): LocalChild[] {
    return [...(this.pd ? [this.pd] : []), ...this.stores];
  }

  /**
   * Stops every child: stores first (SIGTERM, in parallel), then PD; SIGKILL for any that
   * outlives the deadline. Resolves when every child has exited.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    const running = (c: ChildProcess): boolean => c.exitCode === null && c.signalCode === null;
    const pdChild = this.children[0];
    const stores = this.children.slice(1);
    await Promise.all(stores.filter(running).map((c) => stopChild(c)));
    if (pdChild && running(pdChild)) await stopChild(pdChild);
  }

  /** SIGKILL for every child still running (a second Ctrl-C). */
  kill(): void {
    this.stopping = true;
    for (const c of this.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }

  private async spawnChild(name: string, args: readonly string[], startedMessage: string): Promise<{ child: LocalChild; entry: Record<string, unknown> }> {
    if (this.stopping) throw clusterError('stopped while starting');
    const logFile = path.join(this.logDir, `${name}.log`);
    const log = createWriteStream(logFile, { flags: 'a' });
    // The IPC channel is the children's lifeline: if `flotilla dev` dies without stopping them
    // (SIGKILL, a crash), it closes and each child shuts down by itself (see runServer).
    const child = spawn(process.execPath, ['--import', tsxLoaderUrl(), CLI_MAIN, ...args], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: childEnv(process.env),
    });
    this.children.push(child);
    const tail: string[] = [];
    const closed = new Promise<ChildExit>((resolve) => {
      child.once('close', (code, signal) => {
        log.end();
        resolve({ code, signal });
      });
    });
    const spawnFailed = new Promise<never>((_, reject) => child.once('error', (err) => reject(clusterError(`cannot start ${name}: ${err.message}`))));
    spawnFailed.catch(() => undefined);
    let onStarted: (entry: Record<string, unknown>) => void = () => undefined;
    const started = new Promise<Record<string, unknown>>((resolve) => (onStarted = resolve));
    const keep = (line: string): void => {
      writeLine(log, line);
      tail.push(line);
      if (tail.length > localClusterLimits.tailLines) tail.shift();
    };
    createInterface({ input: child.stderr! }).on('line', keep);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      keep(line);
      const entry = parseJson(line);
      if (entry?.['msg'] === startedMessage) onStarted(entry);
    });
    const handle: LocalChild = { name, pid: child.pid ?? 0, logFile, exited: closed, tail };
    void closed.then(({ code, signal }) => {
      if (!this.stopping) this.options.onUnexpectedExit?.(name, code, signal, tail);
    });
    const exitedEarly = closed.then(({ code, signal }): never => {
      throw clusterError(`${name} exited (${code ?? signal}) before it started: ${lastProblem(tail)} (log: ${logFile})`);
    });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(clusterError(`${name} did not start within ${localClusterLimits.startDeadlineMs} ms (log: ${logFile})`)), localClusterLimits.startDeadlineMs);
    });
    try {
      const entry = await Promise.race([started, exitedEarly, spawnFailed, timedOut]);
      return { child: handle, entry };
    } finally {
      clearTimeout(timer);
    }
  }
}

/** The URL of tsx's loader (children load TypeScript the way this process does). */
function tsxLoaderUrl(): string {
  return import.meta.resolve('tsx');
}

/**
 * The parent's environment without FLOTILLA_* variables (the children get every setting as a
 * flag, and a stray FLOTILLA_STORE_ID or FLOTILLA_DATA_DIR must not change them), over the
 * malloc settings every store starts with (storeMallocEnv; the parent's own values win).
 */
function childEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...storeMallocEnv, ...Object.fromEntries(Object.entries(env).filter(([name]) => !name.startsWith('FLOTILLA_'))) };
}

async function stopChild(child: ChildProcess): Promise<void> {
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), localClusterLimits.stopDeadlineMs)));
  const outcome = await Promise.race([exited.then(() => 'exited' as const), late]);
  clearTimeout(timer);
  if (outcome === 'late') {
    child.kill('SIGKILL');
    await exited;
  }
}

function writeLine(log: WriteStream, line: string): void {
  if (!log.writableEnded) log.write(`${line}\n`);
}

function parseJson(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** The most telling line of a child's last output: a fatal/error log message, else the last line. */
export function lastProblem(tail: readonly string[]): string {
  for (let i = tail.length - 1; i >= 0; i--) {
    const entry = parseJson(tail[i]!);
    const level = entry?.['level'];
    if (entry && (level === 'fatal' || level === 'error' || level === 60 || level === 50)) {
      const err = entry['err'] as { message?: string } | undefined;
      const detail = err?.message ?? (typeof entry['error'] === 'string' ? entry['error'] : undefined);
      return `${String(entry['msg'])}${detail ? `: ${detail}` : ''}`;
    }
  }
  const last = tail.filter((l) => l.trim() !== '').at(-1);
  return last === undefined ? 'no output' : last.slice(0, 300);
}
