import { MemoryStorage, isRaftError, type ConfState, type Entry, type HardState, type Snapshot } from '@flotilla/raft';

/**
 * A simulated disk for one node. `live` is what the running node reads (the page cache);
 * `durable` is what survives a crash. A synced write reaches both at once; an unsynced write
 * reaches `durable` only when a later sync() runs. crash() throws the page cache away and
 * restart() rebuilds it from `durable` — "a crash loses whatever was not synced".
 */
type DiskWrite =
  | { kind: 'snapshot'; snapshot: Snapshot }
  | { kind: 'entries'; entries: readonly Entry[] }
  | { kind: 'hardState'; hardState: HardState }
  | { kind: 'confState'; confState: ConfState; index: number }
  | { kind: 'compact'; index: number }
  | { kind: 'createSnapshot'; index: number; confState: ConfState; data: Uint8Array };

export class SimDisk {
  live = new MemoryStorage();
  readonly durable = new MemoryStorage();
  private unsynced: DiskWrite[] = [];
  /** Counts fsyncs, for the workload summary. */
  syncs = 0;

  write(w: DiskWrite, synced: boolean): void {
    apply(this.live, w);
    if (synced) {
      this.sync();
      apply(this.durable, w);
    } else {
      this.unsynced.push(w);
    }
  }

  /** Makes every earlier write durable (fsync). */
  sync(): void {
    for (const w of this.unsynced) apply(this.durable, w);
    this.unsynced = [];
    this.syncs++;
  }

  get hasUnsynced(): boolean {
    return this.unsynced.length > 0;
  }

  /** Power loss: unsynced writes are gone; the running view is rebuilt from durable state. */
  crash(): void {
    this.unsynced = [];
    this.live = cloneStorage(this.durable);
  }

  /** Does the durable log hold entry (index, term), directly or inside the snapshot? */
  durablyHas(index: number, term: number): boolean {
    const snap = this.durable.snapshot().metadata;
    if (index <= snap.index) return true; // part of a snapshot a quorum agreed on
    if (index > this.durable.lastIndex()) return false;
    try {
      return this.durable.term(index) === term;
    } catch (err) {
      if (isRaftError(err)) return false;
      throw err;
    }
  }
}

function apply(storage: MemoryStorage, w: DiskWrite): void {
  switch (w.kind) {
    case 'snapshot':
      storage.applySnapshot(w.snapshot);
      return;
    case 'entries':
      storage.append(w.entries);
      return;
    case 'hardState':
      storage.setHardState(w.hardState);
      return;
    case 'confState':
      storage.setConfState(w.confState, w.index);
      return;
    case 'compact':
      if (w.index > storage.firstIndex() - 1 && w.index <= storage.lastIndex()) storage.compact(w.index);
      return;
    case 'createSnapshot':
      if (w.index > storage.snapshot().metadata.index && w.index <= storage.lastIndex()) storage.createSnapshot(w.index, w.confState, w.data);
      return;
  }
}

export function cloneStorage(source: MemoryStorage): MemoryStorage {
  const copy = new MemoryStorage();
  const snapshot = source.snapshot();
  if (snapshot.metadata.index > 0) copy.applySnapshot(snapshot);
  const first = source.firstIndex();
  const last = source.lastIndex();
  if (last >= first) copy.append(source.entries(first, last + 1, Number.POSITIVE_INFINITY));
  copy.setHardState(source.initialState().hardState);
  copy.setConfState(source.initialState().confState, source.confStateAppliedIndex());
  return copy;
}
