import { assert } from './errors.ts';

/** The arrays of an empty window: shared, never written (see `add`). */
const NONE: number[] = [];
Object.freeze(NONE);

/**
 * The append messages sent to one follower and not yet acknowledged: a bounded window by
 * count and by bytes (flow control). Entries are the last index of each message, in order.
 *
 * Memory: a store hosts thousands of groups, most of them idle, each with a window per
 * member. A window holds no arrays of its own until its first `add`, and lets go of them on
 * `reset` (a state change) and when its group hibernates (`releaseIfEmpty`).
 */
export class Inflights {
  private lastIndexes: number[] = NONE;
  private sizes: number[] = NONE;
  private head = 0;
  private bytes = 0;

  constructor(
    readonly messagesMax: number,
    readonly bytesMax: number,
  ) {
    assert(messagesMax > 0, 'inflight window must allow at least one message');
  }

  get count(): number {
    return this.lastIndexes.length - this.head;
  }

  get inflightBytes(): number {
    return this.bytes;
  }

  /** Records a message whose last entry is `lastIndex`. */
  add(lastIndex: number, bytes: number): void {
    assert(!this.full(), 'inflights: add to a full window');
    const newest = this.lastIndexes[this.lastIndexes.length - 1];
    assert(this.count === 0 || newest === undefined || lastIndex > newest, 'inflights: indexes must increase');
    if (this.lastIndexes === NONE) {
      this.lastIndexes = [];
      this.sizes = [];
    }
    this.lastIndexes.push(lastIndex);
    this.sizes.push(bytes);
    this.bytes += bytes;
  }

  /** Frees every message whose last index is <= `index`. */
  freeLE(index: number): void {
    while (this.head < this.lastIndexes.length && this.lastIndexes[this.head]! <= index) {
      this.bytes -= this.sizes[this.head]!;
      this.head++;
    }
    if (this.head > 64 && this.head * 2 > this.lastIndexes.length) this.compactStorage();
  }

  /**
   * Lets go of the arrays of an empty window (a group going idle). Not done on every
   * emptying: a busy pipeline would then allocate them again for its next message.
   */
  releaseIfEmpty(): void {
    if (this.count === 0) this.release();
  }

  /** True when the window holds arrays of its own. */
  get allocated(): boolean {
    return this.lastIndexes !== NONE;
  }

  /**
   * Frees the oldest message. When appends were lost the window stays full forever; the
   * leader frees one slot per heartbeat response so that one more append goes out, the
   * follower rejects it (it has a gap) and the leader falls back to probing.
   */
  freeFirstOne(): void {
    if (this.count === 0) return;
    this.freeLE(this.lastIndexes[this.head]!);
  }

  full(): boolean {
    return this.count >= this.messagesMax || (this.bytesMax > 0 && this.bytes >= this.bytesMax);
  }

  reset(): void {
    this.release();
  }

  private release(): void {
    this.lastIndexes = NONE;
    this.sizes = NONE;
    this.head = 0;
    this.bytes = 0;
  }

  private compactStorage(): void {
    this.lastIndexes.splice(0, this.head);
    this.sizes.splice(0, this.head);
    this.head = 0;
  }
}
