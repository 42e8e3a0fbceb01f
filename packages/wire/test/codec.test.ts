/**
 * Codecs: round trips of every message kind (edge cases and property-based), encoder refusals,
 * decoder validation of hand-made bad shapes, heartbeat coalescing, size bounds.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { crc32cImplementation, crc32cUpdateJs } from '../src/crc32c.ts';
import { Packr } from 'msgpackr';
import { EMPTY_BYTES, EMPTY_CONF_STATE, message, type Message } from '@flotilla/raft';
import {
  FRAME_KINDS,
  FrameDecoder,
  KV_ERROR_CODES,
  RAFT_MESSAGE_TYPE_CODES,
  coalesceHeartbeat,
  coalesceHeartbeatResponse,
  crc32c,
  crc32cUpdate,
  decodeDiskState,
  decodeFrame,
  decodeHeartbeatBatch,
  decodeHeartbeatResponseBatch,
  decodeKvRequest,
  decodeKvResponse,
  decodeRaftBatch,
  decodeSnapshotAck,
  decodeSnapshotChunk,
  encodeDiskState,
  encodeFrame,
  encodeHeartbeatBatch,
  encodeHeartbeatResponseBatch,
  encodeKvRequest,
  encodeKvResponse,
  encodeRaftBatch,
  encodeSnapshotAck,
  encodeSnapshotChunk,
  expandHeartbeat,
  expandHeartbeatResponse,
  isRetryableKvError,
  isWireError,
  limits,
  makeSnapshotChunk,
  raftEnvelopeBytesBound,
  readStoreHeartbeat,
  type KvRequest,
  type KvResponse,
  type RaftBatch,
  type RaftEnvelope,
  type WireErrorCode,
  type WireMessage,
} from '../src/index.ts';
import * as arb from './arbitraries.ts';

const MAX = Number.MAX_SAFE_INTEGER;
/** Every byte value, twice, in a scrambled order. */
const ALL_BYTES = Uint8Array.from({ length: 512 }, (_, i) => (i * 167 + 13) & 0xff);
const epoch = { version: 3, confVer: 5 };

