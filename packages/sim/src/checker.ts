import { BOOTSTRAP_INDEX, isRaftError, type ConfState, type Ready, type Snapshot } from '@flotilla/raft';
import type { SimHost } from './host.ts';

/**
 * Raft's safety properties, checked as the simulation runs (after every Ready a host
 * handles), plus the simulator's own durability rules. A violation records what broke, where
 * and when; the run carries on so one seed can report several.
 */
export interface Violation {
  readonly at: number;
  readonly rule: string;
  readonly detail: string;
}

/** Hosts by id, including crashed ones (their disks still count towards durability). */
export type HostLookup = () => ReadonlyMap<number, SimHost>;

function bytesHash(data: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < data.byteLength; i++) h = Math.imul(h ^ data[i]!, 0x01000193) >>> 0;
  return h;
}

function confKey(cs: ConfState): string {
  const sorted = (ids: readonly number[]): string => [...ids].sort((a, b) => a - b).join(',');
  return `v=${sorted(cs.voters)} o=${sorted(cs.votersOutgoing)} l=${sorted(cs.learners)} n=${sorted(cs.learnersNext)} a=${cs.autoLeave}`;
}

/** Violations kept per run; past this the run is failing anyway. */
export const VIOLATIONS_KEPT_MAX = 20;

export class InvariantChecker {
  readonly violations: Violation[] = [];
  violationCount = 0;
  now = 0;

  private readonly leaderOfTerm = new Map<number, number>();
  /** (index:term) -> hash of data and term of the entry before it: log matching. */
  private readonly entryShape = new Map<string, { hash: number; prevTerm: number }>();
  /** Applied entries by index: state machine safety. */
  private readonly appliedAt = new Map<number, { term: number; hash: number }>();
  /** Configuration after each applied conf change, by index. */
  private readonly confAt = new Map<number, string>();
  private confIndexes: number[] = [];
  private readonly commitOfIncarnation = new Map<number, number>();
  /** Per host (this incarnation): the highest in-memory leader commit checked (onLeaderState). */
  private readonly leaderCommitChecked = new Map<number, number>();
  /** Per host (this incarnation): the term in which onLeaderState last saw it lead. */
  private readonly leaderTermSeen = new Map<number, number>();
  /**
   * Term of every index some leader committed, and the voters it committed under (checked
   * durable then). Followers may only commit what a leader committed.
   */
  private readonly committedByLeader = new Map<number, { term: number; leaderTerm: number; voters: readonly (readonly number[])[] }>();
  /** Terms in which a host has handled at least one Ready as leader (for append-only). */
  private readonly leaderReadySeen = new Map<number, number>();
  private readonly lastPersistedIndex = new Map<number, number>();

  constructor(
    private readonly hosts: HostLookup,
    bootstrapConf: ConfState,
  ) {
    this.confAt.set(BOOTSTRAP_INDEX, confKey(bootstrapConf));
    this.confIndexes.push(BOOTSTRAP_INDEX);
  }

  report(rule: string, detail: string): void {
    this.violationCount++;
    if (this.violations.length < VIOLATIONS_KEPT_MAX) this.violations.push({ at: this.now, rule, detail });
  }

  /** A host restarted: its commit index starts again from what its disk held. */
  onRestart(hostId: number): void {
    this.commitOfIncarnation.delete(hostId);
    this.leaderCommitChecked.delete(hostId);
    this.leaderTermSeen.delete(hostId);
    this.leaderReadySeen.delete(hostId);
    this.lastPersistedIndex.delete(hostId);
  }

  /**
   * A Ready was persisted. `readyTerm` is the node's term when it made the Ready: a leader's
   * Ready whose fsync ends after the node stepped down (asyncPersist; a pause stretches it)
   * tells of leadership in THAT term, not in the one the node is in now.
   */
  onPersisted(host: SimHost, rd: Ready, readyTerm: number): void {
    const status = host.node.status();
    if (rd.softState?.role === 'leader') this.onBecameLeader(host, readyTerm);
    if (status.role === 'leader') this.checkLeaderAppendOnly(host, status.term, rd);
    this.checkLogMatching(host, rd);
    if (rd.hardState) this.checkCommit(host, rd.hardState.commit);
    const last = rd.entries[rd.entries.length - 1];
    if (last) this.lastPersistedIndex.set(host.id, last.index);
    if (rd.snapshot) this.lastPersistedIndex.set(host.id, rd.snapshot.metadata.index);
  }

