/**
 * The leader's scheduling loop: every `scheduleIntervalMs` it shows the pure scheduling code
 * (../scheduling) a view of the cluster and keeps the operators it returns — at most one per
 * region — until a region heartbeat shows them finished, stale or timed out. Region
 * heartbeats are answered with the running operator's current step; the region's leader runs
 * it. Every operator's start and end goes into a bounded history with its reason.
 *
 * Operators live in the leader's memory only (as in TiKV's PD): a new leader starts with
 * none, and the checkers make again whatever is still needed.
 */
import { monotonicNowMs, type Logger } from '@flotilla/store';
import type { RegionCommand } from '@flotilla/wire';
import type { Cluster, StoreTiming } from '../cluster/cluster.ts';
import type { Operator, OperatorStep, RegionInfo, StoreInfo } from '../cluster/types.ts';
import { PdError } from '../errors.ts';
import type { LeaderTerm, TermWork } from '../member/leadership.ts';
import type { MetaStore } from '../meta/meta-store.ts';
import type { RegionCommands } from '../server/routes.ts';
import { CONFIG_KEY, decodeConfig, encodeConfig } from '../meta/records.ts';
import { applyConfigPatch, DEFAULT_SCHEDULE_CONFIG, validateScheduleConfig, type ScheduleConfig } from '../scheduling/config.ts';
import { newSchedulerState, schedule, type SchedulerState } from '../scheduling/coordinator.ts';
import { operatorProgress } from '../scheduling/operators.ts';

/** Bounds of the scheduling loop. */
export const schedulingLimits = Object.freeze({
  /** History entries kept (oldest dropped first). */
  historyMax: 4_096,
  /**
   * Ids one operator may take (its own id and its new peers' ids; a move takes two).
   * A pass takes this many per operator its limits allow, fresh, and drops what it does not
   * use: ids are never kept for a later pass, because a store refuses to create a peer whose
   * id is below one of that region it removed before — a peer id must be newer than every id
   * handed out earlier (a split's new peers, say), which only fresh ids are.
   */
  idsPerOperatorMax: 4,
  /** Most ids one pass takes. */
  idsPerPassMax: 20_000,
  /** Operators running at once across the cluster, whatever their origin. */
  runningMax: 10_000,
  /** Stores with a parked operator watch (one watch per store; a newer one replaces it). */
  watchersMax: 1_024,
  /** Longest a watch is parked before it is answered empty. */
  watchTimeoutMsMax: 60_000,
});

export type OperatorEvent = 'created' | 'finished' | 'timedOut' | 'stale' | 'cancelled' | 'storeTombstoned';

export interface HistoryEntry {
  readonly atMs: number;
  readonly event: OperatorEvent;
  /** 0 for events about a store rather than an operator. */
  readonly operatorId: number;
  /** 0 for events about a store. */
  readonly regionId: number;
  /** For store events. */
  readonly storeId?: number;
  readonly origin: Operator['origin'];
  readonly reason: string;
  /** For a stale operator: what changed under it. */
  readonly detail?: string;
  readonly steps: readonly OperatorStep[];
}

interface Running {
  readonly op: Operator;
  step: number;
  /** A region heartbeat's answer carried the current step: the region's leader has it. */
  dispatched: boolean;
  /** Ids of what the current step creates (a split's region and peers), fixed once sent. */
  newIds: number[] | undefined;
}

export interface SchedulingOptions {
  readonly scheduleIntervalMs?: number;
  /** The clock of every age and timeout here (default: the monotonic clock, immune to wall-clock steps). */
  readonly now?: () => number;
  /** Told of every operator event (metrics). */
  readonly onEvent?: (entry: HistoryEntry) => void;
}

export class SchedulingService implements TermWork, RegionCommands {
  private config: ScheduleConfig = DEFAULT_SCHEDULE_CONFIG;
  private term: LeaderTerm | null = null;
  private readonly running = new Map<number, Running>();
  private readonly history: HistoryEntry[] = [];
  private state: SchedulerState = newSchedulerState();
  private idPool: number[] = [];
  private timer: NodeJS.Timeout | null = null;
  private passRunning = false;
  private readonly now: () => number;
  /** Store id -> a parked watch, answered when an operator for a region it leads starts. */
  private readonly watchers = new Map<number, { wake: () => void; timer: NodeJS.Timeout }>();

