/**
 * `--event-loop-priority N`: the event-loop (main) thread runs at nice −N.
 *
 * Why: on a machine whose cores the appender threads, RocksDB's threads and the collector's
 * helpers keep busy, a woken event loop waits its turn for a core like any of them — a timer
 * due in 1 ms ran ~4 ms late at the 99th percentile in bench:storage's 256-group scenario. At a
 * higher priority the scheduler lets it preempt them at once: ~2 ms (1.7–2.5) at nice −15 or
 * −20 with 32 rounds in flight, 2.7–3.1 ms (against ~4.2) with the 64 the benchmark keeps since
 * 2026-11-25, with no loss of append throughput (benchmarks/storage/RESULTS.md). etcd's tuning guide gives
 * the same advice for its process. Not a default: with three stores on two cores it cost ~15%
 * of write throughput at 16 active regions, the fsyncs waiting for a core (docs/OPERATIONS.md).
 *
 * Linux nice is per thread, so only the calling thread changes. It must be called once both
 * engines are open: threads started later inherit the priority of the thread that starts them,
 * and RocksDB's background threads must not (the appender threads lower theirs again on start).
 * Raising a priority needs CAP_SYS_NICE, root, or an RLIMIT_NICE of at least 20 + N.
 */
import os from 'node:os';
import { StoreError } from '../errors.ts';

/** The highest `--event-loop-priority`: nice −20, the kernel's highest (config.ts checks the flag against it). */
export const EVENT_LOOP_PRIORITY_MAX = 20;

/** `priority` is the parsed flag, 0..EVENT_LOOP_PRIORITY_MAX. */
export function raiseEventLoopPriority(priority: number, setPriority: (pid: number, nice: number) => void = os.setPriority): void {
  if (priority === 0) return;
  if (process.platform !== 'linux') {
    throw new StoreError('FLOTILLA_STORE_INVALID_CONFIG', `--event-loop-priority ${priority} needs Linux, where a thread's nice is its own (this is ${process.platform})`);
  }
  try {
    setPriority(0, -priority);
  } catch (err) {
    throw new StoreError(
      'FLOTILLA_STORE_INVALID_CONFIG',
      `--event-loop-priority ${priority}: this process may not raise its CPU priority (${(err as Error).message}); ` +
        `it needs CAP_SYS_NICE, root, or an RLIMIT_NICE of at least ${20 + priority} — or run without the flag`,
    );
  }
}
