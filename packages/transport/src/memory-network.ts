/**
 * MemoryNetwork: the wire between MemoryTransports, in one process, deterministic, with faults.
 *
 * Time is counted in network TURNS. One turn is one setImmediate of the network, in which
 *  1. every transport re-evaluates its links (up/down, reported like TCP's handshakes and losses);
 *  2. every transport flushes its queues: per destination one RaftBatch, one HeartbeatBatch and
 *     one HeartbeatResponseBatch frame (the same Outbox as TCP: same splits, same counts), each
 *     really encoded (so what a peer could not decode fails here too, and the receiver gets fresh
 *     objects, never the sender's);
 *  3. frames due this turn are delivered, per link in the order they were sent;
 *  4. snapshot streams requested since the last turn start.
 * Whatever is sent while handling a delivery goes out in the next turn. With no faults a frame
 * is delivered in the turn it was flushed; `delay` adds whole turns.
 *
 * Faults (by store ids, so they outlive a restarted transport; all deterministic: drops draw from
 * the network's seeded random source, everything else is exact):
 * - `drop(from, to, rate)`: frames on the link are lost with probability `rate` (1: all). The
 *   link stays up — a lossy path, unlike TCP, which never loses inside a connection.
 * - `partition(a, b, { oneWay })`: the link a→b (and b→a unless one-way) is DOWN: the sender sees
 *   the peer down, keeps queueing up to its bound (then 'queueFull'), frames in flight are lost,
 *   snapshot streams over it fail. `heal` brings it back up and the queue flows — as TCP's
 *   reconnect would.
 * - `block(from, to)`: backpressure, like a receiver that stopped reading: the link stays up but
 *   nothing is flushed on it; the queue grows to its bound. `unblock` resumes.
 * - `delay(from, to, turns)`: frames arrive `turns` turns later (order on the link kept).
 * Snapshot streams are not delayed or dropped; partitions and closes abort them.
 */
import { SeededRandom, type RandomSource } from '@flotilla/raft';
import { assert, invalidArgument } from './errors.ts';
import type { MemoryTransport } from './memory-transport.ts';
import type { StoreId } from './types.ts';

export interface MemoryNetworkOptions {
  /** Seed of the default random source (drops). Default 1. */
  readonly seed?: number;
  readonly random?: RandomSource;
}

export interface MemoryAddress {
  readonly host: string;
  readonly port: number;
}

/** The host part of every memory address. */
export const MEMORY_HOST = 'memory';

interface LinkFaults {
  dropRate: number;
  partitioned: boolean;
  blocked: boolean;
  delayTurns: number;
  /** The turn the last frame on this link is due (a later frame is never due earlier). */
  lastDueTurn: number;
}

interface InFlight {
  readonly due: number;
  readonly from: MemoryTransport;
  readonly to: MemoryTransport;
  readonly frame: Uint8Array;
}

/** 1/2^32 resolution for drop decisions through raft's integer RandomSource. */
const RANDOM_BOUND = 0x1_0000_0000;

export class MemoryNetwork {
  readonly random: RandomSource;
  private readonly endpoints = new Map<number, MemoryTransport>();
  private nextPort = 1;
  private readonly faults = new Map<string, LinkFaults>();
  private inFlight: InFlight[] = [];
  private readonly snapshotStarts: (() => void)[] = [];
  private scheduled: NodeJS.Immediate | null = null;
  private turnCount = 0;
  /** Frames lost to `drop` or partitions, for tests. */
  framesDropped = 0;

  constructor(options: MemoryNetworkOptions = {}) {
    this.random = options.random ?? new SeededRandom(options.seed ?? 1);
  }

  /** Turns run so far. */
  get turn(): number {
    return this.turnCount;
  }

  /** Frames sent and not delivered yet (delayed ones). */
  get framesInFlight(): number {
    return this.inFlight.length;
  }

  // ---- faults ---------------------------------------------------------------------------------------

  drop(from: StoreId, to: StoreId, rate: number): void {
    if (!(rate >= 0 && rate <= 1)) invalidArgument(`drop rate must be in [0, 1], got ${rate}`);
    this.link(from, to).dropRate = rate;
  }

  partition(a: StoreId, b: StoreId, options: { readonly oneWay?: boolean } = {}): void {
    this.link(a, b).partitioned = true;
    if (options.oneWay !== true) this.link(b, a).partitioned = true;
    this.schedule();
  }

