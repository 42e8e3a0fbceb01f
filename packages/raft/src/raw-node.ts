import type { RaftConfig } from './config.ts';
import { encodeConfChange } from './confchange-codec.ts';
import { RaftError, fail } from './errors.ts';
import { LOCAL_MESSAGE_TYPES, Raft } from './raft.ts';
import { leaseReadIndex } from './raft-reads.ts';
import { confStatesEqual, toConfState } from './tracker.ts';
import type { ProgressState } from './progress.ts';
import {
  NO_NODE,
  message,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type Ready,
  type SoftState,
  type StateRole,
} from './types.ts';
import { payloadBytes } from './util.ts';

export interface ProgressStatus {
  readonly match: number;
  readonly next: number;
  readonly state: ProgressState;
  readonly isLearner: boolean;
  readonly recentActive: boolean;
  readonly inflightMessages: number;
}

/** What `status()` reports (hashicorp/raft's Stats, etcd's Status). */
export interface RaftStatus {
  readonly id: NodeId;
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  readonly firstIndex: number;
  readonly leader: NodeId;
  readonly role: StateRole;
  readonly hibernating: boolean;
  readonly leadTransferee: NodeId;
  readonly config: ConfState;
  /** Only on the leader: its view of every member. */
  readonly progress: ReadonlyMap<NodeId, ProgressStatus>;
}

/** Where a local proposal landed (only known when this node is the leader). */
export interface ProposalPosition {
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly term: number;
}

export type SnapshotOutcome = 'finished' | 'failed';

/** The empty lists of a Ready (frozen: shared by every Ready that has nothing of a kind). */
const NONE: readonly never[] = Object.freeze([]);

/**
 * The host-facing API of one Raft peer (etcd-raft's RawNode). Not thread-safe, never does
 * I/O. The Ready contract is in README.md; advance() checks what it can of it.
 */
export class RawNode {
  private readonly raft: Raft;
  private prevSoftState: SoftState;
  private prevHardState: HardState;
  /** The Ready handed out and not yet advanced. */
  private outstanding: Ready | null = null;

  constructor(config: RaftConfig) {
    this.raft = new Raft(config);
    this.prevSoftState = this.raft.softState();
    this.prevHardState = this.raft.hardState();
  }

  get id(): NodeId {
    return this.raft.id;
  }

  /** One logical clock tick; the host decides how long a tick is. No-op while hibernating. */
  tick(): void {
    this.raft.tick();
  }

  /** Starts an election now (pre-vote first when enabled). */
  campaign(): void {
    this.raft.step(message({ type: 'hup', from: this.raft.id }));
  }

  /**
   * Proposes entries (batched into one append). Throws FLOTILLA_RAFT_PROPOSAL_DROPPED when no
   * leader is known, a transfer is under way, or the uncommitted budget is exhausted. Returns
   * where the entries landed when this node is the leader (followers forward them).
   */
  propose(data: readonly Uint8Array[]): ProposalPosition | null {
    if (data.length === 0) throw new RaftError('FLOTILLA_RAFT_PROPOSAL_DROPPED', 'nothing to propose');
    const entries: Entry[] = data.map((d) => ({ index: 0, term: 0, type: 'normal', data: d }));
    return this.proposeEntries(entries);
  }

  /** Proposes a membership change; see ConfChange for simple vs joint transitions. */
  proposeConfChange(cc: ConfChange): ProposalPosition | null {
    return this.proposeEntries([{ index: 0, term: 0, type: 'confChange', data: encodeConfChange(cc) }]);
  }

  private proposeEntries(entries: Entry[]): ProposalPosition | null {
    this.raft.step(message({ type: 'propose', from: this.raft.id, entries }));
    if (this.raft.role !== 'leader') return null;
    const lastIndex = this.raft.log.lastIndex();
    return { firstIndex: lastIndex - entries.length + 1, lastIndex, term: this.raft.term };
  }

  /** Steps a message received from a peer. Local-only message types are refused. */
  step(m: Message): void {
    if (LOCAL_MESSAGE_TYPES.has(m.type)) {
      throw new RaftError('FLOTILLA_RAFT_STEP_LOCAL_MESSAGE', `${m.type} is local and can't come from the network`);
    }
    const isResponse = m.type === 'appendResponse' || m.type === 'heartbeatResponse' || m.type === 'voteResponse' || m.type === 'preVoteResponse';
    if (isResponse && !this.raft.tracker.progress.has(m.from)) {
      throw new RaftError('FLOTILLA_RAFT_STEP_PEER_NOT_FOUND', `response from ${m.from}, which is not a member`);
    }
    this.raft.step(m);
  }

