/**
 * The client ↔ store protocol: a KvRequest is a batch of operations of any regions; the KvResponse
 * has one result per operation (or one error for the whole request). Used as HTTP bodies and as
 * frame payloads alike.
 *
 *   KvRequest  = [requestId, timeoutMs, [op...]]
 *   op         = [1 get, regionId, epoch, key, level, maxStalenessMs]
 *              | [2 put, regionId, epoch, key, value]
 *              | [3 delete, regionId, epoch, key]
 *              | [4 cas, regionId, epoch, key, expected | nil, value | nil]
 *              | [5 deleteRange, regionId, epoch, start, end]
 *              | [6 scan, regionId, epoch, start, end, limit, reverse, level, maxStalenessMs]
 *   level      = 0 linearizable (maxStalenessMs 0) | 1 stale
 *   KvResponse = [requestId, error | nil, [result...]]          (an error: no results)
 *   result     = [0 error, error] | [1 get, value | nil] | [2 put] | [3 delete]
 *              | [4 cas, succeeded, previous | nil] | [5 deleteRange, deleted] | [6 scan, [[key, value]...], more]
 *   error      = [1 NotLeader, regionId, [peerId, storeId] | nil] | [2 EpochNotMatch, regionId, [region...]]
 *              | [3 RegionNotFound, regionId] | [4 KeyNotInRegion, regionId, key, startKey, endKey]
 *              | [5 ServerBusy, retryAfterMs] | [6 RequestTooLarge, requestBytesMax, opsMax] | [7 Timeout]
 *   region     = [id, startKey, endKey, [version, confVer], [[peerId, storeId, role]...]]   role: 0 voter, 1 learner
 */
import {
  argBytes,
  argCount,
  argId,
  argUint,
  argUintAtMost,
  invalid,
  malformed,
  readBool,
  readBytes,
  readBytesOrNull,
  readId,
  readList,
  readTagged,
  readTuple,
  readUint,
  readUintAtMost,
} from './check.ts';
import {
  epochNotMatchRegionsMax,
  kvKeyBytesMax,
  kvRequestOpsMax,
  kvRetryAfterMsMax,
  kvScanRowsMax,
  kvStalenessMsMax,
  kvTimeoutMsMax,
  kvValueBytesMax,
  regionPeersMax,
} from './constants.ts';
import { epochTuple, readEpoch } from './raft-codec.ts';
import type { KvError, KvErrorCode, KvOp, KvOpResult, KvPair, KvRequest, KvResponse, ReadConsistency, RegionMeta, RegionPeer } from './types.ts';

const OP_GET = 1;
const OP_PUT = 2;
const OP_DELETE = 3;
const OP_CAS = 4;
const OP_DELETE_RANGE = 5;
const OP_SCAN = 6;
const RESULT_ERROR = 0;

const ERROR_CODES: readonly KvErrorCode[] = [
  'FLOTILLA_NOT_LEADER', // 1
  'FLOTILLA_EPOCH_NOT_MATCH', // 2
  'FLOTILLA_REGION_NOT_FOUND', // 3
  'FLOTILLA_KEY_NOT_IN_REGION', // 4
  'FLOTILLA_SERVER_BUSY', // 5
  'FLOTILLA_REQUEST_TOO_LARGE', // 6
  'FLOTILLA_TIMEOUT', // 7
  'FLOTILLA_DISK_FULL', // 8
];

/** Every code a store may answer a client with. */
export const KV_ERROR_CODES: readonly KvErrorCode[] = Object.freeze([...ERROR_CODES]);

/**
 * Whether a client may retry after this error (having refreshed its region cache from the error,
 * from the leader hint or from PD, or after backing off). RequestTooLarge never succeeds as is;
 * after a Timeout a write's outcome is unknown, so only the caller can tell whether a retry is safe.
 */
