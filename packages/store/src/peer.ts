import { performance } from 'node:perf_hooks';
import { RawNode, isRaftError, type ConfChange, type ProposalPosition, type RaftConfig, type ReadState } from '@flotilla/raft';
import type { CommandResult, MergeState, RegionMeta } from '@flotilla/storage';
import type { KvError, ReadConsistency } from '@flotilla/wire';
import { ENTRY_FRAMING_BYTES_MAX, encodeCommands, type DataCommand, type EntryCommand } from './command-codec.ts';
import { limits } from './constants.ts';
import { ReplicaReads, boundedStaleness, linearizable, type Moment } from './replica-reads.ts';

/** How a proposal ended: its entry applied (with each command's result), or it failed. */
export type ProposalOutcome =
  | { readonly kind: 'applied'; readonly results: readonly CommandResult[] }
  | { readonly kind: 'failed'; readonly error: KvError };

/**
 * Data writes proposed since the last flush (one event-loop turn), merged into ONE entry: the
 * writes of many requests to a region then cost one entry, one proposal and one apply segment,
 * not one each (benchmarks/cluster/WRITE.md). Bounded like one entry: commandsPerEntryMax
 * commands, entryBytesMax bytes.
 */
interface ProposalBatch {
  readonly commands: DataCommand[];
  /** Upper bound of the commands' encoded bytes (commandBytesBound). */
  bytes: number;
  /** Each proposer's share of the commands, in order, and how to answer it. */
  readonly waiters: { readonly count: number; readonly settle: (outcome: ProposalOutcome) => void }[];
}

/** The entry bytes left for commands once the entry's own framing is counted (commandBytesBound sums). */
export const ENTRY_COMMAND_BYTES_MAX = limits.entryBytesMax - ENTRY_FRAMING_BYTES_MAX;

interface PendingProposal {
  readonly term: number;
  /** performance.now() when proposed. */
  readonly sinceMs: number;
  readonly settle: (outcome: ProposalOutcome) => void;
}

/**
 * One replica of one region on this store: its Raft node, the region's metadata, and the
 * client work waiting on it. It does no I/O: the host persists, sends and applies for all
 * peers at once and tells each peer what happened.
 */
export class Peer {
  readonly node: RawNode;
  region: RegionMeta;
  /** Highest index applied to the KV engine. */
  applied: number;
  /**
   * Created by a first message of a group new to this store: its metadata is a guess until a
   * snapshot installs the real region, and it serves no client.
   */
  placeholder = false;
  /** Frozen to be merged into a neighbour (merge.ts): no writes, reads or changes apply. */
  merging: MergeState | undefined;
  /** Its merge's target took it in the current cycle: destroyed at the cycle's end. */
  mergedAway = false;
  /** Proposals waiting for their entry to apply; no Map until the first one (idle regions). */
  private proposals: Map<number, PendingProposal> | null = null;
  /** Data writes of this turn not yet proposed (flushProposals). */
  private batch: ProposalBatch | null = null;
  /**
   * Reads at this replica, whatever its role (replica-reads.ts has the safety argument).
   * Created by the first read: most regions of a store are idle and never need one.
   */
  private reads: ReplicaReads | null = null;

  constructor(
    readonly peerId: number,
    region: RegionMeta,
    applied: number,
    raftConfig: RaftConfig,
    /** Tells the host this peer's node has new work (a proposal, a read): run a ready cycle. */
    private readonly hasWork: () => void,
  ) {
    this.region = region;
    this.applied = applied;
    this.node = new RawNode(raftConfig);
  }

  private replicaReads(): ReplicaReads {
    if (this.reads !== null) return this.reads;
    const leadership = (): { leader: number; term: number } => ({ leader: this.node.leader, term: this.node.term });
    const node = {
      readIndex: (context: Uint8Array) => this.node.readIndex(context),
      leadership,
      leaseReadIndex: () => this.node.leaseReadIndex(),
      applied: () => this.applied,
    };
    this.reads = new ReplicaReads(node, () => this.notLeader(), this.hasWork);
    return this.reads;
  }

  get regionId(): number {
    return this.region.id;
  }

  /** Cheap: reads the role, never status() (which copies the progress of every member). */
  isLeader(): boolean {
    return this.node.role === 'leader';
  }

