/**
 * fast-check arbitraries of valid wire messages (every kind), shaped as the decoders return them
 * (optional fields absent rather than empty), so a round trip is a deepStrictEqual.
 */
import fc from 'fast-check';
import { EMPTY_BYTES, type ConfState, type Entry, type Message, type MessageType } from '@flotilla/raft';
import {
  limits,
  type DiskState,
  type Heartbeat,
  type HeartbeatBatch,
  type HeartbeatResponse,
  type HeartbeatResponseBatch,
  type KvError,
  type KvOp,
  type KvOpResult,
  type KvRequest,
  type KvResponse,
  type RaftBatch,
  type RaftEnvelope,
  type ReadConsistency,
  type RegionEpoch,
  type RegionMeta,
  type SnapshotAck,
  type SnapshotChunk,
  type WireMessage,
  makeSnapshotChunk,
} from '../src/index.ts';

/** The fuzz seed: fixed by default (CI replays the same run), FLOTILLA_FUZZ_SEED to explore. */
export const FUZZ_SEED = Number(process.env.FLOTILLA_FUZZ_SEED ?? 20261122);
/** Multiplies every property's run count (FLOTILLA_FUZZ_RUNS_SCALE=20 for a long fuzz session). */
export const RUNS_SCALE = Number(process.env.FLOTILLA_FUZZ_RUNS_SCALE ?? 1);
export const runs = (n: number): { seed: number; numRuns: number } => ({ seed: FUZZ_SEED, numRuns: Math.max(1, Math.round(n * RUNS_SCALE)) });

const MAX = Number.MAX_SAFE_INTEGER;
/** Records with Object.prototype (fast-check's default is a null prototype, which deepStrictEqual tells apart). */
function rec<T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> {
  return fc.record(model, { noNullPrototype: true });
}
export const id = (): fc.Arbitrary<number> => fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.constant(MAX), fc.integer({ min: 1, max: MAX }));
export const uint = (): fc.Arbitrary<number> => fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 1000 }), fc.constant(MAX), fc.integer({ min: 0, max: MAX }));
export const bytes = (maxLength: number): fc.Arbitrary<Uint8Array> =>
  fc.oneof({ weight: 1, arbitrary: fc.constant(EMPTY_BYTES) }, { weight: 4, arbitrary: fc.uint8Array({ maxLength }) }).map((b) => (b.byteLength === 0 ? EMPTY_BYTES : b));
/**
 * A uniform fraction in [0, 1). (fc.double is biased towards its bounds: positions and cut points
 * drawn from it cluster at 0, and a fuzzer that always edits byte 0 finds little.)
 */
export const fraction = (): fc.Arbitrary<number> => fc.noBias(fc.integer({ min: 0, max: 999_999 })).map((n) => n / 1_000_000);

export const nonEmptyBytes = (maxLength: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: 1, maxLength });

export const epoch = (): fc.Arbitrary<RegionEpoch> => rec({ version: uint(), confVer: uint() });

const WIRE_TYPES: MessageType[] = [
  'propose',
  'append',
  'appendResponse',
  'vote',
  'voteResponse',
  'preVote',
  'preVoteResponse',
  'snapshot',
  'heartbeat',
  'heartbeatResponse',
  'transferLeader',
  'timeoutNow',
  'readIndex',
  'readIndexResponse',
  'hibernate',
  'wakeUp',
];

const entryType = fc.constantFrom<'normal' | 'confChange'>('normal', 'confChange');

const looseEntries = fc.array(rec({ index: uint(), term: uint(), type: entryType, data: bytes(64) }), { maxLength: 5 });

/** Entries of an append: contiguous after `index`, terms non-decreasing within [logTerm, term]. */
const appendShape = fc
  .record({
    index: fc.integer({ min: 0, max: MAX - 100 }),
    term: uint(),
    n: fc.integer({ min: 0, max: 6 }),
    cuts: fc.array(fraction(), { minLength: 7, maxLength: 7 }),
    datas: fc.array(bytes(64), { minLength: 6, maxLength: 6 }),
    types: fc.array(entryType, { minLength: 6, maxLength: 6 }),
  })
  .map(({ index, term, n, cuts, datas, types }) => {
    const sorted = cuts.map((c) => Math.floor(c * term)).sort((a, b) => a - b);
    const logTerm = sorted[0]!;
    const entries: Entry[] = [];
    for (let i = 0; i < n; i++) entries.push({ index: index + 1 + i, term: sorted[i + 1]!, type: types[i]!, data: datas[i]! });
    return { index, term, logTerm, entries };
  });

const ids = fc.array(id(), { maxLength: 7 });
const confState: fc.Arbitrary<ConfState> = rec({ voters: ids, votersOutgoing: ids, learners: ids, learnersNext: ids, autoLeave: fc.boolean() });

const common = rec({
  regionId: id(),
  fromPeer: id(),
  toPeer: id(),
  epoch: fc.option(epoch(), { nil: undefined }),
  commit: uint(),
  reject: fc.boolean(),
  rejectHint: uint(),
  leaderTick: uint(),
  context: bytes(limits.raftContextBytesMax),
});

