/**
 * Raw RocksDB limits of the machine, without any Flotilla code: synced batches of prebuilt
 * 128-byte entries written by one thread (or by two threads, each on its own DB — the machine's
 * parallel ceiling for two appender shards). Used by bench.ts; also a worker-thread entry point.
 *
 * To stay an honest ceiling, every measurement runs with each RocksDB configuration — the
 * binding's defaults and the log shard's own options (log-shard.ts) — and keeps the best.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Worker, parentPort, workerData } from 'node:worker_threads';
import { RocksLevel, type BatchOperation, type ColumnOptions, type OpenOptions } from '@nxtedition/rocksdb';

/** A raw measurement: entries/s, and CPU µs per entry of the whole process (RocksDB's threads included). */
export interface RawRate {
  readonly perSec: number;
  readonly cpuUsPerEntry: number;
}

function rate(entries: number, startMs: number, cpu: NodeJS.CpuUsage): RawRate {
  const used = process.cpuUsage(cpu);
  return { perSec: entries / ((performance.now() - startMs) / 1000), cpuUsPerEntry: entries === 0 ? 0 : (used.user + used.system) / entries };
}

export interface RawConfig {
  readonly name: string;
  readonly open: OpenOptions;
}

/** The configurations raw measurements try; keep the second in step with LogShard.open. */
export const RAW_CONFIGS: readonly RawConfig[] = [
  { name: 'binding defaults', open: { columns: { default: {}, log: {} } } },
  {
    name: 'log shard options',
    open: {
      columns: { default: {}, log: { compression: false, compaction: 'universal', filterPolicy: 'nullptr' } satisfies ColumnOptions },
      walCompression: false,
    },
  },
];

export class RawDb {
  private key = 0;
  private constructor(
    private readonly db: RocksLevel,
    private readonly dir: string,
  ) {}

  static async open(config: RawConfig): Promise<RawDb> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'flotilla-bench-raw-'));
    const db = new RocksLevel(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await db.open({ ...config.open, createIfMissing: true, infoLogLevel: 'error' });
    return new RawDb(db, dir);
  }

  private nextKey(group: number): Buffer {
    const k = Buffer.allocUnsafe(16);
    k.writeUInt32BE(0, 0);
    k.writeUInt32BE(group, 4);
    k.writeUInt32BE(Math.floor(this.key / 2 ** 32), 8);
    k.writeUInt32BE(this.key++ >>> 0, 12);
    return k;
  }

  /** Synced batches of `size` entries (sequential keys) for `ms` milliseconds. */
  async batches(size: number, ms: number, value: Buffer): Promise<RawRate> {
    const column = this.db.columns['log']!;
    let entries = 0;
    const cpu = process.cpuUsage();
    const start = performance.now();
    while (performance.now() - start < ms) {
      // Built fresh each time, as a writer must.
      const ops: BatchOperation[] = [];
      for (let i = 0; i < size; i++) ops.push({ type: 'put', key: this.nextKey(0), value, column });
      await this.db.batch(ops, { sync: true });
      entries += size;
    }
    return rate(entries, start, cpu);
  }

  /**
   * The same shaped like the log's records: `groups` groups x `perGroup` entries per batch, each
   * group's entries one key (a pack: 16 header bytes per entry, as log-format.ts), in key order.
   */
  async shaped(groups: number, perGroup: number, ms: number, value: Buffer): Promise<RawRate> {
    const column = this.db.columns['log']!;
    const pack = Buffer.alloc(16 + perGroup * (16 + value.byteLength), 7);
    const next = new Float64Array(groups + 1);
    let entries = 0;
    const cpu = process.cpuUsage();
    const start = performance.now();
    while (performance.now() - start < ms) {
      const ops: BatchOperation[] = [];
      for (let g = 1; g <= groups; g++) {
        const k = Buffer.allocUnsafe(16);
        k.writeUInt32BE(0, 0);
        k.writeUInt32BE(g, 4);
        k.writeUInt32BE(0, 8);
        k.writeUInt32BE(next[g]! + 1, 12);
        next[g] = next[g]! + perGroup;
        ops.push({ type: 'put', key: k, value: pack, column });
      }
      await this.db.batch(ops, { sync: true });
      entries += groups * perGroup;
    }
    return rate(entries, start, cpu);
  }

  async close(): Promise<void> {
    await this.db.close();
    await rm(this.dir, { recursive: true, force: true });
  }
}

interface WriterJob {
  readonly config: RawConfig;
  readonly size: number;
  readonly ms: number;
  readonly valueBytes: number;
}

const WRITER_ENTRY = new URL('./raw-worker.cjs', import.meta.url);

/** Two threads, each writing synced batches to its own DB at the same time; total entries/s. */
export async function twoWriters(config: RawConfig, size: number, ms: number, valueBytes: number): Promise<number> {
  const job: WriterJob = { config, size, ms, valueBytes };
  const rates = await Promise.all(
    [0, 1].map(
      () =>
        new Promise<number>((resolve, reject) => {
          const w = new Worker(WRITER_ENTRY, { workerData: job });
          w.once('message', (rate: number) => resolve(rate));
          w.once('error', reject);
        }),
    ),
  );
  return rates[0]! + rates[1]!;
}

/** The body of a writer thread of twoWriters(). */
export async function runWriterThread(): Promise<void> {
  const job = workerData as WriterJob;
  const db = await RawDb.open(job.config);
  const value = Buffer.alloc(job.valueBytes, 7);
  await db.batches(job.size, 300, value); // warm-up
  const measured = await db.batches(job.size, job.ms, value);
  await db.close();
  parentPort?.postMessage(measured.perSec);
}
