/**
 * RaftBatch: the raft messages of many groups from one store to another, as msgpack tuples.
 *
 *   RaftBatch  = [fromStore, toStore, [envelope...]]
 *   envelope   = [regionId, fromPeer, toPeer, epoch | nil, type, term, logTerm, index, commit,
 *                 reject, rejectHint, leaderTick, context | nil, [entry...], snapshot | nil]
 *   epoch      = [version, confVer]
 *   entry      = [index, term, entryType, data]
 *   snapshot   = [index, term, [voters, votersOutgoing, learners, learnersNext, autoLeave], descriptor, snapshotId]
 *
 * (15 fields: an envelope's array header is one byte.)
 */
import type { ConfState, Entry, EntryType, Message, MessageType, Snapshot } from '@flotilla/raft';
import {
  argBytes,
  argContext,
  argCount,
  argId,
  argUint,
  invalid,
  malformed,
  readBool,
  readBytes,
  readContext,
  readId,
  readList,
  readTuple,
  readUint,
} from './check.ts';
import {
  confStateIdsMax,
  ENTRY_ENCODED_OVERHEAD_BYTES_MAX,
  entryDataBytesMax,
  MSGPACK_UINT_BYTES_MAX,
  RAFT_MESSAGE_ENCODED_FIXED_BYTES_MAX,
  raftBatchMessagesMax,
  raftContextBytesMax,
  raftMessageEntriesMax,
  snapshotDescriptorBytesMax,
} from './constants.ts';
import type { RaftBatch, RaftEnvelope, RegionEpoch } from './types.ts';

/**
 * Stable wire codes of the raft message types. 0: a local message that never leaves its node
 * (sending one is a bug in the host). Exhaustive on purpose: a new core message type fails to
 * compile here until it gets a code.
 */
export const RAFT_MESSAGE_TYPE_CODES: Readonly<Record<MessageType, number>> = Object.freeze({
  hup: 0,
  beat: 0,
  unreachable: 0,
  snapshotStatus: 0,
  checkQuorum: 0,
  propose: 1,
  append: 2,
  appendResponse: 3,
  vote: 4,
  voteResponse: 5,
  preVote: 6,
  preVoteResponse: 7,
  snapshot: 8,
  heartbeat: 9,
  heartbeatResponse: 10,
  transferLeader: 11,
  timeoutNow: 12,
  readIndex: 13,
  readIndexResponse: 14,
  hibernate: 15,
  wakeUp: 16,
});

const TYPE_BY_CODE: readonly (MessageType | undefined)[] = (() => {
  const byCode: (MessageType | undefined)[] = [];
  for (const [type, code] of Object.entries(RAFT_MESSAGE_TYPE_CODES) as [MessageType, number][]) {
    if (code !== 0) byCode[code] = type;
  }
  return byCode;
})();

const ENTRY_TYPE_NORMAL = 0;
const ENTRY_TYPE_CONF_CHANGE = 1;

// ---- Encoding -----------------------------------------------------------------------------------------

export function epochTuple(epoch: RegionEpoch, what: string): [number, number] {
  return [argUint(epoch.version, `${what}.version`), argUint(epoch.confVer, `${what}.confVer`)];
}

function idsTuple(ids: readonly number[], what: string): number[] {
  argCount(ids.length, confStateIdsMax, what);
  for (const id of ids) argId(id, what);
  return ids as number[];
}

function confStateTuple(cs: ConfState): unknown[] {
  return [
    idsTuple(cs.voters, 'confState.voters'),
    idsTuple(cs.votersOutgoing, 'confState.votersOutgoing'),
    idsTuple(cs.learners, 'confState.learners'),
    idsTuple(cs.learnersNext, 'confState.learnersNext'),
    cs.autoLeave === true,
  ];
}

function entriesTuple(m: Message): unknown[] {
  const entries = m.entries;
  argCount(entries.length, raftMessageEntriesMax, 'entries per message');
  const out = new Array<unknown>(entries.length);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    argUint(e.index, 'entry.index');
    argUint(e.term, 'entry.term');
    argBytes(e.data, entryDataBytesMax, 'entry.data');
    out[i] = [e.index, e.term, e.type === 'confChange' ? ENTRY_TYPE_CONF_CHANGE : ENTRY_TYPE_NORMAL, e.data];
  }
  if (m.type === 'append') checkAppendEntries(m.index, m.logTerm, m.term, entries, invalid);
  return out;
}