  /** The store hosting a member of this region, if the region knows it. */
  storeOf(peerId: number): number | undefined {
    return this.region.peers.find((p) => p.id === peerId)?.storeId;
  }

  notLeader(): KvError {
    const leader = this.node.leader;
    const storeId = leader === 0 ? undefined : this.storeOf(leader);
    return { code: 'FLOTILLA_NOT_LEADER', regionId: this.regionId, leader: storeId === undefined ? null : { peerId: leader, storeId } };
  }

  /**
   * Proposes data writes that fit one entry (`bytes`: their commandBytesBound sum, which the
   * caller computed to cut them into entries); settles with one result per command when they
   * apply, or when they cannot. They wait for the host's next ready cycle, which proposes every
   * data write of the turn to this region as one entry (flushProposals).
   */
  proposeWrites(commands: readonly DataCommand[], bytes: number): Promise<ProposalOutcome> {
    if (!this.isLeader()) return Promise.resolve({ kind: 'failed', error: this.notLeader() });
    let batch = this.batch;
    if (batch !== null && (batch.commands.length + commands.length > limits.commandsPerEntryMax || batch.bytes + bytes > ENTRY_COMMAND_BYTES_MAX)) {
      this.flushProposals();
      batch = null;
    }
    if (batch === null) {
      if (this.proposals !== null && this.proposals.size >= limits.pendingProposalsPerRegionMax) return Promise.resolve(busy());
      batch = this.batch = { commands: [], bytes: 0, waiters: [] };
      this.hasWork(); // the host's next cycle flushes it
    }
    for (const c of commands) batch.commands.push(c);
    batch.bytes += bytes;
    const waiters = batch.waiters;
    return new Promise((settle) => waiters.push({ count: commands.length, settle }));
  }

  /**
   * Proposes an admin command (split, merge steps) as its own entry, at once, after the data
   * writes proposed before it; settles when it applies or cannot.
   */
  propose(commands: readonly EntryCommand[]): Promise<ProposalOutcome> {
    this.flushProposals();
    return this.proposeNow(commands);
  }

  /**
   * Proposes the data writes merged this turn as one entry (the host calls it for every peer
   * with work as a ready cycle starts, before it asks for the peer's Ready). Each proposer gets
   * its own commands' results, or the entry's failure.
   */
  flushProposals(): void {
    const batch = this.batch;
    if (batch === null) return;
    this.batch = null;
    const waiters = batch.waiters;
    if (waiters.length === 1) {
      void this.proposeNow(batch.commands).then(waiters[0]!.settle);
      return;
    }
    void this.proposeNow(batch.commands).then((outcome) => {
      let at = 0;
      for (const { count, settle } of waiters) {
        settle(outcome.kind === 'applied' ? { kind: 'applied', results: outcome.results.slice(at, at + count) } : outcome);
        at += count;
      }
    });
  }

  /** Proposes `commands` as one entry now. */
  private proposeNow(commands: readonly EntryCommand[]): Promise<ProposalOutcome> {
    if (!this.isLeader()) return Promise.resolve({ kind: 'failed', error: this.notLeader() });
    if (this.proposals !== null && this.proposals.size >= limits.pendingProposalsPerRegionMax) return Promise.resolve(busy());
    let position;
    try {
      const data = encodeCommands(commands);
      // Callers split writes under the bound; this keeps any other caller's from the log.
      if (data.byteLength > limits.entryBytesMax) {
        return Promise.resolve({ kind: 'failed', error: { code: 'FLOTILLA_REQUEST_TOO_LARGE', requestBytesMax: limits.entryBytesMax, opsMax: limits.commandsPerEntryMax } });
      }
      position = this.node.propose([data]);
    } catch (err) {
      // A leader drops proposals during a leadership transfer or past its uncommitted budget.
      if (isRaftError(err, 'FLOTILLA_RAFT_PROPOSAL_DROPPED')) return Promise.resolve(this.isLeader() ? busy() : { kind: 'failed', error: this.notLeader() });
      throw err;
    }
    return this.track(position);
  }

