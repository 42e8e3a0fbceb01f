/**
 * The receiving end of a snapshot stream as the host sees it: an AsyncIterable of chunks, fed by
 * the connection, drained by the host's `onSnapshot`. Taking a chunk out is what acknowledges it
 * to the sender (`onTake`), so the sender's window — not this buffer — bounds what is held here;
 * the buffer checks the sender kept to it (`push` returns false when it did not).
 *
 * It can be iterated once. A failure (connection lost, timeout, close) makes the next `next()`
 * reject with that error, after which the stream is over.
 */
import { assert } from './errors.ts';

export interface ChunkChannelBounds {
  readonly chunksMax: number;
  readonly bytesMax: number;
}

export class ChunkChannel implements AsyncIterable<Uint8Array>, AsyncIterator<Uint8Array> {
  private readonly buffer: Uint8Array[] = [];
  private bufferedBytes = 0;
  private ended = false;
  private failure: Error | null = null;
  private pending: { resolve: (r: IteratorResult<Uint8Array>) => void; reject: (err: unknown) => void } | null = null;
  private iterated = false;
  /** Chunks taken by the consumer so far. */
  taken = 0;
  /** The consumer saw the end (every chunk was taken). */
  private finished = false;
  /** The consumer stopped before the end (break / return()): later chunks are discarded. */
  private abandoned = false;

  constructor(
    private readonly bounds: ChunkChannelBounds,
    /** Called with the count of chunks taken so far, each time the consumer takes one. */
    private readonly onTake: (taken: number) => void,
    /** Called when the consumer starts waiting on an empty buffer (true) or stops (false). */
    private readonly onWaiting: (waiting: boolean) => void = () => {},
  ) {}

  /** True while the consumer waits for a chunk that has not arrived. */
  get waiting(): boolean {
    return this.pending !== null;
  }

  /** Every chunk of a stream that ended was taken by the consumer. */
  get complete(): boolean {
    return this.ended && this.failure === null && !this.abandoned && this.buffer.length === 0 && this.pending === null;
  }

  /** Adds a chunk from the sender; false when it overflows the bounds (the sender ignored the window). */
  push(chunk: Uint8Array): boolean {
    assert(!this.ended && this.failure === null, 'no chunk after the end of a stream');
    if (this.abandoned) return true;
    if (this.buffer.length + 1 > this.bounds.chunksMax || this.bufferedBytes + chunk.length > this.bounds.bytesMax) return false;
    if (this.pending !== null) {
      const { resolve } = this.pending;
      this.pending = null;
      this.onWaiting(false);
      this.deliver(chunk, resolve);
      return true;
    }
    this.buffer.push(chunk);
    this.bufferedBytes += chunk.length;
    return true;
  }

  /** The sender's last chunk arrived. */
  end(): void {
    assert(!this.ended, 'a stream ends once');
    this.ended = true;
    if (this.pending !== null && this.buffer.length === 0) {
      const { resolve } = this.pending;
      this.pending = null;
      this.onWaiting(false);
      this.finished = true;
      resolve({ done: true, value: undefined });
    }
  }

  /** The stream broke: the consumer's pending or next `next()` rejects with `err`. */
  fail(err: Error): void {
    if (this.failure !== null || this.finished) return;
    this.failure = err;
    this.buffer.length = 0;
    this.bufferedBytes = 0;
    if (this.pending !== null) {
      const { reject } = this.pending;
      this.pending = null;
      this.onWaiting(false);
      reject(err);
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    assert(!this.iterated, 'a snapshot stream is iterated once');
    this.iterated = true;
    return this;
  }

  next(): Promise<IteratorResult<Uint8Array>> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.abandoned || this.finished) return Promise.resolve({ done: true, value: undefined });
    assert(this.pending === null, 'one next() at a time');
    const chunk = this.buffer.shift();
    if (chunk !== undefined) {
      this.bufferedBytes -= chunk.length;
      return new Promise((resolve) => this.deliver(chunk, resolve));
    }
    if (this.ended) {
      this.finished = true;
      return Promise.resolve({ done: true, value: undefined });
    }
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.onWaiting(true);
    });
  }

  return(): Promise<IteratorResult<Uint8Array>> {
    if (!this.finished && !(this.ended && this.buffer.length === 0)) this.abandoned = true;
    this.buffer.length = 0;
    this.bufferedBytes = 0;
    return Promise.resolve({ done: true, value: undefined });
  }

  private deliver(chunk: Uint8Array, resolve: (r: IteratorResult<Uint8Array>) => void): void {
    this.taken++;
    this.onTake(this.taken);
    resolve({ done: false, value: chunk });
  }
}
