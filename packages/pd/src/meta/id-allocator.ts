import { ALLOC_KEY, decodeAlloc, encodeAlloc } from './records.ts';
import type { MetaStore } from './meta-store.ts';

/** Ids reserved per metadata write: a new PD leader skips at most this many unused ids. */
export const idReserveBlock = 1_000;

/**
 * One id space for stores, regions and peers (as TiKV's PD has): unique for the cluster's
 * whole life, never reused. The leader reserves ids in blocks — it persists the end of the
 * block before handing out any id in it — so an id is handed out at most once even if the
 * leader dies right after: the next leader starts past the persisted end.
 */
export class IdAllocator {
  private next = 0;
  private reservedThrough = 0;
  private reserving: Promise<void> | null = null;

  private constructor(private readonly meta: MetaStore) {}

  /** Reads the persisted end of the last block (a new leader's first step). */
  static async load(meta: MetaStore): Promise<IdAllocator> {
    const allocator = new IdAllocator(meta);
    const stored = await meta.get(ALLOC_KEY);
    const highest = stored ? decodeAlloc(stored) : 0;
    allocator.next = highest + 1;
    allocator.reservedThrough = highest;
    return allocator;
  }

  /** `count` fresh ids, in increasing order. */
  async allocate(count: number): Promise<number[]> {
    const ids: number[] = [];
    while (ids.length < count) {
      if (this.next > this.reservedThrough) await this.reserve(count - ids.length);
      while (ids.length < count && this.next <= this.reservedThrough) ids.push(this.next++);
    }
    return ids;
  }

  /** The highest id handed out or reserved so far (for status pages). */
  get highestReserved(): number {
    return this.reservedThrough;
  }

  private async reserve(wanted: number): Promise<void> {
    // Concurrent callers share one reservation write instead of racing to write the key.
    this.reserving ??= (async () => {
      const end = this.reservedThrough + Math.max(idReserveBlock, wanted);
      try {
        await this.meta.write([{ op: 'put', key: ALLOC_KEY, value: encodeAlloc(end) }]);
        this.reservedThrough = end;
      } finally {
        this.reserving = null;
      }
    })();
    await this.reserving;
  }
}
