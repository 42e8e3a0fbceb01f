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
 */
export class PointReadBatcher<V> {
  private pending: { readonly key: Uint8Array; readonly resolve: (value: V | undefined) => void; readonly reject: (err: unknown) => void }[] = [];
  private scheduled = false;

  constructor(
    /** One MultiGet: a value (or undefined) per key, in order. */
    private readonly readMany: (keys: Uint8Array[]) => Promise<readonly (V | undefined)[]>,
    /** Keys in one MultiGet at most; a full batch leaves at once. */
    private readonly keysMax: number,
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
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
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
}
