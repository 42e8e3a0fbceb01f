/**
 * `flotilla dev` when one of its processes dies: a store SIGKILLed under it makes dev report
 * which one (one line, exit code 3), stop every other process, and keep the data folder given
 * with --data-dir; dev itself SIGKILLed leaves no orphan (each child watches its IPC channel).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { DevProcess, killEverything, processesMentioning } from '../packages/cli/test/cli-process.ts';
import { waitFor } from './support/cluster.ts';

const READY_DEADLINE_MS = 45_000;
const STOP_DEADLINE_MS = 20_000;

describe('flotilla dev when a process dies', () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'flotilla-cli-test-'));
  const orphanDir = mkdtempSync(path.join(os.tmpdir(), 'flotilla-cli-test-'));
  after(() => {
    for (const dir of [dataDir, orphanDir]) {
      killEverything(dir);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('SIGKILLed itself, leaves no process behind: each child stops once its lifeline closes', async () => {
    const dev = DevProcess.start(['--pd-listen', '127.0.0.1:0', '--data-dir', orphanDir]);
    await dev.line(/^ready$/, READY_DEADLINE_MS);
    const children = processesMentioning(orphanDir).filter((p) => p !== dev.child.pid);
    assert.equal(children.length, 4, 'PD and 3 stores');
    dev.child.kill('SIGKILL');
    await dev.exited;
    // Exited (an orphan's exit status waits for whoever adopts it: it may stay a zombie a while).
    await waitFor('every child of the killed flotilla dev to exit', () => processesMentioning(orphanDir).length === 0, STOP_DEADLINE_MS);
  });

  it('reports the dead store in one line, stops the rest and exits 3', async () => {
    const dev = DevProcess.start(['--pd-listen', '127.0.0.1:0', '--data-dir', dataDir]);
    await dev.line(/^ready$/, READY_DEADLINE_MS);
    const [, storeId, pid] = await dev.line(/^store (\d+): http:\S+ \(raft \S+, pid (\d+)\)$/, 1_000);
    assert.equal(processesMentioning(dataDir).filter((p) => p !== dev.child.pid).length, 4, 'PD and 3 stores');
    process.kill(Number(pid), 'SIGKILL');
    const exit = await Promise.race([dev.exited, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('flotilla dev did not stop')), STOP_DEADLINE_MS).unref())]);
    assert.deepEqual(exit, { code: 3, signal: null }, dev.stderr.join('\n'));
    const errors = dev.stderr.filter((l) => l.startsWith('flotilla: error: '));
    assert.equal(errors.length, 1, dev.stderr.join('\n'));
    assert.match(errors[0]!, /^flotilla: error: store-\d exited on its own \(SIGKILL\): .* \(log: .*store-\d\.log\)$/);
    assert.ok(storeId);
    assert.deepEqual(processesMentioning(dataDir), [], 'every other process was stopped');
    assert.ok(existsSync(path.join(dataDir, 'pd')), 'the data given with --data-dir is kept');
    assert.match(dev.stderr.at(-1)!, /stopped; data and logs kept in /);
  });
});