export function isRetryableKvError(error: KvError): boolean {
  switch (error.code) {
    case 'FLOTILLA_NOT_LEADER':
    case 'FLOTILLA_EPOCH_NOT_MATCH':
    case 'FLOTILLA_REGION_NOT_FOUND':
    case 'FLOTILLA_KEY_NOT_IN_REGION':
    case 'FLOTILLA_SERVER_BUSY':
      return true;
    case 'FLOTILLA_REQUEST_TOO_LARGE':
    case 'FLOTILLA_TIMEOUT':
    // Space comes back when an operator or deletes free it, not within a retry's backoff.
    case 'FLOTILLA_DISK_FULL':
      return false;
  }
}

// ---- Encoding -----------------------------------------------------------------------------------------

const key = (k: Uint8Array, what = 'key'): Uint8Array => argBytes(k, kvKeyBytesMax, what);
const val = (v: Uint8Array, what = 'value'): Uint8Array => argBytes(v, kvValueBytesMax, what);
const valOrNull = (v: Uint8Array | null, what: string): Uint8Array | null => (v === null ? null : val(v, what));

function consistencyFields(c: ReadConsistency): [number, number] {
  if (c.level === 'linearizable') return [0, 0];
  if (c.level === 'stale') return [1, argUintAtMost(c.maxStalenessMs, kvStalenessMsMax, 'maxStalenessMs')];
  return invalid(`unknown read consistency '${String((c as { level: unknown }).level)}'`);
}

function opTuple(op: KvOp): unknown[] {
  const regionId = argId(op.regionId, 'regionId');
  const epoch = epochTuple(op.regionEpoch, 'regionEpoch');
  switch (op.op) {
    case 'get':
      return [OP_GET, regionId, epoch, key(op.key), ...consistencyFields(op.consistency)];
    case 'put':
      return [OP_PUT, regionId, epoch, key(op.key), val(op.value)];
    case 'delete':
      return [OP_DELETE, regionId, epoch, key(op.key)];
    case 'cas':
      return [OP_CAS, regionId, epoch, key(op.key), valOrNull(op.expected, 'expected'), valOrNull(op.value, 'value')];
    case 'deleteRange':
      return [OP_DELETE_RANGE, regionId, epoch, key(op.start, 'start'), key(op.end, 'end')];
    case 'scan': {
      if (!Number.isSafeInteger(op.limit) || op.limit < 1) invalid(`scan limit ${op.limit} is not a positive integer`);
      argUintAtMost(op.limit, kvScanRowsMax, 'scan limit');
      return [OP_SCAN, regionId, epoch, key(op.start, 'start'), key(op.end, 'end'), op.limit, op.reverse === true, ...consistencyFields(op.consistency)];
    }
  }
  return invalid(`unknown operation '${String((op as { op: unknown }).op)}'`);
}

export function kvRequestTuple(request: KvRequest): unknown[] {
  argUint(request.requestId, 'requestId');
  argCount(request.ops.length, kvRequestOpsMax, 'operations per KvRequest');
  const ops = new Array<unknown>(request.ops.length);
  for (let i = 0; i < ops.length; i++) ops[i] = opTuple(request.ops[i]!);
  return [request.requestId, argUintAtMost(request.timeoutMs ?? 0, kvTimeoutMsMax, 'timeoutMs'), ops];
}

function regionTuple(r: RegionMeta): unknown[] {
  argCount(r.peers.length, regionPeersMax, 'peers per region');
  const peers = r.peers.map((p) => {
    if (p.role !== 'voter' && p.role !== 'learner') invalid(`unknown peer role '${String(p.role)}'`);
    return [argId(p.id, 'peer.id'), argId(p.storeId, 'peer.storeId'), p.role === 'voter' ? 0 : 1];
  });
  return [argId(r.id, 'region.id'), key(r.startKey, 'region.startKey'), key(r.endKey, 'region.endKey'), epochTuple(r.epoch, 'region.epoch'), peers];
}

