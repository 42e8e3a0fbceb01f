import { changeNeedsJoint, Changer, isLeaveJoint, restoreConfig, type ChangeResult } from './confchange.ts';
import { encodeConfChange } from './confchange-codec.ts';
import { resolveConfig, type RaftConfig, type ResolvedConfig } from './config.ts';
import { assert, RaftError, fail } from './errors.ts';
import { RaftLog } from './log.ts';
import { ReadOnlyQueue } from './read-only.ts';
import { ProgressTracker, toConfState } from './tracker.ts';
import {
  EMPTY_BYTES,
  NO_ENTRIES,
  NO_NODE,
  message,
  type ConfChange,
  type ConfState,
  type HardState,
  type Message,
  type MessageType,
  type NodeId,
  type ReadState,
  type SoftState,
  type StateRole,
} from './types.ts';
import { bytesEqual } from './util.ts';
import { hup, TRANSFER_CONTEXT, stepCandidate } from './raft-election.ts';
import { stepFollower } from './raft-follower.ts';
import { maybeHibernate, wakesOnMessage } from './raft-hibernation.ts';
import { appendEntries, leaderPersisted, maybeCommit, stepLeader } from './raft-leader.ts';
import { broadcastAppend, broadcastHeartbeat, maybeSendAppend } from './raft-replication.ts';


/** Messages that only the local host may step (never accepted from the network). */
export const LOCAL_MESSAGE_TYPES: ReadonlySet<MessageType> = new Set<MessageType>([
  'hup',
  'beat',
  'unreachable',
  'snapshotStatus',
  'checkQuorum',
]);

/**
 * One Raft peer as a pure state machine. Driven by RawNode; it never performs I/O: everything
 * it wants done is left in `msgs`, the log's unstable part and `readStates`, collected by
 * RawNode.ready(). This class holds the state, the term rules, role transitions, ticks and
 * configuration; each role's step logic lives beside it as functions of the node (as in
 * etcd-raft): raft-election.ts (candidates), raft-follower.ts, raft-leader.ts (proposals,
 * commit, responses, transfer), raft-replication.ts (appends, snapshots, heartbeats),
 * raft-reads.ts (ReadIndex) and raft-hibernation.ts. Members are public to those files only:
 * the package exports RawNode, never Raft.
 */
export class Raft {
  readonly id: NodeId;
  readonly cfg: ResolvedConfig;
  readonly log: RaftLog;
  readonly tracker: ProgressTracker;
  readonly readOnly: ReadOnlyQueue;

  term = 0;
  vote: NodeId = NO_NODE;
  role: StateRole = 'follower';
  lead: NodeId = NO_NODE;
  isLearner = false;
  msgs: Message[] = [];
  readStates: ReadState[] = [];

  /** Target of an ongoing leadership transfer. */
  leadTransferee: NodeId = NO_NODE;
  /** Index of the newest configuration change the leader proposed; one at a time. */
  pendingConfIndex = 0;
  /** Bytes of entries proposed in this term but not yet committed (bounded). */
  uncommittedBytes = 0;
  /** ReadIndex requests that wait for the leader's first commit in its term. */
  pendingReadIndexMessages: Message[] = [];
  /** Proposals since the last Ready: broadcast once per Ready so they batch. */
  appendsPending = false;

  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedElectionTimeout = 0;
  /** Ticks since this node became leader: the clock of the read lease. */
  leaderTick = 0;
  /** Acks of heartbeats sent before this leader tick do not count towards the lease. */
  leaseNotBeforeTick = 0;
  /** A TimeoutNow went out in this term: no lease until the next term. */
  leaseDisabledForTerm = false;

  hibernating = false;
  idleTicks = 0;
  /**
   * Set when a node that already took part in its group restarts; cleared once an election
   * timeout has passed or a leader was heard. It may have acknowledged a leader's heartbeat
   * just before it went down, and that leader's read lease counts on it not voting for anyone
   * else for an election timeout.
   */
  startupLease = false;