  constructor(
    private readonly meta: MetaStore,
    private readonly logger: Logger,
    private readonly options: SchedulingOptions = {},
  ) {
    this.now = options.now ?? monotonicNowMs;
  }

  /** A reading of this service's clock (an operator built elsewhere is stamped with it). */
  nowMs(): number {
    return this.now();
  }

  timing(): StoreTiming {
    return this.config;
  }

  currentConfig(): ScheduleConfig {
    return this.config;
  }

  start(term: LeaderTerm): void {
    this.term = term;
    this.running.clear();
    this.state = newSchedulerState();
    this.idPool = [];
    void this.loadConfig(term).then(() => {
      if (this.term !== term) return;
      this.timer = setInterval(() => void this.pass(), this.options.scheduleIntervalMs ?? 1_000);
      this.timer.unref();
    });
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.term = null;
    this.running.clear();
    for (const watcher of this.watchers.values()) watcher.wake();
  }

  /**
   * A store's operator watch (the push half of TiKV's heartbeat stream): resolves with the
   * regions led on `storeId` whose operator waits for a heartbeat — at once if there are
   * some, else as soon as one starts, else empty after `timeoutMs`.
   */
  watch(storeId: number, timeoutMs: number, limit: number): Promise<number[]> {
    this.cluster();
    const waiting = this.waitingOn(storeId, limit);
    if (waiting.length > 0) return Promise.resolve(waiting);
    if (!this.watchers.has(storeId) && this.watchers.size >= schedulingLimits.watchersMax) return Promise.resolve([]);
    this.watchers.get(storeId)?.wake();
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        if (this.watchers.get(storeId)?.wake === wake) this.watchers.delete(storeId);
        resolve(this.waitingOn(storeId, limit));
      };
      const timer = setTimeout(wake, Math.min(timeoutMs, schedulingLimits.watchTimeoutMsMax));
      this.watchers.set(storeId, { wake, timer });
    });
  }

  /** Leader: validates and persists a partial config, then uses it. */
  async patchConfig(patch: unknown): Promise<ScheduleConfig> {
    this.cluster();
    const result = applyConfigPatch(this.config, patch);
    if (!result.ok) throw new PdError('FLOTILLA_PD_INVALID_ARGUMENT', result.errors.map((e) => `${e.field}: ${e.message}`).join('; '));
    await this.meta.write([{ op: 'put', key: CONFIG_KEY, value: encodeConfig(result.config) }]);
    this.config = result.config;
    return result.config;
  }

  /** Answers region heartbeats: the current step of each region's running operator. */
  async commandsFor(regionIds: readonly number[]): Promise<RegionCommand[]> {
    const cluster = this.cluster();
    const commands: RegionCommand[] = [];
    for (const regionId of regionIds) {
      const entry = this.running.get(regionId);
      if (!entry) continue;
      if (!this.judge(entry, cluster.regions.get(regionId))) continue;
      const step = entry.op.steps[entry.step]!;
      if (step.type === 'split' && !entry.newIds) entry.newIds = await cluster.ids.allocate(splitIdsNeeded(step, cluster.regions.get(regionId)));
      entry.dispatched = true;
      commands.push({ regionId, operatorId: entry.op.id, regionEpoch: entry.op.regionEpoch, step, ...(entry.newIds && step.type === 'split' ? { newIds: entry.newIds } : {}) });
    }
    return commands;
  }

  /**
   * Regions led on `storeId` (as PD last heard) whose operator has a step no heartbeat answer
   * carried yet. Once a step went out, the leader reports on its own (its region changes, and
   * it heartbeats while it runs an operator), so a watch is not woken again for it.
   */
  waitingOn(storeId: number, limit: number): number[] {
    if (!this.term) return [];
    const regions = this.term.cluster.regions;
    const waiting: number[] = [];
    for (const { op, dispatched } of this.running.values()) {
      if (dispatched) continue;
      const region = regions.get(op.regionId);
      if (region && this.term.cluster.leaderStoreOf(region) === storeId) waiting.push(op.regionId);
      if (waiting.length >= limit) break;
    }
    return waiting;
  }

  /** Operators running now. */
  operators(): { operator: Operator; step: number }[] {
    return [...this.running.values()].map((r) => ({ operator: r.op, step: r.step }));
  }

  /** Newest first, at most `limit`. */
  recentHistory(limit: number): HistoryEntry[] {
    return this.history.slice(-limit).reverse();
  }

  /** An operator from the API (manual transfer, move, split, merge): runs unless the region is busy. */
  async addOperator(build: (allocateId: () => number) => Operator): Promise<Operator> {
    this.cluster();
    await this.refillIds();
    let op: Operator;
    try {
      op = build(() => this.takeId());
    } finally {
      this.idPool = [];
    }
    if (this.running.has(op.regionId)) throw new PdError('FLOTILLA_PD_OPERATOR_EXISTS', `region ${op.regionId} runs operator ${this.running.get(op.regionId)!.op.id} already; cancel it first`);
    this.begin(op);
    return op;
  }

  cancel(regionId: number): Operator {
    this.cluster();
    const entry = this.running.get(regionId);
    if (!entry) throw new PdError('FLOTILLA_PD_OPERATOR_NOT_FOUND', `region ${regionId} runs no operator`);
    this.end(entry, 'cancelled', 'cancelled through the API');
    return entry.op;
  }

  /** One scheduling pass (also what the timer runs); returns the operators it started. */
  async pass(): Promise<Operator[]> {
    if (this.passRunning || !this.term) return [];
    this.passRunning = true;
    try {
      const cluster = this.cluster();
      for (const entry of [...this.running.values()]) this.judge(entry, cluster.regions.get(entry.op.regionId));
      if (this.running.size >= schedulingLimits.runningMax) return [];
      await this.refillIds();
      const view = { nowMs: this.now(), stores: cluster.storeInfos(this.config), regions: cluster.regions.all(), running: [...this.running.values()].map((r) => r.op) };
      let made: Operator[];
      try {
        made = schedule(view, this.config, () => this.takeId(), this.state).filter((op) => !this.running.has(op.regionId));
      } finally {
        this.idPool = [];
      }
      for (const op of made) this.begin(op);
      await this.retireDrainedStores(cluster, view.stores);
      return made;
    } catch (err) {
      // Not leading any more: the next term schedules. A failed metadata write: the next pass
      // retries. Anything else is a bug in the scheduling code; it is logged, and PD keeps
      // serving routes and heartbeats rather than dying on every member that takes over.
      const leadership = err instanceof PdError && (err.code === 'FLOTILLA_PD_NOT_LEADER' || err.code === 'FLOTILLA_PD_NO_LEADER');
      if (!leadership) this.logger.error({ err: { code: (err as { code?: string }).code, message: (err as Error).message, stack: (err as Error).stack } }, 'scheduling pass failed');
      return [];
    } finally {
      this.passRunning = false;
    }
  }

  /**
   * An offline store that holds nothing becomes a tombstone (its id is never used again), as
   * TiKV's PD does: nothing in PD's map has a replica there, no operator is moving one there,
   * and the store itself reports no replica at all — PD's map may not know a just-split child yet.
   */
  private async retireDrainedStores(cluster: Cluster, stores: readonly StoreInfo[]): Promise<void> {
    for (const store of stores) {
      if (store.state !== 'offline' || store.regionCount > 0) continue;
      const held = cluster.regions.all().some((r) => r.meta.peers.some((p) => p.storeId === store.id));
      const incoming = [...this.running.values()].some((r) => r.op.steps.some((step) => 'storeId' in step && step.storeId === store.id));
      if (held || incoming) continue;
      await cluster.setStoreAdminState(store.id, 'tombstone');
      this.logger.info({ storeId: store.id }, 'store drained: now a tombstone');
      this.recordStore(store.id, 'offline and empty: now a tombstone, its id is never used again');
    }
  }

  private cluster(): Cluster {
    if (!this.term) throw new PdError('FLOTILLA_PD_NO_LEADER', 'this PD member does not serve as leader');
    return this.term.cluster;
  }

  private async loadConfig(term: LeaderTerm): Promise<void> {
    try {
      const stored = await this.meta.get(CONFIG_KEY);
      if (!stored) return;
      const result = validateScheduleConfig(decodeConfig(stored));
      if (result.ok && this.term === term) this.config = result.config;
      if (!result.ok) this.logger.warn({ errors: result.errors }, 'stored schedule config is invalid; using the defaults');
    } catch (err) {
      this.logger.warn({ err: String(err) }, 'could not read the schedule config; using the last one');
    }
  }

  /** Advances an operator by what the region shows; false once it ended. */
  private judge(entry: Running, region: RegionInfo | undefined): boolean {
    const progress = operatorProgress(entry.op, region, this.now(), entry.step);
    switch (progress.state) {
      case 'running': {
        if (progress.step !== entry.step) {
          entry.newIds = undefined;
          entry.dispatched = false;
        }
        entry.step = progress.step;
        const unreachable = this.unreachableTarget(entry.op.steps[entry.step]!);
        if (unreachable === null) return true;
        this.end(entry, 'stale', unreachable);
        return false;
      }
      case 'finished':
        this.end(entry, 'finished');
        return false;
      case 'timedOut':
        this.end(entry, 'timedOut', `step ${progress.step + 1} of ${entry.op.steps.length} (${entry.op.steps[progress.step]?.type}) did not finish in ${entry.op.timeoutMs} ms`);
        return false;
      case 'stale':
        this.end(entry, 'stale', progress.reason);
        return false;
    }
  }

  /**
   * Why a step cannot finish because the store it moves something TO is not up (it died just
   * before PD noticed, or was set offline), or null. Such an operator would hold its region
   * until its timeout; ending it lets the checkers act at once.
   */
  private unreachableTarget(step: OperatorStep): string | null {
    const targets =
      step.type === 'addLearner' ? [step.storeId] : step.type === 'transferLeader' ? [step.toStoreId] : step.type === 'changeVoters' ? step.promote.map((p) => p.storeId) : [];
    for (const storeId of targets) {
      let state: string;
      try {
        state = this.cluster().storeInfo(storeId, this.config).state;
      } catch {
        state = 'unknown';
      }
      if (state !== 'up') return `the step's target store ${storeId} is ${state}`;
    }
    return null;
  }

  private begin(op: Operator): void {
    this.running.set(op.regionId, { op, step: 0, newIds: undefined, dispatched: false });
    this.record(op, 'created');
    const region = this.term?.cluster.regions.get(op.regionId);
    const leaderStore = region ? this.term?.cluster.leaderStoreOf(region) : undefined;
    if (leaderStore !== undefined) this.watchers.get(leaderStore)?.wake();
  }

  private end(entry: Running, event: OperatorEvent, detail?: string): void {
    this.running.delete(entry.op.regionId);
    this.record(entry.op, event, detail);
  }

  private record(op: Operator, event: OperatorEvent, detail?: string): void {
    const entry: HistoryEntry = { atMs: this.now(), event, operatorId: op.id, regionId: op.regionId, origin: op.origin, reason: op.reason, steps: op.steps, ...(detail ? { detail } : {}) };
    this.remember(entry);
    this.logger.info({ operatorId: op.id, regionId: op.regionId, origin: op.origin, event, reason: op.reason, ...(detail ? { detail } : {}) }, 'operator');
  }

  private recordStore(storeId: number, reason: string): void {
    this.remember({ atMs: this.now(), event: 'storeTombstoned', operatorId: 0, regionId: 0, storeId, origin: 'replica-checker', reason, steps: [] });
  }

  private remember(entry: HistoryEntry): void {
    this.history.push(entry);
    if (this.history.length > schedulingLimits.historyMax) this.history.splice(0, this.history.length - schedulingLimits.historyMax);
    this.options.onEvent?.(entry);
  }

  private async refillIds(): Promise<void> {
    const c = this.config;
    const operators = c.replicaScheduleLimit + c.regionScheduleLimit + c.leaderScheduleLimit + c.mergeScheduleLimit + c.hotRegionScheduleLimit + c.splitScheduleLimit + 1;
    this.idPool = await this.cluster().ids.allocate(Math.min(schedulingLimits.idsPerPassMax, operators * schedulingLimits.idsPerOperatorMax));
  }

  private takeId(): number {
    const id = this.idPool.shift();
    if (id === undefined) throw new PdError('FLOTILLA_PD_SERVER_BUSY', 'the scheduling id pool ran dry in one pass');
    return id;
  }
}

/** A split at k keys makes k regions, each with one new peer per member of the parent. */
function splitIdsNeeded(step: Extract<OperatorStep, { type: 'split' }>, region: RegionInfo | undefined): number {
  const pieces = Math.max(1, step.keys.length);
  return pieces * (1 + (region?.meta.peers.length ?? 0));
}