function errorTuple(e: KvError): unknown[] {
  switch (e.code) {
    case 'FLOTILLA_NOT_LEADER':
      return [1, argId(e.regionId, 'regionId'), e.leader === null ? null : [argId(e.leader.peerId, 'leader.peerId'), argId(e.leader.storeId, 'leader.storeId')]];
    case 'FLOTILLA_EPOCH_NOT_MATCH':
      argCount(e.currentRegions.length, epochNotMatchRegionsMax, 'regions in EpochNotMatch');
      return [2, argId(e.regionId, 'regionId'), e.currentRegions.map(regionTuple)];
    case 'FLOTILLA_REGION_NOT_FOUND':
      return [3, argId(e.regionId, 'regionId')];
    case 'FLOTILLA_KEY_NOT_IN_REGION':
      return [4, argId(e.regionId, 'regionId'), key(e.key), key(e.startKey, 'startKey'), key(e.endKey, 'endKey')];
    case 'FLOTILLA_SERVER_BUSY':
      return [5, argUintAtMost(e.retryAfterMs, kvRetryAfterMsMax, 'retryAfterMs')];
    case 'FLOTILLA_REQUEST_TOO_LARGE':
      return [6, argUint(e.requestBytesMax, 'requestBytesMax'), argUint(e.opsMax, 'opsMax')];
    case 'FLOTILLA_TIMEOUT':
      return [7];
    case 'FLOTILLA_DISK_FULL':
      return [8, argId(e.storeId, 'storeId'), argUint(e.availableBytes, 'availableBytes'), argUint(e.reserveBytes, 'reserveBytes')];
  }
  return invalid(`unknown error code '${String((e as { code: unknown }).code)}'`);
}

function resultTuple(r: KvOpResult): unknown[] {
  switch (r.op) {
    case 'error':
      return [RESULT_ERROR, errorTuple(r.error)];
    case 'get':
      return [OP_GET, valOrNull(r.value, 'value')];
    case 'put':
      return [OP_PUT];
    case 'delete':
      return [OP_DELETE];
    case 'cas':
      return [OP_CAS, r.succeeded === true, valOrNull(r.previous, 'previous')];
    case 'deleteRange':
      return [OP_DELETE_RANGE, argUint(r.deleted, 'deleted')];
    case 'scan': {
      argCount(r.pairs.length, kvScanRowsMax, 'rows per scan result');
      const pairs = new Array<unknown>(r.pairs.length);
      for (let i = 0; i < pairs.length; i++) {
        const p = r.pairs[i]!;
        pairs[i] = [key(p.key), val(p.value)];
      }
      return [OP_SCAN, pairs, r.more === true];
    }
  }
  return invalid(`unknown result '${String((r as { op: unknown }).op)}'`);
}

export function kvResponseTuple(response: KvResponse): unknown[] {
  argUint(response.requestId, 'requestId');
  if ('error' in response) return [response.requestId, errorTuple(response.error), []];
  argCount(response.results.length, kvRequestOpsMax, 'results per KvResponse');
  const results = new Array<unknown>(response.results.length);
  for (let i = 0; i < results.length; i++) results[i] = resultTuple(response.results[i]!);
  return [response.requestId, null, results];
}

// ---- Decoding -----------------------------------------------------------------------------------------

const readKey = (v: unknown, what = 'key'): Uint8Array => readBytes(v, kvKeyBytesMax, what);
const readValue = (v: unknown, what = 'value'): Uint8Array => readBytes(v, kvValueBytesMax, what);

function readConsistency(level: unknown, ms: unknown): ReadConsistency {
  if (level === 0) {
    if (ms !== 0) malformed('a linearizable read with a staleness bound');
    return { level: 'linearizable' };
  }
  if (level === 1) return { level: 'stale', maxStalenessMs: readUintAtMost(ms, kvStalenessMsMax, 'maxStalenessMs') };
  return malformed('unknown read consistency level');
}

/** Tuple length of each operation, indexed by its tag. */
const OP_TUPLE_LENGTHS: readonly (number | undefined)[] = [undefined, 6, 5, 4, 6, 5, 9];

