import type { ReadState } from '@flotilla/raft';
import type { KvError } from '@flotilla/wire';
import { limits } from './constants.ts';

/**
 * Reads at ANY replica of a region (leader, follower, learner): linearizable ones and stale
 * ones with a maximum staleness. Both rest on one fact, the replica's SAFE TIME:
 *
 *   every entry committed before local time `safe.ms` is applied at this replica.
 *
 * How a replica learns a safe time: it starts a ReadIndex round at local moment t (a leader
 * confirms it with a heartbeat quorum; a follower forwards it and the leader confirms it the
 * same way). The answer is an index R such that every entry committed before the leader
 * RECEIVED the request is at or below R (Raft's ReadIndex: the leader had committed an entry
 * of its term, and the quorum round proves no newer leader had committed anything). The
 * request was created at t, so it was received after t: once applied >= R, t is a safe time.
 * Only THIS store's monotonic clock is read, and only to compare its own readings: no other
 * machine's clock and no bound on network delay or clock drift is assumed.
 *
 * Why not the time a leader's message (append, heartbeat, hibernate) carrying commit C was
 * received? Nothing acknowledged between the leader's send and our receive is in C, and the
 * one-way delay is unbounded; a deposed leader still sends heartbeats whose C misses a newer
 * leader's writes; a fresh leader's C lags the entries its predecessor committed. A send-side
 * timestamp would need the leader's clock (cross-machine). Hence the round trip, started here.
 *
 * A round answers every read waiting for it, and keeps serving later stale reads locally for
 * as long as their bound allows — with no message at all. A hibernated group sends nothing,
 * so its replicas' safe time only ages: the first stale read past the bound starts a round,
 * which wakes the group (see README.md, "Reads at any replica").
 */

/** A moment on this store: its monotonic clock (ms) and the order of the events that read it. */
export interface Moment {
  readonly ms: number;
  readonly seq: number;
}

let lastSeq = 0;

/**
 * Now, on this store's monotonic clock (performance.now(): never the wall clock, which may
 * jump). `seq` orders events that read the clock within one reading's resolution.
 */
export function storeMoment(): Moment {
  return { ms: performance.now(), seq: ++lastSeq };
}

/** What a read needs: a safe time issued at or after `notBeforeMs`, and after event `afterSeq`. */
export interface Freshness {
  readonly notBeforeMs: number;
  readonly afterSeq: number;
}

/** A linearizable read needs a round started after it arrived. */
export function linearizable(arrival: Moment): Freshness {
  return { notBeforeMs: arrival.ms, afterSeq: arrival.seq };
}

/** A stale read needs every entry committed before `maxStalenessMs` before it arrived. */
export function boundedStaleness(arrival: Moment, maxStalenessMs: number): Freshness {
  return { notBeforeMs: arrival.ms - maxStalenessMs, afterSeq: 0 };
}

function covers(issued: Moment, need: Freshness): boolean {
  return issued.ms >= need.notBeforeMs && issued.seq > need.afterSeq;
}

/** What the reads need of the raft node (a RawNode, or a fake in unit tests). */
export interface ReadIndexNode {
  /** Starts a ReadIndex round (the leader confirms it; a follower forwards it to the leader). */
  readIndex(context: Uint8Array): void;
  /** The leader this replica knows of (0: none) and its term: a round sent elsewhere is lost. */
  leadership(): { readonly leader: number; readonly term: number };
  /**
   * A leader's lease confirms a read on the spot (RawNode.leaseReadIndex): the read index, with
   * no round, no message and no ready cycle; undefined when a round is needed.
   */
  leaseReadIndex(): number | undefined;
  /** The index this replica applied through. */
  applied(): number;
}

interface Round {
  readonly context: string;
  readonly issued: Moment;
  readonly leader: number;
  readonly term: number;
  readIndex: number | undefined;
}

interface Waiter {
  readonly need: Freshness;
  readonly deadlineMs: number;
  readonly settle: (error: KvError | null) => void;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const NEVER: Moment = Object.freeze({ ms: -Infinity, seq: 0 });

export class ReplicaReads {
  private safe: Moment = NEVER;
  /** Rounds under way, in the order they were issued (a Map keeps insertion order). */
  private readonly rounds = new Map<string, Round>();
  /** The round issued last: while it is under way, no other covers more. */
  private newest: Round | undefined;
  private waiters: Waiter[] = [];
  private nextContext = 1;

  constructor(
    private readonly node: ReadIndexNode,
    /** The error for "no leader to confirm a read with" (NotLeader with the known hint). */
    private readonly notLeader: () => KvError,
    /** Tells the host the node has work (the round's message): run a ready cycle. */
    private readonly hasWork: () => void,
    private readonly clock: () => Moment = storeMoment,
  ) {}

  /** Every entry committed before this local time (ms) is applied here; -Infinity: none known. */
  get safeTimeMs(): number {
    return this.safe.ms;
  }

  /** Reads waiting for a round (for tests and bounds). */
  get waiting(): number {
    return this.waiters.length;
  }

