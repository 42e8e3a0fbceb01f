/**
 * What a store does for the placement driver while it runs:
 * - a store heartbeat every `storeHeartbeatMs` (disk capacity and use, region and leader
 *   counts, traffic), whose answer tells where every other store listens;
 * - a region heartbeat for each region it leads — at once when the region's epoch, peers or
 *   leadership changed since the last one, while PD has an operator step for it, and at least
 *   every `regionHeartbeatMs` otherwise — batched up to pdLimits.regionHeartbeatsPerRequestMax;
 * - the operator steps PD answers with, run by the OperatorRunner;
 * - an operator watch parked at PD, answered as soon as PD starts an operator on a region
 *   this store leads: its heartbeat goes out at once and brings the first step back.
 */
import { statfs } from 'node:fs/promises';
import type { KvEngine } from '@flotilla/storage';
import type { TcpTransport } from '@flotilla/transport';
import { pdLimits, type RegionHeartbeat } from '@flotilla/wire';
import { monotonicNowMs } from '../clock.ts';
import type { HostEventLog } from '../host-types.ts';
import type { MultiRaftHost } from '../host.ts';
import type { Peer } from '../peer.ts';
import { OperatorRunner } from './operator-runner.ts';
import { isPending } from './peer-health.ts';
import type { PdClient } from './pd-client.ts';
import type { RegionFlow } from './region-flow.ts';
import { RegionSizes, measureRegion, sizeRecountRowsPerSecondMax } from './region-size.ts';

export interface PdWorkerOptions {
  readonly storeId: number;
  readonly dataDir: string;
  readonly client: PdClient;
  readonly host: MultiRaftHost;
  readonly kv: KvEngine;
  readonly transport: Pick<TcpTransport, 'setPeer'>;
  readonly flow: RegionFlow;
  readonly events: HostEventLog;
  readonly storeHeartbeatMs: number;
  readonly regionHeartbeatMs: number;
  /** The data disk is below its reserve (disk-guard.ts): told to PD, which moves leaderships away. */
  readonly refusingWrites?: () => boolean;
}

/** How often the worker looks for led regions whose heartbeat is due. */
export const regionCheckMs = 1_000;
/** How long one operator watch is parked at PD before it is renewed. */
export const operatorWatchMs = 20_000;
/** Pause after a failed watch (PD down or electing) before the next one. */
const WATCH_RETRY_MS = 1_000;
/** Pause after a watch that woke with work, before parking the next one. */
const WATCH_PAUSE_MS = 100;
/** Region ids visited per page when walking this store's regions. */
const REGION_PAGE = 4_096;

interface Reported {
  /** What the last heartbeat said: epoch, peers and leadership term, as one comparable string. */
  shape: string;
  atMs: number;
  /** PD answered with a step: report again soon, to learn the next one. */
  operatorActive: boolean;
}

export class PdWorker {
  private readonly runner: OperatorRunner;
  private readonly reported = new Map<number, Reported>();
  /** Last count of each led region, and when to count it again. */
  private readonly sizes: RegionSizes;
  private timers: NodeJS.Timeout[] = [];
  private regionPass: Promise<void> | null = null;
  private watchPass: Promise<void> | null = null;
  private storePass: Promise<void> | null = null;
  /** The store's state changed while a store heartbeat was out: send one more when it is back. */
  private storeChangedMeanwhile = false;
  private stopped = false;

  constructor(private readonly options: PdWorkerOptions) {
    this.runner = new OperatorRunner(options.host, options.kv, options.events);
    const pace = { rowsPerSecondMax: sizeRecountRowsPerSecondMax, stopped: () => this.stopped };
    this.sizes = new RegionSizes({
      count: (region) => measureRegion(options.kv, region),
      recount: (region) => measureRegion(options.kv, region, pace),
      recountFailed: (regionId, err) => options.events.warn({ regionId, err: String(err) }, 'counting a region\'s size failed'),
    });
  }

  start(): void {
    const every = (ms: number, run: () => void): void => {
      const timer = setInterval(run, ms);
      timer.unref();
      this.timers.push(timer);
    };
    every(this.options.storeHeartbeatMs, () => void this.storeHeartbeat());
    every(regionCheckMs, () => void this.regionHeartbeats());
    void this.storeHeartbeat();
    this.watchPass = this.watchOperators();
  }

  /** Keeps one operator watch parked at PD while the worker runs. */
  private async watchOperators(): Promise<void> {
    while (!this.stopped) {
      try {
        const answer = await this.options.client.watchOperators(this.options.storeId, operatorWatchMs);
        if (answer.regionIds.length > 0) {
          this.markOperatorsWaiting(answer.regionIds);
          await this.regionHeartbeats();
          // PD answers at once while a step waits: if this store could not deliver it (it
          // stopped leading the region), do not ask again in a tight loop.
          await new Promise((resolve) => setTimeout(resolve, WATCH_PAUSE_MS));
        }
      } catch {
        if (!this.stopped) await new Promise((resolve) => setTimeout(resolve, WATCH_RETRY_MS));
      }
    }
  }

