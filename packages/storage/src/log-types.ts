/**
 * The log engine's public contract, shared by the RocksDB engine and its in-memory twin, and
 * the validation of writes that both run before they change anything.
 */
import {
  EMPTY_HARD_STATE,
  RaftError,
  type ConfState,
  type Entry,
  type HardState,
  type RaftStorage,
  type Snapshot,
  type SnapshotMetadata,
} from '@flotilla/raft';
import { entryDataBytesMax } from './constants.ts';
import { StorageError } from './errors.ts';

/**
 * Everything one group persists in one step. The parts apply in this order: `snapshot`
 * (the log restarts right after it), `entries` (a conflicting suffix is replaced),
 * `hardState`, `confState`, then `compactTo` (entries up to and including it are discarded).
 */
export interface GroupWrite {
  readonly groupId: number;
  readonly snapshot?: SnapshotMetadata;
  readonly entries?: readonly Entry[];
  readonly hardState?: HardState;
  readonly confState?: ConfState;
  readonly compactTo?: number;
  /** Removes the group and its whole log (a replica left this store). Nothing else may be set. */
  readonly destroy?: true;
}

/** A group's durable log as the Raft core reads it, plus what a host needs at start. */
export interface GroupLog extends RaftStorage {
  readonly groupId: number;
  hardState(): HardState;
  confState(): ConfState;
  /** Index of the last discarded entry (its term stays answerable). */
  truncatedIndex(): number;
}

export interface LogRecoveryReport {
  readonly groups: number;
  readonly entries: number;
  /** Groups whose corrupted or missing tail (above the commit index) was cut on open. */
  readonly cut: readonly { readonly groupId: number; readonly fromIndex: number; readonly lastIndexBefore: number; readonly reason: string }[];
  /** Entries found outside a group's log (below its truncation or above its last index) and deleted. */
  readonly staleEntries: number;
}

/**
 * How a write reaches the disk. `sync: false` is for writes a crash may lose without harm: a
 * Ready that only moved the commit index (the core's `mustSync` is false). Such a write is
 * ordered with every other write of its groups and resolves once written, without an fsync of
 * its own; the next synced write of its shard makes it durable, a power loss before that may
 * drop it, and nothing written after it survives without it.
 */
export interface LogWriteOptions {
  /** Default true: resolve only once the write is fsynced. */
  readonly sync?: boolean;
  /**
   * Default false: the write joins its shards' open tasks, submitted at the end of the
   * event-loop turn with every other write of the turn. True: submitted at once (with whatever
   * the open task holds) — for a caller whose write is the only one of its turn (the store's
   * ready cycle); the appender still writes every task that arrived meanwhile as one batch.
   */
  readonly now?: boolean;
}

export interface LogEngineStats {
  readonly groups: number;
  readonly tasks: number;
  readonly syncs: number;
  readonly entriesWritten: number;
  readonly cacheBytes: number;
  readonly cacheHits: number;
  readonly cacheMisses: number;
  readonly fetches: number;
}

/**
 * The raft log engine of a store: every group's log, hard state, conf state and truncation.
 *
 * Writes are batch-first: one `write` carries the Ready output of many groups (at most one
 * GroupWrite per group) and resolves once all of it is durable (or, with `sync: false`, written:
 * LogWriteOptions). The views returned by `group()`
 * reflect a write as soon as `write` returns (the core reads its own unstable entries anyway);
 * a failed write is fatal to the engine (every later call rejects with FLOTILLA_STORAGE_FAILED).
 *
 * Backpressure: when an appender shard has no room, `write` rejects with
 * FLOTILLA_STORAGE_QUEUE_FULL before changing anything; await `writable()` and submit again.
 */
export interface LogEngine {
  groupIds(): number[];
  hasGroup(groupId: number): boolean;
  /** The group's view; a group never written to reads as an empty log. */
  group(groupId: number): GroupLog;
  write(writes: readonly GroupWrite[], options?: LogWriteOptions): Promise<void>;
  /** Sugar for write() with compactTo only. */
  compact(requests: readonly { readonly groupId: number; readonly compactTo: number }[]): Promise<void>;
  /** Reads entries, waiting for disk when they are not cached (hosts and tests; the core uses entries()). */
  loadEntries(groupId: number, lo: number, hi: number, maxBytes: number): Promise<Entry[]>;
  /** Resolves when every shard has room for another task. */
  writable(): Promise<void>;
  /**
   * Whether every shard has room for another task now (writable() would resolve at once): a
   * write() made right after, in the same synchronous run, is not refused with
   * FLOTILLA_STORAGE_QUEUE_FULL (unless it alone exceeds one task's bounds). A caller that
   * does not await its write relies on this to keep its writes in order.
   */
  hasRoom(): boolean;
  stats(): LogEngineStats;
  readonly recovery: LogRecoveryReport;
  close(): Promise<void>;
}

