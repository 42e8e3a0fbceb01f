/**
 * Crash tests with real processes. A child (fixtures/crash-child.ts) appends to the raft logs
 * of 12 groups, applies durable entries to the KV engine, syncs it and compacts the logs now and
 * then, and reports every acknowledged write. The parent SIGKILLs it once a random number
 * (20..150) of writes were acknowledged, reopens both engines and checks:
 *  - log: every acknowledged entry is there, in order, contiguous, with its exact payload;
 *  - KV: data and applied index agree (the sum of applied indexes is exact: nothing lost,
 *    nothing applied twice), the applied index is not below what was reported durable;
 *  - both: the log still holds every entry above the KV engine's applied index.
 * Cycles alternate worker and inline appenders over the same directories; the seed is printed.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { RocksKvEngine, RocksLogEngine } from '../src/index.ts';
import { GROUPS, entryData, slotKey, sumKey } from './fixtures/crash-shared.ts';
import { Prng, tempDir } from './helpers.ts';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'crash-child.ts');
const CYCLES = Number(process.env['FLOTILLA_CRASH_CYCLES'] ?? 50);

interface CycleReport {
  acked: Map<number, number>;
  durable: Map<number, number>;
  acks: number;
}

const CHILD_DEADLINE_MS = 120_000;

/** Runs the child until `killAfterAcks` acknowledgements, then SIGKILLs it. */
function runChild(logDir: string, kvDir: string, mode: string, seed: number, killAfterAcks: number, report: CycleReport): Promise<void> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', CHILD, logDir, kvDir, mode, String(seed)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let buffer = '';
    let killed = false;
    // A deadline against a hung child, not a speed check: starting tsx and RocksDB on a
    // loaded 2-core machine has taken over 20 s.
    const deadline = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child did not reach ${killAfterAcks} acks in ${CHILD_DEADLINE_MS} ms; stderr: ${stderr}`));
    }, CHILD_DEADLINE_MS);
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.stdout!.on('data', (d: Buffer) => {
      buffer += d.toString();
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (killed) continue;
        const [kind, body] = line.split(' ');
        if (kind === 'A' || kind === 'D') {
          const into = kind === 'A' ? report.acked : report.durable;
          for (const pair of body!.split(',')) {
            const [g, n] = pair.split(':').map(Number);
            into.set(g!, Math.max(into.get(g!) ?? 0, n!));
          }
          if (kind === 'A' && ++report.acks >= killAfterAcks) {
            killed = true;
            child.kill('SIGKILL');
          }
        }
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(deadline);
      if (killed && signal === 'SIGKILL') resolve();
      else reject(new Error(`child exited by itself (code ${code}, signal ${signal}); stderr: ${stderr}`));
    });
  });
}

describe('crash: SIGKILL while appending and applying', () => {
  it(`loses no acknowledged write and applies none twice over ${CYCLES} kills`, { timeout: 420_000 }, async (t) => {
    const seed = Number(process.env['FLOTILLA_SEED'] ?? Date.now() % 1_000_000);
    t.diagnostic(`seed ${seed} (replay with FLOTILLA_SEED=${seed})`);
    const rng = new Prng(seed);
    const tmp = await tempDir('crash');
    const logDir = path.join(tmp.dir, 'log');
    const kvDir = path.join(tmp.dir, 'kv');
    // Everything ever acknowledged / reported durable, over all cycles.
    const acked = new Map<number, number>();
    const durable = new Map<number, number>();
    try {
      for (let cycle = 0; cycle < CYCLES; cycle++) {
        const mode = cycle % 2 === 0 ? 'worker' : 'inline';
        const report: CycleReport = { acked: new Map(), durable: new Map(), acks: 0 };
        const killAfter = rng.int(20, 150);
        await runChild(logDir, kvDir, mode, seed * 1000 + cycle, killAfter, report);
        for (const [g, n] of report.acked) acked.set(g, Math.max(acked.get(g) ?? 0, n));
        for (const [g, n] of report.durable) durable.set(g, Math.max(durable.get(g) ?? 0, n));
        const where = `seed ${seed} cycle ${cycle} (${mode}, killed after ${killAfter} acks)`;

        const log = await RocksLogEngine.open({ dir: logDir, mode: 'inline' });
        const kv = await RocksKvEngine.open({ dir: kvDir });
        try {
          assert.deepEqual(log.recovery.cut, [], `${where}: nothing to cut after a crash`);
          for (let g = 1; g <= GROUPS; g++) {
            const view = log.group(g);
            const last = view.lastIndex();
            assert.ok(last >= (acked.get(g) ?? 0), `${where}: group ${g} lost acknowledged entries (last ${last} < acked ${acked.get(g)})`);
            if (last >= view.firstIndex()) {
              const entries = await log.loadEntries(g, view.firstIndex(), last + 1, Number.MAX_SAFE_INTEGER);
              assert.equal(entries.length, last - view.firstIndex() + 1, `${where}: group ${g} log is contiguous`);
              let prevTerm = view.term(view.firstIndex() - 1);
              for (const [k, e] of entries.entries()) {
                assert.equal(e.index, view.firstIndex() + k, where);
                assert.ok(e.term >= prevTerm, `${where}: terms never decrease`);
                prevTerm = e.term;
                assert.deepEqual([...e.data], [...entryData(g, e.index)], `${where}: payload of ${g}/${e.index}`);
              }
            }
            const state = kv.region(g);
            const applied = state?.appliedIndex ?? 0;
            assert.ok(applied >= (durable.get(g) ?? 0), `${where}: region ${g} applied ${applied} below reported durable ${durable.get(g)}`);
            assert.ok(applied <= last, `${where}: region ${g} applied ${applied} beyond the log ${last}`);
            assert.ok(view.firstIndex() <= applied + 1, `${where}: group ${g} compacted past the applied index ${applied} (first ${view.firstIndex()})`);
            // Data and applied index agree: exactly entries 1..applied, once each.
            const sum = await kv.get(sumKey(g));
            assert.equal(sum === null ? 0 : Number(new TextDecoder().decode(sum)), (applied * (applied + 1)) / 2, `${where}: region ${g} sum`);
            for (let slot = 0; slot < 10; slot++) {
              const want = applied >= slot && applied > 0 ? applied - ((applied - slot + 10) % 10) : 0;
              const got = await kv.get(slotKey(g, slot));
              assert.equal(got === null ? 0 : Number(new TextDecoder().decode(got)), want >= 1 ? want : 0, `${where}: region ${g} slot ${slot}`);
            }
          }
        } finally {
          await log.close();
          await kv.close();
        }
      }
    } finally {
      await tmp.remove();
    }
  });
});