  /** Heals the partition between `a` and `b` (both ways), or every partition. */
  heal(a?: StoreId, b?: StoreId): void {
    if (a === undefined || b === undefined) {
      for (const faults of this.faults.values()) faults.partitioned = false;
    } else {
      this.link(a, b).partitioned = false;
      this.link(b, a).partitioned = false;
    }
    this.schedule();
  }

  block(from: StoreId, to: StoreId): void {
    this.link(from, to).blocked = true;
  }

  unblock(from: StoreId, to: StoreId): void {
    this.link(from, to).blocked = false;
    this.schedule();
  }

  delay(from: StoreId, to: StoreId, turns: number): void {
    if (!Number.isSafeInteger(turns) || turns < 0) invalidArgument(`delay must be a non-negative integer of turns, got ${turns}`);
    this.link(from, to).delayTurns = turns;
  }

  /** Clears every fault. */
  reset(): void {
    this.faults.clear();
    this.schedule();
  }

  // ---- used by MemoryTransport -------------------------------------------------------------------------

  attach(transport: MemoryTransport): MemoryAddress {
    const port = this.nextPort++;
    this.endpoints.set(port, transport);
    this.schedule();
    return { host: MEMORY_HOST, port };
  }

  /** The transport at `address` left (closed): frames still in flight to it are lost. */
  detach(address: MemoryAddress): void {
    const transport = this.endpoints.get(address.port);
    this.endpoints.delete(address.port);
    const before = this.inFlight.length;
    this.inFlight = this.inFlight.filter((f) => f.to !== transport);
    this.framesDropped += before - this.inFlight.length;
    this.schedule();
  }

  resolve(address: MemoryAddress): MemoryTransport | undefined {
    return address.host === MEMORY_HOST ? this.endpoints.get(address.port) : undefined;
  }

  isPartitioned(from: StoreId, to: StoreId): boolean {
    return this.faults.get(key(from, to))?.partitioned === true;
  }

  isBlocked(from: StoreId, to: StoreId): boolean {
    return this.faults.get(key(from, to))?.blocked === true;
  }

  /** A frame leaves `from` for `to` in this turn (already counted as sent by `from`). */
  carry(from: MemoryTransport, to: MemoryTransport, frame: Uint8Array): void {
    const faults = this.faults.get(key(from.localStore, to.localStore));
    if (faults !== undefined && faults.dropRate > 0 && this.random.nextInt(RANDOM_BOUND) < faults.dropRate * RANDOM_BOUND) {
      this.framesDropped++;
      return;
    }
    let due = this.turnCount;
    if (faults !== undefined) {
      due = Math.max(due + faults.delayTurns, faults.lastDueTurn);
      faults.lastDueTurn = due;
    }
    this.inFlight.push({ due, from, to, frame });
  }

  /** Runs `start` at the next turn (a snapshot stream opening). */
  startSnapshot(start: () => void): void {
    this.snapshotStarts.push(start);
    this.schedule();
  }

  schedule(): void {
    if (this.scheduled === null) this.scheduled = setImmediate(() => this.runTurn());
  }

  private runTurn(): void {
    this.scheduled = null;
    this.turnCount++;
    const transports = [...this.endpoints.values()];
    for (const t of transports) t.refreshLinks();
    for (const t of transports) t.flushTurn();
    const due: InFlight[] = [];
    const later: InFlight[] = [];
    for (const f of this.inFlight) (f.due <= this.turnCount ? due : later).push(f);
    this.inFlight = later;
    for (const f of due) {
      if (this.isPartitioned(f.from.localStore, f.to.localStore)) {
        this.framesDropped++;
        continue;
      }
      f.to.receiveFrame(f.from.localStore, f.frame);
    }
    const starts = this.snapshotStarts.splice(0);
    for (const start of starts) start();
    if (this.inFlight.length > 0) this.schedule();
  }

  private link(from: StoreId, to: StoreId): LinkFaults {
    assert(from !== to, 'a link joins two stores');
    const k = key(from, to);
    let faults = this.faults.get(k);
    if (faults === undefined) {
      faults = { dropRate: 0, partitioned: false, blocked: false, delayTurns: 0, lastDueTurn: 0 };
      this.faults.set(k, faults);
    }
    return faults;
  }
}

function key(from: StoreId, to: StoreId): string {
  return `${from}>${to}`;
}