function readOp(value: unknown, i: number): KvOp {
  const t = readTagged(value, `op ${i}`);
  const tag = t[0];
  const length = typeof tag === 'number' ? OP_TUPLE_LENGTHS[tag] : undefined;
  if (length === undefined) malformed(`op ${i}: unknown operation`);
  readTuple(t, length, `op ${i}`);
  const regionId = readId(t[1], 'regionId');
  const regionEpoch = readEpoch(t[2], 'regionEpoch');
  switch (tag) {
    case OP_GET:
      return { op: 'get', regionId, regionEpoch, key: readKey(t[3]), consistency: readConsistency(t[4], t[5]) };
    case OP_PUT:
      return { op: 'put', regionId, regionEpoch, key: readKey(t[3]), value: readValue(t[4]) };
    case OP_DELETE:
      return { op: 'delete', regionId, regionEpoch, key: readKey(t[3]) };
    case OP_CAS:
      return {
        op: 'cas',
        regionId,
        regionEpoch,
        key: readKey(t[3]),
        expected: readBytesOrNull(t[4], kvValueBytesMax, 'expected'),
        value: readBytesOrNull(t[5], kvValueBytesMax, 'value'),
      };
    case OP_DELETE_RANGE:
      return { op: 'deleteRange', regionId, regionEpoch, start: readKey(t[3], 'start'), end: readKey(t[4], 'end') };
    default: {
      const limit = readUintAtMost(t[5], kvScanRowsMax, 'scan limit');
      if (limit === 0) malformed('scan limit 0');
      return {
        op: 'scan',
        regionId,
        regionEpoch,
        start: readKey(t[3], 'start'),
        end: readKey(t[4], 'end'),
        limit,
        reverse: readBool(t[6], 'reverse'),
        consistency: readConsistency(t[7], t[8]),
      };
    }
  }
}

export function readKvRequest(value: unknown): KvRequest {
  const t = readTuple(value, 3, 'KvRequest');
  const requestId = readUint(t[0], 'requestId');
  const timeoutMs = readUintAtMost(t[1], kvTimeoutMsMax, 'timeoutMs');
  const list = readList(t[2], kvRequestOpsMax, 'KvRequest.ops');
  const ops = new Array<KvOp>(list.length);
  for (let i = 0; i < list.length; i++) ops[i] = readOp(list[i], i);
  return timeoutMs === 0 ? { requestId, ops } : { requestId, timeoutMs, ops };
}

function readRegion(value: unknown): RegionMeta {
  const t = readTuple(value, 5, 'region');
  const list = readList(t[4], regionPeersMax, 'region.peers');
  const peers = new Array<RegionPeer>(list.length);
  for (let i = 0; i < list.length; i++) {
    const p = readTuple(list[i], 3, 'peer');
    const role = p[2] === 0 ? 'voter' : p[2] === 1 ? 'learner' : malformed('peer: unknown role');
    peers[i] = { id: readId(p[0], 'peer.id'), storeId: readId(p[1], 'peer.storeId'), role };
  }
  return { id: readId(t[0], 'region.id'), startKey: readKey(t[1], 'region.startKey'), endKey: readKey(t[2], 'region.endKey'), epoch: readEpoch(t[3], 'region.epoch'), peers };
}

