import { RawNode, isRaftError, type ConfChange, type ProposalPosition, type RaftConfig, type ReadState } from '@flotilla/raft';
import type { CommandResult, RegionMeta } from '@flotilla/storage';
import type { KvError } from '@flotilla/wire';
import { encodeCommands, type EntryCommand } from './command-codec.ts';
import { limits } from './constants.ts';

/** How a proposal ended: its entry applied (with each command's result), or it failed. */
export type ProposalOutcome =
  | { readonly kind: 'applied'; readonly results: readonly CommandResult[] }
  | { readonly kind: 'failed'; readonly error: KvError };

interface PendingProposal {
  readonly term: number;
  readonly settle: (outcome: ProposalOutcome) => void;
}

interface PendingRead {
  readIndex: number | undefined;
  readonly settle: (error: KvError | null) => void;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

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
  private readonly proposals = new Map<number, PendingProposal>();
  private readonly reads = new Map<string, PendingRead>();
  private nextReadId = 1;

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

  get regionId(): number {
    return this.region.id;
  }

  isLeader(): boolean {
    return this.node.status().role === 'leader';
  }

  /** The store hosting a member of this region, if the region knows it. */
  storeOf(peerId: number): number | undefined {
    return this.region.peers.find((p) => p.id === peerId)?.storeId;
  }

  notLeader(): KvError {
    const leader = this.node.status().leader;
    const storeId = leader === 0 ? undefined : this.storeOf(leader);
    return { code: 'FLOTILLA_NOT_LEADER', regionId: this.regionId, leader: storeId === undefined ? null : { peerId: leader, storeId } };
  }

  /** Proposes write commands as one entry; settles when the entry applies (or cannot). */
  propose(commands: readonly EntryCommand[]): Promise<ProposalOutcome> {
    if (!this.isLeader()) return Promise.resolve({ kind: 'failed', error: this.notLeader() });
    if (this.proposals.size >= limits.pendingProposalsPerRegionMax) return Promise.resolve(busy());
    let position;
    try {
      position = this.node.propose([encodeCommands(commands)]);
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
    const settled = new Promise<ProposalOutcome>((settle) => this.proposals.set(firstIndex, { term, settle }));
    this.hasWork();
    return settled;
  }

  /** The entry at `index` applied: settle the proposal that put it there, if any. */
  onEntryApplied(index: number, term: number, results: readonly CommandResult[]): void {
    const pending = this.proposals.get(index);
    if (!pending) return;
    this.proposals.delete(index);
    // Another leader's entry took the slot: ours was never committed and never will be.
    if (pending.term !== term) pending.settle({ kind: 'failed', error: this.notLeader() });
    else pending.settle({ kind: 'applied', results });
  }

  /**
   * Waits until a linearizable read may be served from this replica's applied state
   * (ReadIndex, or the lease on the leader). Resolves null when ready, or the error.
   */
  readyToRead(): Promise<KvError | null> {
    if (!this.isLeader()) return Promise.resolve(this.notLeader());
    if (this.reads.size >= limits.pendingReadsPerRegionMax) return Promise.resolve({ code: 'FLOTILLA_SERVER_BUSY', retryAfterMs: 0 });
    const key = `${this.nextReadId++}`;
    return new Promise((settle) => {
      this.reads.set(key, { readIndex: undefined, settle });
      this.node.readIndex(encoder.encode(key));
      this.hasWork();
    });
  }

  onReadStates(states: readonly ReadState[]): void {
    for (const rs of states) {
      const read = this.reads.get(decoder.decode(rs.context));
      if (read) read.readIndex = rs.index;
    }
  }

  /** Called after applying: reads whose index is applied may proceed. */
  releaseReads(): void {
    for (const [key, read] of this.reads) {
      if (read.readIndex === undefined || read.readIndex > this.applied) continue;
      this.reads.delete(key);
      read.settle(null);
    }
  }

  /** The peer lost leadership: reads still waiting will never be confirmed here. */
  onLeadershipLost(): void {
    for (const [key, read] of this.reads) {
      if (read.readIndex !== undefined) continue; // confirmed: it will still be served
      this.reads.delete(key);
      read.settle(this.notLeader());
    }
  }

  /** The peer is going away: everything waiting fails. */
  failAll(error: KvError): void {
    for (const p of this.proposals.values()) p.settle({ kind: 'failed', error });
    for (const r of this.reads.values()) r.settle(error);
    this.proposals.clear();
    this.reads.clear();
  }
}

function busy(): ProposalOutcome {
  return { kind: 'failed', error: { code: 'FLOTILLA_SERVER_BUSY', retryAfterMs: 0 } };
}
