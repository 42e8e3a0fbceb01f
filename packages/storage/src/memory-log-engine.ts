/**
 * The in-memory twin of the log engine: every group is the Raft core's reference
 * MemoryStorage (its append/compact/applySnapshot semantics are THE reference), plus the hard
 * state and conf state. Writes are durable the moment they are made; a MemoryLogDisk outlives
 * an engine, so closing and opening again models a restart without any loss.
 */
import {
  EMPTY_BYTES,
  EMPTY_CONF_STATE,
  EMPTY_HARD_STATE,
  MemoryStorage,
  type ConfState,
  type Entry,
  type HardState,
  type Snapshot,
} from '@flotilla/raft';
import { groupsMax } from './constants.ts';
import { StorageError } from './errors.ts';
import {
  planGroupWrite,
  snapshotUnavailable,
  type GroupLog,
  type GroupLogView,
  type GroupWrite,
  type LogEngine,
  type LogEngineHooks,
  type LogEngineStats,
  type LogRecoveryReport,
  type LogWriteOptions,
} from './log-types.ts';

interface MemoryGroup {
  readonly storage: MemoryStorage;
  hardState: HardState;
  confState: ConfState;
}

/** What survives a restart of a MemoryLogEngine. */
export class MemoryLogDisk {
  readonly groups = new Map<number, MemoryGroup>();
}

class MemoryGroupLog implements GroupLog, GroupLogView {
  constructor(
    readonly groupId: number,
    private readonly group: MemoryGroup,
    private readonly engine: MemoryLogEngine,
  ) {}

  initialState(): { hardState: HardState; confState: ConfState } {
    this.engine.checkUsable();
    return { hardState: this.group.hardState, confState: this.group.confState };
  }

  hardState(): HardState {
    return this.group.hardState;
  }

  confState(): ConfState {
    return this.group.confState;
  }

  truncatedIndex(): number {
    return this.group.storage.firstIndex() - 1;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    this.engine.checkUsable();
    return this.group.storage.entries(lo, hi, maxBytes);
  }

  term(index: number): number {
    return this.group.storage.term(index);
  }

  firstIndex(): number {
    return this.group.storage.firstIndex();
  }

  lastIndex(): number {
    return this.group.storage.lastIndex();
  }

  snapshot(): Snapshot {
    return this.engine.snapshotOf(this.groupId);
  }
}

function emptyGroup(): MemoryGroup {
  return { storage: new MemoryStorage(), hardState: EMPTY_HARD_STATE, confState: EMPTY_CONF_STATE };
}

export class MemoryLogEngine implements LogEngine {
  private closed = false;
  private writes = 0;
  private syncedWrites = 0;
  private entriesWritten = 0;
  readonly recovery: LogRecoveryReport;

  constructor(
    private readonly disk: MemoryLogDisk = new MemoryLogDisk(),
    private readonly hooks: LogEngineHooks = {},
  ) {
    let entries = 0;
    for (const g of disk.groups.values()) entries += g.storage.lastIndex() - g.storage.firstIndex() + 1;
    this.recovery = { groups: disk.groups.size, entries, cut: [], staleEntries: 0 };
  }

  checkUsable(): void {
    if (this.closed) throw new StorageError('FLOTILLA_STORAGE_CLOSED', 'the log engine is closed');
  }

  snapshotOf(groupId: number): Snapshot {
    if (this.hooks.snapshotProvider === undefined) return snapshotUnavailable(groupId);
    return this.hooks.snapshotProvider(groupId);
  }

  groupIds(): number[] {
    return [...this.disk.groups.keys()];
  }

  hasGroup(groupId: number): boolean {
    return this.disk.groups.has(groupId);
  }

  group(groupId: number): GroupLog {
    this.checkUsable();
    return new MemoryGroupLog(groupId, this.disk.groups.get(groupId) ?? emptyGroup(), this);
  }

  /** Everything written survives a reopen (a process crash); `sync` only counts fsyncs. */
  async write(writes: readonly GroupWrite[], options?: LogWriteOptions): Promise<void> {
    this.checkUsable();
    const seen = new Set<number>();
    const plans = [];
    let newGroups = 0;
    for (const w of writes) {
      if (seen.has(w.groupId)) throw new StorageError('FLOTILLA_STORAGE_CONTRACT_VIOLATION', `group ${w.groupId} appears twice in one write`);
      seen.add(w.groupId);
      if (!this.disk.groups.has(w.groupId)) newGroups++;
      const view = this.group(w.groupId) as MemoryGroupLog;
      plans.push(planGroupWrite(view, w, this.hooks));
    }
    if (this.disk.groups.size + newGroups > groupsMax) throw new StorageError('FLOTILLA_STORAGE_LIMIT_EXCEEDED', `more than groupsMax ${groupsMax} groups`);
    for (const w of writes) {
      if (w.destroy === true) {
        this.disk.groups.delete(w.groupId);
        continue;
      }
      let g = this.disk.groups.get(w.groupId);
      if (g === undefined) {
        g = emptyGroup();
        this.disk.groups.set(w.groupId, g);
      }
      if (w.snapshot !== undefined) {
        g.storage.applySnapshot({ metadata: w.snapshot, data: EMPTY_BYTES });
        g.confState = w.snapshot.confState;
      }
      if (w.entries !== undefined && w.entries.length > 0) {
        g.storage.append(w.entries);
        this.entriesWritten += w.entries.length;
      }
      if (w.hardState !== undefined) g.hardState = w.hardState;
      if (w.confState !== undefined) g.confState = w.confState;
      if (w.compactTo !== undefined) g.storage.compact(w.compactTo);
    }
    this.writes++;
    if (options?.sync ?? true) this.syncedWrites++;
  }

  compact(requests: readonly { readonly groupId: number; readonly compactTo: number }[]): Promise<void> {
    return this.write(requests.map((r) => ({ groupId: r.groupId, compactTo: r.compactTo })));
  }

  async loadEntries(groupId: number, lo: number, hi: number, maxBytes: number): Promise<Entry[]> {
    return this.group(groupId).entries(lo, hi, maxBytes);
  }

  async writable(): Promise<void> {}

  /** No queue: a write is never refused for room. */
  hasRoom(): boolean {
    return true;
  }

  stats(): LogEngineStats {
    return {
      groups: this.disk.groups.size,
      tasks: this.writes,
      syncs: this.syncedWrites,
      entriesWritten: this.entriesWritten,
      cacheBytes: 0,
      cacheHits: 0,
      cacheMisses: 0,
      fetches: 0,
    };
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
