/**
 * Piscina worker of one log shard: owns the shard's RocksDB for the worker's whole life.
 * Requests arrive in submission order (the pool runs one thread, one task at a time, with
 * stricterFIFO); the shard additionally asserts the sequence number of every append task.
 */
import os from 'node:os';
import { move } from 'piscina';
import { assert } from './errors.ts';
import { LogShard, type ShardRecovery, type ShardStats } from './log-shard.ts';

export type ShardRequest =
  | { readonly op: 'open'; readonly path: string; readonly nice: number }
  | { readonly op: 'recover' }
  | { readonly op: 'append'; readonly seq: number; readonly chunks: readonly Uint8Array[] }
  | { readonly op: 'read'; readonly groupId: number; readonly lo: number; readonly hi: number; readonly maxBytes: number }
  | { readonly op: 'stats' }
  | { readonly op: 'close' };

export type ShardResponse = null | ShardRecovery | ShardStats | Uint8Array;

let shard: LogShard | null = null;

function owned(): LogShard {
  assert(shard !== null, 'shard opened in this worker');
  return shard;
}

/**
 * Lowers this thread's CPU priority (Linux nice is per thread; elsewhere setpriority would lower
 * the whole process, main thread included, so it is skipped). Done before the DB opens, so the
 * RocksDB background threads that open starts inherit it (RocksDB's thread pool is per process:
 * threads an earlier open on the main thread started keep the main thread's priority). The
 * appender threads do throughput work; the main thread, whose event loop the Raft core runs on,
 * then wins the CPU when both want it. Never raises a priority the process was started with.
 */
function lowerPriority(nice: number): void {
  if (process.platform !== 'linux') return;
  const target = Math.max(nice, os.getPriority(0));
  os.setPriority(0, target);
  assert(os.getPriority(0) === target, `appender thread runs at nice ${target}`);
}

export default async function handle(request: ShardRequest): Promise<unknown> {
  switch (request.op) {
    case 'open':
      assert(shard === null, 'one shard per worker');
      lowerPriority(request.nice);
      shard = await LogShard.open(request.path);
      return null;
    case 'recover':
      return owned().recover();
    case 'append':
      await owned().append(request.seq, request.chunks);
      return null;
    case 'read':
      return move(await owned().read(request.groupId, request.lo, request.hi, request.maxBytes));
    case 'stats':
      return owned().stats();
    case 'close': {
      const s = owned();
      shard = null;
      await s.close();
      return null;
    }
  }
}
