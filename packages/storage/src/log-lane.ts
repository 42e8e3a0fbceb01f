/**
 * One appender shard as the main thread sees it: the OPEN task (chunks encoded by the write()
 * calls since the last flush — group commit happens here) and the tasks in flight. A task is
 * sealed when the shard can take it (`canSeal`): a free slot of the client's
 * `tasksInflightMax`, and — with several in flight (worker mode) — the tasks in flight plus this
 * one within ONE task's entries, bytes and pieces, so the owner can always write all of them as
 * one batch with one fsync.
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
  readonly bytes: number;
  readonly pieces: number;
  /** The task destroys a group: it must end its batch. */
  readonly alone: boolean;
  /** Some write in it asked for an fsync (LogWriteOptions); else it is written without one. */
  readonly sync: boolean;
  readonly done: Deferred;
}

export class Lane {
  /** The open task: chunks encoded by the write() calls since the last flush. */
  pending: Uint8Array[] = [];
  pendingPieces = 0;
  pendingBytes = 0;
  pendingEntries = 0;
  /** Whether a write in the open task asked for an fsync. */
  pendingSync = false;
  pendingDone: Deferred = deferred();
  /** Groups destroyed in the open task: a later write to one of them needs a new task. */
  readonly pendingDestroyed = new Set<number>();
  /** Tasks in flight and their totals. */
  inflight = 0;
  inflightBytes = 0;
  inflightEntries = 0;
  inflightPieces = 0;
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

  /** Whether the open task can be sealed and submitted now. */
  canSeal(): boolean {
    if (this.inflight === 0) return true;
    return (
      this.inflight < this.client.tasksInflightMax &&
      this.inflightBytes + this.pendingBytes <= this.taskBytesMax &&
      this.inflightEntries + this.pendingEntries <= appendTaskEntriesMax &&
      this.inflightPieces + this.pendingPieces <= appendTaskGroupsMax
    );
  }

  /** Whether a write of up to one task's worth is accepted now (see RocksLogEngine.writable). */
  hasRoom(): boolean {
    return this.pending.length === 0 || this.canSeal();
  }

  resetNeed(): void {
    this.needBytes = 0;
    this.needEntries = 0;
    this.needPieces = 0;
    this.needSeal = false;
  }

  /** Adds an encoded chunk to the open task; returns the promise of the task's durability. */
  add(chunk: Uint8Array, bytes: number, entries: number, pieces: number, sync: boolean): Promise<void> {
    this.pending.push(chunk);
    if (sync) this.pendingSync = true;
    this.pendingPieces += pieces;
    this.pendingBytes += bytes;
    this.pendingEntries += entries;
    this.lastDone = this.pendingDone.promise;
    return this.pendingDone.promise;
  }

  /** Seals the open task (the caller checked canSeal()). */
  seal(): SealedTask {
    const task: SealedTask = {
      seq: ++this.seq,
      chunks: this.pending,
      entries: this.pendingEntries,
      bytes: this.pendingBytes,
      pieces: this.pendingPieces,
      alone: this.pendingDestroyed.size > 0,
      sync: this.pendingSync,
      done: this.pendingDone,
    };
    this.pendingSync = false;
    this.pending = [];
    this.pendingPieces = 0;
    this.pendingBytes = 0;
    this.pendingEntries = 0;
    this.pendingDone = deferred();
    this.pendingDestroyed.clear();
    this.inflight++;
    this.inflightBytes += task.bytes;
    this.inflightEntries += task.entries;
    this.inflightPieces += task.pieces;
    return task;
  }

  /** A task in flight became durable (or failed). */
  settled(task: SealedTask): void {
    this.inflight--;
    this.inflightBytes -= task.bytes;
    this.inflightEntries -= task.entries;
    this.inflightPieces -= task.pieces;
  }
}
