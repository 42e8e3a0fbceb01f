/**
 * The host's writes to the log engine: a ready cycle's entries, hard states and snapshots
 * (persist), and the other writes of the host (bootstraps, founding children, destroyed
 * logs). A full appender queue pushes back; a commit-only write is not waited for, and its
 * failure stops the store.
 */
import { performance } from 'node:perf_hooks';
import type { Ready } from '@flotilla/raft';
import { isStorageError, type GroupWrite, type LogEngine } from '@flotilla/storage';
import { limits } from './constants.ts';
import type { HostObserver } from './host-types.ts';
import type { Peer } from './peer.ts';

export class HostLogWrites {
  /** Log-engine writes made (each one task, at most one fsync). */
  count = 0;
  /** Commit-only writes the cycles did not wait for (persist()), until they settle. */
  private readonly unawaited = new Set<Promise<void>>();

  constructor(
    private readonly log: LogEngine,
    /** Where each write's duration goes (read at every write: the host's observer may change). */
    private readonly observer: () => HostObserver | undefined,
    /** Stops the store: a write that was not waited for failed. */
    private readonly failStop: (err: unknown) => Promise<void>,
  ) {}

  /**
   * All groups' entries, hard states and snapshots: one write, one fsync — none when no group
   * needs one. A Ready that only moved the commit index does not (the core's `mustSync`): the
   * entries it commits are durable already, so they may be applied while the new commit index
   * is not. A crash may lose that unsynced commit while the KV engine keeps what was
   * applied under it; start() moves the log's commit up to the applied index again
   * (log-catch-up.ts). Sparing that fsync takes one of the three a write waited for in series
   * (leader's append, follower's append, leader's commit) off its path.
   *
   * Such a write is not even waited for: the cycle applies at once. The entries it commits were
   * written (and fsynced) by earlier cycles, which waited for their writes, and nothing in a
   * commit-only Ready must reach the disk before its messages leave (no entries, no term or
   * vote). Waiting cost the write's trip through the appender thread and back (~0.5–0.9 ms at
   * one write in flight, benchmarks/RESULTS.md) between a commit and its apply. Later writes
   * stay behind it: the engine keeps the order of write() calls, and it is submitted only when
   * the engine has room, so it is never refused and retried after a later one.
   */
  async persist(batch: readonly { peer: Peer; rd: Ready }[]): Promise<void> {
    const writes: GroupWrite[] = [];
    let sync = false;
    for (const { peer, rd } of batch) {
      if (rd.entries.length === 0 && !rd.hardState && !rd.snapshot) continue;
      if (rd.mustSync || rd.snapshot) sync = true;
      writes.push({
        groupId: peer.regionId,
        ...(rd.snapshot ? { snapshot: rd.snapshot.metadata } : {}),
        ...(rd.entries.length > 0 ? { entries: rd.entries } : {}),
        ...(rd.hardState ? { hardState: rd.hardState } : {}),
      });
    }
    if (writes.length === 0) return;
    if (!sync && this.log.hasRoom()) this.writeUnawaited(writes);
    else await this.write(writes, sync);
  }

  /**
   * An unsynced write the cycle does not wait for (persist()); its failure stops the store.
   * Such writes in flight are as many as the engine has room for (hasRoom()).
   */
  private writeUnawaited(writes: GroupWrite[]): void {
    const written = this.submit(writes, false).then(
      () => void this.unawaited.delete(written),
      (err: unknown) => {
        this.unawaited.delete(written);
        return this.failStop(err);
      },
    );
    this.unawaited.add(written);
  }

  /** A full appender queue pushes back: the write is submitted again once there is room. */
  async write(writes: GroupWrite[], sync = true): Promise<void> {
    for (;;) {
      try {
        return await this.submit(writes, sync);
      } catch (err) {
        if (!isStorageError(err, 'FLOTILLA_STORAGE_QUEUE_FULL')) throw err;
        await this.log.writable(); // backpressure: nothing was written, submit again
      }
    }
  }

  /** Many groups' writes outside the cycles (a start's repairs), in writes of at most a bootstrap's size. */
  async writeInChunks(writes: readonly GroupWrite[]): Promise<void> {
    for (let i = 0; i < writes.length; i += limits.bootstrapRegionsMax) await this.write(writes.slice(i, i + limits.bootstrapRegionsMax));
  }

  /**
   * One log-engine write, submitted at once (`now`: the host's writes are made one at a time,
   * nothing else of the turn would join them); timed and counted once it settles.
   */
  private async submit(writes: GroupWrite[], sync: boolean): Promise<void> {
    const started = performance.now();
    await this.log.write(writes, { sync, now: true });
    this.observer()?.logWrite((performance.now() - started) / 1000);
    this.count++;
  }

  /** Resolves once every write not waited for has settled (the host's close()). */
  async settled(): Promise<void> {
    await Promise.allSettled(this.unawaited);
  }
}