function envelope(c: typeof common extends fc.Arbitrary<infer T> ? T : never, fields: Omit<Message, 'from' | 'to' | 'commit' | 'reject' | 'rejectHint' | 'leaderTick' | 'context'>, snapshotId?: number): RaftEnvelope {
  const message: Message = { ...fields, from: c.fromPeer, to: c.toPeer, commit: c.commit, reject: c.reject, rejectHint: c.rejectHint, leaderTick: c.leaderTick, context: c.context };
  const env: { -readonly [K in keyof RaftEnvelope]: RaftEnvelope[K] } = { regionId: c.regionId, fromPeer: c.fromPeer, toPeer: c.toPeer, message };
  if (c.epoch !== undefined) env.regionEpoch = c.epoch;
  if (snapshotId !== undefined) env.snapshotId = snapshotId;
  return env;
}

export const raftEnvelope = (): fc.Arbitrary<RaftEnvelope> =>
  fc.oneof(
    rec({ c: common, a: appendShape }).map(({ c, a }) => envelope(c, { type: 'append', term: a.term, logTerm: a.logTerm, index: a.index, entries: a.entries, snapshot: null })),
    fc
      .record({ c: common, type: fc.constantFrom(...WIRE_TYPES.filter((t) => t !== 'append' && t !== 'snapshot')), term: uint(), logTerm: uint(), index: uint(), entries: looseEntries })
      .map(({ c, type, term, logTerm, index, entries }) => envelope(c, { type, term, logTerm, index, entries, snapshot: null })),
    fc
      .record({ c: common, term: uint(), index: uint(), sterm: uint(), cs: confState, descriptor: bytes(256), snapshotId: uint() })
      .map(({ c, term, index, sterm, cs, descriptor, snapshotId }) =>
        envelope(c, { type: 'snapshot', term, logTerm: 0, index: 0, entries: [], snapshot: { metadata: { index, term: sterm, confState: cs }, data: descriptor } }, snapshotId),
      ),
  );

export const raftBatch = (): fc.Arbitrary<RaftBatch> => rec({ fromStore: id(), toStore: id(), messages: fc.array(raftEnvelope(), { maxLength: 6 }) });

function withContext<T extends object>(beat: T, context: Uint8Array): T | (T & { context: Uint8Array }) {
  return context.byteLength === 0 ? beat : { ...beat, context };
}

export const heartbeat = (): fc.Arbitrary<Heartbeat> =>
  fc
    .record({ regionId: id(), fromPeer: id(), toPeer: id(), term: uint(), commit: uint(), leaderTick: uint(), context: bytes(limits.raftContextBytesMax) })
    .map(({ context, ...beat }) => withContext(beat, context));

export const heartbeatResponse = (): fc.Arbitrary<HeartbeatResponse> =>
  rec({ regionId: id(), fromPeer: id(), toPeer: id(), term: uint(), leaderTick: uint(), context: bytes(limits.raftContextBytesMax) }).map(({ context, ...beat }) => withContext(beat, context));

export const heartbeatBatch = (): fc.Arbitrary<HeartbeatBatch> => rec({ fromStore: id(), toStore: id(), beats: fc.array(heartbeat(), { maxLength: 8 }) });
export const heartbeatResponseBatch = (): fc.Arbitrary<HeartbeatResponseBatch> => rec({ fromStore: id(), toStore: id(), beats: fc.array(heartbeatResponse(), { maxLength: 8 }) });

export const snapshotChunk = (): fc.Arbitrary<SnapshotChunk> =>
  rec({ regionId: id(), snapshotId: uint(), seq: uint(), last: fc.boolean(), data: bytes(512) }).map((f) => makeSnapshotChunk(f));

export const snapshotAck = (): fc.Arbitrary<SnapshotAck> =>
  rec({ regionId: id(), snapshotId: uint(), seq: uint(), status: fc.constantFrom<SnapshotAck['status']>('received', 'applied', 'rejected') });

export const diskState = (): fc.Arbitrary<DiskState> =>
  rec({ fromStore: id(), toStore: id(), refusesReplication: fc.boolean(), availableBytes: uint(), reserveBytes: uint() });

const key = bytes(32);
const value = bytes(64);
const consistency: fc.Arbitrary<ReadConsistency> = fc.oneof(
  fc.constant<ReadConsistency>({ level: 'linearizable' }),
  fc.integer({ min: 0, max: limits.kvStalenessMsMax }).map((ms): ReadConsistency => ({ level: 'stale', maxStalenessMs: ms })),
);

export const kvOp = (): fc.Arbitrary<KvOp> =>
  rec({ regionId: id(), regionEpoch: epoch() }).chain((base) =>
    fc.oneof(
      rec({ key, consistency }).map((f): KvOp => ({ ...base, op: 'get', ...f })),
      rec({ key, value }).map((f): KvOp => ({ ...base, op: 'put', ...f })),
      rec({ key }).map((f): KvOp => ({ ...base, op: 'delete', ...f })),
      rec({ key, expected: fc.option(value, { nil: null }), value: fc.option(value, { nil: null }) }).map((f): KvOp => ({ ...base, op: 'cas', ...f })),
      rec({ start: key, end: key }).map((f): KvOp => ({ ...base, op: 'deleteRange', ...f })),
      fc
        .record({ start: key, end: key, limit: fc.integer({ min: 1, max: limits.kvScanRowsMax }), reverse: fc.boolean(), consistency })
        .map((f): KvOp => ({ ...base, op: 'scan', ...f })),
    ),
  );

