/**
 * What the storage benchmark measures about the machine besides the engine (Linux /proc): CPU
 * time per thread of this process (main thread, appender threads, RocksDB background threads),
 * CPU used by OTHER processes during a measurement (the machines are shared), and an idle
 * event-loop control — a separate, idle Node process measuring its own event-loop delay while
 * a scenario runs, i.e. what the OS scheduler alone allows.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { perThread, statCpuMs } from '../cluster/proc.ts';

const linux = process.platform === 'linux';

/** CPU milliseconds per thread of this process (tid → { name, ms }). */
export function threadCpu(): Map<number, { name: string; ms: number }> {
  if (!linux) return new Map();
  return perThread('self', (dir) => ({ name: readFileSync(`${dir}/comm`, 'utf8').trim(), ms: statCpuMs(readFileSync(`${dir}/stat`, 'utf8')) }));
}

export interface CpuSplit {
  /** CPU ms per category over the interval. */
  readonly main: number;
  readonly appenders: number;
  readonly rocksdb: number;
  readonly other: number;
}

/**
 * Splits the CPU used between two threadCpu() snapshots: the main thread; RocksDB's background
 * threads (named rocksdb:*); appender workers (the other threads busy > 10% of the interval:
 * piscina's threads are not named); the rest (V8 GC helpers, libuv, idle workers).
 */
export function splitCpu(before: Map<number, { name: string; ms: number }>, after: Map<number, { name: string; ms: number }>, wallMs: number): CpuSplit {
  let main = 0;
  let appenders = 0;
  let rocksdb = 0;
  let other = 0;
  for (const [tid, t] of after) {
    const ms = t.ms - (before.get(tid)?.ms ?? 0);
    if (tid === process.pid) main += ms;
    else if (t.name.startsWith('rocksdb')) rocksdb += ms;
    else if (ms > 0.1 * wallMs) appenders += ms;
    else other += ms;
  }
  return { main, appenders, rocksdb, other };
}

/** Jiffies of the whole machine and of this process, to tell other processes' CPU use. */
interface CpuTotals {
  readonly busy: number;
  readonly total: number;
  readonly self: number;
}

function cpuTotals(): CpuTotals | null {
  if (!linux) return null;
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3]! + f[4]!;
  let total = 0;
  for (let i = 0; i < 8; i++) total += f[i]!;
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const s = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { busy: total - idle, total, self: Number(s[11]) + Number(s[12]) };
}

/** Measures the share of the machine's CPU used by other processes until stop() is called. */
export function foreignCpu(): { stop(): number | null } {
  const a = cpuTotals();
  return {
    stop(): number | null {
      const b = cpuTotals();
      if (a === null || b === null || b.total === a.total) return null;
      const foreign = b.busy - a.busy - (b.self - a.self);
      return Math.max(0, foreign / (b.total - a.total));
    },
  };
}

/**
 * Waits (at most `maxMs`) until other processes have used < 10% of the machine for one second,
 * so a measurement does not start in the middle of someone else's burst. Returns the waited ms.
 */
export async function awaitQuietMachine(maxMs: number): Promise<number> {
  if (!linux) return 0;
  const start = performance.now();
  while (performance.now() - start < maxMs) {
    const f = foreignCpu();
    await new Promise((r) => setTimeout(r, 1000));
    const share = f.stop();
    if (share === null || share < 0.1) break;
  }
  return performance.now() - start;
}

/**
 * The event-loop probe: a timer every LOOP_PROBE_RESOLUTION_MS. Node's histogram records the
 * time BETWEEN the timer's runs, the resolution included (an idle process shows p50 ≈ 1.1 ms
 * at resolution 1, ≈ 10.2 ms at 10; test/bench-storage-probe.test.ts pins it), so the delay
 * (how late the loop ran the timer) is a percentile minus the resolution.
 */
export const LOOP_PROBE_RESOLUTION_MS = 1;

export function startLoopProbe(): IntervalHistogram {
  const h = monitorEventLoopDelay({ resolution: LOOP_PROBE_RESOLUTION_MS });
  h.enable();
  return h;
}

/** How late the timer ran, from an interval Node's histogram recorded (ms). */
export function lateMs(intervalMs: number, resolutionMs: number = LOOP_PROBE_RESOLUTION_MS): number {
  return Math.max(0, intervalMs - resolutionMs);
}

/** How late the loop ran the probe's timer at `percentile`, in ms. */
export function loopDelayMs(h: IntervalHistogram, percentile: number): number {
  return lateMs(h.percentile(percentile) / 1e6);
}

const IDLE_CONTROL = `
const { monitorEventLoopDelay } = require('node:perf_hooks');
const h = monitorEventLoopDelay({ resolution: ${LOOP_PROBE_RESOLUTION_MS} });
h.enable();
process.stdin.on('data', () => {});
process.stdin.on('end', () => {
  h.disable();
  process.stdout.write(JSON.stringify({ p50: h.percentile(50) / 1e6, p99: h.percentile(99) / 1e6 }));
});
`;

/**
 * Starts the idle event-loop control: a separate Node process with nothing to do but its 1 ms
 * event-loop delay monitor (the same probe as the benchmark's). stop() ends it and returns how
 * late its timer ran at p50 and p99 (lateMs of what it recorded).
 */
export function idleLoopControl(): { stop(): Promise<{ p50: number; p99: number } | null> } {
  const child = spawn(process.execPath, ['-e', IDLE_CONTROL], { stdio: ['pipe', 'pipe', 'ignore'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return {
    async stop() {
      child.stdin.end();
      await exited;
      try {
        const interval = JSON.parse(out) as { p50: number; p99: number };
        return { p50: lateMs(interval.p50), p99: lateMs(interval.p99) };
      } catch {
        return null;
      }
    },
  };
}

export function machineLine(): string {
  const cpus = os.cpus();
  return `${cpus.length} x ${cpus[0]?.model ?? 'unknown cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB memory, ${os.type()} ${os.release()}, tmpdir ${os.tmpdir()}`;
}
