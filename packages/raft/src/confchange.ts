import { RaftError } from './errors.ts';
import { JointConfig } from './quorum.ts';
import type { Progress } from './progress.ts';
import { EMPTY_TRACKER_CONFIG, type TrackerConfig } from './tracker.ts';
import type { ConfChange, ConfChangeSingle, ConfState, NodeId } from './types.ts';

/**
 * Computes configuration transitions (etcd-raft's confchange.Changer): enter a joint
 * configuration, leave it, or make one simple change. The result is a new configuration and
 * progress map; the tracker is not modified (the caller swaps them in).
 */
export interface ChangeResult {
  config: TrackerConfig;
  progress: Map<NodeId, Progress>;
}

function reject(message: string): never {
  throw new RaftError('FLOTILLA_RAFT_CONF_CHANGE_REJECTED', message);
}

interface Mutable {
  incoming: Set<NodeId>;
  outgoing: Set<NodeId>;
  learners: Set<NodeId>;
  learnersNext: Set<NodeId>;
  autoLeave: boolean;
  progress: Map<NodeId, Progress>;
}

/** What a change starts from: a configuration, its progress map, and how to make new progress. */
export interface ChangeBase {
  readonly config: TrackerConfig;
  readonly progress: ReadonlyMap<NodeId, Progress>;
  newProgress(next: number, isLearner: boolean): Progress;
}

function copy(base: ChangeBase): Mutable {
  const c = base.config;
  return {
    incoming: new Set(c.voters.incoming),
    outgoing: new Set(c.voters.outgoing),
    learners: new Set(c.learners),
    learnersNext: new Set(c.learnersNext),
    autoLeave: c.autoLeave,
    progress: new Map(base.progress),
  };
}

/** The empty id set every configuration shares (a config's sets are never mutated). */
const NO_IDS: ReadonlySet<NodeId> = new Set();

/** An empty set is replaced by the shared one: most groups have no learners and are not joint. */
function shared(ids: ReadonlySet<NodeId>): ReadonlySet<NodeId> {
  return ids.size === 0 ? NO_IDS : ids;
}

function finish(m: Mutable): ChangeResult {
  return {
    config: {
      voters: new JointConfig(m.incoming, shared(m.outgoing)),
      learners: shared(m.learners),
      learnersNext: shared(m.learnersNext),
      autoLeave: m.autoLeave,
    },
    progress: m.progress,
  };
}

/** Does the change need joint consensus? A single change under 'auto' does not. */
export function changeNeedsJoint(cc: ConfChange): boolean {
  if (cc.transition === 'auto') return cc.changes.length > 1;
  return cc.changes.length > 0;
}

export function isLeaveJoint(cc: ConfChange): boolean {
  return cc.changes.length === 0;
}

export class Changer {
  constructor(
    private readonly base: ChangeBase,
    private readonly lastIndex: number,
  ) {}

  enterJoint(autoLeave: boolean, changes: readonly ConfChangeSingle[]): ChangeResult {
    const m = copy(this.base);
    if (m.outgoing.size > 0) reject('configuration is already joint');
    if (m.incoming.size === 0) reject("can't make a zero-voter configuration joint");
    m.outgoing = new Set(m.incoming);
    this.apply(m, changes);
    m.autoLeave = autoLeave;
    return this.checked(m);
  }

  leaveJoint(): ChangeResult {
    const m = copy(this.base);
    if (m.outgoing.size === 0) reject("can't leave a non-joint configuration");
    for (const id of m.learnersNext) {
      m.learners.add(id);
      const pr = m.progress.get(id);
      if (pr) pr.isLearner = true;
    }
    m.learnersNext.clear();
    for (const id of m.outgoing) {
      if (!m.incoming.has(id) && !m.learners.has(id)) m.progress.delete(id);
    }
    m.outgoing.clear();
    m.autoLeave = false;
    return this.checked(m);
  }

  /**
   * One change outside joint consensus. `enforceOneVoter` is off only when restoring a
   * configuration that was already agreed on (restoreConfig).
   */
  simple(changes: readonly ConfChangeSingle[], enforceOneVoter = true): ChangeResult {
    const m = copy(this.base);
    if (m.outgoing.size > 0) reject("can't apply a simple change in a joint configuration");
    const before = new Set(m.incoming);
    this.apply(m, changes);
    let delta = 0;
    for (const id of m.incoming) if (!before.has(id)) delta++;
    for (const id of before) if (!m.incoming.has(id)) delta++;
    if (enforceOneVoter && delta > 1) reject('more than one voter changed without joint consensus');
    return this.checked(m);
  }

  private apply(m: Mutable, changes: readonly ConfChangeSingle[]): void {
    // Progress objects are shared with the old map; replace them before mutating.
    for (const change of changes) {
      if (change.nodeId === 0) continue; // etcd semantics: a zero id is a no-op
      switch (change.type) {
        case 'addNode':
          this.makeVoter(m, change.nodeId);
          break;
        case 'addLearnerNode':
          this.makeLearner(m, change.nodeId);
          break;
        case 'removeNode':
          this.remove(m, change.nodeId);
          break;
      }
    }
    if (m.incoming.size === 0) reject('removed all voters');
  }

