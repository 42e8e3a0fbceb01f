import { RaftError } from './errors.ts';
import type { RaftStorage } from './storage.ts';
import type { NodeId } from './types.ts';

/**
 * Every bound of the core, named once. Hosts override them per group through RaftConfig;
 * these are the defaults, chosen for thousands of groups per process.
 */
export const LIMITS = Object.freeze({
  /** Append messages in flight to one follower before the leader waits for acks. */
  inflightMessagesMax: 256,
  /** Bytes of entries in flight to one follower (0 = only the count bounds the window). */
  inflightBytesMax: 32 * 1024 * 1024,
  /** Bytes of entries in one append message (at least one entry is always sent). */
  appendBytesMax: 1024 * 1024,
  /** Bytes of proposed-but-uncommitted entries at the leader; beyond it proposals are dropped. */
  uncommittedBytesMax: 64 * 1024 * 1024,
  /** Bytes of committed entries handed to the host in one Ready. */
  committedBytesPerReadyMax: 16 * 1024 * 1024,
  /** ReadIndex requests the leader holds while confirming leadership. */
  pendingReadIndexMax: 4096,
});

/** A seeded source of randomness; the core never draws from anything else. */
export interface RandomSource {
  /** A uniformly distributed integer in [0, bound). */
  nextInt(bound: number): number;
}

/**
 * Deliberately injected bugs, for proving that the simulator's checks have teeth. Never set
 * these outside tests: each one breaks Raft's safety.
 */
export interface InjectedFaults {
  /** Leader commits an entry of an older term by counting replicas (Raft paper, figure 8). */
  readonly commitOldTermByCounting?: boolean;
  /** Grant votes without checking that the candidate's log is up to date (§5.4.1). */
  readonly voteWithoutLogCheck?: boolean;
  /** Install a snapshot's entries but keep the node's old configuration. */
  readonly snapshotIgnoresConfState?: boolean;
}

export type ReadOnlyOption = 'safe' | 'leaseBased';

export interface RaftConfig {
  readonly id: NodeId;
  readonly storage: RaftStorage;
  readonly random: RandomSource;
  /** Ticks without hearing from a leader before a follower campaigns (randomized in [T, 2T)). */
  readonly electionTicks?: number;
  /** Ticks between leader heartbeats. */
  readonly heartbeatTicks?: number;
  /** The last index the host applied before restarting (0 for a fresh node). */
  readonly applied?: number;
  readonly preVote?: boolean;
  readonly checkQuorum?: boolean;
  readonly readOnlyOption?: ReadOnlyOption;
  /**
   * Bound on how many ticks two nodes' clocks may drift apart within one election timeout;
   * the lease for lease-based reads is shortened by it. Must be < electionTicks.
   */
  readonly maxClockDriftTicks?: number;
  /**
   * Called each time a leader is about to serve a read from its lease. The lease counts ticks,
   * so the host checks here that its ticks kept pace with real time, and calls voidLease() on
   * its leaders when they did not (a stalled event loop counts fewer ticks than time passed).
   */
  readonly beforeLeaseUse?: () => void;
  /** Idle ticks after which a leader hibernates its group; 0 disables hibernation. */
  readonly hibernateAfterTicks?: number;
  /** Followers drop proposals instead of forwarding them to the leader. */
  readonly disableProposalForwarding?: boolean;
  readonly inflightMessagesMax?: number;
  readonly inflightBytesMax?: number;
  readonly appendBytesMax?: number;
  readonly uncommittedBytesMax?: number;
  readonly committedBytesPerReadyMax?: number;
  readonly pendingReadIndexMax?: number;
  readonly faults?: InjectedFaults;
}

export type ResolvedConfig = Required<Omit<RaftConfig, 'faults'>> & { readonly faults: InjectedFaults };

function invalid(message: string): never {
  throw new RaftError('FLOTILLA_RAFT_INVALID_CONFIG', message);
}

const NOTHING_TO_CHECK = (): void => {};

/** No injected fault: one object shared by every node that has none. */
const NO_FAULTS: InjectedFaults = Object.freeze({});

export function resolveConfig(config: RaftConfig): ResolvedConfig {
  const resolved: ResolvedConfig = {
    electionTicks: 10,
    heartbeatTicks: 1,
    applied: 0,
    preVote: true,
    checkQuorum: true,
    readOnlyOption: 'safe',
    maxClockDriftTicks: 1,
    beforeLeaseUse: NOTHING_TO_CHECK,
    hibernateAfterTicks: 0,
    disableProposalForwarding: false,
    ...LIMITS,
    ...config,
    faults: config.faults ?? NO_FAULTS,
  };
  if (!Number.isSafeInteger(resolved.id) || resolved.id <= 0) invalid(`node id must be a positive integer, got ${resolved.id}`);
  if (resolved.heartbeatTicks <= 0) invalid('heartbeatTicks must be > 0');
  if (resolved.electionTicks <= resolved.heartbeatTicks) invalid('electionTicks must be greater than heartbeatTicks');
  if (resolved.inflightMessagesMax <= 0) invalid('inflightMessagesMax must be > 0');
  if (resolved.inflightBytesMax < 0) invalid('inflightBytesMax must be >= 0');
  if (resolved.inflightBytesMax > 0 && resolved.inflightBytesMax < resolved.appendBytesMax) {
    invalid('inflightBytesMax must be >= appendBytesMax, or one message could never be sent');
  }
  if (resolved.uncommittedBytesMax < resolved.appendBytesMax) invalid('uncommittedBytesMax must be >= appendBytesMax');
  if (resolved.pendingReadIndexMax <= 0) invalid('pendingReadIndexMax must be > 0');
  if (resolved.readOnlyOption === 'leaseBased' && !resolved.checkQuorum) {
    invalid('lease-based reads need checkQuorum: without it a deposed leader never learns its lease is gone');
  }
  if (resolved.maxClockDriftTicks < 0 || resolved.maxClockDriftTicks >= resolved.electionTicks) {
    invalid('maxClockDriftTicks must be in [0, electionTicks)');
  }
  if (resolved.hibernateAfterTicks < 0) invalid('hibernateAfterTicks must be >= 0');
  return resolved;
}
