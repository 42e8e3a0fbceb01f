/**
 * The per-peer send queue, shared by both transports so that they coalesce identically.
 *
 * `send`/`sendHeartbeat`/`sendHeartbeatResponse` only append here (bounded: messages and bytes);
 * the transport's one flush per event-loop turn calls `take`, which turns everything queued for
 * the peer into as few frames as the bounds allow, in this order:
 *   DiskState frame           — only when the store announced its disk since the last flush
 *   RaftBatch frame(s)        — split only past raftBatchMessagesMax or raftBatchPayloadBytesMax
 *   HeartbeatBatch frame(s)   — split only past heartbeatBatchBeatsMax
 *   HeartbeatResponseBatch(es)
 * Raft messages keep the order they were queued in (within a frame and across split frames).
 */
import { RAFT_MESSAGE_TYPE_CODES } from '@flotilla/wire';
import { limits as wire, raftEnvelopeBytesBound, type DiskState, type FrameKindName, type Heartbeat, type HeartbeatResponse, type RaftEnvelope, type WireMessage } from '@flotilla/wire';
import { HEARTBEAT_QUEUED_BYTES_FIXED, raftMessageQueuedBytesMax } from './constants.ts';
import { TransportError, invalidArgument } from './errors.ts';
import type { DiskReport, StoreId } from './types.ts';

/** The frame kinds a raft connection carries (what take() makes); any other closes it. */
export const RAFT_STREAM_KINDS: readonly FrameKindName[] = Object.freeze(['raftBatch', 'heartbeatBatch', 'heartbeatResponseBatch', 'diskState']);

export interface QueueBounds {
  readonly messagesMax: number;
  readonly bytesMax: number;
}

/** What one flush of a peer's queue produced. */
export interface TakenFrames {
  readonly frames: WireMessage[];
  /** Raft messages + beats + beat responses in those frames. */
  readonly messages: number;
}

function isId(value: unknown): boolean {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 1;
}

