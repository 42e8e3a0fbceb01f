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
import type { Ready } from '@flotilla/raft';
import { limits as storageLimits, type ApplyResult, type KvEngine, type RegionApply } from '@flotilla/storage';
import { applyBatches, type ApplySegment } from './apply-plan.ts';
import { entryCommands, type EntryEffects } from './entry-commands.ts';
import type { HostObserver } from './host-types.ts';
import type { Peer } from './peer.ts';

export class ApplyStage {
  /** KV batches written so far (host stats). */
  batches = 0;
  /** Peers that stopped short this cycle: the index they applied through. */
  private readonly held = new Map<Peer, number>();
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

  /** Applies every group's committed entries of this cycle's Readys. */
  async applyAll(batch: readonly { peer: Peer; rd: Ready }[]): Promise<void> {
    const groups = batch.map(({ peer, rd }) => ({ peer, entries: rd.committedEntries }));
    const bounds = { commandsMax: this.commandsMax, regionsMax: storageLimits.kvApplyRegionsMax };
    const hold = (peer: Peer, appliedThrough: number): void => void this.held.set(peer, appliedThrough);
    for (const segments of applyBatches(groups, (peer, entry) => entryCommands(peer, entry, this.effects), bounds, hold)) await this.applySegments(segments);
  }

  /** How far `peer` applied when it stopped short this cycle (for RawNode.advance), else undefined. */
  heldThrough(peer: Peer): number | undefined {
    return this.held.get(peer);
  }

  /** The cycle advanced every group: forget who stopped short. */
  endCycle(): void {
    this.held.clear();
  }

  /** One KV batch: each segment's commands with its last entry's index, then its proposals. */
  private async applySegments(segments: readonly ApplySegment<Peer>[]): Promise<void> {
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
        this.observeProposal(peer.onEntryApplied(entries[0]!.index, entries[0]!.term, regionResults));
      } else {
        let at = 0;
        for (let i = 0; i < entries.length; i++) {
          const count = commandCounts[i]!;
          this.observeProposal(peer.onEntryApplied(entries[i]!.index, entries[i]!.term, regionResults.slice(at, at + count)));
          at += count;
        }
      }
      peer.applied = entries[entries.length - 1]!.index;
    }
  }

  private observeProposal(appliedAfterMs: number | undefined): void {
    if (appliedAfterMs !== undefined) this.observer()?.proposalApplied(appliedAfterMs / 1000);
  }
}
