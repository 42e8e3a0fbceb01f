import type { ConfState, Snapshot } from './types.ts';
import { EMPTY_BYTES } from './types.ts';

/**
 * A group starts from a snapshot at BOOTSTRAP_INDEX holding its first configuration (as TiKV
 * does), not from configuration entries at index 1..n. Every later member starts empty, finds
 * the leader's first index above its own and receives a snapshot that carries the current
 * configuration — so membership is always learned from a snapshot or from log entries after
 * it, never from a log that no longer exists.
 */
export const BOOTSTRAP_INDEX = 5;
export const BOOTSTRAP_TERM = 5;

export function bootstrapSnapshot(confState: ConfState, data: Uint8Array = EMPTY_BYTES): Snapshot {
  return { metadata: { index: BOOTSTRAP_INDEX, term: BOOTSTRAP_TERM, confState }, data };
}

/** The hard state matching a bootstrap snapshot: term and commit at the snapshot. */
export const BOOTSTRAP_HARD_STATE = Object.freeze({ term: BOOTSTRAP_TERM, vote: 0, commit: BOOTSTRAP_INDEX });