  /**
   * Requests a linearizable read. When confirmed, a ReadState with this context appears in a
   * Ready: serve the read once the applied index reaches its index. Contexts must be unique.
   */
  readIndex(context: Uint8Array): void {
    this.raft.step(message({ type: 'readIndex', from: this.raft.id, context }));
  }

  /**
   * A linearizable read served from the leader's lease at once, without readIndex() and the
   * Ready that answers it: the index to serve it at (once the host applied through it), or
   * undefined when the read must take readIndex() (not the leader, leases off or void, no
   * entry of the leader's term committed yet). The host's hot read path: no cycle per read.
   */
  leaseReadIndex(): number | undefined {
    return leaseReadIndex(this.raft);
  }

  /** Asks the leader to hand leadership to `to` (catch it up, then TimeoutNow). */
  transferLeader(to: NodeId): void {
    this.raft.step(message({ type: 'transferLeader', from: to }));
  }

  /** The host applied a conf change entry: switch configuration. Returns the new ConfState. */
  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  reportUnreachable(id: NodeId): void {
    this.raft.step(message({ type: 'unreachable', from: id }));
  }

  reportSnapshot(id: NodeId, outcome: SnapshotOutcome): void {
    this.raft.step(message({ type: 'snapshotStatus', from: id, reject: outcome === 'failed' }));
  }

  /** Wakes a hibernating group (e.g. the host suspects the leader's store is down). */
  wake(): void {
    this.raft.wake();
  }

  /** True when the read lease is valid (lease-based reads; the host can serve locally). */
  leaseValid(): boolean {
    return this.raft.leaseValid();
  }

  /**
   * The host's ticks stalled (its event loop was blocked, the process was stopped): the ticks
   * undercount the real time since the last acknowledged heartbeat, so the lease is void until
   * a heartbeat sent from now on is acknowledged. Reads meanwhile take a ReadIndex round.
   */
  voidLease(): void {
    this.raft.voidLease();
  }

  /**
   * The storage finished reading entries it answered FLOTILLA_RAFT_LOG_TEMPORARILY_UNAVAILABLE
   * for: committed entries are offered for applying again (the host then looks at hasReady).
   */
  entriesAvailable(): void {
    this.raft.log.storageReady();
  }

  hasReady(): boolean {
    const r = this.raft;
    r.flushAppends();
    // Field by field: called for every dirty group on every cycle, it allocates nothing.
    const ss = this.prevSoftState;
    if (r.lead !== ss.leader || r.role !== ss.role || r.hibernating !== ss.hibernating) return true;
    const hs = this.prevHardState;
    if (r.term !== hs.term || r.vote !== hs.vote || r.log.committed !== hs.commit) return true;
    if (r.log.unstable.snapshot || r.log.unstable.entries.length > 0) return true;
    return r.msgs.length > 0 || r.readStates.length > 0 || r.log.hasNextCommittedEntries();
  }

  /** Collects the work to do. Must be followed by advance(ready) before the next ready(). */
  ready(): Ready {
    if (this.outstanding) {
      throw new RaftError('FLOTILLA_RAFT_CONTRACT_VIOLATION', 'ready() called again before advance() of the previous Ready');
    }
    const r = this.raft;
    r.flushAppends();
    // A Ready per group per cycle: what did not change costs no allocation (shared empties).
    const prevSs = this.prevSoftState;
    const ssChanged = r.lead !== prevSs.leader || r.role !== prevSs.role || r.hibernating !== prevSs.hibernating;
    const prevHs = this.prevHardState;
    const hsChanged = r.term !== prevHs.term || r.vote !== prevHs.vote || r.log.committed !== prevHs.commit;
    const unstable = r.log.unstableEntries();
    const entries = unstable.length === 0 ? NONE : unstable.slice();
    const committedEntries = r.log.nextCommittedEntries();
    const rd: Ready = {
      softState: ssChanged ? r.softState() : null,
      hardState: hsChanged ? r.hardState() : null,
      readStates: r.readStates.length === 0 ? NONE : r.readStates,
      entries,
      snapshot: r.log.unstable.snapshot,
      committedEntries: committedEntries.length === 0 ? NONE : committedEntries,
      messages: r.msgs.length === 0 ? NONE : r.msgs,
      mustSync: entries.length > 0 || r.term !== prevHs.term || r.vote !== prevHs.vote,
    };
    if (r.msgs.length > 0) r.msgs = [];
    if (r.readStates.length > 0) r.readStates = [];
    const lastCommitted = committedEntries[committedEntries.length - 1];
    if (lastCommitted) {
      r.log.acceptApplying(lastCommitted.index);
      r.reduceUncommittedBytes(payloadBytes(committedEntries));
    }
    if (rd.softState) this.prevSoftState = rd.softState;
    this.outstanding = rd;
    return rd;
  }

