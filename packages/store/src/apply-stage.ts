/**
 * The ready loop's apply step: the committed entries of every group of a cycle go to the KV
 * engine in as few batches as its bounds allow — normally ONE (kvApplyRegionsMax regions,
 * kvApplyCommandsMax commands per batch) — then their proposals are settled. A region whose
 * entries do not fit the rest of a batch is cut at an entry boundary: each part is written
 * with the applied index of its own last entry (apply-plan.ts).
 *
 * A region may also stop short of its committed entries this cycle (a merge waiting for its
 * source, entry-commands.ts): the stage remembers how far it applied, and the cycle tells the
 * raft core at advance() (`heldThrough`), so the rest comes back in a later Ready.
 */
import { performance } from 'node:perf_hooks';
import type { Entry, Ready } from '@flotilla/raft';
import { limits as storageLimits, type ApplyResult, type CommandResult, type KvEngine, type RegionApply } from '@flotilla/storage';
import { applyBatches, type ApplySegment } from './apply-plan.ts';
import { dataEntryCommands, entryCommands, type EntryEffects } from './entry-commands.ts';
import type { HostObserver } from './host-types.ts';
import type { Peer } from './peer.ts';

export class ApplyStage {
  /** KV batches written so far (host stats). */
  batches = 0;
  /** Peers that stopped short this cycle: the index they applied through. */
  private readonly held = new Map<Peer, number>();
  /** Answers to the proposals applyRest applied, given at settleApplied(). */
  private readonly answersAfterAdvance: (() => void)[] = [];
  /** The last entry of each Ready that applyDurable applied (this cycle). */
  private readonly appliedEarlyThrough = new Map<Peer, number>();
  private readonly commandsMax: number;

  constructor(
    private readonly kv: KvEngine,
    private readonly effects: EntryEffects,
    private readonly observer: () => HostObserver | undefined,
    /** Commands per KV batch (lowered by tests); at most the engine's kvApplyCommandsMax. */
    commandsMax: number | undefined,
  ) {
    this.commandsMax = Math.min(commandsMax ?? storageLimits.kvApplyCommandsMax, storageLimits.kvApplyCommandsMax);
  }

  /**
   * Applies the committed entries of this cycle's Readys that this replica's log holds durably
   * already (the ones below the Ready's own new entries: earlier cycles waited for their
   * writes; none if the Ready installs a snapshot), as long as they are plain data. The cycle
   * runs this while its own log write is in flight, so a commit is applied (and its client
   * answered) without waiting for the fsync of entries proposed after it: under load nearly
   * every leader's Ready carries both. Nothing that write persists is needed to apply them:
   * they are committed, so a quorum holds them, this replica among them.
   *
   * A region's early part stops at its first entry that is not plain data (a conf change, an
   * admin command, an empty entry: dataEntryCommands). That entry and the ones after it are
   * applied by applyRest, after the write, and answered only after advance() (settleApplied).
   */
  async applyDurable(batch: readonly { peer: Peer; rd: Ready }[]): Promise<void> {
    const groups: { peer: Peer; entries: readonly Entry[] }[] = [];
    for (const { peer, rd } of batch) {
      const n = durableCount(rd);
      if (n === 0) continue;
      const entries = n === rd.committedEntries.length ? rd.committedEntries : rd.committedEntries.slice(0, n);
      this.appliedEarlyThrough.set(peer, entries[n - 1]!.index);
      groups.push({ peer, entries });
    }
    if (groups.length === 0) return;
    const stop = (peer: Peer, appliedThrough: number): void => void this.appliedEarlyThrough.set(peer, appliedThrough);
    await this.applyGroups(groups, dataEntryCommands, stop, true);
  }

  /** Applies the rest of the cycle's committed entries, once its log write is durable. */
  async applyRest(batch: readonly { peer: Peer; rd: Ready }[]): Promise<void> {
    const groups: { peer: Peer; entries: readonly Entry[] }[] = [];
    for (const { peer, rd } of batch) {
      const committed = rd.committedEntries;
      if (committed.length === 0) continue;
      const through = this.appliedEarlyThrough.get(peer);
      const n = through === undefined ? 0 : through + 1 - committed[0]!.index;
      if (n < committed.length) groups.push({ peer, entries: n === 0 ? committed : committed.slice(n) });
    }
    this.appliedEarlyThrough.clear();
    const hold = (peer: Peer, appliedThrough: number): void => void this.held.set(peer, appliedThrough);
    await this.applyGroups(groups, entryCommands, hold, false);
  }

