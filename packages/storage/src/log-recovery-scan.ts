/**
 * The recovery scan of a log shard (log-shard.ts, `recover()`): what it knows of one group while
 * the group's packs go by in key order, and how each pack is taken or cut. Pure functions over
 * a GroupScan; the shard owner reads the DB and feeds them (see README "Recovery").
 */
import type { ConfState, HardState } from '@flotilla/raft';
import { LOG_FORMAT_VERSION } from './constants.ts';
import { StorageError } from './errors.ts';
import { PACK_HEADER_BYTES, PackCursor, checkValue, readU32, readU64, type TruncatedState } from './log-format.ts';

/** One group's state during recovery. */
export interface GroupScan {
  readonly groupId: number;
  hardState: HardState;
  lastIndex: number;
  /** The raft state record's last index (lastIndex becomes final when the group's scan ends). */
  metaLast: number;
  hasRaftState: boolean;
  confState: ConfState | null;
  truncated: TruncatedState;
  /** Term runs of the recovered entries (GroupRecovery.runs). */
  readonly runs: number[];
  /** Next entry to recover, and the term before it. */
  expect: number;
  prevTerm: number;
  /** First damaged or missing entry (0: none yet). */
  cutAt: number;
  cutReason: string;
  /** The last pack seen, not yet read: the next pack's start tells how much of it is needed. */
  pendKey: Buffer | null;
  pendValue: Buffer | null;
  /** Starts of the packs that hold recovered entries. */
  readonly starts: number[];
  minKey: number;
  maxKey: number;
  finished: boolean;
}

export function newGroupScan(groupId: number): GroupScan {
  return {
    groupId,
    hardState: { term: 0, vote: 0, commit: 0 },
    lastIndex: 0,
    metaLast: 0,
    hasRaftState: false,
    confState: null,
    truncated: { index: 0, term: 0 },
    runs: [],
    expect: 0,
    prevTerm: 0,
    cutAt: 0,
    cutReason: '',
    pendKey: null,
    pendValue: null,
    starts: [],
    minKey: Number.MAX_SAFE_INTEGER,
    maxKey: -1,
    finished: false,
  };
}

export interface ScanStats {
  entries: number;
  stale: number;
}

/** Entries a pack says it holds (for the stale count; its checksum is not verified): 1 unless it reads as a pack of more. */
export function packEntryCount(value: Uint8Array): number {
  return value.byteLength >= PACK_HEADER_BYTES && value[4] === LOG_FORMAT_VERSION ? Math.max(1, readU32(value, 8)) : 1;
}

export function cutScan(s: GroupScan, index: number, reason: string): void {
  if (s.cutAt !== 0) return;
  s.cutAt = index;
  s.cutReason = reason;
}

/** Visits the next pack of a group (packs arrive in key order). */
export function scanPack(s: GroupScan, key: Buffer, value: Buffer, stats: ScanStats): void {
  const start = readU64(key, 8);
  s.minKey = Math.min(s.minKey, start);
  s.maxKey = Math.max(s.maxKey, start);
  // Above the record's last index: packs that extend the log, or a version 1 entry a replaced
  // suffix left behind (version 1 deleted those after the batch). Only a verified version 1
  // value is taken for the latter.
  if (start > s.metaLast && isVersion1(key, value)) {
    stats.stale++;
    return;
  }
  // The pending pack holds the entries up to this pack's start.
  if (s.pendValue !== null) recoverPending(s, start - 1, stats);
  s.pendKey = key;
  s.pendValue = value;
}

function isVersion1(key: Buffer, value: Buffer): boolean {
  try {
    return checkValue(key, value, 5, 'entry') === 1;
  } catch {
    return false;
  }
}

/** Recovers entries expect..upTo from the pending pack (it is not needed when upTo < expect). */
function recoverPending(s: GroupScan, upTo: number, stats: ScanStats): void {
  const key = s.pendKey!;
  const value = s.pendValue!;
  s.pendKey = null;
  s.pendValue = null;
  const start = readU64(key, 8);
  if (s.cutAt !== 0 || upTo < s.expect) {
    // Wholly below the first entry still needed (a later pack starts at or below it).
    stats.stale += packEntryCount(value);
    return;
  }
  if (start > s.expect) {
    cutScan(s, s.expect, `entry ${s.expect} missing`);
    stats.stale += packEntryCount(value);
    return;
  }
  const cursor = new PackCursor();
  try {
    cursor.open(key, value, `group ${s.groupId} pack at ${start}`);
  } catch (err) {
    if (!(err instanceof StorageError && err.code === 'FLOTILLA_STORAGE_CORRUPTION')) throw err;
    cutScan(s, s.expect, err.message);
    stats.stale += packEntryCount(value);
    return;
  }
  let used = 0;
  while (s.expect <= upTo && cursor.next()) {
    const index = cursor.index;
    if (index < s.expect) continue;
    if (cursor.typeCode > 1) {
      cutScan(s, index, `entry ${index}: unknown type ${cursor.typeCode}`);
      break;
    }
    const term = cursor.term;
    if (term < s.prevTerm) {
      cutScan(s, index, `entry ${index}: term ${term} below the preceding ${s.prevTerm}`);
      break;
    }
    if (s.runs.length === 0 || s.runs[s.runs.length - 1] !== term) s.runs.push(index, term);
    s.prevTerm = term;
    s.expect++;
    used++;
  }
  if (s.expect <= upTo) cutScan(s, s.expect, `entry ${s.expect} missing (the pack at ${start} holds ${cursor.count})`);
  stats.entries += used;
  // A pack that holds no recovered entry is deleted with the others nobody reads.
  if (used > 0) s.starts.push(start);
  else stats.stale += cursor.count;
}

/**
 * After a group's last pack: it holds the entries up to the last index, and it carries the
 * group's newest commit and the log's end (log-format.ts), so it must be intact.
 */
export function finishScan(s: GroupScan, stats: ScanStats): void {
  s.finished = true;
  if (s.pendValue !== null) {
    const key = s.pendKey!;
    const start = readU64(key, 8);
    const cursor = new PackCursor();
    try {
      cursor.open(key, s.pendValue, `group ${s.groupId} pack at ${start}`);
    } catch (err) {
      if (!(err instanceof StorageError && err.code === 'FLOTILLA_STORAGE_CORRUPTION')) throw err;
      throw new StorageError(
        'FLOTILLA_STORAGE_CORRUPTION',
        `group ${s.groupId}: its last pack is damaged (${err.message}); it holds the group's newest commit and last index, so the replica must be rebuilt from a snapshot`,
      );
    }
    if (cursor.version >= 2) {
      s.lastIndex = Math.max(s.metaLast, start + cursor.count - 1);
      if (cursor.commit > s.hardState.commit) s.hardState = { ...s.hardState, commit: cursor.commit };
    }
    recoverPending(s, s.lastIndex, stats);
  }
  if (s.expect <= s.lastIndex) cutScan(s, s.expect, `entries from ${s.expect} missing`);
}
