/**
 * The store's guard against a full data disk.
 *
 * RocksDB fails a write it cannot complete, and a failed raft log write stops the store
 * (host.ts, failStop: a store must not limp on after a lost fsync). So the store keeps a reserve:
 * while the data directory's filesystem has less than `reserveBytes` available, the KV service
 * refuses the client writes that add data — put and compare-and-swap — with FLOTILLA_DISK_FULL
 * (nothing written), and goes on with everything else: reads, deletes and delete-ranges (they
 * free space once compacted), raft replication, splits, membership changes and snapshots, which
 * the reserve is there for (replication down to half of it, below). etcd does the same with its
 * NOSPACE alarm (a quota instead of free space: reads and deletes only); TiKV keeps a reserve
 * file for the same reason.
 *
 * The reserve is `--disk-reserve-bytes`, by default 5% of the filesystem, at most 2 GiB
 * (diskReserveAuto). Checked with one statfs every `checkMs`, and once before the store serves
 * (a store started on a full disk refuses from its first request). Writes are accepted again
 * only once the space is back above the reserve by an eighth of it, so a disk at the edge does
 * not flap between the two.
 *
 * A second, lower threshold — half the reserve (CRITICAL_FRACTION) — is for what the first does
 * not stop: the writes of regions other stores lead, which reach this store as raft appends. Below
 * it the store stops taking appends that carry entries, and snapshots (host.ts,
 * `refusesReplication`): its replicas fall behind while the other replicas of each region go on
 * committing, as if this store's link were slow, instead of the disk filling up and the store
 * fail-stopping on a failed log write (and again at every restart). Heartbeats and everything
 * else still flow; once the space is back above the threshold by an eighth of the reserve, Raft
 * retransmits what was dropped (or sends a snapshot) and the replicas catch up. TiKV stops raft
 * appends to a store whose disk is almost full the same way. PD meanwhile places no new replicas
 * on the store (its low-space ratio) and moves regions off it (balance by fill); an operator
 * frees or adds space (docs/OPERATIONS.md, "A full disk").
 */
import { statfs } from 'node:fs/promises';
import type { KvError } from '@flotilla/wire';

/** The default reserve: a share of the filesystem's capacity, bounded (a 5 GiB volume keeps 256 MiB). */
export const diskReserveAuto = Object.freeze({ fraction: 0.05, bytesMax: 2 * 1024 ** 3 });
/** Writes come back once the space is this share of the reserve above it. */
const RESUME_MARGIN_FRACTION = 1 / 8;
/** Below this share of the reserve the store takes no more replicated entries (appends, snapshots). */
export const CRITICAL_FRACTION = 1 / 2;

export interface DiskSpace {
  /** Bytes an unprivileged writer may still use (statfs bavail × bsize). */
  readonly availableBytes: number;
  readonly capacityBytes: number;
}

/** What the guard knows now: for metrics (metrics.ts) and logs. */
export interface DiskStatus {
  /** Writes that add data are refused. */
  readonly low: boolean;
  /** Below half the reserve: replicated entries (appends, snapshots) are refused too. */
  readonly critical: boolean;
  /** null: not known yet (an 'auto' reserve before the first reading). */
  readonly reserveBytes: number | null;
  /** The last reading; null: none yet, or the guard is off. */
  readonly space: DiskSpace | null;
}

/** Reads the space of the filesystem holding `dir`. */
export type DiskProbe = (dir: string) => Promise<DiskSpace>;

export const statfsProbe: DiskProbe = async (dir) => {
  const s = await statfs(dir);
  return { availableBytes: s.bavail * s.bsize, capacityBytes: s.blocks * s.bsize };
};

/** What onChange reports: the status after the change, with the reading that moved it and the reserve. */
export type DiskChange = DiskStatus & { readonly space: DiskSpace; readonly reserveBytes: number };

export interface DiskGuardOptions {
  readonly storeId: number;
  /** The data directory. */
  readonly dir: string;
  /** Writes that add data are refused below this many available bytes; 0: never; auto: diskReserveAuto. */
  readonly reserveBytes: number | 'auto';
  /** Between two checks. */
  readonly checkMs: number;
  readonly probe?: DiskProbe;
  /** Writes or replication became refused, or accepted again (the state after the change). */
  readonly onChange?: (change: DiskChange) => void;
  /** A check failed (the state stays what it was). */
  readonly onProbeError?: (err: unknown) => void;
}

export class DiskGuard {
  private low = false;
  private critical = false;
  private space: DiskSpace | null = null;
  /** The reserve in bytes; null until an 'auto' one is known (the first reading gives the capacity). */
  private reserve: number | null;
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | null = null;
  private readonly probe: DiskProbe;

  constructor(private readonly options: DiskGuardOptions) {
    const r = options.reserveBytes;
    if (r !== 'auto' && (!Number.isSafeInteger(r) || r < 0)) throw new RangeError(`DiskGuard: reserveBytes must be 'auto' or a non-negative integer, got ${r}`);
    this.reserve = r === 'auto' ? null : r;
    this.probe = options.probe ?? statfsProbe;
  }

  /** Checks once (awaited: the state is known before the store serves), then every checkMs. */
  async start(): Promise<void> {
    if (this.reserve === 0) return;
    await this.check();
    this.timer = setInterval(() => void this.check(), this.options.checkMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One check now; a check already under way is joined, not doubled. */
  check(): Promise<void> {
    this.checking ??= this.checkOnce().finally(() => (this.checking = null));
    return this.checking;
  }

  /** The error a write that adds data is answered with now, or null while there is room. */
  refusal(): KvError | null {
    if (!this.low || this.space === null || this.reserve === null) return null;
    return { code: 'FLOTILLA_DISK_FULL', storeId: this.options.storeId, availableBytes: this.space.availableBytes, reserveBytes: this.reserve };
  }

  /** True while writes that add data are refused (below the reserve; refusal() says how). */
  refusesWrites(): boolean {
    return this.low;
  }

  /** True while the store must take no replicated entries (below half the reserve). */
  refusesReplication(): boolean {
    return this.critical;
  }

  status(): DiskStatus {
    return { low: this.low, critical: this.critical, reserveBytes: this.reserve, space: this.space };
  }

  private async checkOnce(): Promise<void> {
    let space: DiskSpace;
    try {
      space = await this.probe(this.options.dir);
    } catch (err) {
      this.options.onProbeError?.(err);
      return;
    }
    this.space = space;
    const reserve = (this.reserve ??= Math.min(diskReserveAuto.bytesMax, Math.floor(space.capacityBytes * diskReserveAuto.fraction)));
    const margin = Math.floor(reserve * RESUME_MARGIN_FRACTION);
    const criticalBelow = Math.floor(reserve * CRITICAL_FRACTION);
    const low = below(space.availableBytes, reserve, margin, this.low);
    const critical = below(space.availableBytes, criticalBelow, margin, this.critical);
    if (low === this.low && critical === this.critical) return;
    this.low = low;
    this.critical = critical;
    this.options.onChange?.({ low, critical, space, reserveBytes: reserve });
  }
}

/** Below `threshold`; once below, until `margin` above it (no flapping at the edge). */
function below(available: number, threshold: number, margin: number, was: boolean): boolean {
  return available < (was ? threshold + margin : threshold);
}