function isUint(value: unknown): boolean {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/**
 * Checks what a host can plausibly get wrong about an envelope (the full check runs when it is
 * encoded) and returns the upper bound of its encoded size. Throws INVALID_ARGUMENT or
 * MESSAGE_TOO_LARGE: both are bugs of the caller, reported on its own stack.
 */
export function checkEnvelope(env: RaftEnvelope): number {
  const m = env.message;
  const code = RAFT_MESSAGE_TYPE_CODES[m.type];
  if (code === undefined || code === 0) invalidArgument(`raft message type '${m.type}' is local and never sent`);
  if (m.type === 'snapshot') invalidArgument('a snapshot message goes through sendSnapshot (it opens a snapshot stream)');
  if (!isId(env.regionId)) invalidArgument(`regionId must be a positive safe integer, got ${env.regionId}`);
  if (!isId(env.fromPeer) || !isId(env.toPeer)) invalidArgument(`peer ids must be positive safe integers, got ${env.fromPeer}->${env.toPeer}`);
  if (m.from !== env.fromPeer || m.to !== env.toPeer) invalidArgument(`envelope peers ${env.fromPeer}->${env.toPeer} differ from the message's ${m.from}->${m.to}`);
  const bytes = raftEnvelopeBytesBound(env);
  if (bytes > raftMessageQueuedBytesMax) {
    throw new TransportError('FLOTILLA_TRANSPORT_MESSAGE_TOO_LARGE', `a ${m.type} message of up to ${bytes} encoded bytes; one RaftBatch frame carries ${raftMessageQueuedBytesMax}`);
  }
  return bytes;
}

function checkBeat(beat: Heartbeat | HeartbeatResponse, what: string): number {
  if (!isId(beat.regionId) || !isId(beat.fromPeer) || !isId(beat.toPeer)) invalidArgument(`${what}: ids must be positive safe integers`);
  if (!isUint(beat.term) || !isUint(beat.leaderTick) || ('commit' in beat && !isUint(beat.commit))) invalidArgument(`${what}: term, commit and leaderTick must be non-negative safe integers`);
  const contextBytes = beat.context?.byteLength ?? 0;
  if (contextBytes > wire.raftContextBytesMax) invalidArgument(`${what}: context of ${contextBytes} bytes, at most ${wire.raftContextBytesMax}`);
  return HEARTBEAT_QUEUED_BYTES_FIXED + contextBytes;
}

export function checkStore(store: StoreId, localStore: StoreId): void {
  if (!Number.isSafeInteger(store) || store < 1) invalidArgument(`store ids are positive safe integers, got ${store}`);
  if (store === localStore) invalidArgument(`store ${store} is this store`);
}

/** announceDiskState's report: a copy with exactly its fields, checked (the encoder checks again). */
export function checkDiskReport(report: DiskReport): DiskReport {
  if (typeof report.refusesReplication !== 'boolean') invalidArgument('refusesReplication must be a boolean');
  if (!isUint(report.availableBytes) || !isUint(report.reserveBytes)) invalidArgument(`availableBytes and reserveBytes must be non-negative safe integers, got ${report.availableBytes} and ${report.reserveBytes}`);
  return { refusesReplication: report.refusesReplication, availableBytes: report.availableBytes, reserveBytes: report.reserveBytes };
}

/** A received DiskState frame as the host sees it (its store ids were checked against the link). */
export function diskReportOf(state: DiskState): DiskReport {
  return { refusesReplication: state.refusesReplication, availableBytes: state.availableBytes, reserveBytes: state.reserveBytes };
}

/** sendSnapshot's envelope: a snapshot message naming its stream. */
export function checkSnapshotEnvelope(envelope: RaftEnvelope): void {
  const m = envelope.message;
  if (m.type !== 'snapshot' || m.snapshot === null) invalidArgument(`sendSnapshot takes a snapshot message, got ${m.type}`);
  if (envelope.snapshotId === undefined || !Number.isSafeInteger(envelope.snapshotId) || envelope.snapshotId < 0) invalidArgument('a snapshot envelope names its stream (snapshotId)');
  if (m.from !== envelope.fromPeer || m.to !== envelope.toPeer) invalidArgument(`envelope peers ${envelope.fromPeer}->${envelope.toPeer} differ from the message's ${m.from}->${m.to}`);
}

export class Outbox {
  private raft: RaftEnvelope[] = [];
  /** raftEnvelopeBytesBound of each queued envelope (computed once, at send). */
  private raftBytes: number[] = [];
  private beats: Heartbeat[] = [];
  private responses: HeartbeatResponse[] = [];
  /** The store's disk state to tell the peer: one slot, the latest wins (not a queued message). */
  private diskReport: DiskReport | null = null;
  /** Queued items of all three kinds. */
  messages = 0;
  /** Sum of the queued items' encoded-size bounds. */
  bytes = 0;

  constructor(private readonly bounds: QueueBounds) {}

  get isEmpty(): boolean {
    return this.messages === 0 && this.diskReport === null;
  }

  /** Sends `report` with the next flush, in place of any report not yet sent. */
  setDiskReport(report: DiskReport): void {
    this.diskReport = report;
  }

  private admits(bytes: number): boolean {
    if (this.messages + 1 > this.bounds.messagesMax) return false;
    // An empty queue takes any message that fits a frame, so a large one is never refused forever.
    return this.messages === 0 || this.bytes + bytes <= this.bounds.bytesMax;
  }

  /** Queues a checked envelope of `bytes` (checkEnvelope); false when the queue is full. */
  offerRaft(env: RaftEnvelope, bytes: number): boolean {
    if (!this.admits(bytes)) return false;
    this.raft.push(env);
    this.raftBytes.push(bytes);
    this.messages++;
    this.bytes += bytes;
    return true;
  }

  offerHeartbeat(beat: Heartbeat): boolean {
    const bytes = checkBeat(beat, 'heartbeat');
    if (!this.admits(bytes)) return false;
    this.beats.push(beat);
    this.messages++;
    this.bytes += bytes;
    return true;
  }

  offerHeartbeatResponse(beat: HeartbeatResponse): boolean {
    const bytes = checkBeat(beat, 'heartbeat response');
    if (!this.admits(bytes)) return false;
    this.responses.push(beat);
    this.messages++;
    this.bytes += bytes;
    return true;
  }

  /** Everything queued, as frames for `fromStore` → `toStore`; the queue is empty afterwards. */
  take(fromStore: StoreId, toStore: StoreId): TakenFrames {
    const frames: WireMessage[] = [];
    if (this.diskReport !== null) frames.push({ kind: 'diskState', body: { fromStore, toStore, ...this.diskReport } });
    const raft = this.raft;
    const raftBytes = this.raftBytes;
    let start = 0;
    let frameBytes = wire.RAFT_BATCH_ENCODED_FIXED_BYTES_MAX;
    for (let i = 0; i < raft.length; i++) {
      const bytes = raftBytes[i]!;
      const full = i - start >= wire.raftBatchMessagesMax || frameBytes + bytes > wire.raftBatchPayloadBytesMax;
      if (full && i > start) {
        frames.push({ kind: 'raftBatch', body: { fromStore, toStore, messages: raft.slice(start, i) } });
        start = i;
        frameBytes = wire.RAFT_BATCH_ENCODED_FIXED_BYTES_MAX;
      }
      frameBytes += bytes;
    }
    if (start < raft.length) frames.push({ kind: 'raftBatch', body: { fromStore, toStore, messages: start === 0 ? raft : raft.slice(start) } });
    for (let i = 0; i < this.beats.length; i += wire.heartbeatBatchBeatsMax) {
      const beats = this.beats.length <= wire.heartbeatBatchBeatsMax ? this.beats : this.beats.slice(i, i + wire.heartbeatBatchBeatsMax);
      frames.push({ kind: 'heartbeatBatch', body: { fromStore, toStore, beats } });
    }
    for (let i = 0; i < this.responses.length; i += wire.heartbeatBatchBeatsMax) {
      const beats = this.responses.length <= wire.heartbeatBatchBeatsMax ? this.responses : this.responses.slice(i, i + wire.heartbeatBatchBeatsMax);
      frames.push({ kind: 'heartbeatResponseBatch', body: { fromStore, toStore, beats } });
    }
    const messages = this.messages;
    this.clear();
    return { frames, messages };
  }

  /** Drops everything queued (a removed peer, a closed transport). */
  clear(): void {
    this.raft = [];
    this.raftBytes = [];
    this.beats = [];
    this.responses = [];
    this.diskReport = null;
    this.messages = 0;
    this.bytes = 0;
  }
}
