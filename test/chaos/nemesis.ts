/**
 * The nemeses: faults drawn from the run's seed, one at a time, each held for a while and then
 * healed, plus PD operations (leader transfers, splits, merges, peer moves) at random beside them.
 *
 * The seed fixes every choice the harness makes (which fault, for how long, which store of a
 * list, which key); what the list holds (who leads now, which regions exist) is the cluster's
 * state when the choice is made, so a seed replays the schedule, not the exact run.
 */
import { performance } from 'node:perf_hooks';
import type { SeededRandom } from '../../packages/raft/src/index.ts';
import type { ChaosCluster, DropRules } from './cluster.ts';
import { registerKey } from './workloads.ts';

export type FaultKind =
  | 'kill-store'
  | 'power-loss-store'
  | 'kill-pd-leader'
  | 'pause-store'
  | 'pause-pd-leader'
  | 'partition-isolate-store'
  | 'partition-majority-minority'
  | 'partition-one-way'
  | 'partition-ring'
  | 'partition-isolate-region-leader'
  | 'partition-isolate-pd-leader'
  | 'clock-jump-store'
  | 'clock-jump-pd-leader';

export const FAULT_KINDS: readonly FaultKind[] = [
  'kill-store',
  'power-loss-store',
  'kill-pd-leader',
  'pause-store',
  'pause-pd-leader',
  'partition-isolate-store',
  'partition-majority-minority',
  'partition-one-way',
  'partition-ring',
  'partition-isolate-region-leader',
  'partition-isolate-pd-leader',
  'clock-jump-store',
  'clock-jump-pd-leader',
];

/**
 * Wall-clock jumps (an NTP step) either way: a few seconds (PD's store-down time), tens of
 * seconds (leader-transfer operators' and the stores' merge-commit timeouts), ten minutes (every
 * other operator timeout). Raft ticks ride on the monotonic clock and do not move.
 */
const CLOCK_JUMPS_MS: readonly number[] = [-600_000, -40_000, -5_000, 5_000, 40_000, 600_000];

/** PD operators the nemesis asks for; move-peer is a membership change (add learner, promote, remove). */
export type PdOperationKind = 'transfer-leader' | 'split' | 'merge' | 'move-peer';
const PD_OPERATION_KINDS: readonly PdOperationKind[] = ['transfer-leader', 'split', 'merge', 'move-peer'];

/** One line of the fault timeline (times in seconds since the run started). */
export interface TimelineEvent {
  readonly kind: FaultKind | PdOperationKind;
  readonly startS: number;
  endS: number | null;
  /** Its target and what happened (a PD answer, a restart's trouble). */
  note: string;
}

export interface NemesisTiming {
  /** Quiet time between two faults. */
  readonly gapMs: readonly [number, number];
  /** How long a fault is held. */
  readonly holdMs: readonly [number, number];
  /** Time between two PD operations. */
  readonly pdOperationEveryMs: readonly [number, number];
  /** Keys of the register workload a split may cut at. */
  readonly splitKeys: number;
}

/** Regions the nemesis keeps the cluster between (splits below the ceiling, merges above the floor). */
const REGIONS_FLOOR = 3;
const REGIONS_CEILING = 24;
/** Timeline entries kept (a 10-minute run makes a few hundred). */
export const TIMELINE_EVENTS_MAX = 10_000;

/** Anomalies kept (PD answers that say "a bug", with the log lines behind them). */
const ANOMALIES_MAX = 20;
/** Log lines of each process involved kept with an anomaly. */
const ANOMALY_LOG_LINES = 40;
/** What PD logs when a request failed on a bug (its answer is a 500). */
const PD_BUG_LOG_MESSAGE = 'PD request failed (a bug)';

export class Nemesis {
  readonly timeline: TimelineEvent[] = [];
  /** Not verdicts, but worth a look: e.g. a PD request that failed on a bug, with its log line. */
  readonly anomalies: string[] = [];
  private running = true;
  private readonly wakeups = new Set<() => void>();

  constructor(
    private readonly cluster: ChaosCluster,
    private readonly faultRandom: SeededRandom,
    private readonly pdRandom: SeededRandom,
    private readonly timing: NemesisTiming,
    private readonly startedAt: number,
    private readonly log: (line: string) => void,
  ) {}

