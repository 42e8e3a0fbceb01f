/**
 * How the main thread reaches a log shard: through a piscina worker that owns the shard's
 * RocksDB (worker mode: the main thread never waits on an fsync), or by calling the shard
 * directly (inline mode: the synced batch write stalls the event loop; for comparison and
 * tiny deployments). Both behind one interface.
 */
import { Piscina } from 'piscina';
import { appendTasksInflightPerShardMax, logFetchesInflightMax } from './constants.ts';
import { LogShard, type ShardRecovery, type ShardStats } from './log-shard.ts';
import type { ShardRequest } from './log-worker.ts';

export type AppenderMode = 'worker' | 'inline';

export interface ShardClient {
  recover(): Promise<ShardRecovery>;
  /** Resolves once the task's batch is durable (one sync). The chunks' buffers are transferred. */
  append(seq: number, chunks: readonly Uint8Array[]): Promise<void>;
  read(groupId: number, lo: number, hi: number, maxBytes: number): Promise<Uint8Array>;
  stats(): Promise<ShardStats>;
  close(): Promise<void>;
}

export class InlineShardClient implements ShardClient {
  private constructor(private readonly shard: LogShard) {}

  static async open(path: string): Promise<InlineShardClient> {
    return new InlineShardClient(await LogShard.open(path));
  }

  recover(): Promise<ShardRecovery> {
    return this.shard.recover();
  }

  append(seq: number, chunks: readonly Uint8Array[]): Promise<void> {
    return this.shard.append(seq, chunks);
  }

  read(groupId: number, lo: number, hi: number, maxBytes: number): Promise<Uint8Array> {
    return this.shard.read(groupId, lo, hi, maxBytes);
  }

  async stats(): Promise<ShardStats> {
    return this.shard.stats();
  }

  close(): Promise<void> {
    return this.shard.close();
  }
}

const WORKER_URL = new URL('./log-worker.ts', import.meta.url).href;

/** Worker threads must load TypeScript too: keep tsx in their execArgv even if the parent lost it. */
function workerExecArgv(): string[] {
  const argv = [...process.execArgv];
  const hasTsx = argv.some((a, i) => (a === '--import' || a === '--loader') && argv[i + 1]?.includes('tsx')) || argv.some((a) => a.startsWith('--import=tsx'));
  if (!hasTsx) argv.push('--import', 'tsx');
  return argv;
}

export class WorkerShardClient implements ShardClient {
  private constructor(private readonly pool: Piscina) {}

  /** `nice`: CPU priority of the appender thread (Linux; see log-worker.ts). */
  static async open(path: string, nice: number): Promise<WorkerShardClient> {
    const pool = new Piscina({
      filename: WORKER_URL,
      name: 'default',
      minThreads: 1,
      maxThreads: 1,
      idleTimeout: Infinity,
      concurrentTasksPerWorker: 1,
      // Without it piscina does not run tasks in submission order.
      stricterFIFO: true,
      // The shard keeps no timers, but 'sync' would freeze the worker's loop between tasks,
      // delaying the RocksDB callbacks of a close; 'disabled' costs nothing measurable here.
      atomics: 'disabled',
      maxQueue: appendTasksInflightPerShardMax + logFetchesInflightMax + 8,
      execArgv: workerExecArgv(),
    });
    const client = new WorkerShardClient(pool);
    try {
      await client.call({ op: 'open', path, nice });
    } catch (err) {
      await pool.destroy();
      throw err;
    }
    return client;
  }

  private call(request: ShardRequest, transferList?: ArrayBuffer[]): Promise<unknown> {
    return transferList === undefined ? this.pool.run(request) : this.pool.run(request, { transferList });
  }

  async recover(): Promise<ShardRecovery> {
    return (await this.call({ op: 'recover' })) as ShardRecovery;
  }

  async append(seq: number, chunks: readonly Uint8Array[]): Promise<void> {
    await this.call(
      { op: 'append', seq, chunks },
      chunks.map((c) => c.buffer as ArrayBuffer),
    );
  }

  async read(groupId: number, lo: number, hi: number, maxBytes: number): Promise<Uint8Array> {
    return (await this.call({ op: 'read', groupId, lo, hi, maxBytes })) as Uint8Array;
  }

  async stats(): Promise<ShardStats> {
    return (await this.call({ op: 'stats' })) as ShardStats;
  }

  async close(): Promise<void> {
    try {
      await this.call({ op: 'close' });
    } finally {
      await this.pool.destroy();
    }
  }
}

export function openShardClient(mode: AppenderMode, path: string, nice: number): Promise<ShardClient> {
  // Inline shards run on the caller's thread: its priority is the host's business.
  return mode === 'worker' ? WorkerShardClient.open(path, nice) : InlineShardClient.open(path);
}
