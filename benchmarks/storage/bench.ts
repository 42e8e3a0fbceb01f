/**
 * Storage micro-benchmark: group-committed raft log appends, worker appenders vs inline, next
 * to this machine's raw RocksDB limits measured in the same run.
 *
 *   node --import tsx benchmarks/storage/bench.ts [--quick]
 *
 * Workload ("G groups appending at once"): the way a multi-raft host writes — each turn of the
 * event loop makes ONE write() carrying one 128-byte entry (plus hard state) for each of G
 * groups; up to PIPELINE such rounds may be waiting for durability (the host keeps stepping
 * groups while earlier Readies sync; the engine coalesces waiting rounds into one task).
 * Reported: entries/s, fsyncs/s, p99 latency of a round (write() to durable), and the main
 * thread's event-loop delay p99 (perf_hooks monitorEventLoopDelay) while it runs.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { RocksLevel, type BatchOperation } from '@nxtedition/rocksdb';
import type { Entry } from '@flotilla/raft';
import { RocksLogEngine, isStorageError, limits, type GroupWrite } from '@flotilla/storage';

const quick = process.argv.includes('--quick');
const SECONDS = quick ? 0.8 : 3;
/** JIT of the worker code and the first memtable take a second or two to settle. */
const WARMUP_SECONDS = quick ? 0.5 : 2;
const ENTRY_BYTES = 128;
const PIPELINE = 32;
const GROUP_COUNTS = [1, 16, 256, 4096];

function header(): void {
  const cpus = os.cpus();
  console.log('# Flotilla storage benchmark');
  console.log('');
  console.log(`- date: ${new Date().toISOString()}`);
  console.log(`- command: node --import tsx benchmarks/storage/bench.ts${quick ? ' --quick' : ''}`);
  console.log(`- node: ${process.version} (${process.platform}/${process.arch})`);
  console.log(`- machine: ${cpus.length} x ${cpus[0]?.model ?? 'unknown cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB memory, tmpdir ${os.tmpdir()}`);
  console.log(`- config: ${ENTRY_BYTES}-byte entries, ${SECONDS}s per scenario after ${WARMUP_SECONDS}s warm-up, pipeline ${PIPELINE} rounds, @nxtedition/rocksdb 12.2.12, piscina 5.3.2`);
  console.log('');
}

async function tempDir(name: string): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), `flotilla-bench-${name}-`));
}

function p99(samples: number[]): number {
  if (samples.length === 0) return 0;
  const sorted = Float64Array.from(samples).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!;
}

// ---- raw limits ------------------------------------------------------------------------------

