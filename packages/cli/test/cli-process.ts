/**
 * The `flotilla` command as a user runs it, for end-to-end tests: one-shot commands with their
 * exit code and output, and a long-running `flotilla dev` whose stdout lines are awaited with
 * deadlines. Every process started is stopped (and anything left of a dev cluster, found by
 * its data directory in /proc, is SIGKILLed) by `stopAll()` or the exit hook.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const CLI_MAIN = path.join(REPO, 'packages/cli/src/main.ts');
export const CLI_BIN = path.join(REPO, 'packages/cli/bin/flotilla.js');

/** A one-shot command's deadline (node + tsx start-up is ~1-2 s on a busy 2-core machine). */
const COMMAND_DEADLINE_MS = 30_000;

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export interface CommandResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Env without the FLOTILLA_* variables of whoever runs the tests, plus `extra`. */
export function cleanEnv(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('FLOTILLA_')));
  return { ...env, ...extra };
}

/** `node --import tsx packages/cli/src/main.ts ARGS` (or the bin), to its end. */
export async function flotilla(args: readonly string[], options: { env?: Readonly<Record<string, string>>; bin?: boolean; stdin?: string } = {}): Promise<CommandResult> {
  const argv = options.bin ? [CLI_BIN, ...args] : ['--import', 'tsx', CLI_MAIN, ...args];
  const child = spawn(process.execPath, argv, { cwd: REPO, env: cleanEnv(options.env), stdio: ['pipe', 'pipe', 'pipe'] });
  live.add(child);
  child.stdin!.end(options.stdin ?? '');
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), COMMAND_DEADLINE_MS);
  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (c, s) => resolve({ code: c, signal: s })));
  clearTimeout(timer);
  live.delete(child);
  return { code, signal, stdout, stderr };
}

/** A running `flotilla dev`: its stdout lines as they come, stderr kept for failure reports. */
export class DevProcess {
  readonly lines: string[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly waiters = new Set<() => void>();

  constructor(readonly child: ChildProcess) {
    live.add(child);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      this.lines.push(line);
      for (const wake of this.waiters) wake();
    });
    createInterface({ input: child.stderr! }).on('line', (line) => this.stderr.push(line));
    this.exited = new Promise((resolve) =>
      child.once('close', (code, signal) => {
        live.delete(child);
        for (const wake of this.waiters) wake();
        resolve({ code, signal });
      }),
    );
  }

  static start(args: readonly string[]): DevProcess {
    return new DevProcess(spawn(process.execPath, ['--import', 'tsx', CLI_MAIN, 'dev', ...args], { cwd: REPO, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] }));
  }

  /** The first stdout line matching `pattern` (its match), waited for up to `deadlineMs`. */
  async line(pattern: RegExp, deadlineMs: number): Promise<RegExpMatchArray> {
    const deadline = Date.now() + deadlineMs;
    for (;;) {
      for (const line of this.lines) {
        const match = pattern.exec(line);
        if (match) return match;
      }
      const running = this.child.exitCode === null && this.child.signalCode === null;
      const remaining = deadline - Date.now();
      if (!running || remaining <= 0) {
        throw new Error(`flotilla dev: no line ${pattern} (${running ? `within ${deadlineMs} ms` : `it exited: ${this.child.exitCode ?? this.child.signalCode}`})\nstdout:\n${this.lines.join('\n')}\nstderr:\n${this.stderr.join('\n')}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, remaining);
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
        this.waiters.add(done);
      }).finally(() => this.waiters.clear());
    }
  }
}

/** Pids of running processes whose command line mentions `text` (Linux /proc). */
export function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    if (cmdline.includes(text) && !isZombie(name)) pids.push(Number(name));
  }
  return pids;
}

function isZombie(pid: string): boolean {
  try {
    return /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return true;
  }
}

/** SIGKILL for everything started here and any process left of a dev cluster in `dataDir`. */
export function killEverything(dataDir: string | undefined): void {
  for (const child of live) child.kill('SIGKILL');
  if (dataDir === undefined) return;
  for (const pid of processesMentioning(dataDir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
}

/**
 * A `flotilla dev` cluster for a test: started on any free port and awaited until `ready`;
 * `stop()` (in `after`, also after a failed start) sends SIGINT, SIGKILLs whatever is left of
 * it, and removes its folder.
 */
export class DevCluster {
  dev: DevProcess | undefined;
  dataDir: string | undefined;
  /** PD's URL, once started. */
  pd = '';

  async start(readyDeadlineMs = 45_000): Promise<void> {
    this.dev = DevProcess.start(['--pd-listen', '127.0.0.1:0']);
    this.dataDir = (await this.dev.line(/^data: (.+)$/, readyDeadlineMs))[1]!;
    this.pd = (await this.dev.line(/^pd: (http:\/\/\S+)$/, readyDeadlineMs))[1]!;
    await this.dev.line(/^ready$/, readyDeadlineMs);
  }

  async stop(stopDeadlineMs = 20_000): Promise<void> {
    if (this.dev && this.dev.child.exitCode === null && this.dev.child.signalCode === null) {
      this.dev.child.kill('SIGINT');
      await Promise.race([this.dev.exited, new Promise((resolve) => setTimeout(resolve, stopDeadlineMs).unref())]);
    }
    killEverything(this.dataDir);
    if (this.dataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }
}
