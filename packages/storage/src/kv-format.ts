/**
 * On-disk layout of the KV engine (version KV_FORMAT_VERSION) and the region snapshot stream
 * (version SNAPSHOT_FORMAT_VERSION).
 *
 * Column `data`: user key -> user value, as is (all regions in one keyspace).
 * Column `meta`: key = u8 tag ‖ u64 regionId; value = crc u32 ‖ ver u8 ‖ record (checksum over
 * key ‖ value[4..], as in the log):
 *   tag 0 (id 0)  format record
 *   tag 1  apply state:  0 u8 ×3 | appliedIndex u64 | appliedTerm u64
 *   tag 2  region:       status u8 | 0 u16 | region (see writeRegion) | conf (see writeConf) | merge
 *   tag 3  snapshot marker (a snapshot is being applied): 0 u8 ×3 | index u64 | term u64 | u32 n | file name (utf8)
 *   tag 4  apply journal record (id = its sequence number): 0 u8 ×3 | count u32 | 0 u32 |
 *          (regionId u64 | appliedIndex u64 | appliedTerm u64) × count — newer than the
 *          apply-state records of the regions it names (kv-apply-journal.ts)
 *   tag 255 (id 0) sync marker: 0 u8 ×3 | counter u64
 *
 * Snapshot frame := u32 frameBytes | u32 crc32c(frame[8..]) | u8 version | u8 kind | u16 0 | u32 seq | payload
 *   kind 1 header:  appliedIndex u64 | appliedTerm u64 | region | conf | merge
 *   kind 2 data:    u32 count | (u32 keyBytes | key | u32 valueBytes | value)*
 *   kind 3 trailer: u64 pairs | u64 bytes | u32 dataFrames
 *
 * conf (the region's raft ConfState as of its applied index) := autoLeave u8 | 0 u8 ×3 |
 *   u32 count ×4 (voters, votersOutgoing, learners, learnersNext) | ids u64… in that order.
 *   Each count is at most regionPeersMax; ids are positive safe integers, none twice in a list,
 *   at least one voter, and votersOutgoing / learnersNext / autoLeave only in a joint
 *   configuration (confStateProblem). A conf section that breaks these is refused as corrupt.
 *
 * merge (the region's MergeState, kv-types.ts) := present u8 | 0 u8 ×3 |
 *   (targetRegionId u64 | targetVersion u64 | targetConfVer u64 | prepareIndex u64 | prepareTerm u64) when present.
 *
 * Version 2 of both (KV_FORMAT_VERSION, SNAPSHOT_FORMAT_VERSION) added the conf section,
 * version 3 the merge section; KV version 4 the apply journal (version 3 records are read as
 * they are, the format record is rewritten); older data is refused with
 * FLOTILLA_STORAGE_FORMAT_VERSION.
 */
import type { ConfState } from '@flotilla/raft';
import { KV_FORMAT_VERSION, KV_FORMAT_VERSION_OLDEST, SNAPSHOT_FORMAT_VERSION, regionPeersMax, snapshotChunkPairsMax, snapshotFrameBytesMax } from './constants.ts';
import { crc32c } from './crc32c.ts';
import { StorageError, assert } from './errors.ts';
import { checkValue, metaKey, readU32, readU64, sealValue, writeU32, writeU64 } from './log-format.ts';
import type { MergeState, PeerRole, RegionMeta, RegionState, RegionStatus } from './kv-types.ts';

export const KV_TAG_FORMAT = 0;
export const KV_TAG_APPLY_STATE = 1;
export const KV_TAG_REGION = 2;
export const KV_TAG_SNAPSHOT_MARKER = 3;
export const KV_TAG_APPLY_JOURNAL = 4;
export const KV_TAG_SYNC = 255;

export const kvMetaKey = metaKey;

const STATUSES: readonly RegionStatus[] = ['normal', 'applyingSnapshot', 'tombstone'];

function corrupt(what: string): StorageError {
  return new StorageError('FLOTILLA_STORAGE_CORRUPTION', what);
}
const ROLES: readonly PeerRole[] = ['voter', 'learner'];

function header(value: Uint8Array, byte5 = 0): void {
  writeU32(value, 0, 0);
  value[4] = KV_FORMAT_VERSION;
  value[5] = byte5;
  value[6] = 0;
  value[7] = 0;
}