  /** Runs faults and PD operations until stop(); resolves once the current fault is healed. */
  async run(): Promise<void> {
    await Promise.all([this.faultLoop(), this.pdLoop()]);
  }

  stop(): void {
    this.running = false;
    for (const wake of this.wakeups) wake();
  }

  private async faultLoop(): Promise<void> {
    while (this.running) {
      await this.pause(between(this.faultRandom, this.timing.gapMs));
      if (!this.running) return;
      const kind = this.faultRandom.pick(FAULT_KINDS);
      const holdMs = between(this.faultRandom, this.timing.holdMs);
      const event = this.begin(kind);
      try {
        const heal = await this.inject(kind, event);
        await this.pause(holdMs);
        await heal();
      } catch (err) {
        // A fault that could not be injected or healed (a restart that failed): worth a look.
        this.anomaly(event, `failed: ${(err as Error).message.split('\n')[0]}`, []);
        // Whatever the fault left behind is undone before the next one.
        await this.cluster.healAll().catch((healErr: unknown) => this.anomaly(event, `heal failed: ${(healErr as Error).message.split('\n')[0]}`, []));
      }
      this.end(event);
    }
  }

  private async pdLoop(): Promise<void> {
    while (this.running) {
      await this.pause(between(this.pdRandom, this.timing.pdOperationEveryMs));
      if (!this.running) return;
      const kind = this.pdRandom.pick(PD_OPERATION_KINDS);
      const event = this.begin(kind);
      try {
        await this.pdOperation(kind, event);
      } catch (err) {
        event.note += ` failed: ${(err as Error).message.split('\n')[0]}`;
      }
      this.end(event);
    }
  }

  /** Starts a fault; answers how to heal it. */
  private async inject(kind: FaultKind, event: TimelineEvent): Promise<() => Promise<void>> {
    const stores = this.cluster.liveStoreIds();
    switch (kind) {
      case 'kill-store': {
        const id = this.faultRandom.pick(stores);
        event.note = `store ${id}`;
        await this.cluster.killStore(id);
        return () => this.cluster.restartStore(id);
      }
      case 'power-loss-store': {
        // kill -9, and the store's disk (lossyfs) drops whatever it had not fsynced.
        const id = this.faultRandom.pick(stores);
        if (this.cluster.powerLossUnavailable !== null) {
          event.note = `skipped: ${this.cluster.powerLossUnavailable}`;
          return async () => {};
        }
        const dropped = await this.cluster.powerLoss(id);
        event.note = `store ${id}: ${dropped.bytes} unsynced bytes of ${dropped.files} files dropped`;
        return () => this.cluster.restartStore(id);
      }
      case 'kill-pd-leader': {
        const id = await this.pdLeaderOrAny();
        event.note = `pd ${id}`;
        await this.cluster.killPd(id);
        return () => this.cluster.restartPd(id);
      }
      case 'pause-store': {
        const id = this.faultRandom.pick(stores);
        event.note = `store ${id}`;
        this.cluster.pause('store', id);
        return () => this.cluster.resume('store', id);
      }
      case 'pause-pd-leader': {
        const id = await this.pdLeaderOrAny();
        event.note = `pd ${id}`;
        this.cluster.pause('pd', id);
        return () => this.cluster.resume('pd', id);
      }
      case 'partition-isolate-store':
        return this.partition(event, isolate(this.faultRandom.pick(stores), this.cluster.storeIds));
      case 'partition-majority-minority': {
        const shuffled = shuffle(this.faultRandom, this.cluster.storeIds);
        const minority = shuffled.slice(0, Math.floor(shuffled.length / 2));
        return this.partition(event, split(minority, shuffled.slice(minority.length)));
      }
      case 'partition-one-way': {
        // `from` can no longer reach `to`; the way back stays open.
        const [from, ...rest] = shuffle(this.faultRandom, this.cluster.storeIds);
        const to = rest.slice(0, 1 + this.faultRandom.nextInt(rest.length - 1));
        return this.partition(event, new Map([[from!, { dropTo: to, dropFrom: [] }]]));
      }
      case 'partition-ring':
        return this.partition(event, ring(shuffle(this.faultRandom, this.cluster.storeIds)));
      case 'partition-isolate-pd-leader': {
        // PD's own raft group: its leader cut off from the other members (stores still reach it).
        const id = await this.pdLeaderOrAny();
        event.note = 'pd';
        return this.partition(event, isolate(id, this.cluster.pdIds), 'pd');
      }
      case 'clock-jump-store':
        return this.jumpClock(event, 'store', this.faultRandom.pick(stores));
      case 'clock-jump-pd-leader':
        return this.jumpClock(event, 'pd', await this.pdLeaderOrAny());
      case 'partition-isolate-region-leader': {
        const regions = (await this.cluster.regions()).filter((r) => r.leader !== null);
        const region = regions.length > 0 ? this.faultRandom.pick(regions) : undefined;
        const id = region?.leader?.storeId ?? this.faultRandom.pick(stores);
        event.note = `region ${region?.id ?? '?'} led by`;
        return this.partition(event, isolate(id, this.cluster.storeIds));
      }
    }
  }