async function rawLimits(): Promise<{ singlePerSec: number; batchEntriesPerSec: number; batchSize: number; shapedPerSec: number }> {
  const dir = await tempDir('raw');
  const db = new RocksLevel(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open({ createIfMissing: true, columns: { default: {}, log: {} }, infoLogLevel: 'error' });
  const column = db.columns['log']!;
  const value = Buffer.alloc(ENTRY_BYTES + 16, 7);
  let key = 0;
  const nextKey = (): Buffer => {
    const k = Buffer.allocUnsafe(16);
    k.writeUInt32BE(0, 0);
    k.writeUInt32BE(0, 4);
    k.writeUInt32BE(Math.floor(key / 2 ** 32), 8);
    k.writeUInt32BE(key++ >>> 0, 12);
    return k;
  };
  try {
    // One entry per synced batch.
    let n = 0;
    let start = performance.now();
    while (performance.now() - start < SECONDS * 1000) {
      await db.batch([{ type: 'put', key: nextKey(), value, column }], { sync: true });
      n++;
    }
    const singlePerSec = n / ((performance.now() - start) / 1000);
    // Large synced batches (batch built fresh each time, as a writer must).
    let best = 0;
    let bestSize = 0;
    for (const size of [1024, 4096, 16384]) {
      let entries = 0;
      start = performance.now();
      while (performance.now() - start < (SECONDS * 1000) / 2) {
        const ops: BatchOperation[] = [];
        for (let i = 0; i < size; i++) ops.push({ type: 'put', key: nextKey(), value, column });
        await db.batch(ops, { sync: true });
        entries += size;
      }
      const rate = entries / ((performance.now() - start) / 1000);
      if (rate > best) {
        best = rate;
        bestSize = size;
      }
    }
    // The same synced batches with keys shaped like the log's: 4,096 entries = 16 rounds of
    // 256 groups, written in key order (what the appender writes; the memtable pays for spread keys).
    const next = new Float64Array(257);
    let shaped = 0;
    start = performance.now();
    while (performance.now() - start < (SECONDS * 1000) / 2) {
      const ops: BatchOperation[] = [];
      for (let g = 1; g <= 256; g++) {
        for (let r = 0; r < 16; r++) {
          const k = Buffer.allocUnsafe(16);
          k.writeUInt32BE(0, 0);
          k.writeUInt32BE(g, 4);
          k.writeUInt32BE(0, 8);
          k.writeUInt32BE(++next[g]!, 12);
          ops.push({ type: 'put', key: k, value, column });
        }
      }
      await db.batch(ops, { sync: true });
      shaped += ops.length;
    }
    const shapedPerSec = shaped / ((performance.now() - start) / 1000);
    return { singlePerSec, batchEntriesPerSec: best, batchSize: bestSize, shapedPerSec };
  } finally {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  }
}

// ---- engine scenarios -------------------------------------------------------------------------

interface ScenarioResult {
  mode: string;
  shards: number;
  groups: number;
  entriesPerSec: number;
  fsyncsPerSec: number;
  latencyMsP99: number;
  loopDelayMsP99: number;
  queueFull: number;
}

async function scenario(mode: 'worker' | 'inline', shards: number, groups: number): Promise<ScenarioResult> {
  const dir = await tempDir(`${mode}-${groups}`);
  const engine = await RocksLogEngine.open({ dir, mode, shards });
  const data = new Uint8Array(ENTRY_BYTES).fill(42);
  const last = new Float64Array(groups + 1);
  const latencies: number[] = [];
  let entries = 0;
  let queueFull = 0;
  let stop = false;
  const round = (): GroupWrite[] => {
    const writes: GroupWrite[] = [];
    for (let g = 1; g <= groups; g++) {
      const index = ++last[g]!;
      const e: Entry = { index, term: 1, type: 'normal', data };
      writes.push({ groupId: g, entries: [e], hardState: { term: 1, vote: 1, commit: index - 1 } });
    }
    return writes;
  };
  // The host's loop: one round (one write() for all groups) per event-loop turn, at most
  // PIPELINE rounds not yet durable; when that many are pending, wait for the oldest.
  async function submit(): Promise<void> {
    const writes = round();
    const t0 = performance.now();
    try {
      await engine.write(writes);
    } catch (err) {
      if (!isStorageError(err, 'FLOTILLA_STORAGE_QUEUE_FULL')) throw err;
      // Rejected before anything changed: roll the indexes back and wait for room.
      for (let g = 1; g <= groups; g++) last[g]!--;
      queueFull++;
      await engine.writable();
      return;
    }
    latencies.push(performance.now() - t0);
    entries += groups;
  }
  async function driver(): Promise<void> {
    const pending: Promise<void>[] = [];
    while (!stop) {
      if (pending.length >= PIPELINE) await pending.shift();
      pending.push(submit());
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    await Promise.all(pending);
  }
  // Warm-up, then measure.
  stop = false;
  const warm = driver();
  await new Promise((resolve) => setTimeout(resolve, WARMUP_SECONDS * 1000));
  stop = true;
  await warm;
  latencies.length = 0;
  entries = 0;
  stop = false;
  const syncsBefore = engine.stats().syncs;
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const start = performance.now();
  const running = driver();
  await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
  stop = true;
  await running;
  const seconds = (performance.now() - start) / 1000;
  delay.disable();
  const syncs = engine.stats().syncs - syncsBefore;
  await engine.close();
  await rm(dir, { recursive: true, force: true });
  return {
    mode,
    shards,
    groups,
    entriesPerSec: entries / seconds,
    fsyncsPerSec: syncs / seconds,
    latencyMsP99: p99(latencies),
    loopDelayMsP99: delay.percentile(99) / 1e6,
    queueFull,
  };
}

const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

header();
const raw = await rawLimits();
console.log('## Raw limits of this machine (RocksDB on the main thread, same run)');
console.log('');
console.log(`- single-entry synced batches: ${fmt(raw.singlePerSec)} /s (= entries/s with one fsync per entry)`);
console.log(`- largest-batch synced throughput: ${fmt(raw.batchEntriesPerSec)} entries/s (best of 1,024 / 4,096 / 16,384-entry batches of sequential keys: ${fmt(raw.batchSize)})`);
console.log(`- the same with log-shaped keys (4,096-entry batches over 256 groups, key order): ${fmt(raw.shapedPerSec)} entries/s`);
console.log('');

const results: ScenarioResult[] = [];
const plan: Array<['worker' | 'inline', number, number]> = [];
const defaultShards: number = limits.appenderShardsDefault;
for (const groups of GROUP_COUNTS) plan.push(['worker', defaultShards, groups], ['inline', 1, groups]);
if (defaultShards !== 1) plan.push(['worker', 1, 256], ['worker', 1, 4096]);
console.log('## Appends: G groups at once (one write() per event-loop turn, one 128-byte entry per group, <= 32 rounds pending)');
console.log('');
console.log('| appender | shards | groups | entries/s | fsyncs/s | p99 round latency ms | event-loop delay p99 ms | % of raw batch (seq / log-shaped) | x one-fsync-per-entry |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const [mode, shards, groups] of plan) {
  const r = await scenario(mode, shards, groups);
  results.push(r);
  console.log(
    `| ${r.mode} | ${r.shards} | ${fmt(r.groups)} | ${fmt(r.entriesPerSec)} | ${fmt(r.fsyncsPerSec)} | ${fmt(r.latencyMsP99, 2)} | ${fmt(r.loopDelayMsP99, 2)} | ${fmt((100 * r.entriesPerSec) / raw.batchEntriesPerSec)}% / ${fmt((100 * r.entriesPerSec) / raw.shapedPerSec)}% | ${fmt(r.entriesPerSec / raw.singlePerSec, 1)}x |`,
  );
}
console.log('');
const w256 = results.find((r) => r.mode === 'worker' && r.shards === defaultShards && r.groups === 256)!;
const check = (ok: boolean): string => (ok ? 'MET' : 'NOT MET');
console.log(`## Targets (worker appenders, default ${defaultShards} shards, 256 groups)`);
console.log('');
console.log(`- >= 80% of raw largest-batch throughput: ${fmt((100 * w256.entriesPerSec) / raw.batchEntriesPerSec)}% of sequential-key batches — ${check(w256.entriesPerSec >= 0.8 * raw.batchEntriesPerSec)}; ${fmt((100 * w256.entriesPerSec) / raw.shapedPerSec)}% of log-shaped batches — ${check(w256.entriesPerSec >= 0.8 * raw.shapedPerSec)}`);
console.log(`- group commit >= 50x one-fsync-per-entry: ${fmt(w256.entriesPerSec / raw.singlePerSec, 1)}x — ${check(w256.entriesPerSec >= 50 * raw.singlePerSec)}`);
console.log(`- main-thread event-loop delay p99 < 2 ms at full speed: ${fmt(w256.loopDelayMsP99, 2)} ms — ${check(w256.loopDelayMsP99 < 2)}`);