/** Checks a meta value's checksum and version; answers the version (KV_FORMAT_VERSION_OLDEST..KV_FORMAT_VERSION). */
export function checkKvValue(key: Uint8Array, value: Uint8Array, minBytes: number, what: string): number {
  return checkValue(key, value, minBytes, what, KV_FORMAT_VERSION_OLDEST, KV_FORMAT_VERSION);
}

// ---- raft configuration -------------------------------------------------------------------------

const CONF_PREFIX_BYTES = 4 + 16;

function confLists(cs: ConfState): readonly (readonly number[])[] {
  return [cs.voters, cs.votersOutgoing, cs.learners, cs.learnersNext];
}

/**
 * Why `cs` can't be a region's stored configuration, or null. The writer (apply validation)
 * and the reader (decoding) check the same rules: a bad configuration is never written, and
 * one read back broken is corruption.
 */
export function confStateProblem(cs: ConfState): string | null {
  const names = ['voters', 'votersOutgoing', 'learners', 'learnersNext'];
  const lists = confLists(cs);
  for (let i = 0; i < lists.length; i++) {
    const list = lists[i]!;
    if (list.length > regionPeersMax) return `${list.length} ${names[i]} > regionPeersMax ${regionPeersMax}`;
    for (const id of list) if (!Number.isSafeInteger(id) || id <= 0) return `${names[i]}: peer id ${id} is not a positive safe integer`;
    if (new Set(list).size !== list.length) return `${names[i]}: a peer id twice`;
  }
  if (cs.voters.length === 0) return 'no voter';
  const joint = cs.votersOutgoing.length > 0;
  if (!joint && (cs.learnersNext.length > 0 || cs.autoLeave)) return 'learnersNext or autoLeave outside a joint configuration';
  return null;
}

export function confBytes(cs: ConfState): number {
  return CONF_PREFIX_BYTES + 8 * (cs.voters.length + cs.votersOutgoing.length + cs.learners.length + cs.learnersNext.length);
}

export function writeConf(bytes: Uint8Array, at: number, cs: ConfState): number {
  bytes[at] = cs.autoLeave ? 1 : 0;
  bytes[at + 1] = 0;
  bytes[at + 2] = 0;
  bytes[at + 3] = 0;
  const lists = confLists(cs);
  let p = at + 4;
  for (const list of lists) {
    writeU32(bytes, p, list.length);
    p += 4;
  }
  for (const list of lists) {
    for (const id of list) {
      writeU64(bytes, p, id);
      p += 8;
    }
  }
  return p;
}

export function readConf(bytes: Uint8Array, at: number, what: string): { confState: ConfState; end: number } {
  if (at + CONF_PREFIX_BYTES > bytes.byteLength) throw corrupt(`${what}: conf state truncated`);
  const autoLeave = bytes[at]!;
  if (autoLeave > 1 || bytes[at + 1] !== 0 || bytes[at + 2] !== 0 || bytes[at + 3] !== 0) throw corrupt(`${what}: conf state flags ${autoLeave}`);
  const counts: number[] = [];
  for (let i = 0; i < 4; i++) {
    const count = readU32(bytes, at + 4 + 4 * i);
    if (count > regionPeersMax) throw corrupt(`${what}: conf state list of ${count} ids`);
    counts.push(count);
  }
  let p = at + CONF_PREFIX_BYTES;
  const total = counts[0]! + counts[1]! + counts[2]! + counts[3]!;
  if (p + 8 * total > bytes.byteLength) throw corrupt(`${what}: conf state truncated`);
  const lists: number[][] = [];
  for (const count of counts) {
    const list: number[] = [];
    for (let i = 0; i < count; i++) {
      list.push(readU64(bytes, p));
      p += 8;
    }
    lists.push(list);
  }
  const confState: ConfState = { voters: lists[0]!, votersOutgoing: lists[1]!, learners: lists[2]!, learnersNext: lists[3]!, autoLeave: autoLeave === 1 };
  const problem = confStateProblem(confState);
  if (problem !== null) throw corrupt(`${what}: conf state: ${problem}`);
  return { confState, end: p };
}

// ---- merge state ------------------------------------------------------------------------------

const MERGE_FIELDS_BYTES = 40;

export function mergeBytes(m: MergeState | undefined): number {
  return 4 + (m === undefined ? 0 : MERGE_FIELDS_BYTES);
}

