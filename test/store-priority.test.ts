/**
 * `--event-loop-priority` on a real store process: only the event-loop thread's nice changes.
 * The appender thread, RocksDB's background threads, libuv's pool and V8's helpers keep theirs
 * (the flag is applied once the engines have started their threads), with worker and with inline
 * appenders, also after the store has served writes; a store started without it keeps nice 0.
 *
 * Raising a priority needs CAP_SYS_NICE (or root): elsewhere the test is skipped.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { ProcessCluster, serveWrites } from './support/cluster.ts';

const PRIORITY = 5;

/** The nice value of every thread of a process (field 19 of /proc/PID/task/TID/stat), by thread id. */
function threadNices(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      out.set(Number(tid), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]));
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out;
}

const privileged = process.platform === 'linux' && process.getuid?.() === 0;

describe('--event-loop-priority on a store process', { skip: privileged ? false : 'needs Linux and root (CAP_SYS_NICE) to raise a priority' }, () => {
  const cluster = new ProcessCluster({ tickMs: 50 });
  after(() => cluster.close());

  test('the event-loop thread runs at nice -N, every other thread at its own priority', async () => {
    const raised = await cluster.startStore(1, ['--event-loop-priority', String(PRIORITY)]);
    // Inline appenders open every RocksDB on the event-loop thread, so RocksDB's threads are
    // started from it: they keep nice 0 only if the priority is raised after the engines open.
    const inline = await cluster.startStore(3, ['--event-loop-priority', String(PRIORITY), '--appender', 'inline']);
    const plain = await cluster.startStore(2);
    for (const store of [raised, inline]) {
      const started = store.logs.map((l) => JSON.parse(l) as { msg?: string; eventLoopNice?: number }).find((l) => l.msg === 'store started');
      assert.equal(started?.eventLoopNice, -PRIORITY, `store ${store.id} says so when it starts`);
    }
    // Serve writes first: threads started on demand would show up with the raised priority.
    await serveWrites(cluster, 50);
    for (const store of [raised, inline]) {
      const pid = store.child.pid!;
      const nices = threadNices(pid);
      assert.equal(nices.get(pid), -PRIORITY, `store ${store.id}: the event-loop (main) thread`);
      const others = [...nices].filter(([tid]) => tid !== pid);
      assert.ok(others.length >= 4, `store ${store.id}: RocksDB's, libuv's and V8's threads exist (${others.length})`);
      for (const [tid, nice] of others) assert.ok(nice >= 0, `thread ${tid} of store ${store.id} at nice ${nice}: only the event loop is raised`);
    }
    for (const [tid, nice] of threadNices(plain.child.pid!)) assert.equal(nice, 0, `thread ${tid} of the store without the flag`);
  });
});