  private initProgress(m: Mutable, id: NodeId, isLearner: boolean): void {
    // The new member starts probing at the leader's last index (etcd does the same): it has
    // likely nothing, and the probe walks back quickly with conflict hints.
    const pr = this.base.newProgress(Math.max(this.lastIndex, 1), isLearner);
    pr.recentActive = true; // don't let CheckQuorum step down before it had a chance to answer
    m.progress.set(id, pr);
  }

  private cloneProgress(m: Mutable, id: NodeId): Progress | undefined {
    const old = m.progress.get(id);
    if (!old) return undefined;
    const pr = this.base.newProgress(old.next, old.isLearner);
    pr.match = old.match;
    pr.state = old.state;
    pr.pendingSnapshot = old.pendingSnapshot;
    pr.recentActive = old.recentActive;
    pr.probeSent = old.probeSent;
    pr.ackedLeaderTick = old.ackedLeaderTick;
    // Inflights are not carried over: a state reset below makes the leader re-probe if needed.
    if (pr.state === 'replicate') pr.becomeProbe();
    m.progress.set(id, pr);
    return pr;
  }

  private makeVoter(m: Mutable, id: NodeId): void {
    const pr = this.cloneProgress(m, id);
    if (!pr) {
      this.initProgress(m, id, false);
    } else {
      pr.isLearner = false;
    }
    m.learners.delete(id);
    m.learnersNext.delete(id);
    m.incoming.add(id);
  }

  private makeLearner(m: Mutable, id: NodeId): void {
    const pr = this.cloneProgress(m, id);
    if (!pr) {
      this.initProgress(m, id, true);
    } else if (pr.isLearner) {
      return;
    }
    this.removeVoterOnly(m, id);
    // A voter of the outgoing config can't become a learner until the joint config is left.
    if (m.outgoing.has(id)) {
      m.learnersNext.add(id);
      m.progress.get(id)!.isLearner = false;
    } else {
      m.learners.add(id);
      m.progress.get(id)!.isLearner = true;
    }
  }

  private remove(m: Mutable, id: NodeId): void {
    if (!m.progress.has(id)) return;
    this.removeVoterOnly(m, id);
    m.learners.delete(id);
    m.learnersNext.delete(id);
    if (!m.outgoing.has(id)) m.progress.delete(id);
  }

  private removeVoterOnly(m: Mutable, id: NodeId): void {
    m.incoming.delete(id);
  }

  private checked(m: Mutable): ChangeResult {
    for (const id of [...m.incoming, ...m.outgoing, ...m.learners, ...m.learnersNext]) {
      if (!m.progress.has(id)) reject(`no progress for member ${id}`);
    }
    for (const id of m.learnersNext) {
      if (!m.outgoing.has(id)) reject(`${id} is in learnersNext but not an outgoing voter`);
      if (m.progress.get(id)!.isLearner) reject(`${id} is in learnersNext but marked learner`);
    }
    for (const id of m.learners) {
      if (m.incoming.has(id) || m.outgoing.has(id)) reject(`${id} is both learner and voter`);
      if (!m.progress.get(id)!.isLearner) reject(`${id} is a learner but not marked as one`);
    }
    if (m.outgoing.size === 0 && m.autoLeave) reject('autoLeave set outside a joint configuration');
    return finish(m);
  }
}

/**
 * Rebuilds the configuration described by a ConfState (after a restart or a snapshot), the
 * way etcd-raft does: build the outgoing voters as a plain config, then enter the joint
 * config by removing them all and adding the incoming voters and learners.
 */
export function restoreConfig(newProgress: ChangeBase['newProgress'], cs: ConfState, lastIndex: number): ChangeResult {
  let base: ChangeBase = { config: EMPTY_TRACKER_CONFIG, progress: new Map(), newProgress };
  const step = (result: ChangeResult): void => {
    base = { ...result, newProgress };
  };
  const incoming: ConfChangeSingle[] = [
    ...cs.voters.map((nodeId): ConfChangeSingle => ({ type: 'addNode', nodeId })),
    ...cs.learners.map((nodeId): ConfChangeSingle => ({ type: 'addLearnerNode', nodeId })),
    ...cs.learnersNext.map((nodeId): ConfChangeSingle => ({ type: 'addLearnerNode', nodeId })),
  ];
  if (cs.votersOutgoing.length === 0) {
    if (incoming.length > 0) step(new Changer(base, lastIndex).simple(incoming, false));
    return { config: base.config, progress: new Map(base.progress) };
  }
  const outgoing = cs.votersOutgoing.map((nodeId): ConfChangeSingle => ({ type: 'addNode', nodeId }));
  step(new Changer(base, lastIndex).simple(outgoing, false));
  const removals = cs.votersOutgoing.map((nodeId): ConfChangeSingle => ({ type: 'removeNode', nodeId }));
  return new Changer(base, lastIndex).enterJoint(cs.autoLeave, [...removals, ...incoming]);
}