/** The raft log's shape of an append: entries follow `index` contiguously, terms never go down. */
function checkAppendEntries(index: number, logTerm: number, term: number, entries: readonly Entry[], fail: (what: string) => never): void {
  let previousTerm = logTerm;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    if (e.index !== index + 1 + i) fail(`append: entry ${i} has index ${e.index}, expected ${index + 1 + i}`);
    if (e.term < previousTerm || e.term > term) fail(`append: entry ${i} has term ${e.term} outside [${previousTerm}, ${term}]`);
    previousTerm = e.term;
  }
}

function snapshotTuple(s: Snapshot, snapshotId: number): unknown[] {
  argUint(s.metadata.index, 'snapshot.index');
  argUint(s.metadata.term, 'snapshot.term');
  argBytes(s.data, snapshotDescriptorBytesMax, 'snapshot descriptor (Snapshot.data)');
  return [s.metadata.index, s.metadata.term, confStateTuple(s.metadata.confState), s.data, argUint(snapshotId, 'snapshotId')];
}

export function envelopeTuple(env: RaftEnvelope): unknown[] {
  const m = env.message;
  const code = RAFT_MESSAGE_TYPE_CODES[m.type];
  if (code === undefined || code === 0) invalid(`message type '${m.type}' is local and never sent`);
  argId(env.regionId, 'regionId');
  argId(env.fromPeer, 'fromPeer');
  argId(env.toPeer, 'toPeer');
  if (m.from !== env.fromPeer || m.to !== env.toPeer) invalid(`envelope peers ${env.fromPeer}->${env.toPeer} differ from the message's ${m.from}->${m.to}`);
  argUint(m.term, 'term');
  argUint(m.logTerm, 'logTerm');
  argUint(m.index, 'index');
  argUint(m.commit, 'commit');
  argUint(m.rejectHint, 'rejectHint');
  argUint(m.leaderTick, 'leaderTick');
  const isSnapshot = m.type === 'snapshot';
  if (isSnapshot !== (m.snapshot !== null)) invalid(`a ${m.type} message ${isSnapshot ? 'without' : 'with'} a snapshot`);
  if (isSnapshot !== (env.snapshotId !== undefined)) invalid(`snapshotId must be set exactly on snapshot messages (type ${m.type})`);
  return [
    env.regionId,
    env.fromPeer,
    env.toPeer,
    env.regionEpoch === undefined ? null : epochTuple(env.regionEpoch, 'regionEpoch'),
    code,
    m.term,
    m.logTerm,
    m.index,
    m.commit,
    m.reject,
    m.rejectHint,
    m.leaderTick,
    argContext(m.context, raftContextBytesMax, 'context'),
    entriesTuple(m),
    m.snapshot === null || env.snapshotId === undefined ? null : snapshotTuple(m.snapshot, env.snapshotId),
  ];
}

export function raftBatchTuple(batch: RaftBatch): unknown[] {
  argId(batch.fromStore, 'fromStore');
  argId(batch.toStore, 'toStore');
  argCount(batch.messages.length, raftBatchMessagesMax, 'messages per RaftBatch');
  const messages = new Array<unknown>(batch.messages.length);
  for (let i = 0; i < batch.messages.length; i++) messages[i] = envelopeTuple(batch.messages[i]!);
  return [batch.fromStore, batch.toStore, messages];
}

/**
 * An upper bound of the bytes `env` takes in an encoded RaftBatch. A sender packs envelopes into
 * one frame while RAFT_BATCH_ENCODED_FIXED_BYTES_MAX + the sum of these stays within
 * raftBatchPayloadBytesMax (and the count within raftBatchMessagesMax) — no trial encoding.
 */
export function raftEnvelopeBytesBound(env: RaftEnvelope): number {
  const m = env.message;
  let bytes = RAFT_MESSAGE_ENCODED_FIXED_BYTES_MAX + m.context.byteLength;
  for (const e of m.entries) bytes += ENTRY_ENCODED_OVERHEAD_BYTES_MAX + e.data.byteLength;
  const s = m.snapshot;
  if (s !== null) {
    const cs = s.metadata.confState;
    const ids = cs.voters.length + cs.votersOutgoing.length + cs.learners.length + cs.learnersNext.length;
    bytes += s.data.byteLength + ids * MSGPACK_UINT_BYTES_MAX;
  }
  return bytes;
}

// ---- Decoding -----------------------------------------------------------------------------------------