export function writeMerge(bytes: Uint8Array, at: number, m: MergeState | undefined): number {
  bytes[at] = m === undefined ? 0 : 1;
  bytes[at + 1] = 0;
  bytes[at + 2] = 0;
  bytes[at + 3] = 0;
  if (m === undefined) return at + 4;
  const fields = [m.targetRegionId, m.targetEpoch.version, m.targetEpoch.confVer, m.prepareIndex, m.prepareTerm];
  fields.forEach((v, i) => writeU64(bytes, at + 4 + 8 * i, v));
  return at + 4 + MERGE_FIELDS_BYTES;
}

export function readMerge(bytes: Uint8Array, at: number, what: string): { merging: MergeState | undefined; end: number } {
  if (at + 4 > bytes.byteLength) throw corrupt(`${what}: merge state truncated`);
  const present = bytes[at]!;
  if (present > 1 || bytes[at + 1] !== 0 || bytes[at + 2] !== 0 || bytes[at + 3] !== 0) throw corrupt(`${what}: merge state flags ${present}`);
  if (present === 0) return { merging: undefined, end: at + 4 };
  if (at + 4 + MERGE_FIELDS_BYTES > bytes.byteLength) throw corrupt(`${what}: merge state truncated`);
  const f = (i: number): number => readU64(bytes, at + 4 + 8 * i);
  const merging: MergeState = { targetRegionId: f(0), targetEpoch: { version: f(1), confVer: f(2) }, prepareIndex: f(3), prepareTerm: f(4) };
  if (merging.targetRegionId === 0 || merging.prepareIndex === 0) throw corrupt(`${what}: merge state without a target or prepare index`);
  return { merging, end: at + 4 + MERGE_FIELDS_BYTES };
}

/** `merging` as an optional property (absent rather than undefined: exactOptionalPropertyTypes). */
function withMerge<T extends object>(o: T, merging: MergeState | undefined): T & { merging?: MergeState } {
  return merging === undefined ? o : { ...o, merging };
}

// ---- region metadata ------------------------------------------------------------------------

export function regionBytes(r: RegionMeta): number {
  return 24 + 4 + r.startKey.byteLength + 4 + r.endKey.byteLength + 4 + 17 * r.peers.length;
}

export function writeRegion(bytes: Uint8Array, at: number, r: RegionMeta): number {
  writeU64(bytes, at, r.id);
  writeU64(bytes, at + 8, r.epoch.version);
  writeU64(bytes, at + 16, r.epoch.confVer);
  let p = at + 24;
  writeU32(bytes, p, r.startKey.byteLength);
  bytes.set(r.startKey, p + 4);
  p += 4 + r.startKey.byteLength;
  writeU32(bytes, p, r.endKey.byteLength);
  bytes.set(r.endKey, p + 4);
  p += 4 + r.endKey.byteLength;
  writeU32(bytes, p, r.peers.length);
  p += 4;
  for (const peer of r.peers) {
    writeU64(bytes, p, peer.id);
    writeU64(bytes, p + 8, peer.storeId);
    bytes[p + 16] = ROLES.indexOf(peer.role);
    p += 17;
  }
  return p;
}

export function readRegion(bytes: Uint8Array, at: number, what: string): { region: RegionMeta; end: number } {
  const need = (n: number): void => {
    if (n > bytes.byteLength) throw corrupt(`${what}: region record truncated`);
  };
  need(at + 28);
  const id = readU64(bytes, at);
  const version = readU64(bytes, at + 8);
  const confVer = readU64(bytes, at + 16);
  let p = at + 24;
  const startLen = readU32(bytes, p);
  need(p + 4 + startLen + 4);
  const startKey = new Uint8Array(bytes.subarray(p + 4, p + 4 + startLen));
  p += 4 + startLen;
  const endLen = readU32(bytes, p);
  need(p + 4 + endLen + 4);
  const endKey = new Uint8Array(bytes.subarray(p + 4, p + 4 + endLen));
  p += 4 + endLen;
  const count = readU32(bytes, p);
  p += 4;
  if (count > regionPeersMax) throw corrupt(`${what}: ${count} peers`);
  need(p + 17 * count);
  const peers = [];
  for (let i = 0; i < count; i++) {
    const role = ROLES[bytes[p + 16]!];
    if (role === undefined) throw corrupt(`${what}: peer role ${bytes[p + 16]}`);
    peers.push({ id: readU64(bytes, p), storeId: readU64(bytes, p + 8), role });
    p += 17;
  }
  return { region: { id, startKey, endKey, epoch: { version, confVer }, peers }, end: p };
}

