/**
 * How the main thread reaches a log shard: through a piscina worker that owns the shard's
 * RocksDB (worker mode: the main thread never waits on an fsync), or by calling the shard
 * directly (inline mode: the synced batch write stalls the event loop; for comparison and
 * tiny deployments). Both behind one interface.
 *
 * Worker mode streams append tasks over a dedicated MessagePort instead of one piscina task
 * each: the main thread posts every sealed task at once (up to one task's worth in flight, see
 * log-lane.ts), and the worker, whenever its previous batch is durable, writes EVERYTHING that
 * arrived meanwhile as one batch with one sync (group commit on the consumer's side). The
 * worker never waits for the main thread to notice an ack and hand over the next task, which
 * cost each shard ~18% of its time (~1.9 ms per batch: the ack's trip, the event loop's turn,
 * and the wake-up of a nice-10 thread; benchmarks/storage/RESULTS.md). Open, recovery, reads,
 * stats and close stay piscina tasks.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { appendTasksInflightPerShardMax, appendTasksInflightPerWorkerMax, logFetchesInflightMax } from './constants.ts';
import { StorageError } from './errors.ts';
import { LogShard, type ShardRecovery, type ShardStats } from './log-shard.ts';
import type { AppendAck, AppendMessage, ShardRequest } from './log-worker.ts';

export type AppenderMode = 'worker' | 'inline';

export interface ShardClient {
  /**
   * Tasks that may be in flight (submitted, not yet durable) at once: 1 inline; in worker mode
   * more, bounded together by one task's worth of entries, bytes and pieces (log-lane.ts).
   */
  readonly tasksInflightMax: number;
  /** Synced batches written so far (in worker mode one batch may carry several tasks). */
  readonly syncs: number;
  recover(): Promise<ShardRecovery>;
  /**
   * Resolves once the task is durable: written in one batch with one sync, possibly together
   * with the tasks submitted right before or after it. `alone`: the task must end its batch (it
   * destroys a group, whose range delete must not meet later writes). `sync` false: resolves
   * once written; the batch syncs only if one of its tasks asks to (LogWriteOptions). The
   * chunks' buffers are transferred.
   */
  append(seq: number, chunks: readonly Uint8Array[], alone: boolean, sync: boolean): Promise<void>;
  read(groupId: number, lo: number, hi: number, maxBytes: number): Promise<Uint8Array>;
  stats(): Promise<ShardStats>;
  close(): Promise<void>;
}

export class InlineShardClient implements ShardClient {
  readonly tasksInflightMax = appendTasksInflightPerShardMax;
  syncs = 0;

  private constructor(private readonly shard: LogShard) {}

  static async open(path: string): Promise<InlineShardClient> {
    return new InlineShardClient(await LogShard.open(path));
  }

  recover(): Promise<ShardRecovery> {
    return this.shard.recover();
  }

  async append(seq: number, chunks: readonly Uint8Array[], _alone: boolean, sync: boolean): Promise<void> {
    await this.shard.append(seq, chunks, seq, sync);
    if (sync) this.syncs++;
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

/** A task posted to the worker, waiting for its batch to be durable. */
interface Waiting {
  readonly seq: number;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

export class WorkerShardClient implements ShardClient {
  readonly tasksInflightMax = appendTasksInflightPerWorkerMax;
  syncs = 0;
  /** Posted tasks not yet durable, in submission order. */
  private readonly waiting: Waiting[] = [];
  private waitingHead = 0;
  private failure: unknown = null;

  private constructor(
    private readonly pool: Piscina,
    private readonly port: MessagePort,
  ) {
    port.on('message', (ack: AppendAck) => this.onAck(ack));
    // The worker's end closes only when the worker exits: whatever is still in flight is lost.
    port.on('close', () => {
      if (this.failure === null && this.waiting.length > this.waitingHead) this.onAck({ seq: 0, failed: { message: 'the appender worker exited with appends in flight' } });
    });
    // Referenced only while tasks are in flight (as piscina does with its tasks).
    port.unref();
  }

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
      // The worker's event loop must run between its tasks: appends arrive on their own port.
      atomics: 'disabled',
      maxQueue: logFetchesInflightMax + 8,
      execArgv: workerExecArgv(),
    });
    const { port1, port2 } = new MessageChannel();
    try {
      await pool.run({ op: 'open', path, nice, port: port2 } satisfies ShardRequest, { transferList: [port2] });
    } catch (err) {
      port1.close();
      await pool.destroy();
      throw err;
    }
    return new WorkerShardClient(pool, port1);
  }

  private call(request: ShardRequest): Promise<unknown> {
    return this.pool.run(request);
  }

  async recover(): Promise<ShardRecovery> {
    return (await this.call({ op: 'recover' })) as ShardRecovery;
  }

  append(seq: number, chunks: readonly Uint8Array[], alone: boolean, sync: boolean): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure);
    return new Promise<void>((resolve, reject) => {
      if (this.waiting.length === this.waitingHead) this.port.ref();
      this.waiting.push({ seq, resolve, reject });
      const message: AppendMessage = { seq, chunks, alone, sync };
      this.port.postMessage(
        message,
        chunks.map((c) => c.buffer as ArrayBuffer),
      );
    });
  }

  /** The worker wrote every task up to `ack.seq` (with one sync if one of them asked), or failed. */
  private onAck(ack: AppendAck): void {
    if (ack.failed !== undefined) {
      const f = ack.failed;
      this.failure = f.code !== undefined && f.code.startsWith('FLOTILLA_STORAGE_') ? new StorageError(f.code as StorageError['code'], f.message) : Object.assign(new Error(f.message), f.code === undefined ? {} : { code: f.code });
      for (let i = this.waitingHead; i < this.waiting.length; i++) this.waiting[i]!.reject(this.failure);
      this.waiting.length = 0;
      this.waitingHead = 0;
      this.port.unref();
      return;
    }
    if (ack.synced === true) this.syncs++;
    const waiting = this.waiting;
    let head = this.waitingHead;
    while (head < waiting.length && waiting[head]!.seq <= ack.seq) waiting[head++]!.resolve();
    if (head === waiting.length) {
      waiting.length = 0;
      head = 0;
      this.port.unref();
    } else if (head > 1024) {
      waiting.splice(0, head);
      head = 0;
    }
    this.waitingHead = head;
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
      this.port.close();
      await this.pool.destroy();
    }
  }
}

export function openShardClient(mode: AppenderMode, path: string, nice: number): Promise<ShardClient> {
  // Inline shards run on the caller's thread: its priority is the host's business.
  return mode === 'worker' ? WorkerShardClient.open(path, nice) : InlineShardClient.open(path);
}