  /**
   * A leader's commit index as it stands in memory, checked after every event that touched the
   * node: the moment it moves. Its Ready may surface it only later (asyncPersist: not while a
   * write is being fsynced), in messages sent early or after the leader stepped down — by then
   * no Ready shows it as a leader's commit.
   */
  onLeaderState(host: SimHost): void {
    const status = host.node.status();
    if (status.role !== 'leader') return;
    const before = this.leaderCommitChecked.get(host.id) ?? 0;
    const live = host.disk.live;
    if (this.leaderTermSeen.get(host.id) !== status.term) {
      // Just elected: its commit index is what it learnt as a follower (a new leader commits
      // nothing before its own entry is persisted and acknowledged). Check it as a follower's,
      // when its entries are on the page cache already (else its persisted hard state will be).
      this.leaderTermSeen.set(host.id, status.term);
      if (status.commit > before && status.commit >= live.firstIndex() && status.commit <= live.lastIndex()) {
        this.checkFollowerCommit(host, status.commit, live.term(status.commit));
      }
      this.leaderCommitChecked.set(host.id, Math.max(before, status.commit));
      return;
    }
    if (status.commit <= before) return;
    this.leaderCommitChecked.set(host.id, status.commit);
    if (status.commit < live.firstIndex()) return; // inside an installed snapshot
    this.checkLeaderCommit(host, Math.max(before, live.firstIndex() - 1), status.commit);
  }

  private onBecameLeader(host: SimHost, term: number): void {
    const other = this.leaderOfTerm.get(term);
    if (other !== undefined && other !== host.id) {
      this.report('election safety', `nodes ${other} and ${host.id} both leaders of term ${term}`);
    }
    this.leaderOfTerm.set(term, host.id);
    // Leader completeness: every entry committed in an earlier term is in the new leader's
    // log. (A leader elected late, by vote responses granted before a newer term began, need
    // not hold what that newer term committed.)
    const live = host.disk.live;
    for (const [index, committed] of this.committedByLeader) {
      if (committed.leaderTerm >= term || index < live.firstIndex()) continue;
      if (index > live.lastIndex() || live.term(index) !== committed.term) {
        this.report('leader completeness', `leader ${host.id} of term ${term} lacks entry ${index}/${committed.term} committed in term ${committed.leaderTerm}`);
        return;
      }
    }
  }

  private checkLeaderAppendOnly(host: SimHost, term: number, rd: Ready): void {
    const first = rd.entries[0];
    if (this.leaderReadySeen.get(host.id) === term && first) {
      const persisted = this.lastPersistedIndex.get(host.id) ?? 0;
      if (first.index <= persisted) {
        this.report('leader append-only', `leader ${host.id} (term ${term}) rewrote its log from ${first.index} (had ${persisted})`);
      }
    }
    this.leaderReadySeen.set(host.id, term);
  }

  private checkLogMatching(host: SimHost, rd: Ready): void {
    let prevTerm = -1;
    for (const entry of rd.entries) {
      if (prevTerm < 0) {
        try {
          prevTerm = host.disk.live.term(entry.index - 1);
        } catch (err) {
          if (!isRaftError(err)) throw err;
          prevTerm = -1; // unknown (compacted); skip the prev-term half of the check
        }
      }
      const key = `${entry.index}:${entry.term}`;
      const hash = bytesHash(entry.data);
      const seen = this.entryShape.get(key);
      if (!seen) {
        this.entryShape.set(key, { hash, prevTerm });
      } else if (seen.hash !== hash || (seen.prevTerm >= 0 && prevTerm >= 0 && seen.prevTerm !== prevTerm)) {
        this.report('log matching', `node ${host.id}: entry ${key} differs from another log's entry ${key}`);
      }
      prevTerm = entry.term;
    }
  }

  private checkCommit(host: SimHost, commit: number): void {
    const before = this.commitOfIncarnation.get(host.id) ?? 0;
    if (commit < before) this.report('commit monotonic', `node ${host.id} commit went from ${before} to ${commit}`);
    this.commitOfIncarnation.set(host.id, commit);
    if (commit <= before) return;
    const live = host.disk.live;
    if (commit < live.firstIndex()) return; // inside an installed snapshot
    if (host.node.status().role !== 'leader') this.checkFollowerCommit(host, commit, live.term(commit));
    // A leader's commit was checked the moment it moved (onLeaderState), with the
    // configuration of that moment; only one that moved unseen is checked here.
    else if (commit > (this.leaderCommitChecked.get(host.id) ?? 0)) this.checkLeaderCommit(host, Math.max(before, live.firstIndex() - 1), commit);
  }