export interface LogEngineHooks {
  /**
   * Upper bound for compaction of a group: the KV engine's durable applied index of the
   * region (see README "The two engines after a crash"). compactTo beyond it is a contract
   * violation.
   */
  readonly compactLimit?: (groupId: number) => number;
  /** Serves RaftStorage.snapshot() (the host builds region snapshots). */
  readonly snapshotProvider?: (groupId: number) => Snapshot;
  /** Called when a disk read started by entries() completed: the host may wake the group. */
  readonly onFetched?: (groupId: number) => void;
}

// ---- validation shared by both engines -------------------------------------------------------

/** What validation needs to know about a group's current log. */
export interface GroupLogView {
  truncatedIndex(): number;
  lastIndex(): number;
  term(index: number): number;
  hardState(): HardState;
}

/** The normalized effect of a valid GroupWrite. */
export interface GroupWritePlan {
  /** Entries to append (already-compacted ones dropped); may be empty. */
  readonly entries: readonly Entry[];
  /** Index of the first entry of `entries` (0 when none). */
  readonly firstNew: number;
  readonly lastIndex: number;
  readonly truncatedIndex: number;
  readonly truncatedTerm: number;
  readonly hardState: HardState;
}

/** A plan record planGroupWrite may fill instead of allocating one (see there). */
export type PlanRecord = { -readonly [K in keyof GroupWritePlan]: GroupWritePlan[K] };

/** A fresh PlanRecord to reuse across planGroupWrite calls. */
export function newPlanRecord(): PlanRecord {
  return { entries: [], firstNew: 0, lastIndex: 0, truncatedIndex: 0, truncatedTerm: 0, hardState: EMPTY_HARD_STATE };
}

function violation(groupId: number, what: string): StorageError {
  return new StorageError('FLOTILLA_STORAGE_CONTRACT_VIOLATION', `group ${groupId}: ${what}`);
}