  /** `commandsOf` answering null stops that region's entries there (`stop` learns how far it applied). */
  private async applyGroups(groups: readonly { peer: Peer; entries: readonly Entry[] }[], commandsOf: typeof entryCommands, stop: (peer: Peer, appliedThrough: number) => void, answerNow: boolean): Promise<void> {
    const bounds = { commandsMax: this.commandsMax, regionsMax: storageLimits.kvApplyRegionsMax };
    for (const segments of applyBatches(groups, (peer, entry) => commandsOf(peer, entry, this.effects), bounds, stop)) await this.applySegments(segments, answerNow);
  }

  /** How far `peer` applied when it stopped short this cycle (for RawNode.advance), else undefined. */
  heldThrough(peer: Peer): number | undefined {
    return this.held.get(peer);
  }

  /** The cycle advanced every group: forget who stopped short. */
  endCycle(): void {
    this.held.clear();
  }

  /**
   * One KV batch: each segment's commands with its last entry's index, then its proposals
   * (`answerNow` false: at settleApplied()).
   */
  private async applySegments(segments: readonly ApplySegment<Peer>[], answerNow: boolean): Promise<void> {
    const applies: RegionApply[] = segments.map(({ peer, entries, commands }) => {
      const last = entries[entries.length - 1]!;
      return { regionId: peer.regionId, appliedIndex: last.index, appliedTerm: last.term, commands };
    });
    const started = performance.now();
    const results = await this.kv.apply(applies);
    this.observer()?.apply((performance.now() - started) / 1000);
    this.batches++;
    // The engine answers one result per region, in the batch's order.
    let byRegion: Map<number, ApplyResult> | undefined;
    for (let k = 0; k < segments.length; k++) {
      const { peer, entries, commandCounts } = segments[k]!;
      let result = results[k];
      if (result?.regionId !== peer.regionId) result = (byRegion ??= new Map(results.map((r) => [r.regionId, r]))).get(peer.regionId);
      const regionResults = result?.results ?? [];
      if (entries.length === 1 && regionResults.length === commandCounts[0]) {
        // The common case under spread load: one entry, all of the region's results.
        this.settle(peer, entries[0]!, regionResults, answerNow);
      } else {
        let at = 0;
        for (let i = 0; i < entries.length; i++) {
          const count = commandCounts[i]!;
          this.settle(peer, entries[i]!, regionResults.slice(at, at + count), answerNow);
          at += count;
        }
      }
      peer.applied = entries[entries.length - 1]!.index;
    }
  }

  private settle(peer: Peer, entry: Entry, results: readonly CommandResult[], answerNow: boolean): void {
    if (answerNow) this.observeProposal(peer.onEntryApplied(entry.index, entry.term, results));
    else this.answersAfterAdvance.push(() => this.observeProposal(peer.onEntryApplied(entry.index, entry.term, results)));
  }

  /**
   * Answers the proposals applyRest applied: the cycle calls it once every group advanced, so
   * a client that hears of a conf change (or of a write behind one) finds the raft core knowing
   * it applied, and its next change is not refused as pending.
   */
  settleApplied(): void {
    for (const answer of this.answersAfterAdvance.splice(0)) answer();
  }

  private observeProposal(appliedAfterMs: number | undefined): void {
    if (appliedAfterMs !== undefined) this.observer()?.proposalApplied(appliedAfterMs / 1000);
  }
}

/**
 * How many of the Ready's committed entries lie below its new entries (so were persisted by
 * the earlier cycles, which waited for their writes); 0 when the Ready installs a snapshot.
 */
export function durableCount(rd: Ready): number {
  if (rd.snapshot) return 0;
  const committed = rd.committedEntries;
  const firstNew = rd.entries[0]?.index;
  if (firstNew === undefined || committed.length === 0) return committed.length;
  // Committed entries are consecutive: those below firstNew are a prefix.
  return Math.max(0, Math.min(committed.length, firstNew - committed[0]!.index));
}