  /**
   * The leader computed its commit index with its current configuration: the newly committed
   * entry must be durable on a quorum of exactly that configuration (both halves when joint).
   */
  private checkLeaderCommit(host: SimHost, from: number, commit: number): void {
    const leaderTerm = host.node.status().term;
    const cs = host.node.confState();
    const voters = [cs.voters, cs.votersOutgoing].filter((v) => v.length > 0);
    const term = host.disk.live.term(commit);
    this.checkQuorumDurable(host.id, commit, term, voters, 'commit ahead of quorum-persisted log');
    for (let index = from + 1; index <= commit; index++) {
      const entryTerm = host.disk.live.term(index);
      const known = this.committedByLeader.get(index);
      if (known && known.term !== entryTerm) {
        this.report('state machine safety', `leader ${host.id} committed ${index}/${entryTerm}, an earlier leader committed ${index}/${known.term}`);
      }
      if (!known) this.committedByLeader.set(index, { term: entryTerm, leaderTerm, voters });
    }
  }

  /** A follower may only commit an entry some leader committed (never its own stale suffix). */
  private checkFollowerCommit(host: SimHost, commit: number, term: number): void {
    const known = this.committedByLeader.get(commit);
    if (!known) {
      this.report('follower commit', `node ${host.id} committed ${commit}/${term}, which no leader committed`);
    } else if (known.term !== term) {
      this.report('follower commit', `node ${host.id} committed ${commit}/${term}, the leader committed ${commit}/${known.term}`);
    }
  }

  private checkQuorumDurable(hostId: number, index: number, term: number, configs: readonly (readonly number[])[], rule: string): void {
    const hosts = this.hosts();
    for (const voters of configs) {
      const count = voters.filter((id) => hosts.get(id)?.disk.durablyHas(index, term) === true).length;
      if (count <= voters.length / 2) {
        this.report(rule, `entry ${index}/${term} at node ${hostId} is durable on ${count} of voters [${voters.join(',')}]`);
        return;
      }
    }
  }

  onApplied(host: SimHost, index: number, term: number, data: Uint8Array): void {
    const hash = bytesHash(data);
    const seen = this.appliedAt.get(index);
    if (!seen) this.appliedAt.set(index, { term, hash });
    else if (seen.term !== term || seen.hash !== hash) {
      this.report('state machine safety', `node ${host.id} applied ${index}/${term}, another node applied ${index}/${seen.term}`);
    }
    const status = host.node.status();
    if (index > status.commit) this.report('applied <= committed', `node ${host.id} applied ${index} beyond commit ${status.commit}`);
  }

  onConfApplied(host: SimHost, index: number): void {
    const key = confKey(host.node.confState());
    const seen = this.confAt.get(index);
    if (seen === undefined) {
      this.confAt.set(index, key);
      this.confIndexes.push(index);
      this.confIndexes.sort((a, b) => a - b);
    } else if (seen !== key) {
      this.report('configuration safety', `node ${host.id} has config ${key} after ${index}, another node had ${seen}`);
    }
  }

  /**
   * A snapshot carries the configuration in force at its index, and the node adopts it: it ran
   * with it when it made the Ready (`adopted`; by the install it may have stepped a newer one).
   */
  onSnapshotInstalled(host: SimHost, snapshot: Snapshot, adopted: ConfState): void {
    const index = snapshot.metadata.index;
    let confIndex = BOOTSTRAP_INDEX;
    for (const i of this.confIndexes) if (i <= index) confIndex = i;
    const expected = this.confAt.get(confIndex)!;
    const carried = confKey(snapshot.metadata.confState);
    if (carried !== expected) {
      this.report('snapshot configuration', `snapshot at ${index} carries ${carried}, the log says ${expected}`);
    }
    const ran = confKey(adopted);
    if (ran !== carried) {
      this.report('snapshot configuration', `node ${host.id} ran ${ran} when it took a snapshot with ${carried}`);
    }
  }

  /**
   * A client was told "done" for an entry: a leader must have committed it, and it must (still)
   * be durable on a quorum of the configuration it was committed under.
   */
  onWriteAcknowledged(host: SimHost, index: number): void {
    const committed = this.committedByLeader.get(index);
    const applied = this.appliedAt.get(index);
    if (!committed || !applied || committed.term !== applied.term) {
      this.report('acknowledged before committed', `node ${host.id} acknowledged entry ${index}, which no leader committed`);
      return;
    }
    this.checkQuorumDurable(host.id, index, committed.term, committed.voters, 'acknowledged before durable on a quorum');
  }
}