function throwsWire(fn: () => unknown, code: WireErrorCode): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isWireError(err), `expected a WireError ${code}, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
}

/** Round trip through a frame and a FrameDecoder, fed one byte at a time when asked. */
function viaFrame(m: WireMessage, byteByByte = false): WireMessage {
  const frame = encodeFrame(m);
  const decoder = new FrameDecoder();
  const out: WireMessage[] = [];
  if (byteByByte) for (let i = 0; i < frame.length; i++) decoder.push(frame.subarray(i, i + 1), (f) => out.push(decodeFrame(f)));
  else decoder.push(frame, (f) => out.push(decodeFrame(f)));
  decoder.end();
  assert.equal(out.length, 1);
  return out[0]!;
}

function env(m: Message, regionId = 1, extra: Partial<RaftEnvelope> = {}): RaftEnvelope {
  return { regionId, fromPeer: m.from, toPeer: m.to, message: m, ...extra };
}

describe('crc32c', () => {
  it('has the check value and composes', () => {
    const data = new TextEncoder().encode('123456789');
    assert.equal(crc32c(data), 0xe3069283);
    assert.equal(crc32cUpdate(crc32c(data, 0, 4), data, 4), 0xe3069283);
    assert.equal(crc32c(new Uint8Array(0)), 0);
  });

  it('gives the same value from the native and the JavaScript implementation, for every length, offset and running state', () => {
    // The log's values and the frames written before and after must check either way.
    const bytes = new Uint8Array(70_000);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24;
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 66_000 }), fc.integer({ min: 0, max: 3_000 }), fc.integer({ min: 0, max: 0xffffffff }), (start, extra, state) => {
        const len = extra < 1_500 ? extra : (extra - 1_500) * 40;
        const end = Math.min(bytes.length, start + len);
        assert.equal(crc32cUpdate(state, bytes, start, end), crc32cUpdateJs(state, bytes, start, end));
        assert.equal(crc32c(bytes.subarray(start, end)), crc32cUpdateJs(0, bytes, start, end));
      }),
      { numRuns: 400 },
    );
    const whole = crc32cUpdateJs(0, bytes);
    assert.equal(crc32c(bytes), whole);
    assert.equal(crc32cUpdate(crc32c(bytes, 0, 1_000), bytes, 1_000), whole);
  });

  it('loads the native implementation where its prebuilt binary exists (Linux x64, as in CI)', () => {
    if (process.platform !== 'linux' || process.arch !== 'x64' || process.env['FLOTILLA_CRC32C'] === 'js') return;
    assert.equal(crc32cImplementation, 'native');
  });
});

describe('RaftBatch', () => {
  it('round-trips many groups, every message type, in a frame fed byte by byte', () => {
    const messages: RaftEnvelope[] = [];
    let region = 1;
    for (const type of Object.keys(RAFT_MESSAGE_TYPE_CODES) as Message['type'][]) {
      if (RAFT_MESSAGE_TYPE_CODES[type] === 0) continue;
      if (type === 'snapshot') {
        const snapshot = { metadata: { index: 100, term: 7, confState: { voters: [1, 2, 3], votersOutgoing: [4], learners: [5], learnersNext: [6], autoLeave: true } }, data: ALL_BYTES };
        messages.push(env(message({ type, from: 1, to: 2, term: 7, snapshot }), region++, { snapshotId: 42, regionEpoch: epoch }));
      } else if (type === 'append') {
        const entries = [
          { index: 11, term: 6, type: 'normal' as const, data: ALL_BYTES },
          { index: 12, term: 7, type: 'confChange' as const, data: EMPTY_BYTES },
        ];
        messages.push(env(message({ type, from: 1, to: 2, term: 7, index: 10, logTerm: 6, commit: 9, entries }), region++, { regionEpoch: epoch }));
      } else {
        messages.push(env(message({ type, from: 3, to: 1, term: 7, index: 4, logTerm: 2, commit: 3, reject: true, rejectHint: 2, leaderTick: 99, context: Uint8Array.of(0, 255) }), region++));
      }
    }
    const batch: RaftBatch = { fromStore: 1, toStore: 2, messages };
    assert.deepStrictEqual(decodeRaftBatch(encodeRaftBatch(batch)), batch);
    assert.deepStrictEqual(viaFrame({ kind: 'raftBatch', body: batch }, true), { kind: 'raftBatch', body: batch });
  });

  it('round-trips the edge cases: no messages, empty entries, ids and terms of 2^53-1', () => {
    const empty: RaftBatch = { fromStore: MAX, toStore: MAX, messages: [] };
    assert.deepStrictEqual(decodeRaftBatch(encodeRaftBatch(empty)), empty);
    const big = message({ type: 'append', from: MAX, to: MAX - 1, term: MAX, logTerm: MAX, index: MAX - 2, commit: MAX, leaderTick: MAX, rejectHint: MAX, entries: [
      { index: MAX - 1, term: MAX, type: 'normal', data: EMPTY_BYTES },
      { index: MAX, term: MAX, type: 'normal', data: EMPTY_BYTES },
    ] });
    const batch: RaftBatch = { fromStore: MAX, toStore: 1, messages: [env(big, MAX, { regionEpoch: { version: MAX, confVer: MAX } })] };
    assert.deepStrictEqual(decodeRaftBatch(encodeRaftBatch(batch)), batch);
    const noEntries: RaftBatch = { fromStore: 1, toStore: 2, messages: [env(message({ type: 'append', from: 1, to: 2, term: 1 }))] };
    assert.deepStrictEqual(decodeRaftBatch(encodeRaftBatch(noEntries)), noEntries);
  });

  it('round-trips a maximal entry, the most entries in a message and a maximal snapshot message', () => {
    const maxData = new Uint8Array(limits.entryDataBytesMax).fill(0xa5);
    maxData[0] = 0;
    maxData[maxData.length - 1] = 255;
    const one: RaftBatch = { fromStore: 1, toStore: 2, messages: [env(message({ type: 'append', from: 1, to: 2, term: 2, index: 1, logTerm: 1, entries: [{ index: 2, term: 2, type: 'normal', data: maxData }] }))] };
    assert.deepStrictEqual(viaFrame({ kind: 'raftBatch', body: one }), { kind: 'raftBatch', body: one });
    const entries = Array.from({ length: limits.raftMessageEntriesMax }, (_, i) => ({ index: i + 1, term: 1, type: 'normal' as const, data: EMPTY_BYTES }));
    const many: RaftBatch = { fromStore: 1, toStore: 2, messages: [env(message({ type: 'append', from: 1, to: 2, term: 1, entries }))] };
    assert.deepStrictEqual(decodeRaftBatch(encodeRaftBatch(many)), many);
    const ids = Array.from({ length: limits.confStateIdsMax }, (_, i) => MAX - i);
    const snapshot = { metadata: { index: MAX, term: MAX, confState: { voters: ids, votersOutgoing: ids, learners: ids, learnersNext: ids, autoLeave: false } }, data: new Uint8Array(limits.snapshotDescriptorBytesMax).fill(7) };
    const snap: RaftBatch = { fromStore: 1, toStore: 2, messages: [env(message({ type: 'snapshot', from: 1, to: 2, term: 3, snapshot }), 5, { snapshotId: MAX })] };
    assert.deepStrictEqual(decodeRaftBatch(encodeRaftBatch(snap)), snap);
  });

  it('round-trips the most messages in one batch', () => {
    const messages = Array.from({ length: limits.raftBatchMessagesMax }, (_, i) => env(message({ type: 'heartbeat', from: 1, to: 2, term: 5, commit: i }), i + 1));
    const batch: RaftBatch = { fromStore: 1, toStore: 2, messages };
    assert.deepStrictEqual(decodeRaftBatch(encodeRaftBatch(batch)), batch);
  });

  it('decoded bytes are copies, not views of the payload', () => {
    const data = Uint8Array.of(1, 2, 3);
    const payload = encodeRaftBatch({ fromStore: 1, toStore: 2, messages: [env(message({ type: 'append', from: 1, to: 2, term: 1, entries: [{ index: 1, term: 1, type: 'normal', data }] }))] });
    const copy = Uint8Array.from(payload);
    const decoded = decodeRaftBatch(copy);
    const got = decoded.messages[0]!.message.entries[0]!.data;
    assert.deepStrictEqual(got, data);
    assert.notEqual(got.buffer, copy.buffer);
    copy.fill(0);
    assert.deepStrictEqual(got, data);
    assert.equal(Object.getPrototypeOf(got), Uint8Array.prototype);
  });

  it('refuses to encode what no peer would accept', () => {
    const batch = (m: Message, extra: Partial<RaftEnvelope> = {}): RaftBatch => ({ fromStore: 1, toStore: 2, messages: [env(m, 1, extra)] });
    throwsWire(() => encodeRaftBatch(batch(message({ type: 'hup', from: 1, to: 1 }))), 'FLOTILLA_WIRE_INVALID_ARGUMENT');
    throwsWire(() => encodeRaftBatch(batch(message({ type: 'snapshotStatus', from: 1, to: 2 }))), 'FLOTILLA_WIRE_INVALID_ARGUMENT');
    throwsWire(() => encodeRaftBatch({ fromStore: 0, toStore: 2, messages: [] }), 'FLOTILLA_WIRE_INVALID_ARGUMENT');
    throwsWire(() => encodeRaftBatch({ fromStore: 1, toStore: 2.5, messages: [] }), 'FLOTILLA_WIRE_INVALID_ARGUMENT');
    throwsWire(() => encodeRaftBatch(batch(message({ type: 'vote', from: 1, to: 2, term: -1 }))), 'FLOTILLA_WIRE_INVALID_ARGUMENT');
    throwsWire(() => encodeRaftBatch(batch(message({ type: 'vote', from: 1, to: 2, term: 2 ** 53 }))), 'FLOTILLA_WIRE_INVALID_ARGUMENT');
    throwsWire(() => encodeRaftBatch({ fromStore: 1, toStore: 2, messages: [{ regionId: 1, fromPeer: 1, toPeer: 3, message: message({ type: 'vote', from: 1, to: 2 }) }] }), 'FLOTILLA_WIRE_INVALID_ARGUMENT');
    throwsWire(() => encodeRaftBatch(batch(message({ type: 'vote', from: 1, to: 2, context: new Uint8Array(limits.raftContextBytesMax + 1) }))), 'FLOTILLA_WIRE_LIMIT_EXCEEDED');
    // snapshot messages need a snapshotId, and only they may have one
    const snapshot = { metadata: { index: 1, term: 1, confState: EMPTY_CONF_STATE }, data: EMPTY_BYTES };
    throwsWire(() => encodeRaftBatch(batch(message({ type: 'snapshot', from: 1, to: 2, snapshot }))), 'FLOTILLA_WIRE_INVALID_ARGUMENT');
    throwsWire(() => encodeRaftBatch(batch(message({ type: 'vote', from: 1, to: 2 }), { snapshotId: 1 })), 'FLOTILLA_WIRE_INVALID_ARGUMENT');
    throwsWire(() => encodeRaftBatch(batch(message({ type: 'snapshot', from: 1, to: 2, snapshot: { ...snapshot, data: new Uint8Array(limits.snapshotDescriptorBytesMax + 1) } }), { snapshotId: 1 })), 'FLOTILLA_WIRE_LIMIT_EXCEEDED');
    // appends keep the log's shape
    const e = (index: number, term: number): { index: number; term: number; type: 'normal'; data: Uint8Array } => ({ index, term, type: 'normal', data: EMPTY_BYTES });
    throwsWire(() => encodeRaftBatch(batch(message({ type: 'append', from: 1, to: 2, term: 3, index: 5, logTerm: 2, entries: [e(7, 3)] }))), 'FLOTILLA_WIRE_INVALID_ARGUMENT');
    throwsWire(() => encodeRaftBatch(batch(message({ type: 'append', from: 1, to: 2, term: 3, index: 5, logTerm: 2, entries: [e(6, 3), e(7, 2)] }))), 'FLOTILLA_WIRE_INVALID_ARGUMENT');
    throwsWire(() => encodeRaftBatch(batch(message({ type: 'append', from: 1, to: 2, term: 3, index: 5, logTerm: 2, entries: [e(6, 4)] }))), 'FLOTILLA_WIRE_INVALID_ARGUMENT');
    throwsWire(() => encodeRaftBatch(batch(message({ type: 'append', from: 1, to: 2, term: 3, index: 5, logTerm: 2, entries: [e(6, 1)] }))), 'FLOTILLA_WIRE_INVALID_ARGUMENT');
    // bounds
    const tooBig = new Uint8Array(limits.entryDataBytesMax + 1);
    throwsWire(() => encodeRaftBatch(batch(message({ type: 'propose', from: 1, to: 2, entries: [{ index: 0, term: 0, type: 'normal', data: tooBig }] }))), 'FLOTILLA_WIRE_LIMIT_EXCEEDED');
    const tooMany = Array.from({ length: limits.raftMessageEntriesMax + 1 }, () => ({ index: 0, term: 0, type: 'normal' as const, data: EMPTY_BYTES }));
    throwsWire(() => encodeRaftBatch(batch(message({ type: 'propose', from: 1, to: 2, entries: tooMany }))), 'FLOTILLA_WIRE_LIMIT_EXCEEDED');
    const messages = Array.from({ length: limits.raftBatchMessagesMax + 1 }, () => env(message({ type: 'vote', from: 1, to: 2 })));
    throwsWire(() => encodeRaftBatch({ fromStore: 1, toStore: 2, messages }), 'FLOTILLA_WIRE_LIMIT_EXCEEDED');
    // two maximal entries fit no RaftBatch frame
    const two = [1, 2].map(() => env(message({ type: 'propose', from: 1, to: 2, entries: [{ index: 0, term: 0, type: 'normal', data: new Uint8Array(limits.entryDataBytesMax) }] })));
    throwsWire(() => encodeFrame({ kind: 'raftBatch', body: { fromStore: 1, toStore: 2, messages: two } }), 'FLOTILLA_WIRE_FRAME_TOO_LARGE');
    throwsWire(() => encodeRaftBatch({ fromStore: 1, toStore: 2, messages: two }), 'FLOTILLA_WIRE_LIMIT_EXCEEDED');
  });

  it('raftEnvelopeBytesBound is an upper bound of the encoded size', () => {
    fc.assert(
      fc.property(fc.array(arb.raftEnvelope(), { maxLength: 8 }), (messages) => {
        const encoded = encodeRaftBatch({ fromStore: MAX, toStore: MAX, messages }).length;
        const bound = limits.RAFT_BATCH_ENCODED_FIXED_BYTES_MAX + messages.reduce((n, m) => n + raftEnvelopeBytesBound(m), 0);
        assert.ok(encoded <= bound, `${encoded} > ${bound}`);
      }),
      arb.runs(300),
    );
    // and for the worst case of every fixed field at its widest
    const ids = Array.from({ length: 3 }, () => MAX);
    const snapshot = { metadata: { index: MAX, term: MAX, confState: { voters: ids, votersOutgoing: ids, learners: ids, learnersNext: ids, autoLeave: true } }, data: new Uint8Array(70_000) };
    const worst = env(message({ type: 'snapshot', from: MAX, to: MAX, term: MAX, index: MAX, logTerm: MAX, commit: MAX, rejectHint: MAX, leaderTick: MAX, reject: true, context: new Uint8Array(300), snapshot }), MAX, { snapshotId: MAX, regionEpoch: { version: MAX, confVer: MAX } });
    // (over the descriptor and context bounds on purpose: measure the packing, not the checks)
    const encodedWorst = new Packr({ useRecords: false, moreTypes: false }).pack([MAX, MAX, [[MAX, MAX, MAX, [MAX, MAX], 8, MAX, MAX, MAX, MAX, true, MAX, MAX, worst.message.context, [], [MAX, MAX, [ids, ids, ids, ids, true], snapshot.data, MAX]]]]).length;
    assert.ok(encodedWorst <= limits.RAFT_BATCH_ENCODED_FIXED_BYTES_MAX + raftEnvelopeBytesBound(worst));
  });
});

describe('heartbeats', () => {
  it('coalesce and expand losslessly, and refuse messages that carry more', () => {
    const hb = message({ type: 'heartbeat', from: 1, to: 2, term: 9, commit: 7, leaderTick: 123, context: Uint8Array.of(1, 2) });
    const beat = coalesceHeartbeat(77, hb);
    assert.deepStrictEqual(beat, { regionId: 77, fromPeer: 1, toPeer: 2, term: 9, commit: 7, leaderTick: 123, context: Uint8Array.of(1, 2) });
    assert.deepStrictEqual(expandHeartbeat(beat!), hb);
    const bare = message({ type: 'heartbeat', from: 1, to: 2, term: 9 });
    assert.deepStrictEqual(coalesceHeartbeat(1, bare), { regionId: 1, fromPeer: 1, toPeer: 2, term: 9, commit: 0, leaderTick: 0 });
    assert.deepStrictEqual(expandHeartbeat(coalesceHeartbeat(1, bare)!), bare);
    assert.equal(coalesceHeartbeat(1, message({ type: 'heartbeat', from: 1, to: 2, reject: true })), null);
    assert.equal(coalesceHeartbeat(1, message({ type: 'heartbeat', from: 1, to: 2, index: 3 })), null);
    assert.equal(coalesceHeartbeat(1, message({ type: 'append', from: 1, to: 2 })), null);

    const resp = message({ type: 'heartbeatResponse', from: 2, to: 1, term: 9, leaderTick: 123, context: Uint8Array.of(1, 2) });
    const rbeat = coalesceHeartbeatResponse(77, resp);
    assert.deepStrictEqual(rbeat, { regionId: 77, fromPeer: 2, toPeer: 1, term: 9, leaderTick: 123, context: Uint8Array.of(1, 2) });
    assert.deepStrictEqual(expandHeartbeatResponse(rbeat!), resp);
    assert.equal(coalesceHeartbeatResponse(1, message({ type: 'heartbeatResponse', from: 2, to: 1, commit: 1 })), null);
    assert.equal(coalesceHeartbeatResponse(1, hb), null);
  });

  it('round-trip batches, including the most beats with maximal contexts and 2^53-1 fields', () => {
    const ctx = Uint8Array.from({ length: limits.raftContextBytesMax }, (_, i) => 255 - (i & 0xff));
    const beats = Array.from({ length: limits.heartbeatBatchBeatsMax }, (_, i) => ({ regionId: MAX - i, fromPeer: MAX, toPeer: MAX, term: MAX, commit: MAX, leaderTick: MAX, context: ctx }));
    const batch = { fromStore: MAX, toStore: MAX, beats };
    const payload = encodeHeartbeatBatch(batch);
    assert.ok(payload.length <= limits.heartbeatBatchPayloadBytesMax);
    assert.deepStrictEqual(decodeHeartbeatBatch(payload), batch);
    const responses = { fromStore: 1, toStore: 2, beats: beats.map(({ commit: _, ...b }) => b) };
    assert.deepStrictEqual(viaFrame({ kind: 'heartbeatResponseBatch', body: responses }), { kind: 'heartbeatResponseBatch', body: responses });
    const empty = { fromStore: 1, toStore: 2, beats: [] };
    assert.deepStrictEqual(decodeHeartbeatResponseBatch(encodeHeartbeatResponseBatch(empty)), empty);
    throwsWire(() => encodeHeartbeatBatch({ ...batch, beats: [...beats, beats[0]!] }), 'FLOTILLA_WIRE_LIMIT_EXCEEDED');
    throwsWire(() => encodeHeartbeatBatch({ fromStore: 1, toStore: 2, beats: [{ regionId: 0, fromPeer: 1, toPeer: 2, term: 1, commit: 1, leaderTick: 1 }] }), 'FLOTILLA_WIRE_INVALID_ARGUMENT');
  });
});

describe('snapshot streams', () => {
  it('round-trip chunks (maximal, empty, all byte values) and acks', () => {
    const big = new Uint8Array(limits.snapshotChunkDataBytesMax);
    for (let i = 0; i < big.length; i += 4096) big[i] = i & 0xff;
    for (const data of [EMPTY_BYTES, ALL_BYTES, big]) {
      const chunk = makeSnapshotChunk({ regionId: MAX, snapshotId: MAX, seq: MAX, last: true, data });
      assert.deepStrictEqual(decodeSnapshotChunk(encodeSnapshotChunk(chunk)), chunk);
    }
    const c = makeSnapshotChunk({ regionId: 1, snapshotId: 0, seq: 0, last: false, data: ALL_BYTES });
    assert.deepStrictEqual(viaFrame({ kind: 'snapshotChunk', body: c }, true), { kind: 'snapshotChunk', body: c });
    for (const status of ['received', 'applied', 'rejected'] as const) {
      const ack = { regionId: MAX, snapshotId: MAX, seq: MAX, status };
      assert.deepStrictEqual(decodeSnapshotAck(encodeSnapshotAck(ack)), ack);
    }
  });

  it("verifies a chunk's own checksum", () => {
    const chunk = makeSnapshotChunk({ regionId: 1, snapshotId: 2, seq: 3, last: false, data: ALL_BYTES });
    throwsWire(() => decodeSnapshotChunk(encodeSnapshotChunk({ ...chunk, checksum: chunk.checksum ^ 1 })), 'FLOTILLA_WIRE_CHECKSUM_MISMATCH');
    throwsWire(() => encodeSnapshotChunk({ ...chunk, checksum: -1 }), 'FLOTILLA_WIRE_INVALID_ARGUMENT');
    throwsWire(() => encodeSnapshotChunk(makeSnapshotChunk({ ...chunk, data: new Uint8Array(limits.snapshotChunkDataBytesMax + 1) })), 'FLOTILLA_WIRE_LIMIT_EXCEEDED');
  });
});

describe('disk state', () => {
  it('round-trips at its extremes, within its bound, and refuses what it cannot carry', () => {
    for (const state of [
      { fromStore: MAX, toStore: MAX, refusesReplication: true, availableBytes: MAX, reserveBytes: MAX },
      { fromStore: 1, toStore: 2, refusesReplication: false, availableBytes: 0, reserveBytes: 0 },
    ]) {
      const payload = encodeDiskState(state);
      assert.ok(payload.length <= limits.diskStatePayloadBytesMax, `${payload.length} bytes`);
      assert.deepStrictEqual(decodeDiskState(payload), state);
      assert.deepStrictEqual(viaFrame({ kind: 'diskState', body: state }, true), { kind: 'diskState', body: state });
    }
    throwsWire(() => encodeDiskState({ fromStore: 1, toStore: 2, refusesReplication: true, availableBytes: -1, reserveBytes: 0 }), 'FLOTILLA_WIRE_INVALID_ARGUMENT');
    throwsWire(() => encodeDiskState({ fromStore: 0, toStore: 2, refusesReplication: true, availableBytes: 1, reserveBytes: 0 }), 'FLOTILLA_WIRE_INVALID_ARGUMENT');
  });
});

describe('client protocol', () => {
  const base = { regionId: MAX, regionEpoch: { version: MAX, confVer: 0 } };
  const maxKey = new Uint8Array(limits.kvKeyBytesMax).fill(0xff);

  it('round-trips every operation and result, with binary keys and values and maximal sizes', () => {
    const request: KvRequest = {
      requestId: MAX,
      timeoutMs: limits.kvTimeoutMsMax,
      ops: [
        { ...base, op: 'get', key: ALL_BYTES, consistency: { level: 'linearizable' } },
        { ...base, op: 'get', key: EMPTY_BYTES, consistency: { level: 'stale', maxStalenessMs: limits.kvStalenessMsMax } },
        { ...base, op: 'put', key: maxKey, value: ALL_BYTES },
        { ...base, op: 'delete', key: ALL_BYTES },
        { ...base, op: 'cas', key: ALL_BYTES, expected: null, value: ALL_BYTES },
        { ...base, op: 'cas', key: ALL_BYTES, expected: EMPTY_BYTES, value: null },
        { ...base, op: 'deleteRange', start: EMPTY_BYTES, end: maxKey },
        { ...base, op: 'scan', start: ALL_BYTES, end: EMPTY_BYTES, limit: limits.kvScanRowsMax, reverse: true, consistency: { level: 'stale', maxStalenessMs: 0 } },
      ],
    };
    assert.deepStrictEqual(decodeKvRequest(encodeKvRequest(request)), request);
    assert.deepStrictEqual(viaFrame({ kind: 'kvRequest', body: request }, true), { kind: 'kvRequest', body: request });
    const maxPut: KvRequest = { requestId: 0, ops: [{ ...base, op: 'put', key: maxKey, value: new Uint8Array(limits.kvValueBytesMax).fill(1) }] };
    assert.deepStrictEqual(decodeKvRequest(encodeKvRequest(maxPut)), maxPut);
    const noOps: KvRequest = { requestId: 0, ops: [] };
    assert.deepStrictEqual(decodeKvRequest(encodeKvRequest(noOps)), noOps);

    const region = { id: MAX, startKey: EMPTY_BYTES, endKey: maxKey, epoch: { version: 1, confVer: MAX }, peers: Array.from({ length: limits.regionPeersMax }, (_, i) => ({ id: MAX - i, storeId: i + 1, role: i % 2 === 0 ? ('voter' as const) : ('learner' as const) })) };
    const response: KvResponse = {
      requestId: MAX,
      results: [
        { op: 'get', value: ALL_BYTES },
        { op: 'get', value: null },
        { op: 'put' },
        { op: 'delete' },
        { op: 'cas', succeeded: false, previous: ALL_BYTES },
        { op: 'cas', succeeded: true, previous: null },
        { op: 'deleteRange', deleted: MAX },
        { op: 'scan', pairs: [{ key: ALL_BYTES, value: EMPTY_BYTES }, { key: maxKey, value: ALL_BYTES }], more: true },
        { op: 'error', error: { code: 'FLOTILLA_NOT_LEADER', regionId: 1, leader: { peerId: MAX, storeId: MAX } } },
        { op: 'error', error: { code: 'FLOTILLA_NOT_LEADER', regionId: 1, leader: null } },
        { op: 'error', error: { code: 'FLOTILLA_EPOCH_NOT_MATCH', regionId: 1, currentRegions: Array.from({ length: limits.epochNotMatchRegionsMax }, () => region) } },
        { op: 'error', error: { code: 'FLOTILLA_REGION_NOT_FOUND', regionId: MAX } },
        { op: 'error', error: { code: 'FLOTILLA_KEY_NOT_IN_REGION', regionId: 2, key: ALL_BYTES, startKey: EMPTY_BYTES, endKey: maxKey } },
        { op: 'error', error: { code: 'FLOTILLA_SERVER_BUSY', retryAfterMs: limits.kvRetryAfterMsMax } },
        { op: 'error', error: { code: 'FLOTILLA_REQUEST_TOO_LARGE', requestBytesMax: limits.kvRequestPayloadBytesMax, opsMax: limits.kvRequestOpsMax } },
        { op: 'error', error: { code: 'FLOTILLA_TIMEOUT' } },
        { op: 'error', error: { code: 'FLOTILLA_DISK_FULL', storeId: MAX, availableBytes: 0, reserveBytes: Number.MAX_SAFE_INTEGER } },
      ],
    };
    assert.deepStrictEqual(decodeKvResponse(encodeKvResponse(response)), response);
    const whole: KvResponse = { requestId: 5, error: { code: 'FLOTILLA_SERVER_BUSY', retryAfterMs: 0 } };
    assert.deepStrictEqual(viaFrame({ kind: 'kvResponse', body: whole }), { kind: 'kvResponse', body: whole });
  });

  it('names every error code once, and knows which are retryable', () => {
    assert.equal(new Set(KV_ERROR_CODES).size, 8);
    assert.equal(isRetryableKvError({ code: 'FLOTILLA_NOT_LEADER', regionId: 1, leader: null }), true);
    assert.equal(isRetryableKvError({ code: 'FLOTILLA_EPOCH_NOT_MATCH', regionId: 1, currentRegions: [] }), true);
    assert.equal(isRetryableKvError({ code: 'FLOTILLA_SERVER_BUSY', retryAfterMs: 1 }), true);
    assert.equal(isRetryableKvError({ code: 'FLOTILLA_REQUEST_TOO_LARGE', requestBytesMax: 1, opsMax: 1 }), false);
    assert.equal(isRetryableKvError({ code: 'FLOTILLA_TIMEOUT' }), false);
    assert.equal(isRetryableKvError({ code: 'FLOTILLA_DISK_FULL', storeId: 1, availableBytes: 1, reserveBytes: 2 }), false);
  });

  it('refuses to encode requests past the bounds', () => {
    throwsWire(() => encodeKvRequest({ requestId: 1, ops: [{ ...base, op: 'get', key: new Uint8Array(limits.kvKeyBytesMax + 1), consistency: { level: 'linearizable' } }] }), 'FLOTILLA_WIRE_LIMIT_EXCEEDED');
    throwsWire(() => encodeKvRequest({ requestId: 1, ops: [{ ...base, op: 'put', key: EMPTY_BYTES, value: new Uint8Array(limits.kvValueBytesMax + 1) }] }), 'FLOTILLA_WIRE_LIMIT_EXCEEDED');
    throwsWire(() => encodeKvRequest({ requestId: 1, ops: Array.from({ length: limits.kvRequestOpsMax + 1 }, () => ({ ...base, op: 'delete' as const, key: EMPTY_BYTES })) }), 'FLOTILLA_WIRE_LIMIT_EXCEEDED');
    throwsWire(() => encodeKvRequest({ requestId: 1, ops: [{ ...base, op: 'scan', start: EMPTY_BYTES, end: EMPTY_BYTES, limit: 0, reverse: false, consistency: { level: 'linearizable' } }] }), 'FLOTILLA_WIRE_INVALID_ARGUMENT');
    throwsWire(() => encodeKvRequest({ requestId: 1, ops: [{ ...base, op: 'scan', start: EMPTY_BYTES, end: EMPTY_BYTES, limit: limits.kvScanRowsMax + 1, reverse: false, consistency: { level: 'linearizable' } }] }), 'FLOTILLA_WIRE_LIMIT_EXCEEDED');
    throwsWire(() => encodeKvRequest({ requestId: -1, ops: [] }), 'FLOTILLA_WIRE_INVALID_ARGUMENT');
    throwsWire(() => encodeKvRequest({ requestId: 1, ops: [{ ...base, regionId: 0, op: 'delete', key: EMPTY_BYTES }] }), 'FLOTILLA_WIRE_INVALID_ARGUMENT');
    // four maximal puts: each op is fine, the request is not
    const puts = Array.from({ length: 4 }, () => ({ ...base, op: 'put' as const, key: EMPTY_BYTES, value: new Uint8Array(limits.kvValueBytesMax) }));
    throwsWire(() => encodeKvRequest({ requestId: 1, ops: puts }), 'FLOTILLA_WIRE_LIMIT_EXCEEDED');
  });
});

describe('decoders validate the decoded shape', () => {
  const packr = new Packr({ useRecords: false, moreTypes: false });
  const pack = (value: unknown): Uint8Array => packr.pack(value);
  const env0 = [1, 1, 2, null, 4, 1, 0, 0, 0, false, 0, 0, null, [], null];

  it('accepts the reference shape', () => {
    const batch = decodeRaftBatch(pack([1, 2, [env0]]));
    assert.equal(batch.messages[0]!.message.type, 'vote');
  });

  const cases: Array<[string, unknown, (p: Uint8Array) => unknown, WireErrorCode]> = [
    ['a map instead of a tuple', { fromStore: 1, toStore: 2, messages: [] }, decodeRaftBatch, 'FLOTILLA_WIRE_MALFORMED'],
    ['a tuple too short', [1, 2], decodeRaftBatch, 'FLOTILLA_WIRE_MALFORMED'],
    ['a tuple too long', [1, 2, [], 3], decodeRaftBatch, 'FLOTILLA_WIRE_MALFORMED'],
    ['a zero store id', [0, 2, []], decodeRaftBatch, 'FLOTILLA_WIRE_MALFORMED'],
    ['a negative id', [-1, 2, []], decodeRaftBatch, 'FLOTILLA_WIRE_MALFORMED'],
    ['a float id', [1.5, 2, []], decodeRaftBatch, 'FLOTILLA_WIRE_MALFORMED'],
    ['an id past 2^53-1', [2 ** 60, 2, []], decodeRaftBatch, 'FLOTILLA_WIRE_MALFORMED'],
    ['a uint64 past 2^53-1', [1, 2n ** 64n - 1n, []], decodeRaftBatch, 'FLOTILLA_WIRE_MALFORMED'],
    ['a string', ['1', 2, []], decodeRaftBatch, 'FLOTILLA_WIRE_MALFORMED'],
    ['a local message type', [1, 2, [env0.map((v, i) => (i === 4 ? 0 : v))]], decodeRaftBatch, 'FLOTILLA_WIRE_MALFORMED'],
    ['an unknown message type', [1, 2, [env0.map((v, i) => (i === 4 ? 99 : v))]], decodeRaftBatch, 'FLOTILLA_WIRE_MALFORMED'],
    ['a boolean as a number', [1, 2, [env0.map((v, i) => (i === 5 ? true : v))]], decodeRaftBatch, 'FLOTILLA_WIRE_MALFORMED'],
    ['a number as reject', [1, 2, [env0.map((v, i) => (i === 9 ? 0 : v))]], decodeRaftBatch, 'FLOTILLA_WIRE_MALFORMED'],
    ['an oversized context', [1, 2, [env0.map((v, i) => (i === 12 ? new Uint8Array(limits.raftContextBytesMax + 1) : v))]], decodeRaftBatch, 'FLOTILLA_WIRE_LIMIT_EXCEEDED'],
    ['an empty context as an empty bin (nil is its one encoding)', [1, 2, [env0.map((v, i) => (i === 12 ? EMPTY_BYTES : v))]], decodeRaftBatch, 'FLOTILLA_WIRE_MALFORMED'],
    ['an unknown entry type', [1, 2, [env0.map((v, i) => (i === 13 ? [[1, 1, 2, EMPTY_BYTES]] : v))]], decodeRaftBatch, 'FLOTILLA_WIRE_MALFORMED'],
    ['a snapshot on a vote', [1, 2, [env0.map((v, i) => (i === 14 ? [1, 1, [[], [], [], [], false], EMPTY_BYTES, 1] : v))]], decodeRaftBatch, 'FLOTILLA_WIRE_MALFORMED'],
    ['a snapshot message without one', [1, 2, [env0.map((v, i) => (i === 4 ? 8 : v))]], decodeRaftBatch, 'FLOTILLA_WIRE_MALFORMED'],
    ['a non-contiguous append', [1, 2, [env0.map((v, i) => (i === 4 ? 2 : i === 13 ? [[2, 1, 0, EMPTY_BYTES]] : v))]], decodeRaftBatch, 'FLOTILLA_WIRE_MALFORMED'],
    ['an append whose entry term passes the message term', [1, 2, [env0.map((v, i) => (i === 4 ? 2 : i === 13 ? [[1, 2, 0, EMPTY_BYTES]] : v))]], decodeRaftBatch, 'FLOTILLA_WIRE_MALFORMED'],
    ['an epoch of one field', [1, 2, [env0.map((v, i) => (i === 3 ? [1] : v))]], decodeRaftBatch, 'FLOTILLA_WIRE_MALFORMED'],
    ['a heartbeat of 6 fields', [1, 2, [[1, 1, 2, 1, 1, 1]]], decodeHeartbeatBatch, 'FLOTILLA_WIRE_MALFORMED'],
    ['too many beats', [1, 2, Array.from({ length: limits.heartbeatBatchBeatsMax + 1 }, () => 0)], decodeHeartbeatBatch, 'FLOTILLA_WIRE_LIMIT_EXCEEDED'],
    ['an unknown ack status', [1, 1, 1, 3], decodeSnapshotAck, 'FLOTILLA_WIRE_MALFORMED'],
    ['a disk state with a number for its flag', [1, 2, 1, 10, 20], decodeDiskState, 'FLOTILLA_WIRE_MALFORMED'],
    ['a disk state of four fields', [1, 2, true, 10], decodeDiskState, 'FLOTILLA_WIRE_MALFORMED'],
    ['a disk state from store 0', [0, 2, true, 10, 20], decodeDiskState, 'FLOTILLA_WIRE_MALFORMED'],
    ['a negative free space', [1, 2, true, -1, 20], decodeDiskState, 'FLOTILLA_WIRE_MALFORMED'],
    ['an unknown op', [1, 0, [[9, 1, [1, 1], EMPTY_BYTES]]], decodeKvRequest, 'FLOTILLA_WIRE_MALFORMED'],
    ['a get with a value field', [1, 0, [[1, 1, [1, 1], EMPTY_BYTES, 0, 0, EMPTY_BYTES]]], decodeKvRequest, 'FLOTILLA_WIRE_MALFORMED'],
    ['a linearizable read with a staleness', [1, 0, [[1, 1, [1, 1], EMPTY_BYTES, 0, 5]]], decodeKvRequest, 'FLOTILLA_WIRE_MALFORMED'],
    ['an oversized key', [1, 0, [[3, 1, [1, 1], new Uint8Array(limits.kvKeyBytesMax + 1)]]], decodeKvRequest, 'FLOTILLA_WIRE_LIMIT_EXCEEDED'],
    ['a scan limit of 0', [1, 0, [[6, 1, [1, 1], EMPTY_BYTES, EMPTY_BYTES, 0, false, 0, 0]]], decodeKvRequest, 'FLOTILLA_WIRE_MALFORMED'],
    ['a timeout past its bound', [1, limits.kvTimeoutMsMax + 1, []], decodeKvRequest, 'FLOTILLA_WIRE_LIMIT_EXCEEDED'],
    ['an error and results', [1, [7], [[2]]], decodeKvResponse, 'FLOTILLA_WIRE_MALFORMED'],
    ['an unknown error code', [1, [8], []], decodeKvResponse, 'FLOTILLA_WIRE_MALFORMED'],
    ['an unknown peer role', [1, [2, 1, [[1, EMPTY_BYTES, EMPTY_BYTES, [1, 1], [[1, 1, 2]]]]], []], decodeKvResponse, 'FLOTILLA_WIRE_MALFORMED'],
    ['an empty result', [1, null, [[]]], decodeKvResponse, 'FLOTILLA_WIRE_MALFORMED'],
  ];
  for (const [name, value, decode, code] of cases) {
    it(`refuses ${name}`, () => throwsWire(() => decode(pack(value)), code));
  }

  it('refuses msgpack outside the accepted subset before msgpackr decodes it', () => {
    const rich = new Packr({ useRecords: true, moreTypes: true, structuredClone: true });
    for (const value of [new Map([[1, 2]]), new Set([1]), new Date(0), /x/, new Error('e'), new Float64Array(2), 'text', { a: 1 }, [undefined]]) {
      throwsWire(() => decodeRaftBatch(rich.pack(value)), 'FLOTILLA_WIRE_MALFORMED');
    }
    throwsWire(() => decodeRaftBatch(new Uint8Array(0)), 'FLOTILLA_WIRE_MALFORMED');
    throwsWire(() => decodeRaftBatch(Uint8Array.of(0x93, 1, 2)), 'FLOTILLA_WIRE_MALFORMED'); // truncated
    throwsWire(() => decodeRaftBatch(Uint8Array.of(0x93, 1, 2, 0x90, 0x00)), 'FLOTILLA_WIRE_MALFORMED'); // trailing byte
    throwsWire(() => decodeRaftBatch(Uint8Array.of(0xc1)), 'FLOTILLA_WIRE_MALFORMED');
  });

  it('refuses arrays nested past payloadNestingDepthMax in the scan (a recursive reader never sees them)', () => {
    const nested = (depth: number): Uint8Array => Uint8Array.from({ length: depth }, (_, i) => (i === depth - 1 ? 0x90 : 0x91));
    assert.throws(() => decodeKvResponse(nested(limits.payloadNestingDepthMax + 1)), (err: unknown) => isWireError(err, 'FLOTILLA_WIRE_MALFORMED') && /nested deeper/.test(err.message));
    assert.throws(() => decodeKvResponse(nested(limits.payloadNestingDepthMax)), (err: unknown) => isWireError(err, 'FLOTILLA_WIRE_MALFORMED') && !/nested deeper/.test(err.message));
  });

  it('refuses payloads past the kind bound without decoding them', () => {
    throwsWire(() => decodeSnapshotAck(new Uint8Array(limits.snapshotAckPayloadBytesMax + 1)), 'FLOTILLA_WIRE_LIMIT_EXCEEDED');
    throwsWire(() => decodeDiskState(new Uint8Array(limits.diskStatePayloadBytesMax + 1)), 'FLOTILLA_WIRE_LIMIT_EXCEEDED');
  });
});

describe('every kind round-trips (property)', () => {
  it('payload and frame, any split', () => {
    fc.assert(
      fc.property(arb.wireMessage(), fc.array(arb.fraction(), { maxLength: 6 }), (m, cuts) => {
        const frame = encodeFrame(m);
        const decoder = new FrameDecoder();
        const out: WireMessage[] = [];
        for (const chunk of arb.splitAt(frame, cuts)) decoder.push(chunk, (f) => out.push(decodeFrame(f)));
        decoder.end();
        assert.deepStrictEqual(out, [m]);
        assert.equal(frame[5], FRAME_KINDS[m.kind]);
      }),
      arb.runs(400),
    );
  });
});

describe('PD protocol: store heartbeat', () => {
  const beat = { storeId: 3, capacityBytes: 100, availableBytes: 4, usedBytes: 96, regionCount: 2, leaderCount: 1, rates: { writeBytes: 0, writeKeys: 0, readBytes: 0, readKeys: 0 } };
  it('carries whether the store refuses writes; an older store that does not say is taken as not refusing', () => {
    assert.equal(readStoreHeartbeat({ ...beat, refusingWrites: true }).refusingWrites, true);
    assert.equal(readStoreHeartbeat({ ...beat, refusingWrites: false }).refusingWrites, false);
    assert.equal('refusingWrites' in readStoreHeartbeat(beat), false);
    assert.throws(() => readStoreHeartbeat({ ...beat, refusingWrites: 'yes' }), (err) => isWireError(err, 'FLOTILLA_WIRE_MALFORMED') && /refusingWrites/.test(err.message));
  });
});