/** The region record of `s` (its metadata, configuration and merge state) with `status`. */
export function encodeRegionRecord(s: Pick<RegionState, 'region' | 'confState' | 'merging'>, status: RegionStatus): { key: Buffer; value: Buffer } {
  const { region: r, confState, merging } = s;
  const key = kvMetaKey(KV_TAG_REGION, r.id);
  const value = Buffer.alloc(8 + regionBytes(r) + confBytes(confState) + mergeBytes(merging));
  header(value, STATUSES.indexOf(status));
  const end = writeMerge(value, writeConf(value, writeRegion(value, 8, r), confState), merging);
  assert(end === value.byteLength, 'region record fills its value');
  sealValue(key, value);
  return { key, value };
}

export function decodeRegionRecord(key: Uint8Array, value: Uint8Array): { region: RegionMeta; confState: ConfState; status: RegionStatus; merging?: MergeState } {
  const what = `region ${readU64(key, 1)}`;
  checkKvValue(key, value, 8 + 40, what);
  const status = STATUSES[value[5]!];
  if (status === undefined) throw corrupt(`${what}: status ${value[5]}`);
  const { region, end: regionEnd } = readRegion(value, 8, what);
  const { confState, end: confEnd } = readConf(value, regionEnd, what);
  const { merging, end } = readMerge(value, confEnd, what);
  if (end !== value.byteLength) throw corrupt(`${what}: trailing bytes`);
  return withMerge({ region, confState, status }, merging);
}

export function encodeApplyState(regionId: number, appliedIndex: number, appliedTerm: number): { key: Buffer; value: Buffer } {
  const key = kvMetaKey(KV_TAG_APPLY_STATE, regionId);
  const value = Buffer.alloc(24);
  header(value);
  writeU64(value, 8, appliedIndex);
  writeU64(value, 16, appliedTerm);
  sealValue(key, value);
  return { key, value };
}

export function decodeApplyState(key: Uint8Array, value: Uint8Array): { appliedIndex: number; appliedTerm: number } {
  checkKvValue(key, value, 24, `apply state of region ${readU64(key, 1)}`);
  return { appliedIndex: readU64(value, 8), appliedTerm: readU64(value, 16) };
}

/** A region's applied index and term, as the apply journal and the apply-state records keep them. */
export interface AppliedState {
  readonly regionId: number;
  readonly appliedIndex: number;
  readonly appliedTerm: number;
}

const JOURNAL_STATE_BYTES = 24;

export function encodeApplyJournal(seq: number, states: readonly AppliedState[]): { key: Buffer; value: Buffer } {
  const key = kvMetaKey(KV_TAG_APPLY_JOURNAL, seq);
  const value = Buffer.alloc(16 + JOURNAL_STATE_BYTES * states.length);
  header(value);
  writeU32(value, 8, states.length);
  let at = 16;
  for (const s of states) {
    writeU64(value, at, s.regionId);
    writeU64(value, at + 8, s.appliedIndex);
    writeU64(value, at + 16, s.appliedTerm);
    at += JOURNAL_STATE_BYTES;
  }
  sealValue(key, value);
  return { key, value };
}

export function decodeApplyJournal(key: Uint8Array, value: Uint8Array): AppliedState[] {
  const what = `apply journal record ${readU64(key, 1)}`;
  checkKvValue(key, value, 16, what);
  const count = readU32(value, 8);
  if (value.byteLength !== 16 + JOURNAL_STATE_BYTES * count) throw corrupt(`${what}: ${value.byteLength} bytes for ${count} states`);
  const states: AppliedState[] = [];
  for (let at = 16; at < value.byteLength; at += JOURNAL_STATE_BYTES) {
    states.push({ regionId: readU64(value, at), appliedIndex: readU64(value, at + 8), appliedTerm: readU64(value, at + 16) });
  }
  return states;
}

export interface SnapshotMarker {
  readonly index: number;
  readonly term: number;
  readonly file: string;
}

export function encodeSnapshotMarker(regionId: number, m: SnapshotMarker): { key: Buffer; value: Buffer } {
  const key = kvMetaKey(KV_TAG_SNAPSHOT_MARKER, regionId);
  const name = Buffer.from(m.file, 'utf8');
  const value = Buffer.alloc(28 + name.byteLength);
  header(value);
  writeU64(value, 8, m.index);
  writeU64(value, 16, m.term);
  writeU32(value, 24, name.byteLength);
  value.set(name, 28);
  sealValue(key, value);
  return { key, value };
}