  private async partition(event: TimelineEvent, rules: ReadonlyMap<number, DropRules>, kind: 'store' | 'pd' = 'store'): Promise<() => Promise<void>> {
    event.note = `${event.note} ${describeRules(rules)}`.trim();
    const lagging = await this.cluster.partition(rules, kind);
    if (lagging.length > 0) this.anomaly(event, `${lagging.join(', ')} did not confirm their fault rules in time`, this.processLogs(lagging));
    return async () => {
      const stillLagging = await this.cluster.partition(new Map(), kind);
      if (stillLagging.length > 0) throw new Error(`${stillLagging.join(', ')} did not confirm the heal in time`);
    };
  }

  private async jumpClock(event: TimelineEvent, kind: 'store' | 'pd', id: number): Promise<() => Promise<void>> {
    const offsetMs = this.faultRandom.pick(CLOCK_JUMPS_MS);
    event.note = `${kind} ${id} ${offsetMs > 0 ? '+' : ''}${offsetMs / 1000} s`;
    const lagging = await this.cluster.jumpClock(kind, id, offsetMs);
    if (lagging.length > 0) this.anomaly(event, `${lagging.join(', ')} did not confirm the clock jump in time`, this.processLogs(lagging));
    return async () => {
      const stillLagging = await this.cluster.jumpClock(kind, id, 0);
      if (stillLagging.length > 0) throw new Error(`${stillLagging.join(', ')} did not confirm the clock's return in time`);
    };
  }

  private anomaly(event: TimelineEvent, what: string, logs: readonly string[]): void {
    event.note += ` (${what})`;
    if (this.anomalies.length < ANOMALIES_MAX) this.anomalies.push([`${event.startS.toFixed(1)}s ${event.kind}: ${what}`, ...logs].join('\n'));
  }

  /** The last log lines of these processes (`store-3`, `pd-1`: an anomaly's context; the buffers move on). */
  private processLogs(keys: readonly string[]): string[] {
    return keys.flatMap((key) => (this.cluster.logs(ANOMALY_LOG_LINES)[key] ?? []).map((line) => `${key}: ${line}`));
  }

