/**
 * What the cluster benchmarks read about store processes from outside: CPU time, run-queue
 * waits and resident memory from Linux /proc, and counters from each store's Prometheus endpoint.
 */
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { storeMallocEnv } from '../../packages/store/src/constants.ts';
import type { StoreHandle } from '../../test/support/cluster.ts';

const CLOCK_TICK_MS = 10; // USER_HZ = 100 on Linux

/** CPU milliseconds (user + system) the process has used so far. */
export function cpuMs(pid: number): number {
  return statCpuMs(readFileSync(`/proc/${pid}/stat`, 'utf8'));
}

/** CPU milliseconds (user + system) in the text of a `stat` file (a process's or a thread's). */
export function statCpuMs(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * CLOCK_TICK_MS;
}

/**
 * `read` of every thread of the process (`/proc/<pid>/task/<tid>`, the directory given), by
 * thread id; a thread that ended before its read is left out. Empty when the process is gone.
 */
export function perThread<T>(pid: number | 'self', read: (taskDir: string) => T): Map<number, T> {
  const out = new Map<number, T>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      out.set(Number(tid), read(`/proc/${pid}/task/${tid}`));
    } catch {
      // The thread ended meanwhile (or the kernel keeps no such file).
    }
  }
  return out;
}

/**
 * `/proc/<pid>/task/<tid>/schedstat`: nanoseconds on a core, nanoseconds runnable but waiting
 * for one (in a run queue), and timeslices. The wait is what CPU time alone hides: on a
 * machine with fewer cores than busy threads, a thread that needs a core gets it late.
 */
export interface Schedstat {
  readonly onCpuNs: number;
  readonly runQueueNs: number;
}

export function parseSchedstat(text: string): Schedstat {
  const [onCpu, runQueue] = text.trim().split(/\s+/).map(Number);
  if (!Number.isFinite(onCpu) || !Number.isFinite(runQueue)) throw new Error(`unexpected schedstat: ${JSON.stringify(text)}`);
  return { onCpuNs: onCpu!, runQueueNs: runQueue! };
}

/**
 * Milliseconds each thread of the process (by thread id) spent runnable but waiting for a core,
 * so far; empty where the kernel keeps no schedstat or the process is gone.
 */
export function threadRunQueueWaits(pid: number): ReadonlyMap<number, number> {
  return perThread(pid, (dir) => parseSchedstat(readFileSync(`${dir}/schedstat`, 'utf8')).runQueueNs / 1e6);
}

/**
 * What the threads of `pid` waited for a core between two readings of threadRunQueueWaits, in
 * ms: summed over its threads, and its main thread's alone (a Node process's event loop). A
 * thread born in between counts whole; one that exited in between is lost. NaN without schedstat.
 */
export function runQueueWaitedMs(pid: number, before: ReadonlyMap<number, number>, after: ReadonlyMap<number, number>): { allThreads: number; mainThread: number } {
  if (after.size === 0) return { allThreads: NaN, mainThread: NaN };
  let allThreads = 0;
  for (const [tid, ms] of after) allThreads += ms - (before.get(tid) ?? 0);
  return { allThreads, mainThread: (after.get(pid) ?? NaN) - (before.get(pid) ?? NaN) };
}

/** Resident set size in bytes. */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  return kb === undefined ? NaN : Number(kb) * 1024;
}

/** CPU used by the whole machine (all processes), in ms, from /proc/stat. */
export function machineCpuMs(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
  return (user! + nice! + system! + irq! + softirq! + (steal ?? 0)) * CLOCK_TICK_MS;
}

/** The sum over all label sets of each named metric (counters and gauges). */
export async function scrape(store: StoreHandle, names: readonly string[]): Promise<Map<string, number>> {
  const res = await store.pool.request({ method: 'GET', path: '/metrics' });
  const text = await res.body.text();
  const sums = new Map<string, number>(names.map((n) => [n, 0]));
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const name = line.slice(0, line.search(/[ {]/));
    if (!sums.has(name)) continue;
    sums.set(name, sums.get(name)! + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return sums;
}

export function machineLine(): string {
  const cpus = os.cpus();
  return `${cpus.length} x ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB memory, ${os.type()} ${os.release()}`;
}

export function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** A % figure; `-` where the kernel gave none (a run-queue wait without schedstat). */
export const pctCell = (v: number): string => (Number.isFinite(v) ? v.toFixed(0) : '-');

/**
 * Store processes inherit this process's environment (test/support/process.ts spawns them
 * without an `env`): give them the malloc settings every production launch sets
 * (packages/store/src/constants.ts, storeMallocEnv), so the benchmarks measure the stores as
 * they run. A value already set in the environment wins. FLOTILLA_BENCH_GLIBC_MALLOC=1 leaves
 * glibc's defaults (to compare; any MALLOC_MMAP_THRESHOLD_ at all turns off glibc's dynamic
 * threshold, so the defaults cannot be spelled as values).
 */
export function useStoreMallocEnv(): void {
  if (process.env.FLOTILLA_BENCH_GLIBC_MALLOC === '1') return;
  for (const [name, value] of Object.entries(storeMallocEnv)) process.env[name] ??= value;
}
