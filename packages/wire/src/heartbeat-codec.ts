/**
 * Coalesced heartbeats (CockroachDB style): one frame per store pair per tick carries the
 * heartbeats of every group, so heartbeat traffic grows with stores, not regions.
 *
 *   HeartbeatBatch         = [fromStore, toStore, [[regionId, fromPeer, toPeer, term, commit, leaderTick, context | nil]...]]
 *   HeartbeatResponseBatch = [fromStore, toStore, [[regionId, fromPeer, toPeer, term, leaderTick, context | nil]...]]
 *
 * A beat is exactly a raft heartbeat (response) whose other fields are at their defaults —
 * which is every one the core sends today. `coalesce*` returns null for anything else: send that
 * message in a RaftBatch instead, nothing is lost either way.
 */
import { EMPTY_BYTES, type Message } from '@flotilla/raft';
import { argContext, argCount, argId, argUint, readContext, readId, readList, readTuple, readUint } from './check.ts';
import { heartbeatBatchBeatsMax, raftContextBytesMax } from './constants.ts';
import type { Heartbeat, HeartbeatBatch, HeartbeatResponse, HeartbeatResponseBatch } from './types.ts';

function onlyBeatFields(m: Message): boolean {
  return m.logTerm === 0 && m.index === 0 && m.entries.length === 0 && m.snapshot === null && !m.reject && m.rejectHint === 0;
}

/** The compact beat of a raft 'heartbeat' message of `regionId`; null when it carries more than a beat can. */
export function coalesceHeartbeat(regionId: number, m: Message): Heartbeat | null {
  if (m.type !== 'heartbeat' || !onlyBeatFields(m)) return null;
  const beat = { regionId, fromPeer: m.from, toPeer: m.to, term: m.term, commit: m.commit, leaderTick: m.leaderTick };
  return m.context.byteLength === 0 ? beat : { ...beat, context: m.context };
}

/** The raft 'heartbeat' message a beat stands for. */
export function expandHeartbeat(beat: Heartbeat): Message {
  return {
    type: 'heartbeat',
    from: beat.fromPeer,
    to: beat.toPeer,
    term: beat.term,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: beat.commit,
    snapshot: null,
    reject: false,
    rejectHint: 0,
    context: beat.context ?? EMPTY_BYTES,
    leaderTick: beat.leaderTick,
  };
}

/** The compact beat of a raft 'heartbeatResponse' message; null when it carries more than a beat can. */
export function coalesceHeartbeatResponse(regionId: number, m: Message): HeartbeatResponse | null {
  if (m.type !== 'heartbeatResponse' || !onlyBeatFields(m) || m.commit !== 0) return null;
  const beat = { regionId, fromPeer: m.from, toPeer: m.to, term: m.term, leaderTick: m.leaderTick };
  return m.context.byteLength === 0 ? beat : { ...beat, context: m.context };
}

/** The raft 'heartbeatResponse' message a beat stands for. */
export function expandHeartbeatResponse(beat: HeartbeatResponse): Message {
  return {
    type: 'heartbeatResponse',
    from: beat.fromPeer,
    to: beat.toPeer,
    term: beat.term,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    snapshot: null,
    reject: false,
    rejectHint: 0,
    context: beat.context ?? EMPTY_BYTES,
    leaderTick: beat.leaderTick,
  };
}

// ---- Encoding -----------------------------------------------------------------------------------------

function contextOf(context: Uint8Array | undefined): Uint8Array | null {
  return context === undefined ? null : argContext(context, raftContextBytesMax, 'context');
}

/** A batch of beats of one store pair: [fromStore, toStore, [beat tuple, ...]]. */
function beatBatchTuple<B>(batch: { readonly fromStore: number; readonly toStore: number; readonly beats: readonly B[] }, what: string, beatTuple: (b: B) => unknown[]): unknown[] {
  argId(batch.fromStore, 'fromStore');
  argId(batch.toStore, 'toStore');
  argCount(batch.beats.length, heartbeatBatchBeatsMax, `beats per ${what}`);
  const beats = new Array<unknown>(batch.beats.length);
  for (let i = 0; i < beats.length; i++) beats[i] = beatTuple(batch.beats[i]!);
  return [batch.fromStore, batch.toStore, beats];
}

export function heartbeatBatchTuple(batch: HeartbeatBatch): unknown[] {
  return beatBatchTuple(batch, 'HeartbeatBatch', (b) => [
    argId(b.regionId, 'regionId'),
    argId(b.fromPeer, 'fromPeer'),
    argId(b.toPeer, 'toPeer'),
    argUint(b.term, 'term'),
    argUint(b.commit, 'commit'),
    argUint(b.leaderTick, 'leaderTick'),
    contextOf(b.context),
  ]);
}

export function heartbeatResponseBatchTuple(batch: HeartbeatResponseBatch): unknown[] {
  return beatBatchTuple(batch, 'HeartbeatResponseBatch', (b) => [
    argId(b.regionId, 'regionId'),
    argId(b.fromPeer, 'fromPeer'),
    argId(b.toPeer, 'toPeer'),
    argUint(b.term, 'term'),
    argUint(b.leaderTick, 'leaderTick'),
    contextOf(b.context),
  ]);
}

// ---- Decoding -----------------------------------------------------------------------------------------

/** Reads [fromStore, toStore, [beat, ...]] with `readBeat` for each beat tuple. */
function readBeatBatch<B>(value: unknown, what: string, readBeat: (tuple: unknown) => B): { fromStore: number; toStore: number; beats: B[] } {
  const t = readTuple(value, 3, what);
  const fromStore = readId(t[0], 'fromStore');
  const toStore = readId(t[1], 'toStore');
  const list = readList(t[2], heartbeatBatchBeatsMax, `${what}.beats`);
  const beats = new Array<B>(list.length);
  for (let i = 0; i < list.length; i++) beats[i] = readBeat(list[i]);
  return { fromStore, toStore, beats };
}

/** An empty context is left out, as the encoders leave it out. */
function withContext<T extends object>(beat: T, raw: unknown): T | (T & { context: Uint8Array }) {
  const context = readContext(raw, raftContextBytesMax, 'context');
  return context.byteLength === 0 ? beat : { ...beat, context };
}

export function readHeartbeatBatch(value: unknown): HeartbeatBatch {
  return readBeatBatch(value, 'HeartbeatBatch', (tuple): Heartbeat => {
    const b = readTuple(tuple, 7, 'heartbeat');
    const beat = {
      regionId: readId(b[0], 'regionId'),
      fromPeer: readId(b[1], 'fromPeer'),
      toPeer: readId(b[2], 'toPeer'),
      term: readUint(b[3], 'term'),
      commit: readUint(b[4], 'commit'),
      leaderTick: readUint(b[5], 'leaderTick'),
    };
    return withContext(beat, b[6]);
  });
}

export function readHeartbeatResponseBatch(value: unknown): HeartbeatResponseBatch {
  return readBeatBatch(value, 'HeartbeatResponseBatch', (tuple): HeartbeatResponse => {
    const b = readTuple(tuple, 6, 'heartbeat response');
    const beat = {
      regionId: readId(b[0], 'regionId'),
      fromPeer: readId(b[1], 'fromPeer'),
      toPeer: readId(b[2], 'toPeer'),
      term: readUint(b[3], 'term'),
      leaderTick: readUint(b[4], 'leaderTick'),
    };
    return withContext(beat, b[5]);
  });
}