  private async pdOperation(kind: PdOperationKind, event: TimelineEvent): Promise<void> {
    const regions = (await this.cluster.regions()).sort((a, b) => (a.startKey < b.startKey ? -1 : a.startKey > b.startKey ? 1 : 0));
    let operator: Record<string, unknown> | undefined;
    if (kind === 'transfer-leader') {
      const region = this.pdRandom.pick(regions);
      const targets = region.peers.filter((p) => p.role === 'voter' && p.storeId !== region.leader?.storeId);
      if (targets.length > 0) operator = { type: 'transferLeader', regionId: region.id, toStoreId: this.pdRandom.pick(targets).storeId };
    } else if (kind === 'split' && regions.length < REGIONS_CEILING) {
      const key = Buffer.from(registerKey(this.pdRandom.nextInt(this.timing.splitKeys))).toString('hex');
      const region = regions.find((r) => r.startKey < key && (r.endKey === '' || key < r.endKey));
      if (region) operator = { type: 'split', regionId: region.id, keys: [key] };
    } else if (kind === 'move-peer') {
      const region = this.pdRandom.pick(regions);
      const elsewhere = this.cluster.storeIds.filter((id) => !region.peers.some((p) => p.storeId === id));
      if (elsewhere.length > 0 && region.peers.length > 0) operator = { type: 'movePeer', regionId: region.id, fromStoreId: this.pdRandom.pick(region.peers).storeId, toStoreId: this.pdRandom.pick(elsewhere) };
    } else if (kind === 'merge' && regions.length > REGIONS_FLOOR) {
      const at = this.pdRandom.nextInt(regions.length - 1);
      operator = { type: 'merge', regionId: regions[at]!.id, targetRegionId: regions[at + 1]!.id };
    }
    if (!operator) {
      event.note = `skipped (${regions.length} regions)`;
      return;
    }
    const answer = await this.cluster.pdCall('POST', '/pd/api/v1/operators', operator);
    event.note = `${JSON.stringify(operator)} -> ${answer.status}${answer.status === 201 ? '' : ` ${JSON.stringify(answer.body).slice(0, 160)}`}`;
    if (answer.status >= 500) this.anomaly(event, `PD answered ${answer.status}`, this.pdBugLogs());
  }

  /** PD's log lines about requests that failed on a bug, newest last. */
  private pdBugLogs(): string[] {
    return [...this.cluster.pd.members.values()].flatMap((m) => m.logs.filter((line) => line.includes(PD_BUG_LOG_MESSAGE)).slice(-2).map((line) => `pd ${m.id}: ${line}`));
  }

  private async pdLeaderOrAny(): Promise<number> {
    return (await this.cluster.pdLeader()) ?? this.faultRandom.pick([...this.cluster.pd.members.keys()]);
  }

  private begin(kind: TimelineEvent['kind']): TimelineEvent {
    const event: TimelineEvent = { kind, startS: this.seconds(), endS: null, note: '' };
    if (this.timeline.length < TIMELINE_EVENTS_MAX) this.timeline.push(event);
    return event;
  }

  private end(event: TimelineEvent): void {
    event.endS = this.seconds();
    this.log(`nemesis: ${event.startS.toFixed(1)}s-${event.endS.toFixed(1)}s ${event.kind} ${event.note}`);
  }

  private seconds(): number {
    return (performance.now() - this.startedAt) / 1000;
  }

  /** Waits `ms`, or less if stop() comes first. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.wakeups.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.wakeups.add(wake);
    });
  }
}

function between(random: SeededRandom, [low, high]: readonly [number, number]): number {
  return low + random.nextInt(high - low + 1);
}

function shuffle<T>(random: SeededRandom, items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = random.nextInt(i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** `id` cut off from every other store, both ways. */
function isolate(id: number, all: readonly number[]): Map<number, DropRules> {
  return split([id], all.filter((s) => s !== id));
}

/** Two sides that cannot reach each other (each side drops what goes to the other). */
function split(a: readonly number[], b: readonly number[]): Map<number, DropRules> {
  const rules = new Map<number, DropRules>();
  for (const id of a) rules.set(id, { dropTo: [...b], dropFrom: [...b] });
  for (const id of b) rules.set(id, { dropTo: [...a], dropFrom: [...a] });
  return rules;
}

/** Each store reaches only its two neighbours on a ring (Jepsen's "ring"): no majority agrees on one view. */
function ring(order: readonly number[]): Map<number, DropRules> {
  const rules = new Map<number, DropRules>();
  order.forEach((id, i) => {
    const neighbours = new Set([order[(i + 1) % order.length]!, order[(i + order.length - 1) % order.length]!]);
    const cut = order.filter((other) => other !== id && !neighbours.has(other));
    rules.set(id, { dropTo: cut, dropFrom: cut });
  });
  return rules;
}

function describeRules(rules: ReadonlyMap<number, DropRules>): string {
  return [...rules]
    .filter(([, r]) => r.dropTo.length > 0 || r.dropFrom.length > 0)
    .map(([id, r]) => `${id}-x->${r.dropTo.join('/') || '-'}`)
    .join(' ');
}