function readError(value: unknown): KvError {
  const t = readTagged(value, 'error');
  switch (t[0]) {
    case 1: {
      readTuple(t, 3, 'NotLeader');
      let leader: { peerId: number; storeId: number } | null = null;
      if (t[2] !== null) {
        const l = readTuple(t[2], 2, 'NotLeader.leader');
        leader = { peerId: readId(l[0], 'leader.peerId'), storeId: readId(l[1], 'leader.storeId') };
      }
      return { code: 'FLOTILLA_NOT_LEADER', regionId: readId(t[1], 'regionId'), leader };
    }
    case 2: {
      readTuple(t, 3, 'EpochNotMatch');
      const list = readList(t[2], epochNotMatchRegionsMax, 'EpochNotMatch.currentRegions');
      const currentRegions = new Array<RegionMeta>(list.length);
      for (let i = 0; i < list.length; i++) currentRegions[i] = readRegion(list[i]);
      return { code: 'FLOTILLA_EPOCH_NOT_MATCH', regionId: readId(t[1], 'regionId'), currentRegions };
    }
    case 3:
      readTuple(t, 2, 'RegionNotFound');
      return { code: 'FLOTILLA_REGION_NOT_FOUND', regionId: readId(t[1], 'regionId') };
    case 4:
      readTuple(t, 5, 'KeyNotInRegion');
      return {
        code: 'FLOTILLA_KEY_NOT_IN_REGION',
        regionId: readId(t[1], 'regionId'),
        key: readKey(t[2]),
        startKey: readKey(t[3], 'startKey'),
        endKey: readKey(t[4], 'endKey'),
      };
    case 5:
      readTuple(t, 2, 'ServerBusy');
      return { code: 'FLOTILLA_SERVER_BUSY', retryAfterMs: readUintAtMost(t[1], kvRetryAfterMsMax, 'retryAfterMs') };
    case 6:
      readTuple(t, 3, 'RequestTooLarge');
      return { code: 'FLOTILLA_REQUEST_TOO_LARGE', requestBytesMax: readUint(t[1], 'requestBytesMax'), opsMax: readUint(t[2], 'opsMax') };
    case 7:
      readTuple(t, 1, 'Timeout');
      return { code: 'FLOTILLA_TIMEOUT' };
    case 8:
      readTuple(t, 4, 'DiskFull');
      return { code: 'FLOTILLA_DISK_FULL', storeId: readId(t[1], 'storeId'), availableBytes: readUint(t[2], 'availableBytes'), reserveBytes: readUint(t[3], 'reserveBytes') };
    default:
      return malformed('unknown error code');
  }
}

function readResult(value: unknown, i: number): KvOpResult {
  const t = readTagged(value, `result ${i}`);
  switch (t[0]) {
    case RESULT_ERROR:
      readTuple(t, 2, `result ${i}`);
      return { op: 'error', error: readError(t[1]) };
    case OP_GET:
      readTuple(t, 2, `result ${i}`);
      return { op: 'get', value: readBytesOrNull(t[1], kvValueBytesMax, 'value') };
    case OP_PUT:
      readTuple(t, 1, `result ${i}`);
      return { op: 'put' };
    case OP_DELETE:
      readTuple(t, 1, `result ${i}`);
      return { op: 'delete' };
    case OP_CAS:
      readTuple(t, 3, `result ${i}`);
      return { op: 'cas', succeeded: readBool(t[1], 'succeeded'), previous: readBytesOrNull(t[2], kvValueBytesMax, 'previous') };
    case OP_DELETE_RANGE:
      readTuple(t, 2, `result ${i}`);
      return { op: 'deleteRange', deleted: readUint(t[1], 'deleted') };
    case OP_SCAN: {
      readTuple(t, 3, `result ${i}`);
      const list = readList(t[1], kvScanRowsMax, 'scan rows');
      const pairs = new Array<KvPair>(list.length);
      for (let j = 0; j < list.length; j++) {
        const p = readTuple(list[j], 2, 'scan row');
        pairs[j] = { key: readKey(p[0]), value: readValue(p[1]) };
      }
      return { op: 'scan', pairs, more: readBool(t[2], 'more') };
    }
    default:
      return malformed(`result ${i}: unknown result`);
  }
}

export function readKvResponse(value: unknown): KvResponse {
  const t = readTuple(value, 3, 'KvResponse');
  const requestId = readUint(t[0], 'requestId');
  const list = readList(t[2], kvRequestOpsMax, 'KvResponse.results');
  if (t[1] !== null) {
    if (list.length !== 0) malformed('KvResponse: an error and results');
    return { requestId, error: readError(t[1]) };
  }
  const results = new Array<KvOpResult>(list.length);
  for (let i = 0; i < list.length; i++) results[i] = readResult(list[i], i);
  return { requestId, results };
}