export const kvRequest = (): fc.Arbitrary<KvRequest> =>
  fc
    .record({ requestId: uint(), timeoutMs: fc.option(fc.integer({ min: 1, max: limits.kvTimeoutMsMax }), { nil: undefined }), ops: fc.array(kvOp(), { maxLength: 6 }) })
    .map(({ timeoutMs, ...r }) => (timeoutMs === undefined ? r : { ...r, timeoutMs }));

export const regionMeta = (): fc.Arbitrary<RegionMeta> =>
  rec({
    id: id(),
    startKey: key,
    endKey: key,
    epoch: epoch(),
    peers: fc.array(rec({ id: id(), storeId: id(), role: fc.constantFrom<'voter' | 'learner'>('voter', 'learner') }), { maxLength: 5 }),
  });

export const kvError = (): fc.Arbitrary<KvError> =>
  fc.oneof(
    rec({ regionId: id(), leader: fc.option(rec({ peerId: id(), storeId: id() }), { nil: null }) }).map((f): KvError => ({ code: 'FLOTILLA_NOT_LEADER', ...f })),
    rec({ regionId: id(), currentRegions: fc.array(regionMeta(), { maxLength: 3 }) }).map((f): KvError => ({ code: 'FLOTILLA_EPOCH_NOT_MATCH', ...f })),
    rec({ regionId: id() }).map((f): KvError => ({ code: 'FLOTILLA_REGION_NOT_FOUND', ...f })),
    rec({ regionId: id(), key, startKey: key, endKey: key }).map((f): KvError => ({ code: 'FLOTILLA_KEY_NOT_IN_REGION', ...f })),
    rec({ retryAfterMs: fc.integer({ min: 0, max: limits.kvRetryAfterMsMax }) }).map((f): KvError => ({ code: 'FLOTILLA_SERVER_BUSY', ...f })),
    rec({ requestBytesMax: uint(), opsMax: uint() }).map((f): KvError => ({ code: 'FLOTILLA_REQUEST_TOO_LARGE', ...f })),
    fc.constant<KvError>({ code: 'FLOTILLA_TIMEOUT' }),
    rec({ storeId: id(), availableBytes: uint(), reserveBytes: uint() }).map((f): KvError => ({ code: 'FLOTILLA_DISK_FULL', ...f })),
  );

export const kvOpResult = (): fc.Arbitrary<KvOpResult> =>
  fc.oneof(
    fc.option(value, { nil: null }).map((v): KvOpResult => ({ op: 'get', value: v })),
    fc.constant<KvOpResult>({ op: 'put' }),
    fc.constant<KvOpResult>({ op: 'delete' }),
    rec({ succeeded: fc.boolean(), previous: fc.option(value, { nil: null }) }).map((f): KvOpResult => ({ op: 'cas', ...f })),
    uint().map((deleted): KvOpResult => ({ op: 'deleteRange', deleted })),
    rec({ pairs: fc.array(rec({ key, value }), { maxLength: 4 }), more: fc.boolean() }).map((f): KvOpResult => ({ op: 'scan', ...f })),
    kvError().map((error): KvOpResult => ({ op: 'error', error })),
  );

export const kvResponse = (): fc.Arbitrary<KvResponse> =>
  fc.oneof(
    rec({ requestId: uint(), results: fc.array(kvOpResult(), { maxLength: 6 }) }),
    rec({ requestId: uint(), error: kvError() }),
  );

/** Any valid message of either protocol. */
export const wireMessage = (): fc.Arbitrary<WireMessage> =>
  fc.oneof(
    raftBatch().map((body): WireMessage => ({ kind: 'raftBatch', body })),
    heartbeatBatch().map((body): WireMessage => ({ kind: 'heartbeatBatch', body })),
    heartbeatResponseBatch().map((body): WireMessage => ({ kind: 'heartbeatResponseBatch', body })),
    snapshotChunk().map((body): WireMessage => ({ kind: 'snapshotChunk', body })),
    snapshotAck().map((body): WireMessage => ({ kind: 'snapshotAck', body })),
    diskState().map((body): WireMessage => ({ kind: 'diskState', body })),
    kvRequest().map((body): WireMessage => ({ kind: 'kvRequest', body })),
    kvResponse().map((body): WireMessage => ({ kind: 'kvResponse', body })),
  );

/** Splits `bytes` at the given cut points (fractions in [0, 1)), as TCP might deliver them. */
export function splitAt(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => Math.floor(c * bytes.length)))].filter((p) => p > 0 && p < bytes.length).sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let at = 0;
  for (const p of points) {
    chunks.push(bytes.subarray(at, p));
    at = p;
  }
  chunks.push(bytes.subarray(at));
  return chunks;
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
