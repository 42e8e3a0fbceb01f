import { entryBytes, type Entry } from '@flotilla/raft';

/**
 * Entries `list[start, end)`, the longest prefix within `maxBytes` (counted as the core counts
 * them, `entryBytes`) but never empty when the range is not.
 */
export function limitEntries(list: readonly Entry[], start: number, end: number, maxBytes: number): Entry[] {
  if (start >= end) return [];
  let size = entryBytes(list[start]!);
  let stop = start + 1;
  while (stop < end) {
    size += entryBytes(list[stop]!);
    if (size > maxBytes) break;
    stop++;
  }
  return list.slice(start, stop);
}
