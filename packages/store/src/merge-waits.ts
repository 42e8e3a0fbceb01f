import { monotonicNowMs } from './clock.ts';
import type { CommitMergeCommand } from './command-codec.ts';
import type { HostEventLog } from './host-types.ts';
import type { Peer } from './peer.ts';

/** A merge's target replica held at its CommitMerge entry. */
interface Wait {
  readonly sourceRegionId: number;
  readonly prepareIndex: number;
  readonly prepareTerm: number;
  readonly sinceMs: number;
  warned: boolean;
}

/** A target waiting this long for its source replica is reported (once). */
const MERGE_WAIT_WARN_MS = 30_000;

/**
 * Merge targets whose apply is held (RawNode.advance with appliedThrough) until the source
 * replica on this store applied the merge's prepare entry. A held target is resumed as soon as
 * a cycle leaves its source there, and on every tick (cheap: the held entries are offered
 * again and held again if still early), so no event can be missed. One entry per held target:
 * bounded by the peers of the store.
 */
export class MergeWaits {
  private readonly waiting = new Map<Peer, Wait>();

  constructor(
    private readonly events: HostEventLog,
    private readonly replica: (regionId: number) => Peer | undefined,
    private readonly markDirty: (peer: Peer) => void,
  ) {}

  waitForSource(target: Peer, source: Peer | undefined, merge: CommitMergeCommand): void {
    let wait = this.waiting.get(target);
    if (wait === undefined) {
      wait = { sourceRegionId: merge.source.id, prepareIndex: merge.prepareIndex, prepareTerm: merge.prepareTerm, sinceMs: monotonicNowMs(), warned: false };
      this.waiting.set(target, wait);
      this.events.info({ regionId: target.regionId, sourceRegionId: merge.source.id, prepareIndex: merge.prepareIndex, sourceApplied: source?.applied ?? null }, 'region merge waits for the source replica here');
    } else if (!wait.warned && monotonicNowMs() - wait.sinceMs > MERGE_WAIT_WARN_MS) {
      wait.warned = true;
      this.events.warn({ regionId: target.regionId, sourceRegionId: merge.source.id, prepareIndex: merge.prepareIndex, sourceApplied: source?.applied ?? null, placeholder: source?.placeholder ?? null }, 'region merge still waits for the source replica here');
    }
    // The target committed the merge, so the prepare entry IS committed in the source. The
    // source's other replicas may be gone already (merged on their stores): commit it here.
    if (source !== undefined && !source.placeholder && source.node.commitKnown(merge.prepareIndex, merge.prepareTerm)) this.markDirty(source);
  }

  /** Resumes the targets whose source replica here applied the prepare entry; forgets them. */
  retryReady(): void {
    for (const [target, wait] of this.waiting) {
      const source = this.replica(wait.sourceRegionId);
      const gone = this.replica(target.regionId) !== target;
      if (gone || (source !== undefined && !source.placeholder && source.applied >= wait.prepareIndex)) {
        this.waiting.delete(target);
        this.resume(target);
      }
    }
  }

  /**
   * Resumes every held target: each looks again, and waits again if it must (its wait, with
   * its start time, is kept until retryReady sees the source ready).
   */
  retryAll(): void {
    for (const target of this.waiting.keys()) this.resume(target);
  }

  get size(): number {
    return this.waiting.size;
  }

  private resume(target: Peer): void {
    target.node.resumeApplying();
    this.markDirty(target);
  }
}