  /** Proposes a membership change (see membership.ts); settles when it applies. */
  proposeConfChange(cc: ConfChange): Promise<ProposalOutcome> {
    if (!this.isLeader()) return Promise.resolve({ kind: 'failed', error: this.notLeader() });
    let position;
    try {
      position = this.node.proposeConfChange(cc);
    } catch (err) {
      // Another change is still pending, or a transfer runs: try again later.
      if (isRaftError(err, 'FLOTILLA_RAFT_CONF_CHANGE_REJECTED') || isRaftError(err, 'FLOTILLA_RAFT_PROPOSAL_DROPPED')) return Promise.resolve(busy());
      throw err;
    }
    return this.track(position);
  }

  private track(position: ProposalPosition | null): Promise<ProposalOutcome> {
    if (position === null) return Promise.resolve({ kind: 'failed', error: this.notLeader() });
    const { firstIndex, term } = position;
    const proposals = (this.proposals ??= new Map());
    const sinceMs = performance.now();
    const settled = new Promise<ProposalOutcome>((settle) => proposals.set(firstIndex, { term, sinceMs, settle }));
    this.hasWork();
    return settled;
  }

  /**
   * The entry at `index` applied: settle the proposal that put it there, if any. Answers how
   * long that proposal took to apply (ms), or undefined when none of ours applied here.
   */
  onEntryApplied(index: number, term: number, results: readonly CommandResult[]): number | undefined {
    const pending = this.proposals?.get(index);
    if (!pending) return undefined;
    this.proposals!.delete(index);
    // Another leader's entry took the slot: ours was never committed and never will be.
    if (pending.term !== term) {
      pending.settle({ kind: 'failed', error: this.notLeader() });
      return undefined;
    }
    pending.settle({ kind: 'applied', results });
    return performance.now() - pending.sinceMs;
  }

  /**
   * Waits until a read that arrived at `arrival` may be served from this replica's applied
   * state — at any replica, not only the leader. Linearizable: a ReadIndex round started after
   * it arrived is applied. Stale: the replica's safe time is at most `maxStalenessMs` older than
   * its arrival, at once when it already is, else after a round (a follower read through the
   * leader). Resolves null when ready, or the error (NotLeader: no leader known to ask).
   */
  readyToRead(consistency: ReadConsistency, arrival: Moment, deadlineMs: number): Promise<KvError | null> {
    const reads = this.replicaReads();
    if (consistency.level === 'linearizable') return reads.wait(linearizable(arrival), deadlineMs);
    const bound = consistency.maxStalenessMs;
    return reads.wait(boundedStaleness(arrival, bound), deadlineMs, bound * limits.staleReadRefreshFraction);
  }

  /** Every entry committed before this time (the store's monotonic clock, ms) is applied here. */
  safeTimeMs(): number {
    return this.reads?.safeTimeMs ?? Number.NEGATIVE_INFINITY;
  }

  /** Read states answer rounds of this replica's reads: none without a read (foreign contexts are ignored anyway). */
  onReadStates(states: readonly ReadState[]): void {
    this.reads?.onReadStates(states);
  }

  /** Called after applying (every ready cycle of this peer): reads whose round is applied proceed. */
  releaseReads(): void {
    this.reads?.release(this.applied);
  }

  /**
   * The soft state changed and this replica does not lead. Nothing to do here: its read
   * rounds are rechecked in releaseReads() of the same cycle, after this Ready's read states
   * (an unanswered round sent to a former leader is sent again to the new one).
   */
  onLeadershipLost(): void {}

  /**
   * The peer is going away (the store closes, the replica was removed): everything waiting
   * fails. Reads get `error`. A pending proposal's entry may still commit through the other
   * replicas, so it gets FLOTILLA_TIMEOUT — "outcome unknown" — never an error that tells a
   * client the write did not happen and may safely be retried.
   */
  failAll(error: KvError): void {
    // Writes never proposed did not happen: they get `error`, as reads do.
    const batch = this.batch;
    this.batch = null;
    if (batch !== null) for (const w of batch.waiters) w.settle({ kind: 'failed', error });
    const proposals = this.proposals;
    this.proposals = null;
    if (proposals !== null) for (const p of proposals.values()) p.settle({ kind: 'failed', error: { code: 'FLOTILLA_TIMEOUT' } });
    this.reads?.failAll(error);
  }
}

function busy(): ProposalOutcome {
  return { kind: 'failed', error: { code: 'FLOTILLA_SERVER_BUSY', retryAfterMs: 0 } };
}
