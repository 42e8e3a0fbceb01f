/**
 * Piscina worker of one log shard: owns the shard's RocksDB for the worker's whole life.
 *
 * Open, recovery, reads, stats and close are piscina tasks. Append tasks arrive on their own
 * MessagePort (shard-client.ts) and queue here; whenever the previous batch is durable, the
 * worker writes every task that arrived meanwhile as ONE batch with ONE sync (LogShard.append
 * over their chunks) and acks the last task's sequence number. A task marked `alone` ends its
 * batch. Tasks arrive in submission order (one port, FIFO); the worker asserts each sequence
 * number on arrival and the shard asserts order again per group.
 */
import os from 'node:os';
import type { MessagePort } from 'node:worker_threads';
import { move } from 'piscina';
import { assert } from './errors.ts';
import { LogShard, type ShardRecovery, type ShardStats } from './log-shard.ts';

export type ShardRequest =
  | { readonly op: 'open'; readonly path: string; readonly nice: number; readonly port: MessagePort }
  | { readonly op: 'recover' }
  | { readonly op: 'read'; readonly groupId: number; readonly lo: number; readonly hi: number; readonly maxBytes: number }
  | { readonly op: 'stats' }
  | { readonly op: 'close' };

export type ShardResponse = null | ShardRecovery | ShardStats | Uint8Array;

/** main -> worker: one sealed append task. */
export interface AppendMessage {
  readonly seq: number;
  readonly chunks: readonly Uint8Array[];
  /** The task ends its batch (it destroys a group: its range delete must not meet later puts). */
  readonly alone: boolean;
  /** The task asks for an fsync; a batch of tasks that all say false is written without one. */
  readonly sync: boolean;
}

/** worker -> main: every task up to `seq` is written (durable if `synced`), or the shard failed. */
export interface AppendAck {
  readonly seq: number;
  /** The batch that ended at `seq` was fsynced (it made every task before it durable too). */
  readonly synced?: boolean;
  readonly failed?: { readonly message: string; readonly code?: string };
}

let shard: LogShard | null = null;
let port: MessagePort | null = null;
/** Append tasks received and not yet written. */
let queue: AppendMessage[] = [];
let queuedSeq = 0;
let writing: Promise<void> | null = null;
let drainScheduled = false;
let failed = false;

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

function onAppend(message: AppendMessage): void {
  if (failed) return;
  if (message.seq !== queuedSeq + 1) {
    fault(new Error(`storage assertion failed: task sequence on arrival: expected ${queuedSeq + 1}, got ${message.seq}`));
    return;
  }
  queuedSeq = message.seq;
  queue.push(message);
  scheduleDrain();
}

/**
 * Drains in a later turn of the event loop, so that every message already delivered to the
 * port is queued first (the port hands over all pending messages in one go).
 */
function scheduleDrain(): void {
  if (drainScheduled || writing !== null || queue.length === 0 || failed) return;
  drainScheduled = true;
  setImmediate(drain);
}

/**
 * One batch, at most one sync: every queued task, up to the first one that must end its batch.
 * The batch syncs when any of its tasks asks to.
 */
function drain(): void {
  drainScheduled = false;
  if (writing !== null || queue.length === 0 || failed) return;
  let n = 0;
  while (n < queue.length && !queue[n++]!.alone);
  const tasks = n === queue.length ? queue : queue.slice(0, n);
  queue = n === queue.length ? [] : queue.slice(n);
  let chunks: readonly Uint8Array[] = tasks[0]!.chunks;
  if (tasks.length > 1) {
    const all: Uint8Array[] = [];
    for (const t of tasks) for (const c of t.chunks) all.push(c);
    chunks = all;
  }
  const first = tasks[0]!.seq;
  const last = tasks[tasks.length - 1]!.seq;
  let sync = false;
  for (const t of tasks) if (t.sync) sync = true;
  let appended: Promise<void>;
  try {
    appended = owned().append(first, chunks, last, sync);
  } catch (err) {
    fault(err);
    return;
  }
  writing = appended.then(
    () => {
      writing = null;
      const ack: AppendAck = { seq: last, synced: sync };
      port?.postMessage(ack);
      scheduleDrain();
    },
    (err: unknown) => {
      writing = null;
      fault(err);
    },
  );
}

/** A failed batch (I/O error, fsync failure, broken assertion) ends this shard's appends. */
function fault(err: unknown): void {
  failed = true;
  queue = [];
  const e = err as { message?: unknown; code?: unknown };
  const ack: AppendAck = {
    seq: 0,
    failed: { message: typeof e?.message === 'string' ? e.message : String(err), ...(typeof e?.code === 'string' ? { code: e.code } : {}) },
  };
  port?.postMessage(ack);
}

export default async function handle(request: ShardRequest): Promise<unknown> {
  switch (request.op) {
    case 'open':
      assert(shard === null, 'one shard per worker');
      lowerPriority(request.nice);
      shard = await LogShard.open(request.path);
      port = request.port;
      port.on('message', onAppend);
      return null;
    case 'recover':
      return owned().recover();
    case 'read':
      return move(await owned().read(request.groupId, request.lo, request.hi, request.maxBytes));
    case 'stats':
      return owned().stats();
    case 'close': {
      const s = owned();
      // The engine closes a shard once everything it submitted is durable (or it failed).
      while (writing !== null) await writing;
      port?.close();
      port = null;
      shard = null;
      await s.close();
      return null;
    }
  }
}
