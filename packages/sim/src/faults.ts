import { EMPTY_BYTES, isRaftError, type ConfChange, type ConfChangeSingle, type NodeId } from '@flotilla/raft';
import type { SimHost } from './host.ts';
import type { Simulation } from './simulation.ts';

/**
 * The nemesis of the safety phase: at random moments it crashes nodes (the leader often),
 * pauses their processes, partitions the network (splits, isolated leader, one-way links,
 * rings), makes it lossy and duplicating, transfers leadership, and replaces members
 * (learner -> voter by simple or joint change, then removal). Everything is drawn from the
 * simulation's seeded PRNG.
 */
type MembershipStep =
  | { phase: 'learner'; newId: NodeId; victim: NodeId; joint: boolean; since: number }
  | { phase: 'promote'; newId: NodeId; victim: NodeId; joint: boolean; since: number };

const FAULT_GAP_MS_MIN = 20;
const FAULT_GAP_MS_SPREAD = 280;
/** A membership step not visible after this long is proposed again. */
const MEMBERSHIP_RETRY_MS = 3000;

export class FaultScheduler {
  injected = 0;
  private active = false;
  private membership: MembershipStep | undefined;

  constructor(private readonly sim: Simulation) {}

  start(): void {
    this.active = true;
    this.scheduleNext();
    if (this.sim.config.hibernateAfterTicks > 0) this.watchStoreLiveness();
  }

  stop(): void {
    this.active = false;
  }

  private scheduleNext(): void {
    this.sim.schedule(FAULT_GAP_MS_MIN + this.sim.random.next() * FAULT_GAP_MS_SPREAD, () => this.fire());
  }

  private fire(): void {
    if (!this.active) return;
    this.injected++;
    const roll = this.sim.random.next();
    if (roll < 0.25) this.crashOne();
    else if (roll < 0.45) this.partition();
    else if (roll < 0.6) this.flakyNetwork();
    else if (roll < 0.7) this.transferLeader();
    else if (roll < 0.8) this.advanceMembership(true);
    else if (roll < 0.88) this.pauseOne();
    else this.heal();
    this.advanceMembership(false);
    this.scheduleNext();
  }

  // ------------------------------------------------------------ crashes

  private crashOne(): void {
    const sim = this.sim;
    const alive = sim.aliveHosts();
    const members = [...sim.hosts.keys()].filter((id) => !sim.removed.has(id)).length;
    const down = members - alive.length;
    // Mostly keep a majority up; sometimes take it down too (safety must hold regardless).
    if (down >= Math.floor((members - 1) / 2) && !sim.random.chance(0.05)) return;
    const leader = sim.leader();
    const victim = leader && sim.random.chance(0.5) ? leader : alive.length > 0 ? sim.random.pick(alive) : undefined;
    if (!victim) return;
    sim.crashHost(victim);
    sim.schedule(20 + sim.random.next() * 600, () => {
      if (!victim.alive && !sim.removed.has(victim.id)) sim.startHost(victim);
    });
  }

  /**
   * Stops a node's process (the leader often) for longer than an election timeout but less
   * than a client's patience: the others may elect and write meanwhile, and the requests it
   * held run when it resumes, some before the messages that would depose it.
   */
  private pauseOne(): void {
    const sim = this.sim;
    const alive = sim.aliveHosts();
    if (alive.length === 0) return;
    const leader = sim.leader();
    const victim = leader && sim.random.chance(0.6) ? leader : sim.random.pick(alive);
    const electionMs = sim.config.electionTicks * sim.tickMs;
    sim.pauseHost(victim, electionMs * (1.5 + sim.random.next() * 2.3));
  }

  // ------------------------------------------------------------ network

  private partition(): void {
    const sim = this.sim;
    const ids = sim.aliveHosts().map((h) => h.id);
    if (ids.length < 2) return;
    const kind = sim.random.nextInt(4);
    const net = sim.network;
    if (kind === 0) {
      const shuffled = this.shuffle(ids);
      const cut = 1 + sim.random.nextInt(Math.max(1, Math.floor(ids.length / 2)));
      net.partition(shuffled.slice(0, cut), shuffled.slice(cut));
    } else if (kind === 1) {
      const leader = sim.leader();
      net.isolate(leader ? leader.id : sim.random.pick(ids), ids);
    } else if (kind === 2) {
      for (let i = 0; i < 1 + sim.random.nextInt(3); i++) net.cutLink(sim.random.pick(ids), sim.random.pick(ids));
    } else {
      // A ring: each node hears only its two neighbours.
      const ring = this.shuffle(ids);
      for (let i = 0; i < ring.length; i++) {
        for (let j = 0; j < ring.length; j++) {
          const distance = Math.min(Math.abs(i - j), ring.length - Math.abs(i - j));
          if (distance > 1) net.cutLink(ring[i]!, ring[j]!);
        }
      }
    }
    sim.schedule(50 + sim.random.next() * 750, () => net.healLinks());
  }

  private flakyNetwork(): void {
    const sim = this.sim;
    sim.network.conditions = {
      dropRate: sim.random.next() * 0.15,
      duplicateRate: sim.random.next() * 0.1,
      delayMinMs: 1,
      delayMaxMs: 4 + sim.random.next() * 36,
    };
    sim.schedule(100 + sim.random.next() * 900, () => sim.network.calm());
  }

  private heal(): void {
    this.sim.network.healLinks();
    this.sim.network.calm();
  }

  private shuffle<T>(items: readonly T[]): T[] {
    const copy = [...items];
    for (let i = copy.length - 1; i > 0; i--) {
      const j = this.sim.random.nextInt(i + 1);
      [copy[i], copy[j]] = [copy[j]!, copy[i]!];
    }
    return copy;
  }

