import type { Entry } from './types.ts';

/** Bytes an entry counts for in every size limit: its payload plus a fixed per-entry overhead. */
export const ENTRY_OVERHEAD_BYTES = 16;

export function entryBytes(entry: Entry): number {
  return entry.data.byteLength + ENTRY_OVERHEAD_BYTES;
}

export function entriesBytes(entries: readonly Entry[]): number {
  let total = 0;
  for (const entry of entries) total += entryBytes(entry);
  return total;
}

/** Payload bytes only: what the leader's uncommitted budget counts (empty entries count 0). */
export function payloadBytes(entries: readonly Pick<Entry, 'data'>[]): number {
  let total = 0;
  for (const entry of entries) total += entry.data.byteLength;
  return total;
}

/** Longest prefix within `maxBytes`, but never empty when the input is not. */
export function limitEntriesBytes<T extends readonly Entry[]>(entries: T, maxBytes: number): Entry[] {
  if (entries.length === 0) return [];
  let size = entryBytes(entries[0]!);
  let count = 1;
  while (count < entries.length) {
    size += entryBytes(entries[count]!);
    if (size > maxBytes) break;
    count++;
  }
  return entries.slice(0, count);
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}
