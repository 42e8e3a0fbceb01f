/**
 * `--event-loop-slice-us` and `--serial-scavenges` on a real store process: the event-loop
 * thread's scheduler slice is the one asked for (with its nice kept when
 * `--event-loop-priority` raised it), every other thread keeps the kernel's default slice, the
 * store says so when it starts, and it serves writes; a store started without them is untouched.
 *
 * Custom slices need Linux 6.12 or later on x64/arm64 and perl; elsewhere the test is skipped
 * (the store then refuses the flag with a typed error, unit-tested in process-config.test.ts).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { after, describe, test } from 'node:test';
import { sliceOf } from '../packages/store/src/process/event-loop-slice.ts';
import { ProcessCluster, serveWrites } from './support/cluster.ts';

const SLICE_US = 200;

/** Each thread's scheduler slice in ns (se.slice of /proc/PID/task/TID/sched), by thread id. */
function threadSlices(pid: number): Map<number, number | undefined> {
  const out = new Map<number, number | undefined>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      out.set(Number(tid), sliceOf(readFileSync(`/proc/${pid}/task/${tid}/sched`, 'utf8')));
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out;
}

/** Why this machine cannot run the test, or null. */
function unsupported(): string | null {
  if (process.platform !== 'linux' || !['x64', 'arm64'].includes(process.arch)) return 'needs Linux on x64 or arm64';
  const [major = 0, minor = 0] = os.release().split('.').map((n) => Number.parseInt(n, 10));
  if (major < 6 || (major === 6 && minor < 12)) return `needs Linux 6.12+ for custom slices (this is ${os.release()})`;
  if (spawnSync('perl', ['-e', '1']).status !== 0) return 'needs perl';
  return null;
}

const privileged = process.getuid?.() === 0;

describe('--event-loop-slice-us and --serial-scavenges on a store process', { skip: unsupported() ?? false }, () => {
  const cluster = new ProcessCluster({ tickMs: 50 });
  after(() => cluster.close());

  test('the event-loop thread runs with the slice asked for, every other thread with the default', async () => {
    const defaultSlice = sliceOf(readFileSync(`/proc/${process.pid}/sched`, 'utf8'));
    assert.ok(defaultSlice !== undefined && defaultSlice !== SLICE_US * 1000, `this test's own slice (${defaultSlice}) is the default`);
    // With a raised priority too where this process may: the slice must keep the nice.
    const raise = privileged ? ['--event-loop-priority', '5'] : [];
    const sliced = await cluster.startStore(1, ['--event-loop-slice-us', String(SLICE_US), '--serial-scavenges', 'on', ...raise]);
    const plain = await cluster.startStore(2);
    const started = sliced.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'store started');
    assert.equal(started?.eventLoopSliceUs, SLICE_US, 'the store says so when it starts');
    assert.equal(started?.serialScavenges, true);
    if (privileged) assert.equal(started?.eventLoopNice, -5, 'the slice kept the raised nice');
    // Serve writes first: threads started on demand must not take the slice either.
    await serveWrites(cluster, 50);
    const pid = sliced.child.pid!;
    const slices = threadSlices(pid);
    assert.equal(slices.get(pid), SLICE_US * 1000, 'the event-loop (main) thread');
    const others = [...slices].filter(([tid]) => tid !== pid);
    assert.ok(others.length >= 4, `RocksDB's, libuv's and V8's threads exist (${others.length})`);
    for (const [tid, slice] of others) assert.equal(slice, defaultSlice, `thread ${tid}: only the event loop has the short slice`);
    for (const [tid, slice] of threadSlices(plain.child.pid!)) assert.equal(slice, defaultSlice, `thread ${tid} of the store without the flag`);
  });
});