  /**
   * Store liveness (coalesced per store in the real system): a hibernating follower whose
   * leader is down or unreachable is woken so that it can elect a new one.
   */
  private watchStoreLiveness(): void {
    const sim = this.sim;
    for (const host of sim.aliveHosts()) {
      const status = host.node.status();
      if (!status.hibernating || status.role === 'leader') continue;
      const leader = sim.hosts.get(status.leader);
      const reachable = leader !== undefined && leader.alive && sim.network.canReach(host.id, leader.id) && sim.network.canReach(leader.id, host.id);
      if (!reachable) host.node.wake();
    }
    sim.schedule(50, () => this.watchStoreLiveness());
  }

  // ------------------------------------------------------------ leadership and membership

  private transferLeader(): void {
    const leader = this.sim.leader();
    if (!leader) return;
    const voters = leader.node.confState().voters.filter((id) => id !== leader.id);
    if (voters.length === 0) return;
    leader.node.transferLeader(this.sim.random.pick(voters));
  }

  private propose(leader: SimHost, changes: readonly ConfChangeSingle[], transition: ConfChange['transition'] = 'auto'): boolean {
    try {
      leader.node.proposeConfChange({ transition, changes, context: EMPTY_BYTES });
      return true;
    } catch (err) {
      if (isRaftError(err)) return false; // pending change, transfer, no leader: retried later
      throw err;
    }
  }

  /** Called on every applied conf change, and by the nemesis; `begin` may start a new replacement. */
  advanceMembership(begin: boolean): void {
    if (!this.active) return;
    const leader = this.sim.leader();
    if (!leader) return;
    if (!this.membership) {
      if (begin) this.beginReplacement(leader);
      return;
    }
    this.stepReplacement(leader, this.membership);
  }

  /**
   * Leader churn (the figure-8 schedule): a leader that just won is sometimes crashed before
   * its own entry commits, so terms pile up with divergent, partially replicated tails.
   */
  onLeaderElected(host: SimHost): void {
    const sim = this.sim;
    if (!this.active || !sim.random.chance(sim.config.leaderChurnRate)) return;
    const incarnation = sim.incarnationOf(host.id);
    sim.schedule(0.5 + sim.random.next() * 8, () => {
      if (!host.alive || sim.incarnationOf(host.id) !== incarnation) return;
      sim.crashHost(host);
      sim.schedule(5 + sim.random.next() * 100, () => {
        if (!host.alive && !sim.removed.has(host.id)) sim.startHost(host);
      });
    });
  }

  onConfApplied(host: SimHost): void {
    if (host.node.status().role === 'leader') this.advanceMembership(false);
  }

  private beginReplacement(leader: SimHost): void {
    const cs = leader.node.confState();
    if (cs.votersOutgoing.length > 0 || cs.learners.length > 0) return;
    const victim = this.sim.random.pick(cs.voters);
    const newId = this.sim.nextNodeId++;
    this.sim.createHost(newId);
    this.membership = { phase: 'learner', newId, victim, joint: this.sim.random.chance(0.5), since: this.sim.now };
    this.propose(leader, [{ type: 'addLearnerNode', nodeId: newId }]);
  }

  private stepReplacement(leader: SimHost, step: MembershipStep): void {
    const cs = leader.node.confState();
    const stale = this.sim.now - step.since > MEMBERSHIP_RETRY_MS;
    if (step.phase === 'learner') {
      if (!cs.learners.includes(step.newId)) {
        if (stale) this.retry(step, () => this.propose(leader, [{ type: 'addLearnerNode', nodeId: step.newId }]));
        return;
      }
      const progress = leader.node.status().progress.get(step.newId);
      if (!progress || progress.match < leader.node.status().commit) return; // still catching up
      const promoted = step.joint
        ? this.propose(leader, [{ type: 'addNode', nodeId: step.newId }, { type: 'removeNode', nodeId: step.victim }], this.sim.random.chance(0.3) ? 'explicit' : 'auto')
        : this.propose(leader, [{ type: 'addNode', nodeId: step.newId }]);
      if (promoted) this.membership = { ...step, phase: 'promote', since: this.sim.now };
      return;
    }
    this.stepPromotion(leader, step, cs.voters, cs.votersOutgoing, cs.autoLeave, stale);
  }

  private stepPromotion(leader: SimHost, step: MembershipStep, voters: readonly NodeId[], outgoing: readonly NodeId[], autoLeave: boolean, stale: boolean): void {
    const victimGone = !voters.includes(step.victim) && !outgoing.includes(step.victim);
    if (victimGone && voters.includes(step.newId)) {
      this.retire(step.victim);
      this.membership = undefined;
      return;
    }
    if (outgoing.length > 0 && !autoLeave) {
      this.propose(leader, [], 'explicit'); // leave the explicit joint configuration
      return;
    }
    if (outgoing.length > 0) return; // auto leave is on its way
    if (voters.includes(step.newId) && voters.includes(step.victim)) {
      this.propose(leader, [{ type: 'removeNode', nodeId: step.victim }]);
      return;
    }
    if (stale && !voters.includes(step.newId)) this.retry(step, () => this.propose(leader, [{ type: 'addNode', nodeId: step.newId }]));
  }

  private retry(step: MembershipStep, action: () => boolean): void {
    if (action()) step.since = this.sim.now;
  }

  /** The removed member's store destroys its peer: it never runs again. */
  private retire(id: NodeId): void {
    const host = this.sim.hosts.get(id);
    this.sim.removed.add(id);
    if (host?.alive) this.sim.crashHost(host);
  }
}