  /**
   * Resolves null once the applied state covers `need`, at once when the safe time already
   * does. Otherwise it waits for a round (joining one that covers it, or starting one); it
   * resolves NotLeader when no leader is known to ask, and ServerBusy past the bound.
   * `refreshAfterMs`: a read served at once starts a background round when the safe time is
   * older than this, so that the next reads are served at once too.
   */
  wait(need: Freshness, deadlineMs: number, refreshAfterMs?: number): Promise<KvError | null> {
    if (covers(this.safe, need)) {
      if (refreshAfterMs !== undefined) this.maybeRefresh(refreshAfterMs);
      return Promise.resolve(null);
    }
    if (this.waiters.length >= limits.pendingReadsPerRegionMax) return Promise.resolve({ code: 'FLOTILLA_SERVER_BUSY', retryAfterMs: 0 });
    if (!this.someRoundCovers(need)) {
      const lease = this.leaseRound();
      if (lease === 'applied' && covers(this.safe, need)) return Promise.resolve(null);
      if (lease === 'none' && !this.issue()) return Promise.resolve(this.notLeader());
    }
    return new Promise((settle) => this.waiters.push({ need, deadlineMs, settle }));
  }

  /**
   * A round the leader's lease answers at once (leaders only, lease reads on). Its moment is
   * read BEFORE the lease is checked, as a round's is before its request: the lease proves no
   * other leader committed anything meanwhile, so the commit index covers every entry committed
   * before that moment. 'applied': the index is applied and the moment is the safe time now;
   * 'waiting': a round answered, released by the apply (release()); 'none': no lease.
   */
  private leaseRound(): 'applied' | 'waiting' | 'none' {
    const issued = this.clock();
    const index = this.node.leaseReadIndex();
    if (index === undefined) return 'none';
    if (index <= this.node.applied()) {
      if (issued.seq > this.safe.seq) this.safe = issued;
      return 'applied';
    }
    this.addRound(issued, index);
    this.hasWork(); // the committed entries are applied by a ready cycle, which calls release()
    return 'waiting';
  }

  /** A round issued at `issued`, to the leader known now; `readIndex` when already answered. */
  private addRound(issued: Moment, readIndex: number | undefined): Round {
    const { leader, term } = this.node.leadership();
    this.newest = { context: `${this.nextContext++}`, issued, leader, term, readIndex };
    this.rounds.set(this.newest.context, this.newest);
    return this.newest;
  }

  /** The rounds' answers (a Ready's read states); a context not ours (a resent round's) is ignored. */
  onReadStates(states: readonly ReadState[]): void {
    for (const rs of states) {
      const round = this.rounds.get(decoder.decode(rs.context));
      if (round) round.readIndex = rs.index;
    }
  }

  /**
   * After each ready cycle (the applied index moved, read states arrived, the leadership may
   * have changed): rounds whose index is applied move the safe time and release the reads they
   * cover; rounds lost to a leader change or silence are sent again.
   */
  release(applied: number): void {
    if (this.rounds.size === 0 && this.waiters.length === 0) return;
    for (const round of this.rounds.values()) {
      if (round.readIndex === undefined || round.readIndex > applied) continue;
      this.rounds.delete(round.context);
      if (round.issued.seq > this.safe.seq) this.safe = round.issued;
    }
    this.waiters = this.waiters.filter((w) => {
      if (!covers(this.safe, w.need)) return true;
      w.settle(null);
      return false;
    });
    this.resendLost();
  }

  /** The replica is going away: everything waiting fails. */
  failAll(error: KvError): void {
    for (const w of this.waiters) w.settle(error);
    this.waiters = [];
    this.rounds.clear();
  }

  private someRoundCovers(need: Freshness): boolean {
    // Later rounds cover more, so the newest answers alone (one comparison per read under load).
    const newest = this.newest;
    if (newest !== undefined && this.rounds.has(newest.context)) return covers(newest.issued, need);
    for (const round of this.rounds.values()) if (covers(round.issued, need)) return true;
    return false;
  }

  /** Starts a round now; false when no leader is known (the core would drop the request). */
  private issue(): boolean {
    if (this.node.leadership().leader === 0) return false;
    // Read the clock BEFORE the request exists: the leader receives it after this moment (a
    // leader, synchronously inside readIndex()), which is what makes `issued` a safe time.
    const round = this.addRound(this.clock(), undefined);
    this.node.readIndex(encoder.encode(round.context));
    this.hasWork();
    return true;
  }

  private maybeRefresh(refreshAfterMs: number): void {
    if (this.rounds.size > 0) return; // one under way will move the safe time
    if (this.clock().ms - this.safe.ms > refreshAfterMs) this.issue();
  }

  /**
   * A round unanswered while the leader or term changed went to a node that dropped it (a
   * leader clears its pending reads when its term ends); one unanswered for
   * `readIndexRetryMs` was presumably dropped (queue full, lost message). The reads that no
   * remaining round covers get one new round, or NotLeader when no leader is known.
   */
  private resendLost(): void {
    const now = this.clock();
    this.expire(now.ms);
    const { leader, term } = this.node.leadership();
    let lost = false;
    for (const round of this.rounds.values()) {
      if (round.readIndex !== undefined) continue; // answered: it only waits for the apply
      if (round.leader === leader && round.term === term && now.ms - round.issued.ms < limits.readIndexRetryMs) continue;
      this.rounds.delete(round.context);
      lost = true;
    }
    if (!lost || this.waiters.every((w) => this.someRoundCovers(w.need))) return;
    // A round started now covers every waiting read: each arrived before now.
    if (this.issue()) return;
    const error = this.notLeader();
    this.waiters = this.waiters.filter((w) => {
      if (this.someRoundCovers(w.need)) return true;
      w.settle(error);
      return false;
    });
  }

  /** Reads past their request's deadline were answered Timeout already: forget them. */
  private expire(nowMs: number): void {
    if (!this.waiters.some((w) => w.deadlineMs <= nowMs)) return;
    this.waiters = this.waiters.filter((w) => {
      if (w.deadlineMs > nowMs) return true;
      w.settle({ code: 'FLOTILLA_TIMEOUT' });
      return false;
    });
  }
}
