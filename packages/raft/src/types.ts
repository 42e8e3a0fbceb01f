/**
 * The data the Raft core consumes and produces. Plain objects only: the core never
 * serialises anything except configuration changes (see confchange-codec.ts), so hosts are
 * free to pick their wire format (Flotilla uses msgpackr in @flotilla/wire).
 */

/** A member of a Raft group. 0 means "nobody" (no vote, no leader). */
export type NodeId = number;
export const NO_NODE: NodeId = 0;

export type EntryType = 'normal' | 'confChange';

export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly type: EntryType;
  /** Opaque to the core for 'normal' entries; an encoded ConfChange for 'confChange'. */
  readonly data: Uint8Array;
}

/** What must be durable before any message that depends on it leaves the node. */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
}

export const EMPTY_HARD_STATE: HardState = Object.freeze({ term: 0, vote: NO_NODE, commit: 0 });

/** A membership configuration as persisted: voters (incoming), outgoing voters while joint, learners. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  /** Non-empty only while the group is in a joint configuration (C_old of C_old,new). */
  readonly votersOutgoing: readonly NodeId[];
  readonly learners: readonly NodeId[];
  /** Learners to add once the joint configuration is left (they are voters in C_old). */
  readonly learnersNext: readonly NodeId[];
  /** Leave the joint configuration automatically once it is applied. */
  readonly autoLeave: boolean;
}

export const EMPTY_CONF_STATE: ConfState = Object.freeze({
  voters: [],
  votersOutgoing: [],
  learners: [],
  learnersNext: [],
  autoLeave: false,
});

export interface SnapshotMetadata {
  readonly index: number;
  readonly term: number;
  readonly confState: ConfState;
}

export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  /** The state machine image. Opaque to the core. */
  readonly data: Uint8Array;
}

export type ConfChangeType = 'addNode' | 'removeNode' | 'addLearnerNode';

export interface ConfChangeSingle {
  readonly type: ConfChangeType;
  readonly nodeId: NodeId;
}

/**
 * How a configuration change moves through joint consensus.
 * - 'auto': a single change is applied directly (one-at-a-time); several use joint consensus and
 *   the leader leaves the joint configuration automatically.
 * - 'implicit': always joint, left automatically.
 * - 'explicit': always joint, left only by proposing an empty ConfChange.
 */
export type ConfChangeTransition = 'auto' | 'implicit' | 'explicit';

export interface ConfChange {
  readonly transition: ConfChangeTransition;
  /** Empty means "leave the joint configuration". */
  readonly changes: readonly ConfChangeSingle[];
  /** Opaque to the core; carried to the host when the change is applied. */
  readonly context: Uint8Array;
}

export type MessageType =
  | 'hup' // local: start an election (pre-vote first when enabled)
  | 'beat' // local: leader broadcasts heartbeats
  | 'propose' // local or forwarded: append entries
  | 'append'
  | 'appendResponse'
  | 'vote'
  | 'voteResponse'
  | 'preVote'
  | 'preVoteResponse'
  | 'snapshot'
  | 'heartbeat'
  | 'heartbeatResponse'
  | 'unreachable' // local: the host could not deliver to `from`
  | 'snapshotStatus' // local: the host reports the outcome of sending a snapshot to `from`
  | 'checkQuorum' // local: leader verifies it heard from a quorum
  | 'transferLeader'
  | 'timeoutNow'
  | 'readIndex'
  | 'readIndexResponse'
  | 'hibernate' // leader -> followers: the group is idle, stop ticking
  | 'wakeUp'; // follower -> leader: I woke up, resume heartbeats

export interface Message {
  readonly type: MessageType;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
  /** Term of the entry at `index` (append: of the entry preceding `entries`). */
  readonly logTerm: number;
  readonly index: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
  readonly snapshot: Snapshot | null;
  readonly reject: boolean;
  readonly rejectHint: number;
  /** ReadIndex request context, echoed in heartbeats and read states. Empty when unused. */
  readonly context: Uint8Array;
  /**
   * The leader's logical clock (ticks since it became leader) when a heartbeat was sent;
   * echoed by the response. The leader derives its read lease from quorum-acknowledged ticks.
   */
  readonly leaderTick: number;
}

export const EMPTY_BYTES: Uint8Array = new Uint8Array(0);

/** Builds a message with every field defaulted: hosts and tests name only what matters. */
/** The entries of a message that carries none (frozen: shared by all of them). */
export const NO_ENTRIES: readonly Entry[] = Object.freeze([]);

/**
 * A message with every field not given at its default. Field by field, in one fixed order:
 * every message has the same shape (this runs for every append, heartbeat and response).
 */
export function message(fields: Partial<Message> & Pick<Message, 'type'>): Message {
  return {
    type: fields.type,
    from: fields.from ?? NO_NODE,
    to: fields.to ?? NO_NODE,
    term: fields.term ?? 0,
    logTerm: fields.logTerm ?? 0,
    index: fields.index ?? 0,
    entries: fields.entries ?? NO_ENTRIES,
    commit: fields.commit ?? 0,
    snapshot: fields.snapshot ?? null,
    reject: fields.reject ?? false,
    rejectHint: fields.rejectHint ?? 0,
    context: fields.context ?? EMPTY_BYTES,
    leaderTick: fields.leaderTick ?? 0,
  };
}

/** A linearizable read became ready: state up to `index` may be served once applied. */
export interface ReadState {
  readonly index: number;
  readonly context: Uint8Array;
}

export type StateRole = 'follower' | 'preCandidate' | 'candidate' | 'leader';

/** Volatile state the host may want to observe; reported in Ready when it changes. */
export interface SoftState {
  readonly leader: NodeId;
  readonly role: StateRole;
  readonly hibernating: boolean;
}

/**
 * One batch of work for the host. The contract (see README.md, asserted by RawNode):
 * 1. persist `snapshot`, then `entries`, then `hardState` — durably when `mustSync`;
 * 2. only then send `messages` (they may depend on what was persisted) — except the messages
 *    `sendableBeforePersist` accepts: a leader's appends and heartbeats may leave before or
 *    while step 1 runs, so the followers write in parallel with the leader (Raft thesis
 *    §10.2.1). The leader counts its own copy towards the commit only at advance();
 * 3. apply `committedEntries` (may overlap 1 and 2 for entries already durable);
 * 4. call `advance(ready)` with this very object, once step 1 is durable.
 */
export interface Ready {
  readonly softState: SoftState | null;
  readonly hardState: HardState | null;
  readonly readStates: readonly ReadState[];
  readonly entries: readonly Entry[];
  readonly snapshot: Snapshot | null;
  readonly committedEntries: readonly Entry[];
  readonly messages: readonly Message[];
  /** True when hardState or entries changed such that they must be fsynced before sending. */
  readonly mustSync: boolean;
}

/**
 * Whether a Ready's message may leave before the Ready is persisted: a leader's appends and
 * heartbeats. They carry the leader's term, durable since it campaigned (its vote requests
 * left only after that), entries a follower may store and acknowledge whether or not the
 * leader keeps them (the leader's own copy counts only once persisted), and a commit index that
 * counts only durable copies. Everything else — votes, responses, a snapshot, a transfer's
 * timeout-now — states what this node has persisted, and waits.
 */
export function sendableBeforePersist(m: Message): boolean {
  return m.type === 'append' || m.type === 'heartbeat';
}
