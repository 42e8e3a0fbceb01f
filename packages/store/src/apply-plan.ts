import type { Entry } from '@flotilla/raft';
import type { KvCommand } from '@flotilla/storage';

/** Consecutive committed entries of one region, applied in one KV batch. */
export interface ApplySegment<P> {
  readonly peer: P;
  readonly entries: Entry[];
  /** Commands of each entry (an entry's results are that many of the region's results). */
  readonly commandCounts: number[];
  commands: KvCommand[];
}

/** The KV engine's bounds on one apply batch. */
export interface ApplyBounds {
  readonly commandsMax: number;
  readonly regionsMax: number;
}

/**
 * Cuts a ready cycle's committed entries into KV batches under the engine's bounds —
 * normally ONE. A region whose entries do not fit the rest of a batch is cut at an entry
 * boundary (each part carries the applied index of its own last entry). Lazy: `commandsOf`
 * runs in log order, and an entry past a full batch is looked at only after that batch was
 * taken (applied), as conf changes and splits take effect in `commandsOf`.
 *
 * `commandsOf` answers null for an entry that must wait (a merge's target waiting for its
 * source): that region's entries stop there, and `onHold` learns the last index applied.
 */
export function* applyBatches<P>(
  groups: Iterable<{ readonly peer: P; readonly entries: readonly Entry[] }>,
  commandsOf: (peer: P, entry: Entry) => KvCommand[] | null,
  bounds: ApplyBounds,
  onHold: (peer: P, appliedThrough: number) => void = () => {},
): Generator<ApplySegment<P>[]> {
  let pending: ApplySegment<P>[] = [];
  let commandsPending = 0;
  for (const { peer, entries } of groups) {
    let segment: ApplySegment<P> | null = null;
    /** The segment's command list is still the one `commandsOf` handed over for its first entry. */
    let borrowed = false;
    for (const entry of entries) {
      const commands = commandsOf(peer, entry);
      if (commands === null) {
        onHold(peer, entry.index - 1);
        break;
      }
      const full = commandsPending + commands.length > bounds.commandsMax || (segment === null && pending.length >= bounds.regionsMax);
      if (full && (segment !== null || pending.length > 0)) {
        if (segment) pending.push(segment);
        segment = null;
        yield pending;
        pending = [];
        commandsPending = 0;
      }
      if (segment === null) {
        // Most segments hold one entry (one put per region and cycle under spread load):
        // exact-size arrays, and the entry's own command list (copied once a second entry joins).
        segment = { peer, entries: [entry], commandCounts: [commands.length], commands };
        borrowed = true;
      } else {
        if (borrowed) {
          segment.commands = segment.commands.slice();
          borrowed = false;
        }
        segment.entries.push(entry);
        segment.commandCounts.push(commands.length);
        for (const c of commands) segment.commands.push(c);
      }
      commandsPending += commands.length;
    }
    if (segment) pending.push(segment);
  }
  if (pending.length > 0) yield pending;
}
