/**
 * Which PD member serves: the one whose replica leads PD's group. A member watches its
 * replica; when it becomes leader (or leads in a new term) it loads the cluster from the
 * replicated metadata — a linearizable read, so everything earlier leaders committed is in —
 * and only then serves. When it stops leading it drops that state at once: a later term may
 * have changed the metadata, and the next time it leads it loads it again.
 */
import { errorFields, monotonicNowMs, type Logger } from '@flotilla/store';
import { Cluster } from '../cluster/cluster.ts';
import { PdError } from '../errors.ts';
import type { PdMember } from './pd-member.ts';

/** How often a member looks at its replica's role. */
export const leadershipCheckMs = 50;
/** After a failed load, the next try waits this long, doubling per failure up to the max. */
export const loadRetryMs = { first: 100, max: 5_000 };

/** The leader's state for one term. */
export interface LeaderTerm {
  readonly term: number;
  readonly cluster: Cluster;
  readonly sinceMs: number;
}

/** What runs while this member leads (the schedulers); started per term, stopped when it ends. */
export interface TermWork {
  start(term: LeaderTerm): void;
  stop(): void;
}

export class Leadership {
  private current: LeaderTerm | null = null;
  private loading: { term: number; done: Promise<void> } | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** Loads failed in a row (reset by a success), and when the next may start. */
  private loadFailures = 0;
  private nextLoadMs = 0;

  constructor(
    private readonly member: PdMember,
    private readonly clusterId: number,
    private readonly logger: Logger,
    private readonly work: TermWork,
    private readonly now: () => number = monotonicNowMs,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.check(), leadershipCheckMs);
    this.timer.unref();
    this.check();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.end('member stopping');
  }

  /** The leader's state, or the typed error telling a caller where to go instead. */
  serving(): LeaderTerm {
    const leadership = this.member.leadership();
    if (this.current && leadership.leader && leadership.term === this.current.term) return this.current;
    if (leadership.leader) throw new PdError('FLOTILLA_PD_NO_LEADER', 'this PD member just became leader and is loading the cluster; retry');
    const leader = leadership.leaderPeerId === 0 ? undefined : this.member.member(leadership.leaderPeerId);
    if (!leader) throw new PdError('FLOTILLA_PD_NO_LEADER', 'PD has no leader right now (an election is in progress); retry');
    throw new PdError('FLOTILLA_PD_NOT_LEADER', `PD member ${leader.id} leads; ask it at ${leader.clientUrl}`, {
      leader: { memberId: leader.id, url: leader.clientUrl },
    });
  }

  /** Whether this member serves now (for /ready and metrics). */
  get leading(): boolean {
    return this.current !== null;
  }

  /** One look at the replica's role (the timer's work): end a lost term, load a new one. */
  check(): void {
    const leadership = this.member.leadership();
    if (this.current && (!leadership.leader || leadership.term !== this.current.term)) this.end(`lost the lead (term ${leadership.term})`);
    const due = this.now() >= this.nextLoadMs;
    if (leadership.leader && !this.current && this.loading?.term !== leadership.term && due) this.load(leadership.term);
  }

  /** Resolves once the load running now (if any) ended. */
  async settled(): Promise<void> {
    await this.loading?.done;
  }

  private load(term: number): void {
    const done = (async () => {
      try {
        await this.member.recordKnownMembers();
        const cluster = await Cluster.load(this.member.meta, this.clusterId, this.now);
        const now = this.member.leadership();
        if (!now.leader || now.term !== term) return; // lost it while loading
        this.current = { term, cluster, sinceMs: this.now() };
        this.loadFailures = 0;
        this.logger.info({ term, stores: cluster.storeAddresses().length, regions: cluster.regions.size }, 'PD leader: serving');
        this.work.start(this.current);
      } catch (err) {
        // Backed off, not retried at every check: a load that keeps failing (unreadable
        // metadata, a busy group) must not become 20 linearizable reads and warnings a second.
        this.loadFailures++;
        const retryInMs = Math.min(loadRetryMs.max, loadRetryMs.first * 2 ** (this.loadFailures - 1));
        this.nextLoadMs = this.now() + retryInMs;
        this.logger.warn({ ...errorFields(err), term, failures: this.loadFailures, retryInMs }, 'PD leader could not load the cluster; retrying');
      } finally {
        if (this.loading?.term === term) this.loading = null;
      }
    })();
    this.loading = { term, done };
  }

  private end(why: string): void {
    if (!this.current) return;
    this.logger.info({ term: this.current.term, why }, 'PD leader: no longer serving');
    this.current = null;
    this.work.stop();
  }
}
