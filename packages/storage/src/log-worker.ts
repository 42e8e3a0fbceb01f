/**
 * Piscina worker of one log shard: owns the shard's RocksDB for the worker's whole life.
 * Requests arrive in submission order (the pool runs one thread, one task at a time, with
 * stricterFIFO); the shard additionally asserts the sequence number of every append task.
 */
import { move } from 'piscina';
import { assert } from './errors.ts';
import { LogShard, type ShardRecovery, type ShardStats } from './log-shard.ts';

export type ShardRequest =
  | { readonly op: 'open'; readonly path: string }
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

export default async function handle(request: ShardRequest): Promise<unknown> {
  switch (request.op) {
    case 'open':
      assert(shard === null, 'one shard per worker');
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
