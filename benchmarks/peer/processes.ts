/**
 * What the peer benchmark needs to own its processes: a typed error, a hook that SIGKILLs every
 * child still running when the benchmark exits, a graceful stop with a deadline, and cleanup
 * on Ctrl-C / SIGTERM (the default signal handling would exit without stopping anything).
 */
import type { ChildProcess } from 'node:child_process';

export { pollUntil, sleep } from '../pd/pd-view.ts';

export type BenchErrorCode = 'BENCH_ETCD_UNAVAILABLE' | 'BENCH_ETCD_FAILED' | 'BENCH_BAD_ARGUMENT' | 'BENCH_SETUP_FAILED';

export class BenchError extends Error {
  constructor(
    readonly code: BenchErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
    this.name = 'BenchError';
  }
}

/** How long a child may take to stop after SIGTERM before it is SIGKILLed. */
const STOP_DEADLINE_MS = 15_000;

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** The child is SIGKILLed if this process exits while it still runs. */
export function killOnExit(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
}

/** SIGTERM, then SIGKILL past the deadline; resolves once the child has exited. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), STOP_DEADLINE_MS)));
  const outcome = await Promise.race([exited.then(() => 'exited' as const), late]);
  clearTimeout(timer);
  if (outcome === 'late') {
    child.kill('SIGKILL');
    await exited;
  }
}

/**
 * On the first SIGINT or SIGTERM, runs `cleanup` (stopping everything started) and exits 130;
 * a second signal exits at once (the exit hooks SIGKILL what is left).
 */
export function cleanUpOnSignals(cleanup: () => Promise<void>, log: (line: string) => void): void {
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log(`${signal}: stopping every process this benchmark started`);
    cleanup().then(
      () => process.exit(130),
      () => process.exit(130),
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