export function readEpoch(value: unknown, what: string): RegionEpoch {
  const t = readTuple(value, 2, what);
  return { version: readUint(t[0], `${what}.version`), confVer: readUint(t[1], `${what}.confVer`) };
}

function readIds(value: unknown, what: string): number[] {
  const list = readList(value, confStateIdsMax, what);
  const ids = new Array<number>(list.length);
  for (let i = 0; i < list.length; i++) ids[i] = readId(list[i], what);
  return ids;
}

function readConfState(value: unknown): ConfState {
  const t = readTuple(value, 5, 'confState');
  return {
    voters: readIds(t[0], 'confState.voters'),
    votersOutgoing: readIds(t[1], 'confState.votersOutgoing'),
    learners: readIds(t[2], 'confState.learners'),
    learnersNext: readIds(t[3], 'confState.learnersNext'),
    autoLeave: readBool(t[4], 'confState.autoLeave'),
  };
}

function readSnapshot(value: unknown): { snapshot: Snapshot; snapshotId: number } {
  const t = readTuple(value, 5, 'snapshot');
  const snapshot: Snapshot = {
    metadata: { index: readUint(t[0], 'snapshot.index'), term: readUint(t[1], 'snapshot.term'), confState: readConfState(t[2]) },
    data: readBytes(t[3], snapshotDescriptorBytesMax, 'snapshot descriptor'),
  };
  return { snapshot, snapshotId: readUint(t[4], 'snapshotId') };
}

function readEntries(value: unknown): Entry[] {
  const list = readList(value, raftMessageEntriesMax, 'entries');
  const entries = new Array<Entry>(list.length);
  for (let i = 0; i < list.length; i++) {
    const t = readTuple(list[i], 4, 'entry');
    const code = t[2];
    let type: EntryType;
    if (code === ENTRY_TYPE_NORMAL) type = 'normal';
    else if (code === ENTRY_TYPE_CONF_CHANGE) type = 'confChange';
    else malformed(`entry ${i}: unknown entry type`);
    entries[i] = { index: readUint(t[0], 'entry.index'), term: readUint(t[1], 'entry.term'), type, data: readBytes(t[3], entryDataBytesMax, 'entry.data') };
  }
  return entries;
}

function readEnvelope(value: unknown): RaftEnvelope {
  const t = readTuple(value, 15, 'raft message');
  const regionId = readId(t[0], 'regionId');
  const fromPeer = readId(t[1], 'fromPeer');
  const toPeer = readId(t[2], 'toPeer');
  const code = t[4];
  const type = typeof code === 'number' ? TYPE_BY_CODE[code] : undefined;
  if (type === undefined) malformed('raft message: unknown type');
  const term = readUint(t[5], 'term');
  const logTerm = readUint(t[6], 'logTerm');
  const index = readUint(t[7], 'index');
  const entries = readEntries(t[13]);
  if (type === 'append') checkAppendEntries(index, logTerm, term, entries, malformed);
  const withSnapshot = t[14] === null ? null : readSnapshot(t[14]);
  if ((type === 'snapshot') !== (withSnapshot !== null)) malformed(`a ${type} message ${withSnapshot === null ? 'without' : 'with'} a snapshot`);
  const message: Message = {
    type,
    from: fromPeer,
    to: toPeer,
    term,
    logTerm,
    index,
    entries,
    commit: readUint(t[8], 'commit'),
    snapshot: withSnapshot === null ? null : withSnapshot.snapshot,
    reject: readBool(t[9], 'reject'),
    rejectHint: readUint(t[10], 'rejectHint'),
    context: readContext(t[12], raftContextBytesMax, 'context'),
    leaderTick: readUint(t[11], 'leaderTick'),
  };
  const envelope: { -readonly [K in keyof RaftEnvelope]: RaftEnvelope[K] } = { regionId, fromPeer, toPeer, message };
  if (t[3] !== null) envelope.regionEpoch = readEpoch(t[3], 'regionEpoch');
  if (withSnapshot !== null) envelope.snapshotId = withSnapshot.snapshotId;
  return envelope;
}

export function readRaftBatch(value: unknown): RaftBatch {
  const t = readTuple(value, 3, 'RaftBatch');
  const fromStore = readId(t[0], 'fromStore');
  const toStore = readId(t[1], 'toStore');
  const list = readList(t[2], raftBatchMessagesMax, 'RaftBatch.messages');
  const messages = new Array<RaftEnvelope>(list.length);
  for (let i = 0; i < list.length; i++) messages[i] = readEnvelope(list[i]);
  return { fromStore, toStore, messages };
}
