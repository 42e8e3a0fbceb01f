import { changeNeedsJoint, Changer, isLeaveJoint, restoreConfig, type ChangeResult } from './confchange.ts';
import { decodeConfChange, encodeConfChange } from './confchange-codec.ts';
import { resolveConfig, type RaftConfig, type ResolvedConfig } from './config.ts';
import { assert, isRaftError, RaftError } from './errors.ts';
import { RaftLog } from './log.ts';
import type { Progress } from './progress.ts';
import { ReadOnlyQueue } from './read-only.ts';
import { ProgressTracker, toConfState } from './tracker.ts';
import {
  EMPTY_BYTES,
  NO_NODE,
  message,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type MessageType,
  type NodeId,
  type ReadState,
  type SoftState,
  type StateRole,
} from './types.ts';
import { bytesEqual, entriesBytes, payloadBytes } from './util.ts';

/** Marks a vote request that a leadership transfer forced: it ignores the voters' leases. */
export const TRANSFER_CONTEXT: Uint8Array = new TextEncoder().encode('flotilla:campaign-transfer');

type CampaignKind = 'preElection' | 'election' | 'transfer';

/** Messages that only the local host may step (never accepted from the network). */
export const LOCAL_MESSAGE_TYPES: ReadonlySet<MessageType> = new Set<MessageType>([
  'hup',
  'beat',
  'unreachable',
  'snapshotStatus',
  'checkQuorum',
]);