export function decodeSnapshotMarker(key: Uint8Array, value: Uint8Array): SnapshotMarker {
  checkKvValue(key, value, 28, `snapshot marker of region ${readU64(key, 1)}`);
  const n = readU32(value, 24);
  if (28 + n !== value.byteLength) throw corrupt(`snapshot marker of region ${readU64(key, 1)}: bad length`);
  return { index: readU64(value, 8), term: readU64(value, 16), file: Buffer.from(value.subarray(28)).toString('utf8') };
}

export function encodeKvFormatRecord(): { key: Buffer; value: Buffer } {
  const key = kvMetaKey(KV_TAG_FORMAT, 0);
  const value = Buffer.alloc(8);
  header(value);
  sealValue(key, value);
  return { key, value };
}

export function encodeSyncMarker(counter: number): { key: Buffer; value: Buffer } {
  const key = kvMetaKey(KV_TAG_SYNC, 0);
  const value = Buffer.alloc(16);
  header(value);
  writeU64(value, 8, counter);
  sealValue(key, value);
  return { key, value };
}

// ---- snapshot frames ----------------------------------------------------------------------------

export const FRAME_HEADER = 1;
export const FRAME_DATA = 2;
export const FRAME_TRAILER = 3;
export const FRAME_PREFIX_BYTES = 16;

function sealFrame(frame: Uint8Array, kind: number, seq: number): Uint8Array {
  writeU32(frame, 0, frame.byteLength);
  frame[8] = SNAPSHOT_FORMAT_VERSION;
  frame[9] = kind;
  frame[10] = 0;
  frame[11] = 0;
  writeU32(frame, 12, seq);
  writeU32(frame, 4, crc32c(frame, 8));
  return frame;
}

export function encodeHeaderFrame(state: RegionState): Uint8Array {
  const frame = new Uint8Array(FRAME_PREFIX_BYTES + 16 + regionBytes(state.region) + confBytes(state.confState) + mergeBytes(state.merging));
  writeU64(frame, 16, state.appliedIndex);
  writeU64(frame, 24, state.appliedTerm);
  const end = writeMerge(frame, writeConf(frame, writeRegion(frame, 32, state.region), state.confState), state.merging);
  assert(end === frame.byteLength, 'header frame filled');
  return sealFrame(frame, FRAME_HEADER, 0);
}

export function encodeDataFrame(seq: number, pairs: readonly { key: Uint8Array; value: Uint8Array }[], bytes: number): Uint8Array {
  const frame = new Uint8Array(FRAME_PREFIX_BYTES + 4 + 8 * pairs.length + bytes);
  writeU32(frame, 16, pairs.length);
  let p = 20;
  for (const { key, value } of pairs) {
    writeU32(frame, p, key.byteLength);
    frame.set(key, p + 4);
    p += 4 + key.byteLength;
    writeU32(frame, p, value.byteLength);
    frame.set(value, p + 4);
    p += 4 + value.byteLength;
  }
  return sealFrame(frame, FRAME_DATA, seq);
}

export function encodeTrailerFrame(seq: number, pairs: number, bytes: number, dataFrames: number): Uint8Array {
  const frame = new Uint8Array(FRAME_PREFIX_BYTES + 20);
  writeU64(frame, 16, pairs);
  writeU64(frame, 24, bytes);
  writeU32(frame, 32, dataFrames);
  return sealFrame(frame, FRAME_TRAILER, seq);
}

function invalid(what: string): StorageError {
  return new StorageError('FLOTILLA_STORAGE_SNAPSHOT_INVALID', `region snapshot: ${what}`);
}

export type DecodedFrame =
  | { readonly kind: 'header'; readonly state: RegionState }
  | { readonly kind: 'data'; readonly pairs: { key: Uint8Array; value: Uint8Array }[]; readonly bytes: number }
  | { readonly kind: 'trailer'; readonly pairs: number; readonly bytes: number; readonly dataFrames: number };