  private markOperatorsWaiting(regionIds: readonly number[]): void {
    for (const regionId of regionIds) {
      const last = this.reported.get(regionId);
      if (last) last.operatorActive = true;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    await this.options.client.close();
    await Promise.allSettled([this.regionPass, this.storePass, this.watchPass, this.sizes.close()]);
  }

  /** One store heartbeat (skipped while the previous one is still out). */
  storeHeartbeat(): Promise<void> {
    this.storePass ??= this.sendStoreHeartbeat().finally(() => {
      this.storePass = null;
      if (this.storeChangedMeanwhile && !this.stopped) {
        this.storeChangedMeanwhile = false;
        void this.storeHeartbeat();
      }
    });
    return this.storePass;
  }

  /**
   * Something PD schedules by changed in the store (its data disk started or stopped refusing
   * writes): tell PD now rather than at the next interval (`storeHeartbeatMs`, 10 s by
   * default), so that it moves leaderships off a store that refuses puts within a scheduling
   * pass. A heartbeat already out may have read the old state: one more follows it.
   */
  storeChanged(): void {
    if (this.stopped) return;
    if (this.storePass !== null) this.storeChangedMeanwhile = true;
    else void this.storeHeartbeat();
  }

  /** One pass over the led regions (skipped while the previous one runs). */
  regionHeartbeats(): Promise<void> {
    this.regionPass ??= this.sendRegionHeartbeats().finally(() => (this.regionPass = null));
    return this.regionPass;
  }

  private async sendStoreHeartbeat(): Promise<void> {
    const { host, storeId } = this.options;
    try {
      const disk = await statfs(this.options.dataDir);
      const capacityBytes = disk.blocks * disk.bsize;
      const availableBytes = disk.bavail * disk.bsize;
      let leaderCount = 0;
      for (const id of this.regionIdsHere()) if (host.peer(id)?.isLeader()) leaderCount++;
      const answer = await this.options.client.storeHeartbeat({
        storeId,
        capacityBytes,
        availableBytes,
        usedBytes: Math.max(0, capacityBytes - availableBytes),
        regionCount: host.stats().peers,
        leaderCount,
        rates: this.options.flow.takeStore(),
        refusingWrites: this.options.refusingWrites?.() === true,
      });
      this.markOperatorsWaiting(answer.operatorRegionIds);
      if (answer.operatorRegionIds.length > 0) void this.regionHeartbeats();
      for (const store of answer.stores) {
        if (store.storeId === storeId) continue;
        const at = store.raftAddress.lastIndexOf(':');
        this.options.transport.setPeer(store.storeId, { host: store.raftAddress.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(store.raftAddress.slice(at + 1)) });
      }
    } catch (err) {
      if (!this.stopped) this.options.events.warn({ err: String(err) }, 'PD store heartbeat failed');
    }
  }

  private async sendRegionHeartbeats(): Promise<void> {
    const nowMs = monotonicNowMs();
    const due: Peer[] = [];
    const live = new Set<number>();
    for (const id of this.regionIdsHere()) {
      const peer = this.options.host.peer(id);
      if (!peer || peer.placeholder || !peer.isLeader()) continue;
      live.add(id);
      const last = this.reported.get(id);
      if (!last || last.shape !== shapeOf(peer) || last.operatorActive || nowMs - last.atMs >= this.options.regionHeartbeatMs) due.push(peer);
    }
    for (const id of this.reported.keys()) if (!live.has(id)) this.reported.delete(id);
    this.sizes.forgetExcept(live);
    this.options.flow.forgetExcept(live);
    for (let at = 0; at < due.length && !this.stopped; at += pdLimits.regionHeartbeatsPerRequestMax) {
      await this.sendBatch(due.slice(at, at + pdLimits.regionHeartbeatsPerRequestMax), nowMs);
    }
  }

  private async sendBatch(peers: readonly Peer[], nowMs: number): Promise<void> {
    const heartbeats: RegionHeartbeat[] = [];
    for (const peer of peers) heartbeats.push(await this.heartbeatOf(peer));
    try {
      const answer = await this.options.client.regionHeartbeats({ storeId: this.options.storeId, heartbeats });
      const commanded = new Set(answer.commands.map((c) => c.regionId));
      for (const peer of peers) this.reported.set(peer.regionId, { shape: shapeOf(peer), atMs: nowMs, operatorActive: commanded.has(peer.regionId) });
      for (const command of answer.commands) this.runner.run(command);
    } catch (err) {
      if (!this.stopped) this.options.events.warn({ err: String(err), regions: peers.length }, 'PD region heartbeats failed');
    }
  }

  private async heartbeatOf(peer: Peer): Promise<RegionHeartbeat> {
    const status = peer.node.status();
    const downPeerIds: number[] = [];
    const pendingPeerIds: number[] = [];
    for (const [id, progress] of status.progress) {
      if (id === peer.peerId) continue;
      // A hibernating group exchanges no heartbeats, so `recentActive` says nothing there; a
      // dead store wakes its groups (store liveness), and then it does.
      if (!status.hibernating && !progress.recentActive) downPeerIds.push(id);
      else if (isPending(progress, status.firstIndex, status.lastIndex)) pendingPeerIds.push(id);
    }
    const size = await this.sizes.of(peer.region, this.options.flow.takeWritesSinceEstimate(peer.regionId));
    return {
      region: peer.region,
      leaderPeerId: peer.peerId,
      downPeerIds,
      pendingPeerIds,
      approximateBytes: size.bytes,
      approximateKeys: size.keys,
      rates: this.options.flow.take(peer.regionId),
    };
  }

  private *regionIdsHere(): Generator<number> {
    let after = 0;
    for (;;) {
      const page = this.options.host.regionIds(after, REGION_PAGE);
      yield* page;
      if (page.length < REGION_PAGE) return;
      after = page.at(-1)!;
    }
  }
}

/** Epoch, peers and leadership term: a change of any is reported at once. */
function shapeOf(peer: Peer): string {
  const r = peer.region;
  return `${r.epoch.version}.${r.epoch.confVer}.${peer.node.term}.${r.peers.map((p) => `${p.id}${p.role[0]}`).join(',')}`;
}
