/**
 * The placement driver's picture of the cluster, as the checkers and schedulers see it.
 *
 * Everything here is plain data: the PD server builds it from its replicated metadata and the
 * heartbeats stores send, the scheduling code (pure functions) reads it and returns operators.
 * Keys are raw bytes; an empty `endKey` means "to the end of the keyspace".
 */
import type { FlowRatesJson, PdOperatorStep, RegionMeta, RegionPeer } from '@flotilla/wire';

export type { RegionMeta, RegionPeer };

/**
 * A store's lifecycle, as in TiKV's PD:
 * - `up`: heartbeating;
 * - `disconnected`: no heartbeat for `storeDisconnectMs` (probably a restart; nothing moves yet);
 * - `down`: no heartbeat for `storeDownMs` — its replicas are replaced elsewhere;
 * - `offline`: an operator asked to remove it; its replicas are moved away while it still serves;
 * - `tombstone`: removed for good (offline and empty); its id is never reused.
 */
export type StoreState = 'up' | 'disconnected' | 'down' | 'offline' | 'tombstone';

/** Location labels (zone, rack, host...). `locationLabels` in the config orders them. */
export type StoreLabels = Readonly<Record<string, string>>;

/** Rates a heartbeat reports, per second, averaged over the reporting interval (the wire's shape). */
export type FlowRates = FlowRatesJson;

export const ZERO_RATES: FlowRates = { writeBytes: 0, writeKeys: 0, readBytes: 0, readKeys: 0 };

export interface StoreInfo {
  readonly id: number;
  /** host:port of the store's raft transport. */
  readonly raftAddress: string;
  /** host:port of the store's client/admin HTTP API. */
  readonly apiAddress: string;
  readonly labels: StoreLabels;
  readonly state: StoreState;
  /** From the latest store heartbeat (0 before the first one). */
  readonly capacityBytes: number;
  readonly availableBytes: number;
  readonly usedBytes: number;
  readonly regionCount: number;
  readonly leaderCount: number;
  readonly rates: FlowRates;
  /** The store reported its disk below its reserve: its leaders refuse puts, so leaderships move away. */
  readonly refusingWrites: boolean;
  /** PD clock (ms) of the latest heartbeat; the registration time before the first one. */
  readonly lastHeartbeatMs: number;
}

/** A region as PD knows it: the leader's latest heartbeat. */
export interface RegionInfo {
  readonly meta: RegionMeta;
  /** Peer id of the leader that sent the latest heartbeat (0 if unknown). */
  readonly leaderPeerId: number;
  /** Peers the leader reports as not responding for a while (peer ids). */
  readonly downPeerIds: readonly number[];
  /** Peers far behind the leader's log, or still catching up by snapshot (peer ids). */
  readonly pendingPeerIds: readonly number[];
  readonly approximateBytes: number;
  readonly approximateKeys: number;
  readonly rates: FlowRates;
  /** PD clock (ms) of the latest heartbeat. */
  readonly lastHeartbeatMs: number;
}

/**
 * One step of an operator. The region's leader executes the current step; PD sees it done in
 * a later region heartbeat (see `stepDone` in the scheduling code). Peer ids are allocated by
 * PD. The shape is the store ↔ PD protocol's (@flotilla/wire's PdOperatorStep): addLearner,
 * changeVoters (one joint-consensus change: `promote` learners become voters and `remove`
 * peers leave, in one step), transferLeader, removePeer, split (at the given keys, each
 * strictly inside the region, or at the middle if none), merge (into `targetRegionId`).
 */
export type OperatorStep = PdOperatorStep;

/** Who asked for an operator: a checker, a scheduler, or a human through the API. */
export type OperatorOrigin =
  | 'replica-checker'
  | 'split-checker'
  | 'merge-checker'
  | 'balance-region'
  | 'balance-leader'
  | 'hot-region'
  | 'admin';

export interface Operator {
  /** Unique within a PD term (for cancel/list); allocated by the caller. */
  readonly id: number;
  readonly regionId: number;
  /** The region's epoch when the operator was made; a heartbeat with an unrelated epoch change cancels it. */
  readonly regionEpoch: RegionMeta['epoch'];
  readonly origin: OperatorOrigin;
  /** Why, in words an operator can read in the history ("store 4 down for 31 min: replace its replica"). */
  readonly reason: string;
  readonly steps: readonly OperatorStep[];
  /** Higher runs first when limits allow only some; replica repair > admin > balance. */
  readonly priority: number;
  readonly createdMs: number;
  readonly timeoutMs: number;
}

/** What the scheduling code is given: a snapshot of the cluster at `nowMs`. */
export interface ClusterView {
  readonly nowMs: number;
  readonly stores: readonly StoreInfo[];
  /** Sorted by start key; non-overlapping. */
  readonly regions: readonly RegionInfo[];
  /** Operators running now, at most one per region. */
  readonly running: readonly Operator[];
}
