/**
 * One appender shard as the main thread sees it: the OPEN task (chunks encoded by the write()
 * calls since the last flush — group commit happens here) and the tasks in flight. A task is
 * sealed when a slot of the shard's `appendTasksInflightPerShardMax` is free; then it becomes
 * one write batch with one fsync in the shard's owner.
 */
import { appendTaskEntriesMax, appendTaskGroupsMax } from './constants.ts';
import type { ShardClient } from './shard-client.ts';

export interface Deferred {
  readonly promise: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

export function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A rejection is also delivered to the writers awaiting it; never leave it unhandled here.
  promise.catch(() => {});
  return { promise, resolve, reject };
}

/** A sealed task, ready to submit. */
export interface SealedTask {
  readonly seq: number;
  readonly chunks: Uint8Array[];
  readonly entries: number;
  readonly done: Deferred;
}

export class Lane {
  /** The open task: chunks encoded by the write() calls since the last flush. */
  pending: Uint8Array[] = [];
  pendingPieces = 0;
  pendingBytes = 0;
  pendingEntries = 0;
  pendingDone: Deferred = deferred();
  /** Groups destroyed in the open task: a later write to one of them needs a new task. */
  readonly pendingDestroyed = new Set<number>();
  inflight = 0;
  seq = 0;
  flushScheduled = false;
  tasks = 0;
  entries = 0;
  /** Resolves when everything submitted so far is durable. */
  lastDone: Promise<void> = Promise.resolve();
  /** What the current write() call adds to this lane (validation scratch). */
  needBytes = 0;
  needEntries = 0;
  needPieces = 0;
  needSeal = false;

  constructor(
    readonly index: number,
    readonly client: ShardClient,
    readonly taskBytesMax: number,
  ) {}

  fits(bytes: number, entries: number, pieces: number): boolean {
    return (
      this.pendingBytes + bytes <= this.taskBytesMax &&
      this.pendingEntries + entries <= appendTaskEntriesMax &&
      this.pendingPieces + pieces <= appendTaskGroupsMax
    );
  }

  resetNeed(): void {
    this.needBytes = 0;
    this.needEntries = 0;
    this.needPieces = 0;
    this.needSeal = false;
  }

  /** Adds an encoded chunk to the open task; returns the promise of the task's durability. */
  add(chunk: Uint8Array, bytes: number, entries: number, pieces: number): Promise<void> {
    this.pending.push(chunk);
    this.pendingPieces += pieces;
    this.pendingBytes += bytes;
    this.pendingEntries += entries;
    this.lastDone = this.pendingDone.promise;
    return this.pendingDone.promise;
  }

  /** Seals the open task (the caller checked that a slot is free). */
  seal(): SealedTask {
    const task: SealedTask = { seq: ++this.seq, chunks: this.pending, entries: this.pendingEntries, done: this.pendingDone };
    this.pending = [];
    this.pendingPieces = 0;
    this.pendingBytes = 0;
    this.pendingEntries = 0;
    this.pendingDone = deferred();
    this.pendingDestroyed.clear();
    this.inflight++;
    return task;
  }
}