  constructor(config: RaftConfig) {
    this.cfg = resolveConfig(config);
    this.id = this.cfg.id;
    this.log = new RaftLog(this.cfg.storage, this.cfg.committedBytesPerReadyMax);
    this.tracker = new ProgressTracker(this.cfg.inflightMessagesMax, this.cfg.inflightBytesMax);
    this.readOnly = new ReadOnlyQueue(this.cfg.pendingReadIndexMax);
    const { hardState, confState } = this.cfg.storage.initialState();
    this.switchToConfig(restoreConfig((next, learner) => this.tracker.newProgress(next, learner), confState, this.log.lastIndex()));
    this.loadHardState(hardState);
    if (this.cfg.applied > 0) this.log.appliedTo(this.cfg.applied);
    this.becomeFollower(this.term, NO_NODE);
    // A fresh member (nothing after its snapshot, no term beyond it) never acknowledged anyone.
    const fresh = this.log.lastIndex() === this.log.firstIndex() - 1 && this.term === this.log.lastTerm();
    this.startupLease = this.cfg.checkQuorum && !fresh;
  }

  // ---------------------------------------------------------------- state

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  softState(): SoftState {
    return { leader: this.lead, role: this.role, hibernating: this.hibernating };
  }

  loadHardState(hs: HardState): void {
    if (hs.commit > this.log.lastIndex()) {
      throw new RaftError('FLOTILLA_RAFT_INVALID_CONFIG', `stored commit ${hs.commit} is beyond the last index ${this.log.lastIndex()}`);
    }
    if (hs.term < this.log.lastTerm()) {
      throw new RaftError('FLOTILLA_RAFT_INVALID_CONFIG', `stored term ${hs.term} is below the last log term ${this.log.lastTerm()}`);
    }
    this.log.committed = Math.max(hs.commit, this.log.committed);
    this.term = hs.term;
    this.vote = hs.vote;
  }

  /** A voter of the current configuration may campaign; learners and removed nodes may not. */
  promotable(): boolean {
    const pr = this.tracker.progress.get(this.id);
    return pr !== undefined && !pr.isLearner && !this.log.unstable.snapshot;
  }

  /**
   * Queues a message. Vote requests and responses name their term explicitly (a pre-vote is
   * for term + 1, a response echoes the candidate's); forwarded proposals and reads travel
   * with term 0 like local messages; everything else carries the node's term.
   */
  send(fields: Partial<Message> & Pick<Message, 'type' | 'to'>): void {
    const type = fields.type;
    let term: number;
    if (type === 'vote' || type === 'preVote' || type === 'voteResponse' || type === 'preVoteResponse') {
      if (fields.term === undefined || fields.term === 0) fail(`${type} must carry a term`);
      term = fields.term;
    } else {
      if (fields.term !== undefined) fail(`${type} takes the node's term`);
      const forwarded = type === 'propose' || type === 'readIndex' || type === 'transferLeader';
      term = forwarded ? 0 : this.term;
    }
    // One message object per send, no spread (this runs for every append, heartbeat and response).
    this.msgs.push({
      type,
      from: this.id,
      to: fields.to,
      term,
      logTerm: fields.logTerm ?? 0,
      index: fields.index ?? 0,
      entries: fields.entries ?? NO_ENTRIES,
      commit: fields.commit ?? 0,
      snapshot: fields.snapshot ?? null,
      reject: fields.reject ?? false,
      rejectHint: fields.rejectHint ?? 0,
      context: fields.context ?? EMPTY_BYTES,
      leaderTick: fields.leaderTick ?? 0,
    });
  }

  /** A proposal that can't be taken: an error for the local caller, silence for a forwarder. */
  dropProposal(m: Message, reason: string): void {
    if (m.from === NO_NODE || m.from === this.id) throw new RaftError('FLOTILLA_RAFT_PROPOSAL_DROPPED', reason);
  }

  // ---------------------------------------------------------------- roles

  reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NO_NODE;
    }
    this.lead = NO_NODE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.tracker.resetVotes();
    const lastIndex = this.log.lastIndex();
    for (const [id, old] of this.tracker.progress) {
      const pr = this.tracker.newProgress(lastIndex + 1, old.isLearner);
      // Our own copy counts only as far as it is durable (leaderPersisted).
      if (id === this.id) pr.match = this.log.persistedIndex();
      this.tracker.progress.set(id, pr);
    }
    this.pendingConfIndex = 0;
    this.uncommittedBytes = 0;
    this.readOnly.clear();
    this.pendingReadIndexMessages = [];
    this.hibernating = false;
    this.idleTicks = 0;
    this.appendsPending = false;
  }

  resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.cfg.electionTicks + this.cfg.random.nextInt(this.cfg.electionTicks);
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.role = 'follower';
    this.lead = lead;
  }

  becomeCandidate(): void {
    assert(this.role !== 'leader', 'invalid transition leader -> candidate');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  becomePreCandidate(): void {
    assert(this.role !== 'leader', 'invalid transition leader -> preCandidate');
    // PreVote does not change the term or the vote: a partitioned node that keeps pre-voting
    // never disrupts the cluster when it comes back.
    this.tracker.resetVotes();
    this.role = 'preCandidate';
    this.lead = NO_NODE;
  }

  becomeLeader(): void {
    assert(this.role !== 'follower', 'invalid transition follower -> leader');
    this.reset(this.term);
    this.role = 'leader';
    this.lead = this.id;
    this.leaderTick = 0;
    this.leaseNotBeforeTick = 0;
    this.leaseDisabledForTerm = false;
    this.tracker.progress.get(this.id)?.becomeReplicate();
    const appended = appendEntries(this, [{ type: 'normal', data: EMPTY_BYTES }], { exemptFromBudget: true });
    assert(appended, 'the empty entry of a new leader is never refused');
    // Treat everything up to our own empty entry as possibly holding a config change: no new
    // change is accepted until this leader has applied an entry of its own term.
    this.pendingConfIndex = this.log.lastIndex();
  }

  // ---------------------------------------------------------------- ticks

  tick(): void {
    if (this.hibernating) return;
    if (this.role === 'leader') this.tickHeartbeat();
    else this.tickElection();
  }

  tickElection(): void {
    this.electionElapsed++;
    if (this.electionElapsed >= this.cfg.electionTicks) this.startupLease = false;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.step(message({ type: 'hup', from: this.id }));
    }
  }

  tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    this.leaderTick++;
    if (this.electionElapsed >= this.cfg.electionTicks) {
      this.electionElapsed = 0;
      if (this.cfg.checkQuorum) this.step(message({ type: 'checkQuorum', from: this.id }));
      // A transfer that did not finish within an election timeout is abandoned.
      if (this.role === 'leader' && this.leadTransferee !== NO_NODE) this.abortLeaderTransfer();
    }
    if (this.role !== 'leader') return;
    if (this.heartbeatElapsed >= this.cfg.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      // A group quiet long enough hibernates instead of sending this heartbeat round.
      if (maybeHibernate(this)) return;
      this.step(message({ type: 'beat', from: this.id }));
    }
  }

  // ---------------------------------------------------------------- hibernation

  /**
   * Leaves hibernation. A leader resumes heartbeats at once; a follower restarts its election
   * timer from zero (so waking never causes an election by itself) and tells its leader.
   */
  wake(notifyLeader = true): void {
    if (!this.hibernating) return;
    this.hibernating = false;
    this.idleTicks = 0;
    if (this.role === 'leader') {
      // Time passed without ticks: the lease is void until a fresh heartbeat round confirms it.
      this.leaseNotBeforeTick = this.leaderTick + 1;
      this.leaderTick++;
      this.electionElapsed = 0;
      for (const pr of this.tracker.progress.values()) pr.recentActive = true;
      broadcastHeartbeat(this);
      return;
    }
    this.electionElapsed = 0;
    if (notifyLeader && this.lead !== NO_NODE) this.send({ type: 'wakeUp', to: this.lead });
  }

  // ---------------------------------------------------------------- step

  step(m: Message): void {
    if (this.hibernating && wakesOnMessage(this, m)) this.wake(m.from !== this.lead);
    if (!this.stepTerm(m)) return;
    switch (m.type) {
      case 'hup':
        hup(this, this.cfg.preVote ? 'preElection' : 'election');
        return;
      case 'vote':
      case 'preVote':
        this.stepVoteRequest(m);
        return;
      default:
        break;
    }
    switch (this.role) {
      case 'leader':
        stepLeader(this, m);
        return;
      case 'candidate':
      case 'preCandidate':
        stepCandidate(this, m);
        return;
      case 'follower':
        stepFollower(this, m);
        return;
    }
  }

  /** Applies the term rules of Raft §5.1 (and PreVote/CheckQuorum); false = drop the message. */
  stepTerm(m: Message): boolean {
    if (m.term === 0) return true; // local message
    if (m.term > this.term) return this.stepHigherTerm(m);
    if (m.term < this.term) {
      this.stepLowerTerm(m);
      return false;
    }
    return true;
  }

  stepHigherTerm(m: Message): boolean {
    if (m.type === 'vote' || m.type === 'preVote') {
      const force = bytesEqual(m.context, TRANSFER_CONTEXT);
      const mayHaveLeader = this.lead !== NO_NODE || this.startupLease;
      const inLease = this.cfg.checkQuorum && mayHaveLeader && this.electionElapsed < this.cfg.electionTicks;
      // Within the lease we heard from a live leader recently: ignore a disruptive candidate.
      if (!force && inLease) return false;
    }
    if (m.type === 'preVote') return true; // never change our term for a pre-vote
    if (m.type === 'preVoteResponse' && !m.reject) return true; // the term bump happens on winning
    const lead = m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot' || m.type === 'hibernate' ? m.from : NO_NODE;
    this.becomeFollower(m.term, lead);
    return true;
  }

  stepLowerTerm(m: Message): void {
    if ((this.cfg.checkQuorum || this.cfg.preVote) && (m.type === 'heartbeat' || m.type === 'append')) {
      // A node partitioned away kept raising its term; tell the stale leader so it can step down
      // (or the node, once it hears back, learns of the current leader). See etcd-raft #5451.
      this.send({ type: 'appendResponse', to: m.from });
    } else if (m.type === 'preVote') {
      // Answer with our term so a pre-candidate with a stale log does not wait forever.
      this.send({ type: 'preVoteResponse', to: m.from, term: this.term, reject: true });
    }
  }

  stepVoteRequest(m: Message): void {
    const canVote =
      this.vote === m.from ||
      (this.vote === NO_NODE && this.lead === NO_NODE) ||
      (m.type === 'preVote' && m.term > this.term);
    const upToDate = this.cfg.faults.voteWithoutLogCheck === true || this.log.isUpToDate(m.index, m.logTerm);
    const responseType = m.type === 'vote' ? 'voteResponse' : 'preVoteResponse';
    if (canVote && upToDate) {
      this.send({ type: responseType, to: m.from, term: m.term });
      if (m.type === 'vote') {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ type: responseType, to: m.from, term: this.term, reject: true });
    }
  }

  // ---------------------------------------------------------------- leader state kept here

  /** Sends the batched proposals (called once per Ready). */
  flushAppends(): void {
    if (!this.appendsPending) return;
    this.appendsPending = false;
    if (this.role === 'leader') broadcastAppend(this);
  }

  /** Committed entries were handed out for applying: they no longer count as uncommitted. */
  reduceUncommittedBytes(bytes: number): void {
    if (this.role !== 'leader') return;
    this.uncommittedBytes = bytes >= this.uncommittedBytes ? 0 : this.uncommittedBytes - bytes;
  }

  // ---------------------------------------------------------------- reads

  /**
   * The read lease: a quorum acknowledged a heartbeat sent at leader tick t, so none of them
   * votes for another candidate before t + electionTicks on their clocks. Shortened by the
   * allowed clock drift; void while a transfer is under way (it forces votes).
   */
  leaseValid(): boolean {
    if (this.role !== 'leader' || this.leadTransferee !== NO_NODE || this.hibernating || this.leaseDisabledForTerm) return false;
    this.cfg.beforeLeaseUse(); // may void the lease (voidLease) before it is read below
    const acked = this.tracker.quorumAckedLeaderTick(this.id, this.leaderTick);
    if (acked < this.leaseNotBeforeTick) return false;
    return this.leaderTick < acked + this.cfg.electionTicks - this.cfg.maxClockDriftTicks;
  }

  /**
   * The host lost track of time (its ticks stalled): acks of heartbeats sent so far no longer
   * prove a lease, since more real time may have passed than the ticks counted. A phantom tick
   * (as on waking) makes the heartbeats sent from now on carry a tick the lease accepts again.
   */
  voidLease(): void {
    if (this.role !== 'leader') return;
    this.leaseNotBeforeTick = this.leaderTick + 1;
    this.leaderTick++;
  }

  // ---------------------------------------------------------------- leadership transfer

  abortLeaderTransfer(): void {
    if (this.leadTransferee === NO_NODE) return;
    this.leadTransferee = NO_NODE;
    // The target may have won with forced votes: only heartbeats sent from now on prove a lease.
    this.leaseNotBeforeTick = this.leaderTick + 1;
  }

  // ---------------------------------------------------------------- configuration

  /** Called by the host after it applied a conf change entry; returns the new configuration. */
  applyConfChange(cc: ConfChange): ConfState {
    const changer = new Changer(
      { config: this.tracker.config, progress: this.tracker.progress, newProgress: (n, l) => this.tracker.newProgress(n, l) },
      this.log.lastIndex(),
    );
    let result: ChangeResult;
    if (isLeaveJoint(cc)) result = changer.leaveJoint();
    else if (changeNeedsJoint(cc)) result = changer.enterJoint(cc.transition !== 'explicit', cc.changes);
    else result = changer.simple(cc.changes);
    return this.switchToConfig(result);
  }

  switchToConfig(result: ChangeResult): ConfState {
    this.tracker.config = result.config;
    this.tracker.progress = result.progress;
    const self = this.tracker.progress.get(this.id);
    this.isLearner = self?.isLearner ?? false;
    const cs = toConfState(result.config);
    if ((!self || this.isLearner) && this.role === 'leader') {
      // Removed or demoted: step down so the remaining voters elect a leader among themselves.
      this.becomeFollower(this.term, NO_NODE);
      return cs;
    }
    if (this.role !== 'leader' || cs.voters.length === 0) return cs;
    // The quorum may have changed: maybe commit, and bring new members up to date.
    if (maybeCommit(this)) {
      broadcastAppend(this);
    } else {
      for (const id of this.tracker.memberIds()) if (id !== this.id) maybeSendAppend(this, id, false);
    }
    if (this.leadTransferee !== NO_NODE && !this.tracker.config.voters.ids().has(this.leadTransferee)) this.abortLeaderTransfer();
    return cs;
  }

  /** The host persisted a Ready's entries (RawNode.advance): a leader counts its own copy now. */
  onPersisted(): void {
    if (this.role === 'leader') leaderPersisted(this);
  }

  /** The host applied entries up to `index`. Leaves a joint configuration automatically. */
  appliedTo(index: number): void {
    this.log.appliedTo(index);
    const config = this.tracker.config;
    if (this.role === 'leader' && config.autoLeave && index >= this.pendingConfIndex) {
      const leave: ConfChange = { transition: 'auto', changes: [], context: EMPTY_BYTES };
      const appended = appendEntries(this, [{ type: 'confChange', data: encodeConfChange(leave) }], { exemptFromBudget: true });
      assert(appended, 'leaving a joint configuration is never refused');
      this.appendsPending = true;
    }
  }

  appliedSnapshot(index: number): void {
    this.log.stableSnapshotTo(index);
    if (index > this.log.applied) {
      this.log.applied = index;
      this.log.applying = Math.max(this.log.applying, index);
    }
    // The snapshot replaces whatever applying was held for: the host looks again at what follows.
    this.log.resumeApplying();
  }
}
