/**
 * Point reads coalesced: the get() calls of one event-loop turn become one MultiGet. The
 * binding runs every getMany on its thread pool, and each call pays a thread hop: ~90 µs of
 * CPU per call on the 2-vCPU machine (a getMany of 8 keys one at a time: 140 µs, of which the
 * read itself ~50 µs), and a profile of a store serving reads at 256 in flight put 21% of its
 * main thread in the call. A store issued one call per read; a turn releases many reads at
 * once (a ReadIndex round confirms every read that waited for it).
 *
 * A batched read sees at least what was applied before its get() was called: the MultiGet
 * runs later, on the current state. That is how a single get behaved too (its MultiGet ran on
 * the thread pool after the call), and a read may return any state from its arrival on.
 *
 * A turn that released few reads (low concurrency) still paid one hop for them: such a batch
 * is read on the main thread first (`ReadNow`), and only what waits for the disk takes the hop.
 */

/**
 * A MultiGet on the calling thread, given up at a deadline: per key its value, undefined (no
 * such key), or null (not read in time: it waits for the disk). The thread hop costs more than
 * a read the block cache or memtable answers, so a small batch is read here first and only the
 * keys that need the disk go to the thread pool. The deadline bounds how long the event loop
 * is held: RocksDB checks it between reads (best effort: one disk read may run past it).
 */
export interface ReadNow<V> {
  readonly read: (keys: Uint8Array[]) => readonly (V | undefined | null)[];
  /** Larger batches go to the thread pool whole: their hop is shared, and their reads use another core. */
  readonly keysMax: number;
}

interface PendingRead<V> {
  readonly key: Uint8Array;
  readonly resolve: (value: V | undefined) => void;
  readonly reject: (err: unknown) => void;
}

/** The point reads of one turn, read together (see the top of this file). */
export class PointReadBatcher<V> {
  private pending: PendingRead<V>[] = [];
  private scheduled = false;

  constructor(
    /** One MultiGet on the thread pool: a value (or undefined) per key, in order. */
    private readonly readMany: (keys: Uint8Array[]) => Promise<readonly (V | undefined)[]>,
    /** Keys in one MultiGet at most; a full batch leaves at once. */
    private readonly keysMax: number,
    /** Small batches read on this thread first (undefined: always the thread pool). */
    private readonly readNow?: ReadNow<V>,
  ) {}

  get(key: Uint8Array): Promise<V | undefined> {
    return new Promise((resolve, reject) => {
      this.pending.push({ key, resolve, reject });
      if (this.pending.length >= this.keysMax) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        // After the turn's callbacks and their microtasks: every read released in it joins.
        setImmediate(() => {
          this.scheduled = false;
          this.flush();
        });
      }
    });
  }

  private flush(): void {
    let batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    if (this.readNow !== undefined && batch.length <= this.readNow.keysMax) {
      batch = this.readHere(batch, this.readNow);
      if (batch.length === 0) return;
    }
    let reading: Promise<readonly (V | undefined)[]>;
    try {
      reading = this.readMany(batch.map((read) => read.key));
    } catch (err) {
      for (const read of batch) read.reject(err);
      return;
    }
    reading.then(
      (values) => {
        for (let i = 0; i < batch.length; i++) batch[i]!.resolve(values[i]);
      },
      (err: unknown) => {
        for (const read of batch) read.reject(err);
      },
    );
  }

  /** Settles the reads answered in time; returns those left for the thread pool. */
  private readHere(batch: PendingRead<V>[], readNow: ReadNow<V>): PendingRead<V>[] {
    let values: readonly (V | undefined | null)[];
    try {
      values = readNow.read(batch.map((read) => read.key));
    } catch (err) {
      for (const read of batch) read.reject(err);
      return [];
    }
    const late: PendingRead<V>[] = [];
    for (let i = 0; i < batch.length; i++) {
      const value = values[i];
      if (value === null) late.push(batch[i]!);
      else batch[i]!.resolve(value);
    }
    return late;
  }
}
