/**
 * Every bound and default of @flotilla/transport, in one place (TigerBeetle style). Units and
 * qualifiers last. The checks at the bottom run at load time and state how the bounds relate,
 * to each other and to @flotilla/wire's.
 *
 * Two kinds of numbers live here:
 * - protocol constants (the handshake layout, what a receiver accepts from any sender): fixed;
 * - tunables (`TUNING_DEFAULTS`): what a transport uses unless its options say otherwise. An
 *   option may set a tunable anywhere in [1, its ceiling] (`TUNING_CEILINGS`); tests use small
 *   values (tiny queues, millisecond backoff). Nothing is unbounded.
 */
import { limits as wire } from '@flotilla/wire';

// ---- Handshake (the first bytes on every connection, before any frame) ----------------------------
/** 'FLTP': Flotilla transport. A connection that does not start with it is not ours. */
export const HANDSHAKE_MAGIC = 0x464c5450;
/** The one handshake version this code speaks. */
export const HANDSHAKE_VERSION = 1;
/**
 * magic u32 ‖ version u8 ‖ purpose u8 ‖ role u8 ‖ status u8 ‖ clusterId u64 ‖ fromStore u64 ‖
 * toStore u64 ‖ crc32c u32 (of the 32 bytes before it), big-endian.
 */
export const HANDSHAKE_BYTES = 36;

// ---- Cluster ---------------------------------------------------------------------------------------
/** Peer stores one transport dials (setPeer) and distinct stores it accepts raft streams from. */
export const storesMax = 1024;
/** Inbound connections that have not finished their handshake yet (a flood is refused). */
export const inboundPendingMax = 256;

// ---- Queues ----------------------------------------------------------------------------------------
/**
 * Bytes a queued beat is charged: its encoded tuple [regionId, fromPeer, toPeer, term, commit,
 * leaderTick, context] without the context (added per beat), an upper bound.
 */
export const HEARTBEAT_QUEUED_BYTES_FIXED = 1 + 6 * wire.MSGPACK_UINT_BYTES_MAX + wire.MSGPACK_HEADER_BYTES_MAX;
/** The largest single raft message `send` accepts: what one RaftBatch frame can carry alone. */
export const raftMessageQueuedBytesMax = wire.raftBatchPayloadBytesMax - wire.RAFT_BATCH_ENCODED_FIXED_BYTES_MAX;

// ---- Socket options --------------------------------------------------------------------------------
/** TCP keep-alive probes start after this much silence (a vanished host is noticed by the kernel). */
export const tcpKeepAliveInitialDelayMs = 10_000;
/** Largest timer Node accepts (2^31 - 1 ms); every timeout below stays within it. */
export const TIMER_MS_MAX = 0x7fff_ffff;

// ---- Snapshot streams: what a RECEIVER accepts from any sender (not tunable) ------------------------
/** Chunks a sender may have unacknowledged; the receiver refuses a sender that goes past it. */
export const snapshotChunksInFlightMax = 8;
/** Bytes a sender may have unacknowledged (at least one chunk is always allowed). */
export const snapshotBytesInFlightMax = 64 * 1024 * 1024;

/** Knobs a transport may set in its options (each in [1, its ceiling]). */
export interface TransportTuning {
  /** Messages (raft envelopes + beats + beat responses) queued for one peer, not yet written. */
  readonly peerQueueMessagesMax: number;
  /** Bytes queued for one peer (upper bounds of their encoded size), not yet written. */
  readonly peerQueueBytesMax: number;
  /** First reconnect delay ceiling; doubles per consecutive failure (full jitter below it). */
  readonly reconnectBackoffBaseMs: number;
  /** Cap of the reconnect delay ceiling. */
  readonly reconnectBackoffMaxMs: number;
  /** A dial plus the peer's handshake reply must finish within this. */
  readonly connectTimeoutMs: number;
  /** An accepted connection must complete its handshake within this. */
  readonly handshakeTimeoutMs: number;
  /** A raft connection whose socket has not drained for this long is dead (peer not reading). */
  readonly writeStallTimeoutMs: number;
  /** Sender's window: unacknowledged chunks (≤ snapshotChunksInFlightMax). */
  readonly snapshotChunksInFlight: number;
  /** Sender's window: unacknowledged bytes (≤ snapshotBytesInFlightMax). */
  readonly snapshotBytesInFlight: number;
  /** A snapshot stream without progress (an ack awaited, or a chunk awaited by the receiver). */
  readonly snapshotIdleTimeoutMs: number;
  /** After the last chunk, the receiver's `onSnapshot` must resolve within this. */
  readonly snapshotApplyTimeoutMs: number;
  /** Snapshots this transport sends at once (more: 'failed' at once; raft retries later). */
  readonly snapshotSendsMax: number;
  /** Snapshots this transport receives at once (more are rejected). */
  readonly snapshotReceivesMax: number;
  /** close(): how long an ended socket may take to flush before it is destroyed. */
  readonly closeLingerMs: number;
}