/**
 * One Raft peer as a pure state machine (roles, elections, replication, reads, membership,
 * transfer, hibernation). Driven by RawNode; it never performs I/O: everything it wants done
 * is left in `msgs`, the log's unstable part and `readStates`, collected by RawNode.ready().
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
  private uncommittedBytes = 0;
  /** ReadIndex requests that wait for the leader's first commit in its term. */
  private pendingReadIndexMessages: Message[] = [];
  /** Proposals since the last Ready: broadcast once per Ready so they batch. */
  private appendsPending = false;

  electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  /** Ticks since this node became leader: the clock of the read lease. */
  leaderTick = 0;
  /** Acks of heartbeats sent before this leader tick do not count towards the lease. */
  private leaseNotBeforeTick = 0;
  /** A TimeoutNow went out in this term: no lease until the next term. */
  private leaseDisabledForTerm = false;

  hibernating = false;
  private idleTicks = 0;
  /**
   * Set when a node that already took part in its group restarts; cleared once an election
   * timeout has passed or a leader was heard. It may have acknowledged a leader's heartbeat
   * just before it went down, and that leader's read lease counts on it not voting for anyone
   * else for an election timeout.
   */
  private startupLease = false;

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

  private loadHardState(hs: HardState): void {
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
  private send(fields: Partial<Message> & Pick<Message, 'type' | 'to'>): void {
    const m = message({ from: this.id, ...fields });
    if (m.type === 'vote' || m.type === 'preVote' || m.type === 'voteResponse' || m.type === 'preVoteResponse') {
      assert(m.term !== 0, `${m.type} must carry a term`);
      this.msgs.push(m);
      return;
    }
    assert(fields.term === undefined, `${m.type} takes the node's term`);
    const forwarded = m.type === 'propose' || m.type === 'readIndex' || m.type === 'transferLeader';
    this.msgs.push({ ...m, term: forwarded ? 0 : this.term });
  }

  /** A proposal that can't be taken: an error for the local caller, silence for a forwarder. */
  private dropProposal(m: Message, reason: string): void {
    if (m.from === NO_NODE || m.from === this.id) throw new RaftError('FLOTILLA_RAFT_PROPOSAL_DROPPED', reason);
  }

  // ---------------------------------------------------------------- roles

  private reset(term: number): void {
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
      if (id === this.id) pr.match = lastIndex;
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

  private resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.cfg.electionTicks + this.cfg.random.nextInt(this.cfg.electionTicks);
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.role = 'follower';
    this.lead = lead;
  }

  private becomeCandidate(): void {
    assert(this.role !== 'leader', 'invalid transition leader -> candidate');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  private becomePreCandidate(): void {
    assert(this.role !== 'leader', 'invalid transition leader -> preCandidate');
    // PreVote does not change the term or the vote: a partitioned node that keeps pre-voting
    // never disrupts the cluster when it comes back.
    this.tracker.resetVotes();
    this.role = 'preCandidate';
    this.lead = NO_NODE;
  }

  private becomeLeader(): void {
    assert(this.role !== 'follower', 'invalid transition follower -> leader');
    this.reset(this.term);
    this.role = 'leader';
    this.lead = this.id;
    this.leaderTick = 0;
    this.leaseNotBeforeTick = 0;
    this.leaseDisabledForTerm = false;
    this.tracker.progress.get(this.id)?.becomeReplicate();
    const appended = this.appendEntries([{ type: 'normal', data: EMPTY_BYTES }], { exemptFromBudget: true });
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

  private tickElection(): void {
    this.electionElapsed++;
    if (this.electionElapsed >= this.cfg.electionTicks) this.startupLease = false;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.step(message({ type: 'hup', from: this.id }));
    }
  }

  private tickHeartbeat(): void {
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
      this.step(message({ type: 'beat', from: this.id }));
      this.maybeHibernate();
    }
  }

  // ---------------------------------------------------------------- hibernation

  /** True when the leader has nothing in flight: everyone has everything and it is applied. */
  private isQuiet(): boolean {
    const last = this.log.lastIndex();
    if (this.log.committed !== last || this.log.applied !== last) return false;
    if (this.leadTransferee !== NO_NODE || this.readOnly.size > 0 || this.pendingReadIndexMessages.length > 0) return false;
    if (this.tracker.config.voters.isJoint) return false;
    for (const pr of this.tracker.progress.values()) {
      if (pr.match !== last || pr.state !== 'replicate') return false;
    }
    return true;
  }

  private maybeHibernate(): void {
    if (this.cfg.hibernateAfterTicks === 0 || !this.isQuiet()) {
      this.idleTicks = 0;
      return;
    }
    this.idleTicks += this.cfg.heartbeatTicks;
    if (this.idleTicks < this.cfg.hibernateAfterTicks) return;
    const index = this.log.lastIndex();
    const logTerm = this.log.lastTerm();
    for (const id of this.tracker.memberIds()) {
      if (id !== this.id) this.send({ type: 'hibernate', to: id, index, logTerm, commit: this.log.committed });
    }
    this.hibernating = true;
  }

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
      this.broadcastHeartbeat();
      return;
    }
    this.electionElapsed = 0;
    if (notifyLeader && this.lead !== NO_NODE) this.send({ type: 'wakeUp', to: this.lead });
  }

  private stepFollowerHibernate(m: Message): void {
    if (m.from !== this.lead) return;
    if (this.log.lastIndex() === m.index && this.log.matchTerm(m.index, m.logTerm)) {
      this.log.commitTo(Math.min(m.commit, m.index));
      this.hibernating = true;
      return;
    }
    this.send({ type: 'wakeUp', to: m.from });
  }

  /** Whether a message stepped into a hibernating node wakes it up. */
  private wakesOnMessage(m: Message): boolean {
    if (m.type === 'hibernate') return false;
    if (this.role !== 'leader') return true;
    // Late answers to the last heartbeats carry nothing new; they must not undo hibernation.
    if (m.type === 'heartbeatResponse' && m.context.byteLength === 0) return false;
    if (m.type === 'appendResponse' && !m.reject && m.index <= (this.tracker.progress.get(m.from)?.match ?? 0)) return false;
    return true;
  }

  // ---------------------------------------------------------------- step

  step(m: Message): void {
    if (this.hibernating && this.wakesOnMessage(m)) this.wake(m.from !== this.lead);
    if (!this.stepTerm(m)) return;
    switch (m.type) {
      case 'hup':
        this.hup(this.cfg.preVote ? 'preElection' : 'election');
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
        this.stepLeader(m);
        return;
      case 'candidate':
      case 'preCandidate':
        this.stepCandidate(m);
        return;
      case 'follower':
        this.stepFollower(m);
        return;
    }
  }

  /** Applies the term rules of Raft §5.1 (and PreVote/CheckQuorum); false = drop the message. */
  private stepTerm(m: Message): boolean {
    if (m.term === 0) return true; // local message
    if (m.term > this.term) return this.stepHigherTerm(m);
    if (m.term < this.term) {
      this.stepLowerTerm(m);
      return false;
    }
    return true;
  }

  private stepHigherTerm(m: Message): boolean {
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

  private stepLowerTerm(m: Message): void {
    if ((this.cfg.checkQuorum || this.cfg.preVote) && (m.type === 'heartbeat' || m.type === 'append')) {
      // A node partitioned away kept raising its term; tell the stale leader so it can step down
      // (or the node, once it hears back, learns of the current leader). See etcd-raft #5451.
      this.send({ type: 'appendResponse', to: m.from });
    } else if (m.type === 'preVote') {
      // Answer with our term so a pre-candidate with a stale log does not wait forever.
      this.send({ type: 'preVoteResponse', to: m.from, term: this.term, reject: true });
    }
  }

  private stepVoteRequest(m: Message): void {
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

  // ---------------------------------------------------------------- elections

  private hup(kind: CampaignKind): void {
    if (this.role === 'leader' || !this.promotable()) return;
    if (this.hasUnappliedConfChanges()) return; // its config may be about to change under it
    this.campaign(kind);
  }

  private hasUnappliedConfChanges(): boolean {
    if (this.log.committed <= this.log.applied) return false;
    try {
      const pending = this.log.slice(this.log.applied + 1, this.log.committed + 1, Number.POSITIVE_INFINITY);
      return pending.some((e) => e.type === 'confChange');
    } catch (err) {
      if (isRaftError(err)) return true; // can't tell: be conservative
      throw err;
    }
  }

  private campaign(kind: CampaignKind): void {
    let voteType: 'vote' | 'preVote';
    let term: number;
    if (kind === 'preElection') {
      this.becomePreCandidate();
      voteType = 'preVote';
      term = this.term + 1; // the term we would campaign in
    } else {
      this.becomeCandidate();
      voteType = 'vote';
      term = this.term;
    }
    if (this.poll(this.id, true) === 'won') {
      // A single voter wins at once.
      if (kind === 'preElection') this.campaign('election');
      else this.becomeLeader();
      return;
    }
    const context = kind === 'transfer' ? TRANSFER_CONTEXT : EMPTY_BYTES;
    for (const id of this.tracker.voterIds()) {
      if (id === this.id) continue;
      this.send({ type: voteType, to: id, term, index: this.log.lastIndex(), logTerm: this.log.lastTerm(), context });
    }
  }

  private poll(id: NodeId, granted: boolean): 'pending' | 'lost' | 'won' {
    this.tracker.recordVote(id, granted);
    return this.tracker.tallyVotes().result;
  }

  private stepCandidate(m: Message): void {
    const myResponse = this.role === 'preCandidate' ? 'preVoteResponse' : 'voteResponse';
    switch (m.type) {
      case 'propose':
        this.dropProposal(m, `node ${this.id} is campaigning; no leader to take the proposal`);
        return;
      case 'append':
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case 'snapshot':
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case 'hibernate':
        this.becomeFollower(m.term, m.from);
        this.stepFollowerHibernate(m);
        return;
      case 'voteResponse':
      case 'preVoteResponse': {
        if (m.type !== myResponse) return;
        const result = this.poll(m.from, !m.reject);
        if (result === 'won') {
          if (this.role === 'preCandidate') {
            this.campaign('election');
          } else {
            this.becomeLeader();
            this.broadcastAppend();
          }
        } else if (result === 'lost') {
          // (A rejection carrying a higher term already made us a follower of that term.)
          this.becomeFollower(this.term, NO_NODE);
        }
        return;
      }
      default:
        return; // timeoutNow, transfers and reads need a leader; the host retries
    }
  }

  // ---------------------------------------------------------------- follower

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'propose':
        if (this.lead === NO_NODE) this.dropProposal(m, `node ${this.id} knows no leader`);
        else if (this.cfg.disableProposalForwarding) this.dropProposal(m, `node ${this.id} is not the leader and does not forward proposals`);
        else this.send({ type: 'propose', to: this.lead, entries: m.entries });
        return;
      case 'append':
        this.heardFromLeader(m.from);
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.heardFromLeader(m.from);
        this.handleHeartbeat(m);
        return;
      case 'snapshot':
        this.heardFromLeader(m.from);
        this.handleSnapshot(m);
        return;
      case 'hibernate':
        this.lead = m.from;
        this.stepFollowerHibernate(m);
        return;
      case 'transferLeader':
        // `from` names the transfer's target: keep it when forwarding.
        if (this.lead !== NO_NODE) this.msgs.push({ ...m, to: this.lead, term: 0 });
        return;
      case 'timeoutNow':
        // The leader chose us: campaign now, ignoring leases (we are as up to date as it is).
        this.hup('transfer');
        return;
      case 'readIndex':
        if (this.lead === NO_NODE) return; // dropped: the host's request times out and retries
        this.msgs.push({ ...m, to: this.lead, from: m.from === NO_NODE ? this.id : m.from });
        return;
      case 'readIndexResponse':
        this.readStates.push({ index: m.index, context: m.context });
        return;
      default:
        return;
    }
  }

  private heardFromLeader(leader: NodeId): void {
    this.electionElapsed = 0;
    this.lead = leader;
    this.startupLease = false; // the leader's own lease rule takes over
  }

  private handleAppend(m: Message): void {
    if (m.index < this.log.committed) {
      this.send({ type: 'appendResponse', to: m.from, index: this.log.committed });
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      this.send({ type: 'appendResponse', to: m.from, index: lastNew });
      return;
    }
    // Tell the leader where our logs may agree: the last index with a term <= its logTerm.
    const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.send({ type: 'appendResponse', to: m.from, index: m.index, reject: true, rejectHint: hint.index, logTerm: hint.term });
  }

  private handleHeartbeat(m: Message): void {
    this.log.commitTo(m.commit);
    this.send({ type: 'heartbeatResponse', to: m.from, context: m.context, leaderTick: m.leaderTick });
  }

  private handleSnapshot(m: Message): void {
    const snapshot = m.snapshot;
    assert(snapshot !== null, 'snapshot message without a snapshot');
    const outcome = this.restore(snapshot);
    if (outcome === 'installed') {
      this.send({ type: 'appendResponse', to: m.from, index: this.log.lastIndex() });
    } else if (outcome === 'alreadyHave') {
      this.send({ type: 'appendResponse', to: m.from, index: this.log.committed });
    }
    // 'notAMember': no answer. An answer would read as success and make the leader resend at
    // once; silence leaves it to retry after the next heartbeat, with a newer snapshot.
  }

  /** Installs a snapshot if it is newer than what we have committed. */
  private restore(snapshot: NonNullable<Message['snapshot']>): 'installed' | 'alreadyHave' | 'notAMember' {
    const meta = snapshot.metadata;
    if (meta.index <= this.log.committed) return 'alreadyHave';
    assert(this.role === 'follower', 'only followers install snapshots');
    const cs = meta.confState;
    const members = [...cs.voters, ...cs.learners, ...cs.votersOutgoing];
    // A snapshot from before we joined can't be right for us; the leader will send a newer one.
    if (!members.includes(this.id)) return 'notAMember';
    if (this.log.matchTerm(meta.index, meta.term)) {
      // We already have the entries: fast-forward the commit index instead of discarding the log.
      this.log.commitTo(meta.index);
      return 'alreadyHave';
    }
    this.log.restore(snapshot);
    if (this.cfg.faults.snapshotIgnoresConfState !== true) {
      this.switchToConfig(restoreConfig((next, learner) => this.tracker.newProgress(next, learner), cs, this.log.lastIndex()));
    }
    return 'installed';
  }

  // ---------------------------------------------------------------- leader

  private stepLeader(m: Message): void {
    switch (m.type) {
      case 'beat':
        this.broadcastHeartbeat();
        return;
      case 'checkQuorum':
        this.checkQuorum();
        return;
      case 'propose':
        this.leaderPropose(m);
        return;
      case 'readIndex':
        this.leaderReadIndex(m);
        return;
      case 'transferLeader':
        this.leaderTransfer(m);
        return;
      case 'wakeUp':
        return; // stepping it already woke us; the heartbeat round brings the follower along
      default:
        break;
    }
    const pr = this.tracker.progress.get(m.from);
    if (!pr) return; // from a node no longer in the configuration
    switch (m.type) {
      case 'appendResponse':
        this.handleAppendResponse(m, pr);
        return;
      case 'heartbeatResponse':
        this.handleHeartbeatResponse(m, pr);
        return;
      case 'snapshotStatus':
        if (pr.state !== 'snapshot') return;
        // Success or failure, probe from the snapshot on; wait for the next heartbeat response.
        if (m.reject) pr.pendingSnapshot = 0;
        pr.becomeProbe();
        pr.probeSent = true;
        return;
      case 'unreachable':
        if (pr.state === 'replicate') pr.becomeProbe();
        return;
      default:
        return;
    }
  }

  private checkQuorum(): void {
    if (!this.tracker.quorumActive(this.id)) {
      this.becomeFollower(this.term, NO_NODE);
      return;
    }
    for (const [id, pr] of this.tracker.progress) if (id !== this.id) pr.recentActive = false;
  }

  private leaderPropose(m: Message): void {
    assert(m.entries.length > 0, 'empty proposal');
    if (!this.tracker.progress.has(this.id)) {
      this.dropProposal(m, `leader ${this.id} was removed from the group`);
      return;
    }
    if (this.leadTransferee !== NO_NODE) {
      this.dropProposal(m, `leadership is being transferred to ${this.leadTransferee}`);
      return;
    }
    let confChangeAccepted = false;
    const entries = m.entries.map((e) => {
      if (e.type !== 'confChange') return e;
      const vetted = this.vetConfChange(e, m.from, confChangeAccepted);
      if (vetted.type === 'confChange') confChangeAccepted = true;
      return vetted;
    });
    if (!this.appendEntries(entries)) {
      this.dropProposal(m, `uncommitted entries exceed ${this.cfg.uncommittedBytesMax} bytes`);
      return;
    }
    this.appendsPending = true;
  }

  /**
   * One configuration change at a time, and only after this leader committed an entry of its
   * term (pendingConfIndex starts at the last index of the previous term). A refused change
   * from a follower becomes an empty entry; a local one throws.
   */
  private vetConfChange(entry: Entry, from: NodeId, anotherInThisBatch: boolean): Entry {
    const cc = decodeConfChange(entry.data);
    const alreadyPending = anotherInThisBatch || this.pendingConfIndex > this.log.applied;
    const alreadyJoint = this.tracker.config.voters.isJoint;
    const wantsLeaveJoint = isLeaveJoint(cc);
    let refusal: string | undefined;
    if (alreadyPending) {
      refusal = `the entry at ${this.pendingConfIndex} (an earlier change, or this leader's first entry) is not applied yet (applied ${this.log.applied})`;
    }
    else if (alreadyJoint && !wantsLeaveJoint) refusal = 'must leave the joint configuration first';
    else if (!alreadyJoint && wantsLeaveJoint) refusal = 'not in a joint configuration';
    if (refusal === undefined) return entry; // appendEntries records its index as pending
    if (from === this.id || from === NO_NODE) throw new RaftError('FLOTILLA_RAFT_CONF_CHANGE_REJECTED', refusal);
    return { ...entry, type: 'normal', data: EMPTY_BYTES };
  }

  /**
   * Assigns index and term and appends to the leader's own log; false when over the
   * uncommitted budget (payload bytes, as etcd counts). Entries the protocol itself needs (a
   * new leader's empty entry, leaving a joint configuration) are exempt: refusing them would
   * stall the group.
   */
  private appendEntries(proposed: readonly Pick<Entry, 'type' | 'data'>[], { exemptFromBudget = false } = {}): boolean {
    const bytes = payloadBytes(proposed);
    if (!exemptFromBudget) {
      if (this.uncommittedBytes > 0 && bytes > 0 && this.uncommittedBytes + bytes > this.cfg.uncommittedBytesMax) return false;
      this.uncommittedBytes += bytes;
    }
    let index = this.log.lastIndex();
    const entries: Entry[] = proposed.map((e) => {
      index++;
      if (e.type === 'confChange') this.pendingConfIndex = index;
      return { index, term: this.term, type: e.type, data: e.data };
    });
    const last = this.log.append(entries);
    // The leader's own copy counts once persisted; the contract guarantees it is before any
    // follower's ack can arrive (messages leave only after the Ready's entries are durable).
    this.tracker.progress.get(this.id)?.maybeUpdate(last);
    this.maybeCommit();
    return true;
  }

  /** Sends the batched proposals (called once per Ready). */
  flushAppends(): void {
    if (!this.appendsPending) return;
    this.appendsPending = false;
    if (this.role === 'leader') this.broadcastAppend();
  }

  private maybeCommit(): boolean {
    const quorumIndex = this.tracker.committed();
    if (this.cfg.faults.commitOldTermByCounting === true) {
      // Injected bug: commit by counting replicas whatever the entry's term.
      if (quorumIndex > this.log.committed && quorumIndex <= this.log.lastIndex()) {
        this.log.commitTo(quorumIndex);
        this.onCommitted();
        return true;
      }
      return false;
    }
    if (this.log.maybeCommit(Math.min(quorumIndex, this.log.lastIndex()), this.term)) {
      this.onCommitted();
      return true;
    }
    return false;
  }

  private onCommitted(): void {
    if (this.pendingReadIndexMessages.length > 0 && this.committedEntryInCurrentTerm()) this.releasePendingReadIndexMessages();
  }

  /** Committed entries were handed out for applying: they no longer count as uncommitted. */
  reduceUncommittedBytes(bytes: number): void {
    if (this.role !== 'leader') return;
    this.uncommittedBytes = bytes >= this.uncommittedBytes ? 0 : this.uncommittedBytes - bytes;
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  private handleAppendResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    if (m.reject) {
      let probeFrom = m.rejectHint;
      if (m.logTerm > 0) probeFrom = this.log.findConflictByTerm(m.rejectHint, m.logTerm).index;
      if (pr.maybeDecrTo(m.index, probeFrom)) {
        if (pr.state === 'replicate') pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index) && !(pr.match === m.index && pr.state === 'probe')) return;
    if (pr.state === 'probe') {
      pr.becomeReplicate();
    } else if (pr.state === 'snapshot' && pr.match + 1 >= this.log.firstIndex()) {
      // The snapshot (or entries since) caught the follower up: replicate from here.
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === 'replicate') {
      pr.inflights.freeLE(m.index);
    }
    if (this.maybeCommit()) {
      this.broadcastAppend();
    } else if (wasPaused) {
      this.sendAppend(m.from);
    }
    // Fill the window: send while there is something to send and room for it.
    while (this.maybeSendAppend(m.from, false)) {
      /* keep sending */
    }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.sendTimeoutNow(m.from);
    }
  }

  private handleHeartbeatResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    pr.probeSent = false;
    if (m.leaderTick > pr.ackedLeaderTick) pr.ackedLeaderTick = m.leaderTick;
    // Lost appends leave a full window that nothing would ever drain: let one more through.
    if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
    if (pr.match < this.log.lastIndex()) this.sendAppend(m.from);
    if (m.context.byteLength === 0) return;
    const acks = this.readOnly.recvAck(m.from, m.context);
    if (!acks) return;
    const votes = new Map<NodeId, boolean>();
    for (const id of acks) votes.set(id, true);
    if (this.tracker.config.voters.voteResult(votes) !== 'won') return;
    for (const read of this.readOnly.advance(m.context)) this.respondToRead(read.request, read.index);
  }

  // ---------------------------------------------------------------- replication

  private sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  /**
   * Sends entries (or a snapshot, or an empty append to carry the commit index) to `to`.
   * Returns false when nothing was sent: paused, nothing new, or entries not readable now.
   */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.tracker.progress.get(to);
    if (!pr || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.termOrUndefined(prevIndex);
    if (prevTerm === undefined) return this.sendSnapshot(to, pr);
    let entries: Entry[];
    try {
      entries = this.log.entries(pr.next, this.cfg.appendBytesMax);
    } catch (err) {
      if (isRaftError(err, 'FLOTILLA_RAFT_COMPACTED')) return this.sendSnapshot(to, pr);
      if (isRaftError(err, 'FLOTILLA_RAFT_LOG_TEMPORARILY_UNAVAILABLE')) return false;
      throw err;
    }
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send({ type: 'append', to, index: prevIndex, logTerm: prevTerm, entries, commit: this.log.committed });
    const last = entries[entries.length - 1];
    pr.sentEntries(last ? last.index : prevIndex, entriesBytes(entries), entries.length);
    return true;
  }

  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    if (!pr.recentActive) return false; // don't ship a snapshot to a node that may be down
    let snapshot;
    try {
      snapshot = this.log.snapshot();
    } catch (err) {
      if (isRaftError(err, 'FLOTILLA_RAFT_SNAPSHOT_TEMPORARILY_UNAVAILABLE')) return false;
      throw err;
    }
    assert(snapshot.metadata.index > 0, 'need a non-empty snapshot to send');
    this.send({ type: 'snapshot', to, snapshot });
    pr.becomeSnapshot(snapshot.metadata.index);
    return true;
  }

  broadcastAppend(): void {
    for (const id of this.tracker.memberIds()) if (id !== this.id) this.sendAppend(id);
  }

  private broadcastHeartbeat(): void {
    const context = this.readOnly.lastPendingContext() ?? EMPTY_BYTES;
    for (const id of this.tracker.memberIds()) {
      if (id === this.id) continue;
      const pr = this.tracker.progress.get(id)!;
      // Never tell a follower to commit past what it is known to have (etcd-raft #2161).
      const commit = Math.min(pr.match, this.log.committed);
      this.send({ type: 'heartbeat', to: id, commit, context, leaderTick: this.leaderTick });
    }
  }

  // ---------------------------------------------------------------- reads

  private leaderReadIndex(m: Message): void {
    if (this.tracker.isSingleton()) {
      this.respondToRead(m, this.log.committed);
      return;
    }
    if (!this.committedEntryInCurrentTerm()) {
      // The commit index of a fresh leader may lag the real one until its empty entry commits.
      if (this.pendingReadIndexMessages.length >= this.cfg.pendingReadIndexMax) return;
      this.pendingReadIndexMessages.push(m);
      return;
    }
    this.serveReadIndex(m);
  }

  private serveReadIndex(m: Message): void {
    if (this.cfg.readOnlyOption === 'leaseBased' && this.leaseValid()) {
      this.respondToRead(m, this.log.committed);
      return;
    }
    if (this.readOnly.isFull()) return; // dropped: the host's request times out and retries
    this.readOnly.add(this.log.committed, m);
    this.readOnly.recvAck(this.id, m.context);
    this.broadcastHeartbeat();
  }

  private releasePendingReadIndexMessages(): void {
    const pending = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of pending) this.serveReadIndex(m);
  }

  private respondToRead(request: Message, index: number): void {
    if (request.from === NO_NODE || request.from === this.id) {
      this.readStates.push({ index, context: request.context });
    } else {
      this.send({ type: 'readIndexResponse', to: request.from, index, context: request.context });
    }
  }

  /**
   * The read lease: a quorum acknowledged a heartbeat sent at leader tick t, so none of them
   * votes for another candidate before t + electionTicks on their clocks. Shortened by the
   * allowed clock drift; void while a transfer is under way (it forces votes).
   */
  leaseValid(): boolean {
    if (this.role !== 'leader' || this.leadTransferee !== NO_NODE || this.hibernating || this.leaseDisabledForTerm) return false;
    const acked = this.tracker.quorumAckedLeaderTick(this.id, this.leaderTick);
    if (acked < this.leaseNotBeforeTick) return false;
    return this.leaderTick < acked + this.cfg.electionTicks - this.cfg.maxClockDriftTicks;
  }

  // ---------------------------------------------------------------- leadership transfer

  private leaderTransfer(m: Message): void {
    const target = m.from;
    const pr = this.tracker.progress.get(target);
    if (!pr || pr.isLearner) return;
    if (this.leadTransferee !== NO_NODE) {
      if (this.leadTransferee === target) return;
      this.abortLeaderTransfer();
    }
    if (target === this.id) return;
    this.electionElapsed = 0; // the transfer must finish within one election timeout
    this.leadTransferee = target;
    this.leaseNotBeforeTick = Number.POSITIVE_INFINITY;
    if (pr.match === this.log.lastIndex()) {
      this.sendTimeoutNow(target);
    } else {
      this.sendAppend(target); // catch it up first; timeoutNow follows its ack
    }
  }

  /**
   * A TimeoutNow makes its target campaign with forced votes that ignore leases, whenever it
   * arrives — even after this leader gave up on the transfer. So once one is sent, the lease
   * is gone for the rest of the term (reads fall back to ReadIndex).
   */
  private sendTimeoutNow(target: NodeId): void {
    this.leaseDisabledForTerm = true;
    this.send({ type: 'timeoutNow', to: target });
  }

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

  private switchToConfig(result: ChangeResult): ConfState {
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
    if (this.maybeCommit()) {
      this.broadcastAppend();
    } else {
      for (const id of this.tracker.memberIds()) if (id !== this.id) this.maybeSendAppend(id, false);
    }
    if (this.leadTransferee !== NO_NODE && !this.tracker.config.voters.ids().has(this.leadTransferee)) this.abortLeaderTransfer();
    return cs;
  }

  /** The host applied entries up to `index`. Leaves a joint configuration automatically. */
  appliedTo(index: number): void {
    this.log.appliedTo(index);
    const config = this.tracker.config;
    if (this.role === 'leader' && config.autoLeave && index >= this.pendingConfIndex) {
      const leave: ConfChange = { transition: 'auto', changes: [], context: EMPTY_BYTES };
      const appended = this.appendEntries([{ type: 'confChange', data: encodeConfChange(leave) }], { exemptFromBudget: true });
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
  }
}
