/**
 * Real Node processes for cross-package tests: spawned from the repository with tsx, their JSON
 * log lines kept (the last LOG_LINES_KEPT) for failure reports, their start awaited on a log
 * line, and every one of them killed if the test process exits first.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { storeMallocEnv } from '../../packages/store/src/constants.ts';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** Log lines kept per process for failure reports. */
const LOG_LINES_KEPT = 2000;
export const STARTUP_DEADLINE_MS = 60_000;
export const STOP_DEADLINE_MS = 30_000;

export interface ChildHandle {
  readonly child: ChildProcess;
  /** Resolves when the process has exited and its output is read. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The last log lines (JSON) the process wrote, newest last. */
  readonly logs: string[];
  /** The log entry that announced the start (its fields: addresses and such). */
  readonly started: Record<string, unknown>;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** Spawns `node [nodeArgs] --import tsx main args` and waits for the log line `startedMessage`. */
export async function launchProcess(label: string, main: string, args: readonly string[], startedMessage: string, nodeArgs: readonly string[] = []): Promise<ChildHandle> {
  // The malloc settings every production launch gives a store (this environment's values win).
  const env = { ...storeMallocEnv, ...process.env };
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', main, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env });
  live.add(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    // 'close' comes after 'exit' once stdout and stderr are drained: the logs are complete.
    child.once('close', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
  });
  const logs: string[] = [];
  const keep = (line: string): void => {
    logs.push(line);
    if (logs.length > LOG_LINES_KEPT) logs.shift();
  };
  createInterface({ input: child.stderr! }).on('line', keep);
  const started = new Promise<Record<string, unknown>>((resolve) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      keep(line);
      const entry = parseLogLine(line);
      if (entry?.msg === startedMessage) resolve(entry);
    });
  });
  const failedEarly = exited.then(({ code, signal }) => {
    throw new Error(`${label} exited (${code ?? signal}) before it started:\n${logs.join('\n')}`);
  });
  const entry = await deadline(Promise.race([started, failedEarly]), STARTUP_DEADLINE_MS, `${label} to start`).catch((err: unknown) => {
    child.kill('SIGKILL');
    throw err;
  });
  return { child, exited, logs, started: entry };
}

function parseLogLine(line: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** Rejects when `promise` does not settle within `ms`. */
export async function deadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