/** Verifies one frame (size bound, checksum, version, expected sequence) and decodes it. */
export function decodeFrame(frame: Uint8Array, expectSeq: number): DecodedFrame {
  if (frame.byteLength < FRAME_PREFIX_BYTES || frame.byteLength > snapshotFrameBytesMax) throw invalid(`frame of ${frame.byteLength} bytes`);
  if (readU32(frame, 0) !== frame.byteLength) throw invalid('frame length mismatch');
  if (readU32(frame, 4) !== crc32c(frame, 8)) throw invalid(`frame ${expectSeq}: checksum mismatch`);
  if (frame[8] !== SNAPSHOT_FORMAT_VERSION) {
    throw new StorageError('FLOTILLA_STORAGE_FORMAT_VERSION', `region snapshot: format version ${frame[8]}, this build reads ${SNAPSHOT_FORMAT_VERSION}`);
  }
  const seq = readU32(frame, 12);
  if (seq !== expectSeq) throw invalid(`frame ${seq} where ${expectSeq} was expected`);
  const kind = frame[9];
  try {
    if (kind === FRAME_HEADER) {
      const { region, end: regionEnd } = readRegion(frame, 32, 'snapshot header');
      const { confState, end: confEnd } = readConf(frame, regionEnd, 'snapshot header');
      const { merging, end } = readMerge(frame, confEnd, 'snapshot header');
      if (end !== frame.byteLength) throw invalid('header trailing bytes');
      const state: RegionState = { region, confState, appliedIndex: readU64(frame, 16), appliedTerm: readU64(frame, 24), status: 'normal' };
      return { kind: 'header', state: withMerge(state, merging) };
    }
    if (kind === FRAME_DATA) {
      const count = readU32(frame, 16);
      if (count > snapshotChunkPairsMax) throw invalid(`data frame of ${count} pairs > snapshotChunkPairsMax`);
      const pairs: { key: Uint8Array; value: Uint8Array }[] = [];
      let p = 20;
      let bytes = 0;
      for (let i = 0; i < count; i++) {
        if (p + 4 > frame.byteLength) throw invalid('data frame truncated');
        const kl = readU32(frame, p);
        if (p + 4 + kl + 4 > frame.byteLength) throw invalid('data frame truncated');
        const key = frame.subarray(p + 4, p + 4 + kl);
        p += 4 + kl;
        const vl = readU32(frame, p);
        if (p + 4 + vl > frame.byteLength) throw invalid('data frame truncated');
        const value = frame.subarray(p + 4, p + 4 + vl);
        p += 4 + vl;
        bytes += kl + vl;
        pairs.push({ key, value });
      }
      if (p !== frame.byteLength) throw invalid('data frame trailing bytes');
      return { kind: 'data', pairs, bytes };
    }
    if (kind === FRAME_TRAILER) {
      if (frame.byteLength !== FRAME_PREFIX_BYTES + 20) throw invalid('trailer size');
      return { kind: 'trailer', pairs: readU64(frame, 16), bytes: readU64(frame, 24), dataFrames: readU32(frame, 32) };
    }
  } catch (err) {
    if (err instanceof StorageError && err.code === 'FLOTILLA_STORAGE_CORRUPTION') throw invalid(err.message);
    throw err;
  }
  throw invalid(`unknown frame kind ${kind}`);
}

/**
 * Consumes a whole frame stream, verifying order, counts and totals; calls `onHeader` once and
 * `onData` per data frame. Returns the snapshot's state.
 */
export async function readFrames(
  frames: AsyncIterable<Uint8Array>,
  onHeader: (state: RegionState) => Promise<void> | void,
  onData: (frame: Uint8Array, pairs: { key: Uint8Array; value: Uint8Array }[]) => Promise<void> | void,
): Promise<RegionState> {
  let seq = 0;
  let state: RegionState | null = null;
  let pairs = 0;
  let bytes = 0;
  let dataFrames = 0;
  let done = false;
  for await (const frame of frames) {
    if (done) throw invalid('frames after the trailer');
    const f = decodeFrame(frame, seq);
    if (seq === 0) {
      if (f.kind !== 'header') throw invalid('first frame is not a header');
      state = f.state;
      await onHeader(f.state);
    } else if (f.kind === 'data') {
      pairs += f.pairs.length;
      bytes += f.bytes;
      dataFrames++;
      await onData(frame, f.pairs);
    } else if (f.kind === 'trailer') {
      if (f.pairs !== pairs || f.bytes !== bytes || f.dataFrames !== dataFrames) throw invalid(`trailer counts ${f.pairs}/${f.bytes}/${f.dataFrames}, received ${pairs}/${bytes}/${dataFrames}`);
      done = true;
    } else {
      throw invalid('a second header');
    }
    seq++;
  }
  if (!done || state === null) throw invalid('stream ended before the trailer');
  return state;
}
