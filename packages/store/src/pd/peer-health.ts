/** How a region's leader judges its followers for PD (pending peers) and for promotions. */

/** A follower this many entries behind the leader counts as pending (catching up). */
export const pendingLagEntries = 1_000;

/**
 * A peer still catching up: it acknowledged nothing yet (a new learner), needs or is getting a
 * snapshot (its match is below the leader's log), or is far behind. PD promotes no learner
 * while it is pending: a voter without the data cannot help a quorum.
 */
export function isPending(progress: { match: number; state: string }, firstIndex: number, lastIndex: number): boolean {
  return progress.match === 0 || progress.state === 'snapshot' || progress.match < firstIndex - 1 || progress.match + pendingLagEntries < lastIndex;
}