function isIndex(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

/** Term at `index` given a possibly moved truncation point (a snapshot in the same write). */
function termOf(view: GroupLogView, index: number, truncatedIndex: number, truncatedTerm: number): number {
  return index === truncatedIndex ? truncatedTerm : view.term(index);
}

/**
 * Checks a write against the group's current state without changing anything. Mirrors
 * MemoryStorage (stale snapshots and compactions raise the RaftErrors it raises, entries at or
 * below the truncation are ignored) and adds the host contract: no gaps, terms never decrease,
 * committed entries are never replaced, hard state term/commit never go back, a vote is never
 * changed within a term, compaction stays within commit and the caller's limit.
 *
 * With `into`, the plan is written there and `into` returned: the RocksDB engine plans every
 * group of every write on the event-loop thread and reads each plan at once, so a record per
 * group would only feed the young generation's collections (bench:storage's event-loop delay).
 */
export function planGroupWrite(view: GroupLogView, w: GroupWrite, hooks: Pick<LogEngineHooks, 'compactLimit'>, into?: PlanRecord): GroupWritePlan {
  const g = w.groupId;
  if (!isIndex(g)) throw violation(g, 'group id must be a safe non-negative integer');
  if (w.destroy === true) {
    if (w.snapshot !== undefined || w.entries !== undefined || w.hardState !== undefined || w.confState !== undefined || w.compactTo !== undefined) {
      throw violation(g, 'destroy carries nothing else');
    }
  }
  let truncatedIndex = view.truncatedIndex();
  let lastIndex = view.lastIndex();
  let truncatedTerm = view.term(truncatedIndex);
  const old = view.hardState();
  let fromSnapshot = false;

  if (w.snapshot !== undefined) {
    const { index, term } = w.snapshot;
    if (!isIndex(index) || !isIndex(term)) throw violation(g, 'snapshot index/term must be safe integers');
    if (index <= truncatedIndex) {
      throw new RaftError('FLOTILLA_RAFT_SNAPSHOT_OUT_OF_DATE', `snapshot at ${index} is not newer than ${truncatedIndex}`);
    }
    truncatedIndex = index;
    truncatedTerm = term;
    lastIndex = index;
    fromSnapshot = true;
  }

  let entries: readonly Entry[] = [];
  let firstNew = 0;
  const input = w.entries ?? [];
  if (input.length > 0) {
    for (let i = 0; i < input.length; i++) {
      const e = input[i]!;
      if (!isIndex(e.index) || e.index === 0 || !isIndex(e.term)) throw violation(g, `entry ${i}: index/term must be safe integers, index >= 1`);
      if (e.data.byteLength > entryDataBytesMax) {
        throw new StorageError('FLOTILLA_STORAGE_LIMIT_EXCEEDED', `group ${g}: entry ${e.index} has ${e.data.byteLength} bytes > entryDataBytesMax ${entryDataBytesMax}`);
      }
      if (i > 0) {
        const prev = input[i - 1]!;
        if (e.index !== prev.index + 1) throw violation(g, `entries not consecutive: ${prev.index} then ${e.index}`);
        if (e.term < prev.term) throw violation(g, `entry terms decrease: ${prev.term} then ${e.term} at ${e.index}`);
      }
    }
    const skip = Math.max(0, truncatedIndex + 1 - input[0]!.index);
    entries = skip > 0 ? input.slice(skip) : input;
    if (entries.length > 0) {
      const first = entries[0]!;
      firstNew = first.index;
      if (firstNew > lastIndex + 1) throw violation(g, `append leaves a gap: first new ${firstNew}, last ${lastIndex}`);
      const prevTerm = termOf(view, firstNew - 1, truncatedIndex, truncatedTerm);
      if (first.term < prevTerm) throw violation(g, `entry ${firstNew} has term ${first.term} below the preceding term ${prevTerm}`);
      // Entries at or below the persisted commit may only be rewritten identically.
      const committedOverlapEnd = Math.min(lastIndex, old.commit, entries[entries.length - 1]!.index);
      for (let i = firstNew; i <= committedOverlapEnd && !fromSnapshot; i++) {
        if (termOf(view, i, truncatedIndex, truncatedTerm) !== entries[i - firstNew]!.term) throw violation(g, `committed entry ${i} (commit ${old.commit}) would be replaced`);
      }
      lastIndex = entries[entries.length - 1]!.index;
    }
  }

  let hardState = old;
  if (w.hardState !== undefined) {
    const hs = w.hardState;
    if (!isIndex(hs.term) || !isIndex(hs.vote) || !isIndex(hs.commit)) throw violation(g, 'hard state fields must be safe integers');
    if (hs.term < old.term) throw violation(g, `hard state term goes back from ${old.term} to ${hs.term}`);
    if (hs.term === old.term && old.vote !== 0 && hs.vote !== old.vote) throw violation(g, `vote changed within term ${hs.term}: ${old.vote} -> ${hs.vote}`);
    if (hs.commit < old.commit) throw violation(g, `commit goes back from ${old.commit} to ${hs.commit}`);
    hardState = hs;
  }
  if (hardState.commit > lastIndex) throw violation(g, `commit ${hardState.commit} beyond last index ${lastIndex}`);

  if (w.compactTo !== undefined) {
    const c = w.compactTo;
    if (!isIndex(c)) throw violation(g, 'compactTo must be a safe integer');
    if (c <= truncatedIndex) throw new RaftError('FLOTILLA_RAFT_COMPACTED', `already compacted past ${c}`);
    if (c > lastIndex) throw violation(g, `compact ${c} beyond last index ${lastIndex}`);
    if (c > hardState.commit) throw violation(g, `compact ${c} beyond commit ${hardState.commit}`);
    // Asked only when compacting: the limit is the host's (the KV engine's durable applied index).
    const compactLimit = hooks.compactLimit?.(g) ?? Number.MAX_SAFE_INTEGER;
    if (c > compactLimit) throw violation(g, `compact ${c} beyond the durable applied index ${compactLimit}`);
    truncatedTerm = c <= lastIndex && entries.length > 0 && c >= firstNew ? entries[c - firstNew]!.term : termOf(view, c, truncatedIndex, truncatedTerm);
    truncatedIndex = c;
  }
  if (into === undefined) return { entries, firstNew, lastIndex, truncatedIndex, truncatedTerm, hardState };
  into.entries = entries;
  into.firstNew = firstNew;
  into.lastIndex = lastIndex;
  into.truncatedIndex = truncatedIndex;
  into.truncatedTerm = truncatedTerm;
  into.hardState = hardState;
  return into;
}

/** A group whose snapshot() has no provider. */
export function snapshotUnavailable(groupId: number): never {
  throw new RaftError('FLOTILLA_RAFT_SNAPSHOT_TEMPORARILY_UNAVAILABLE', `group ${groupId}: no snapshot provider`);
}
