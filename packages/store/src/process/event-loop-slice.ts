/**
 * `--event-loop-slice-us N`: the event-loop (main) thread asks the Linux scheduler (EEVDF,
 * Linux 6.12+) for a time slice of N µs instead of the default ~3 ms.
 *
 * Why: EEVDF runs a woken thread at once only when its virtual deadline — its eligible time
 * plus its slice — comes before the running thread's. A loop woken by its timer or a socket on
 * cores the appender, RocksDB and collector threads keep busy therefore waits up to a slice for
 * one of them, whatever its nice. With a 0.1 ms slice its deadline is near and it preempts them:
 * in bench:storage's 256-group scenario, with `--event-loop-priority 15` and
 * `--serial-scavenges`, the loop's p99 delay fell from ~2.1 to ~1.7 ms at the same append rate
 * (benchmarks/storage/RESULTS.md). A short slice also ends the loop's own turns sooner when
 * another thread is due, so it is for latency, not throughput.
 *
 * The slice is set with sched_setattr(2), which Node does not expose: the store asks `perl`
 * (part of every Debian-based image, ours included) to make the system call for its main
 * thread, then reads the slice back from /proc to be sure the kernel took it (older kernels
 * accept the call and ignore the slice). The thread keeps its nice (sched_setattr sets both).
 * Like the priority, it is set once the engines are open, so their threads keep the kernel's
 * default (test/store-slice.test.ts checks every thread of a store that served writes).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { StoreError } from '../errors.ts';

/** The kernel's bounds for a custom slice (it clamps to 0.1–100 ms; config.ts checks the flag against them). */
export const EVENT_LOOP_SLICE_US_MIN = 100;
export const EVENT_LOOP_SLICE_US_MAX = 100_000;

/** Longest the store waits for perl to make the call (at start only; it takes a few ms). */
const PERL_TIMEOUT_MS = 10_000;

/** sched_setattr's system call number by architecture. */
const SCHED_SETATTR: Readonly<Record<string, number>> = { x64: 314, arm64: 274 };

/** How the slice is applied and read back: the real system by default, fakes in tests. */
export interface SliceSystem {
  readonly platform: string;
  readonly arch: string;
  /** Runs perl with the script; returns its exit status, stdout and stderr (or the spawn error). */
  runPerl(script: string): { status: number | null; stdout: string; stderr: string; error?: Error };
  /** The calling process's main thread's scheduler report (/proc/<pid>/sched). */
  readSched(pid: number): string;
  /** The main thread's nice. */
  nice(): number;
}

const realSystem: SliceSystem = {
  platform: process.platform,
  arch: process.arch,
  runPerl(script) {
    const r = spawnSync('perl', ['-e', script], { encoding: 'utf8', timeout: PERL_TIMEOUT_MS });
    return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', ...(r.error ? { error: r.error } : {}) };
  },
  readSched: (pid) => readFileSync(`/proc/${pid}/sched`, 'utf8'),
  nice: () => os.getPriority(0),
};

/**
 * The perl script that calls sched_setattr(pid, attr, 0) with a SCHED_OTHER attr of the given
 * nice and slice (struct sched_attr, version 0: 48 bytes — size, policy, flags, nice, priority,
 * runtime, deadline, period) and prints the result and errno.
 */
export function sliceScript(syscallNumber: number, pid: number, nice: number, sliceNs: number): string {
  return `my $a = pack("LLQlLQQQ", 48, 0, 0, ${nice}, 0, ${sliceNs}, 0, 0); my $r = syscall(${syscallNumber}, ${pid}, $a, 0); print "$r " . ($r == 0 ? "" : $!);`;
}

/** The `se.slice` of a /proc/<pid>/sched report, in nanoseconds; undefined when absent. */
export function sliceOf(schedReport: string): number | undefined {
  const match = /^se\.slice\s*:\s*(\d+)/m.exec(schedReport);
  return match ? Number(match[1]) : undefined;
}

/** `sliceUs` is the parsed flag: 0 (unchanged) or EVENT_LOOP_SLICE_US_MIN..MAX. */
export function setEventLoopSlice(sliceUs: number, system: SliceSystem = realSystem): void {
  if (sliceUs !== 0) applyEventLoopSlice(sliceUs, system);
}

/**
 * Sets the main thread's slice to `sliceUs` (EVENT_LOOP_SLICE_US_MIN..MAX), or back to the
 * kernel's default with 0 (benchmarks measuring as a store runs, then as it does not).
 */
export function applyEventLoopSlice(sliceUs: number, system: SliceSystem = realSystem): void {
  const flag = `--event-loop-slice-us ${sliceUs}`;
  const syscallNumber = SCHED_SETATTR[system.arch];
  if (system.platform !== 'linux' || syscallNumber === undefined) {
    throw new StoreError('FLOTILLA_STORE_INVALID_CONFIG', `${flag} needs Linux on x64 or arm64 (this is ${system.platform} ${system.arch})`);
  }
  const sliceNs = sliceUs * 1000;
  const result = system.runPerl(sliceScript(syscallNumber, process.pid, system.nice(), sliceNs));
  if (result.error !== undefined || result.status !== 0) {
    const why = result.error?.message ?? (result.stderr.trim() || `exit status ${result.status}`);
    throw new StoreError('FLOTILLA_STORE_INVALID_CONFIG', `${flag}: could not run perl to set the slice (${why}); install perl or run without the flag`);
  }
  const [code, ...errno] = result.stdout.trim().split(' ');
  if (code !== '0') {
    throw new StoreError('FLOTILLA_STORE_INVALID_CONFIG', `${flag}: sched_setattr failed (${errno.join(' ') || result.stdout.trim()}); run without the flag`);
  }
  const applied = sliceOf(system.readSched(process.pid));
  if (sliceNs !== 0 && applied !== sliceNs) {
    throw new StoreError(
      'FLOTILLA_STORE_INVALID_CONFIG',
      `${flag}: the kernel kept a slice of ${applied === undefined ? 'unknown length' : `${applied / 1000} µs`} (custom slices need Linux 6.12 or later; this is ${os.release()}); run without the flag`,
    );
  }
}
