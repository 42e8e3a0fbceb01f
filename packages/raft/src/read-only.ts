import type { Message, NodeId, ReadState } from './types.ts';

/**
 * ReadIndex requests the leader is confirming (etcd-raft's readOnly, "safe" mode): each
 * request records the commit index when it arrived and waits until a quorum acknowledged a
 * heartbeat carrying its context — proof that no newer leader existed at that moment.
 */
interface PendingRead {
  readonly index: number;
  /** The original request (carries the requester and context). */
  readonly request: Message;
  readonly acks: Set<NodeId>;
}

function contextKey(context: Uint8Array): string {
  let key = '';
  for (let i = 0; i < context.byteLength; i++) key += String.fromCharCode(context[i]!);
  return key;
}

const NO_KEYS: readonly string[] = Object.freeze([]);

/**
 * Memory: most groups of a store never serve a ReadIndex request, or not at the moment; the
 * queue holds no Map and no array until a request arrives, and lets go of them on clear() (a
 * role or term change, and hibernation, when it is empty).
 */
export class ReadOnlyQueue {
  private pending: Map<string, PendingRead> | null = null;
  private queue: readonly string[] = NO_KEYS;

  constructor(readonly pendingMax: number) {}

  get size(): number {
    return this.queue.length;
  }

  isFull(): boolean {
    return this.queue.length >= this.pendingMax;
  }

  /** Queues a request; a duplicate context is ignored (it will be answered with the first). */
  add(index: number, request: Message): void {
    const key = contextKey(request.context);
    this.pending ??= new Map();
    if (this.pending.has(key)) return;
    this.pending.set(key, { index, request, acks: new Set() });
    if (this.queue === NO_KEYS) this.queue = [key];
    else (this.queue as string[]).push(key);
  }

  /** Records a heartbeat acknowledgement; returns who acked, or undefined for unknown contexts. */
  recvAck(from: NodeId, context: Uint8Array): ReadonlySet<NodeId> | undefined {
    const read = this.pending?.get(contextKey(context));
    if (!read) return undefined;
    read.acks.add(from);
    return read.acks;
  }

  /**
   * Releases the request with `context` and every request queued before it (the quorum that
   * confirmed it confirmed them too).
   */
  advance(context: Uint8Array): PendingRead[] {
    const pending = this.pending;
    if (pending === null) return [];
    const key = contextKey(context);
    const at = this.queue.indexOf(key);
    if (at < 0) return [];
    const released = this.queue.slice(0, at + 1).map((k) => pending.get(k)!);
    for (const k of this.queue.slice(0, at + 1)) pending.delete(k);
    this.queue = this.queue.slice(at + 1);
    return released;
  }

  /** Context of the newest pending request (sent with heartbeats). */
  lastPendingContext(): Uint8Array | undefined {
    const key = this.queue[this.queue.length - 1];
    return key === undefined ? undefined : this.pending!.get(key)!.request.context;
  }

  clear(): void {
    this.pending = null;
    this.queue = NO_KEYS;
  }
}

export type { PendingRead, ReadState };