  /**
   * The host persisted, sent and applied `rd`. Checks that storage really holds what the
   * Ready asked to persist (the contract's first rule) before moving the cursors.
   *
   * `appliedThrough` (below the Ready's last committed entry) says the host applied only that
   * far because the next entry must wait for something outside this group: the entries after
   * it are held, offered again from appliedThrough + 1 once the host calls resumeApplying().
   * Held entries are not applied, and the node knows it (a pending conf change stays pending).
   */
  advance(rd: Ready, appliedThrough?: number): void {
    if (rd !== this.outstanding) {
      throw new RaftError('FLOTILLA_RAFT_CONTRACT_VIOLATION', 'advance() must be called with the Ready returned by the last ready()');
    }
    this.outstanding = null;
    const r = this.raft;
    const storage = r.cfg.storage;
    if (rd.hardState) this.prevHardState = rd.hardState;
    if (rd.snapshot) {
      const stored = storage.snapshot().metadata;
      if (!(stored.index >= rd.snapshot.metadata.index)) fail(`advance: snapshot ${rd.snapshot.metadata.index} was not persisted`);
      r.appliedSnapshot(rd.snapshot.metadata.index);
    }
    const last = rd.entries[rd.entries.length - 1];
    if (last) {
      if (!(storage.lastIndex() >= last.index)) fail(`advance: entry ${last.index} was not persisted (storage ends at ${storage.lastIndex()})`);
      if (!(storage.term(last.index) === last.term)) fail(`advance: entry ${last.index} persisted with another term`);
      r.log.stableTo(last.index, last.term);
      r.onPersisted();
    }
    const lastApplied = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastApplied && appliedThrough !== undefined && appliedThrough < lastApplied.index) {
      const first = rd.committedEntries[0]!.index;
      if (!(appliedThrough >= first - 1)) fail(`advance: applied through ${appliedThrough}, the Ready's committed entries start at ${first}`);
      if (appliedThrough >= first) r.appliedTo(appliedThrough);
      r.log.holdApplying(appliedThrough);
      return;
    }
    if (lastApplied) r.appliedTo(lastApplied.index);
  }

  /** Applying goes on after a hold (advance with appliedThrough): held entries are offered again. */
  resumeApplying(): void {
    this.raft.log.resumeApplying();
  }

  /** Whether applying is held (see advance). */
  get applyingHeld(): boolean {
    return this.raft.log.applyingHeld;
  }

  /**
   * The host learnt from elsewhere that the entry (`index`, `term`) is committed in this group
   * (a merge's target committed it was prepared). When the local log holds that entry, the Log
   * Matching property makes the whole prefix up to it the committed one: commit it here, so a
   * replica whose peers are gone (merged away) still applies it. False when the log does not
   * hold the entry or it is committed already.
   */
  commitKnown(index: number, term: number): boolean {
    const log = this.raft.log;
    if (index <= log.committed || index > log.lastIndex()) return false;
    return log.maybeCommit(index, term); // commits only when the local entry at index has `term`
  }

  /** The node's role now (what `status().role` says, without building a status). */
  get role(): StateRole {
    return this.raft.role;
  }

  /** The leader this node knows of now (NO_NODE when none), without building a status. */
  get leader(): NodeId {
    return this.raft.lead;
  }

  /** Whether the group hibernates now (no ticks, no heartbeats), without building a status. */
  get hibernating(): boolean {
    return this.raft.hibernating;
  }

  /** The node's current term, without building a status. */
  get term(): number {
    return this.raft.term;
  }

  /**
   * A snapshot of the node's state; `progress` is filled only on the leader. It copies the
   * configuration and every member's progress: hot paths read `role`, `leader`, `term`.
   */
  status(): RaftStatus {
    const r = this.raft;
    return {
      id: r.id,
      term: r.term,
      vote: r.vote,
      commit: r.log.committed,
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      firstIndex: r.log.firstIndex(),
      leader: r.lead,
      role: r.role,
      hibernating: r.hibernating,
      leadTransferee: r.leadTransferee,
      config: toConfState(r.tracker.config),
      progress: progressStatus(r),
    };
  }

  /** The configuration this node currently runs with. */
  confState(): ConfState {
    return toConfState(this.raft.tracker.config);
  }
}

function progressStatus(r: Raft): Map<NodeId, ProgressStatus> {
  const progress = new Map<NodeId, ProgressStatus>();
  if (r.role !== 'leader') return progress;
  for (const [id, pr] of r.tracker.progress) {
    progress.set(id, {
      match: pr.match,
      next: pr.next,
      state: pr.state,
      isLearner: pr.isLearner,
      recentActive: pr.recentActive,
      inflightMessages: pr.inflights.count,
    });
  }
  return progress;
}

export { confStatesEqual, NO_NODE };
