import type { KvEngine, LogEngine } from '@flotilla/storage';
import { monotonicNowMs } from './clock.ts';
import { limits } from './constants.ts';
import type { Peer } from './peer.ts';

/**
 * Log compaction of the host's groups, and the KV syncs it depends on. A group's log is never
 * cut past the KV engine's durable applied index: after a crash the KV engine re-applies from
 * there, and the log must still hold those entries. The KV engine is synced (rarely: at most
 * once per kvSyncIntervalMs for compaction's sake) to move that index forward.
 */
export class LogCompaction {
  private lastKvSync = 0;
  /** Groups compacted so far (a host counter). */
  compactions = 0;

  constructor(
    private readonly kv: KvEngine,
    private readonly log: LogEngine,
    /** Applied entries a group's log may hold before it is compacted. */
    private readonly compactAfterEntries: number = limits.compactAfterEntries,
  ) {}

  /** Discards applied log entries of the peers past the threshold (kept: the most recent ones). */
  async compactDue(peers: readonly Peer[]): Promise<void> {
    const threshold = this.compactAfterEntries;
    const keep = Math.min(limits.compactKeepEntries, Math.floor(threshold / 2));
    const due = peers.filter((p) => p.applied - this.log.group(p.regionId).firstIndex() >= threshold);
    if (due.length === 0) return;
    if (monotonicNowMs() - this.lastKvSync >= limits.kvSyncIntervalMs) await this.syncKv();
    await this.compactLogs(due, keep);
  }

  /** Makes everything applied so far durable: moves the KV engine's durable applied indexes. */
  async syncKv(): Promise<void> {
    await this.kv.sync();
    this.lastKvSync = monotonicNowMs();
  }

  /**
   * Discards each peer's log up to `keep` entries below its applied index. Never past the
   * durable applied index (see above), nor past the persisted commit: a snapshot installed
   * since the last cycle moves `applied` ahead of the log until the next cycle persists it.
   */
  async compactLogs(peers: readonly Peer[], keep: number): Promise<void> {
    const requests: { groupId: number; compactTo: number }[] = [];
    for (const peer of peers) {
      const group = this.log.group(peer.regionId);
      const compactTo = Math.min(peer.applied - keep, this.kv.durableAppliedIndex(peer.regionId), group.hardState().commit);
      if (compactTo >= group.firstIndex()) requests.push({ groupId: peer.regionId, compactTo });
    }
    if (requests.length === 0) return;
    await this.log.compact(requests);
    this.compactions += requests.length;
  }
}