export const TUNING_DEFAULTS: TransportTuning = Object.freeze({
  peerQueueMessagesMax: 64 * 1024,
  peerQueueBytesMax: 64 * 1024 * 1024,
  reconnectBackoffBaseMs: 50,
  reconnectBackoffMaxMs: 5_000,
  connectTimeoutMs: 5_000,
  handshakeTimeoutMs: 5_000,
  writeStallTimeoutMs: 30_000,
  snapshotChunksInFlight: 4,
  snapshotBytesInFlight: 32 * 1024 * 1024,
  snapshotIdleTimeoutMs: 30_000,
  snapshotApplyTimeoutMs: 10 * 60_000,
  snapshotSendsMax: 16,
  snapshotReceivesMax: 16,
  closeLingerMs: 1_000,
});

export const TUNING_CEILINGS: TransportTuning = Object.freeze({
  peerQueueMessagesMax: 1024 * 1024,
  peerQueueBytesMax: 256 * 1024 * 1024,
  reconnectBackoffBaseMs: 60_000,
  reconnectBackoffMaxMs: 10 * 60_000,
  connectTimeoutMs: 10 * 60_000,
  handshakeTimeoutMs: 10 * 60_000,
  writeStallTimeoutMs: 60 * 60_000,
  snapshotChunksInFlight: snapshotChunksInFlightMax,
  snapshotBytesInFlight: snapshotBytesInFlightMax,
  snapshotIdleTimeoutMs: 60 * 60_000,
  snapshotApplyTimeoutMs: 24 * 60 * 60_000,
  snapshotSendsMax: 256,
  snapshotReceivesMax: 256,
  closeLingerMs: 60_000,
});

/**
 * Reconnect delay ceilings double at most this many times (base · 2^n), so the arithmetic stays
 * exact whatever the failure count; the cap is reached long before.
 */
export const reconnectBackoffDoublingsMax = 30;

// ---- Load-time checks of how the bounds relate ------------------------------------------------------
function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`transport constants: ${what}`);
}
check(HANDSHAKE_MAGIC >>> 0 === HANDSHAKE_MAGIC, 'the magic fits a u32');
check(HANDSHAKE_VERSION >= 1 && HANDSHAKE_VERSION <= 0xff, 'the handshake version fits its byte');
check(HANDSHAKE_BYTES === 4 + 4 * 1 + 3 * 8 + 4, 'the handshake layout adds up');
check(HANDSHAKE_BYTES < wire.FRAME_HEADER_BYTES * 8, 'a handshake is small next to a frame');
check(storesMax >= 3 && inboundPendingMax >= 1, 'a cluster has room for a quorum of stores');
for (const name of Object.keys(TUNING_DEFAULTS) as (keyof TransportTuning)[]) {
  const value = TUNING_DEFAULTS[name];
  const ceiling = TUNING_CEILINGS[name];
  check(Number.isSafeInteger(value) && value >= 1 && value <= ceiling, `default ${name} within [1, ceiling]`);
  check(Number.isSafeInteger(ceiling), `ceiling ${name} is an integer`);
}
for (const name of [
  'reconnectBackoffBaseMs',
  'reconnectBackoffMaxMs',
  'connectTimeoutMs',
  'handshakeTimeoutMs',
  'writeStallTimeoutMs',
  'snapshotIdleTimeoutMs',
  'snapshotApplyTimeoutMs',
  'closeLingerMs',
] as const) {
  check(TUNING_CEILINGS[name] <= TIMER_MS_MAX, `${name} ceiling fits a Node timer`);
}
check(TUNING_DEFAULTS.reconnectBackoffBaseMs <= TUNING_DEFAULTS.reconnectBackoffMaxMs, 'backoff base <= cap');
check(
  TUNING_CEILINGS.reconnectBackoffBaseMs * 2 ** reconnectBackoffDoublingsMax <= Number.MAX_SAFE_INTEGER,
  'the largest backoff ceiling before capping is an exact integer',
);
check(
  1 * 2 ** reconnectBackoffDoublingsMax >= TUNING_CEILINGS.reconnectBackoffMaxMs,
  'the doublings reach any cap from a base of 1 ms',
);
// Queues: whatever one frame can carry, an empty queue accepts (so nothing valid is refused forever).
check(TUNING_DEFAULTS.peerQueueBytesMax >= raftMessageQueuedBytesMax, 'a maximal raft message fits an empty default queue');
check(raftMessageQueuedBytesMax > 0, 'a RaftBatch frame has room for a message');
check(TUNING_DEFAULTS.peerQueueMessagesMax >= wire.heartbeatBatchBeatsMax, 'a full heartbeat frame fits the default queue');
check(
  HEARTBEAT_QUEUED_BYTES_FIXED + wire.raftContextBytesMax <= wire.HEARTBEAT_ENCODED_BYTES_MAX,
  "a queued beat's charge is wire's own bound of its encoding",
);
// Snapshots: the sender's default window is within what receivers accept; a chunk always fits.
check(TUNING_DEFAULTS.snapshotChunksInFlight <= snapshotChunksInFlightMax, 'default chunk window within the receivers’ bound');
check(TUNING_DEFAULTS.snapshotBytesInFlight <= snapshotBytesInFlightMax, 'default byte window within the receivers’ bound');
check(snapshotBytesInFlightMax >= wire.snapshotChunkDataBytesMax, 'a receiver buffers at least one maximal chunk');
check(
  Number.isSafeInteger(snapshotChunksInFlightMax * wire.snapshotChunkDataBytesMax),
  'receiver buffer arithmetic stays exact',
);
check(TUNING_DEFAULTS.connectTimeoutMs >= TUNING_DEFAULTS.reconnectBackoffBaseMs, 'a dial is given longer than the first backoff');
