import type { KvCommand, PeerRole, RegionEpoch, RegionMeta } from '@flotilla/storage';
import { Packr } from 'msgpackr';
import { StoreError } from './errors.ts';

/**
 * What a normal raft entry of a region carries: the write commands of one proposal. Format
 * (version 1): msgpack tuple [1, [[opcode, ...args], ...]] — stateless (no shared structures),
 * so any replica decodes any entry. Reads never enter the log (ReadIndex); admin commands
 * (split, membership) get their own opcodes in a later version.
 */
const FORMAT_VERSION = 1;
const packr = new Packr({ useRecords: false, moreTypes: false });

const enum Op {
  Put = 1,
  Delete = 2,
  Cas = 3,
  DeleteRange = 4,
  Split = 5,
  PrepareMerge = 6,
  CommitMerge = 7,
  RollbackMerge = 8,
  FenceMerges = 9,
}

/**
 * Admin: split the region at `splitKey`. The new region takes [splitKey, end) with the new
 * peer ids (one per current member, in the region's peer order). `epoch` is the region's
 * epoch when proposed: a region that changed meanwhile refuses the split at every replica.
 */
export interface SplitCommand {
  readonly op: 'split';
  readonly splitKey: Uint8Array;
  readonly newRegionId: number;
  readonly newPeerIds: readonly number[];
  readonly epoch: RegionEpoch;
}

/**
 * Admin, in the SOURCE region of a merge: freeze it (no write, split, membership change or
 * read from this entry on) to be absorbed by its neighbour `targetRegionId`, whose epoch was
 * `targetEpoch` when proposed. `epoch` is the source's own epoch when proposed.
 */
export interface PrepareMergeCommand {
  readonly op: 'prepareMerge';
  readonly targetRegionId: number;
  readonly targetEpoch: RegionEpoch;
  readonly epoch: RegionEpoch;
}

/**
 * Admin, in the TARGET region of a merge: take the frozen `source` (its metadata after its
 * prepare entry at `prepareIndex`/`prepareTerm`). Applies only while the target's epoch is
 * still `targetEpoch`; each replica first waits until its source replica applied the prepare.
 */
export interface CommitMergeCommand {
  readonly op: 'commitMerge';
  readonly source: RegionMeta;
  readonly prepareIndex: number;
  readonly prepareTerm: number;
  readonly targetEpoch: RegionEpoch;
}

/** Admin, in the source: the target can no longer take it (its epoch moved on); unfreeze. */
export interface RollbackMergeCommand {
  readonly op: 'rollbackMerge';
  readonly epoch: RegionEpoch;
}

/**
 * Admin, in a merge's TARGET: move its version on, so that no CommitMerge prepared against the
 * current epoch can apply any more — the way out of a merge whose commit can't be made (a
 * source replica is down without the prepare entry): its source may then roll back.
 */
export interface FenceMergesCommand {
  readonly op: 'fenceMerges';
  readonly epoch: RegionEpoch;
}

export type MergeCommand = PrepareMergeCommand | CommitMergeCommand | RollbackMergeCommand | FenceMergesCommand;

/** What one entry of a region's log carries. */
export type EntryCommand = Exclude<KvCommand, { op: 'putRegion' | 'tombstoneRegion' | 'noop' }> | SplitCommand | MergeCommand;

/** A plain data write: a KV command as it is, merged with the turn's others into one entry (peer.ts). */
export type DataCommand = Extract<EntryCommand, { readonly op: 'put' | 'delete' | 'cas' | 'deleteRange' }>;

export function isDataCommand(c: EntryCommand): c is DataCommand {
  return c.op === 'put' || c.op === 'delete' || c.op === 'cas' || c.op === 'deleteRange';
}

type Tuple = readonly unknown[];

/** Bytes of msgpack framing an entry adds around its commands, at most. */
export const ENTRY_FRAMING_BYTES_MAX = 16;
/** Bytes of msgpack framing one command adds around its keys and values, at most. */
const COMMAND_FRAMING_BYTES_MAX = 48;

/** An upper bound of the bytes `command` takes in an encoded entry (so a proposer can split). */
export function commandBytesBound(command: EntryCommand): number {
  switch (command.op) {
    case 'put':
      return COMMAND_FRAMING_BYTES_MAX + command.key.byteLength + command.value.byteLength;
    case 'delete':
      return COMMAND_FRAMING_BYTES_MAX + command.key.byteLength;
    case 'cas':
      return COMMAND_FRAMING_BYTES_MAX + command.key.byteLength + (command.expected?.byteLength ?? 0) + (command.value?.byteLength ?? 0);
    case 'deleteRange':
      return COMMAND_FRAMING_BYTES_MAX + command.start.byteLength + command.end.byteLength;
    case 'split':
      return COMMAND_FRAMING_BYTES_MAX + command.splitKey.byteLength + 16 * command.newPeerIds.length + 32;
    case 'prepareMerge':
    case 'rollbackMerge':
    case 'fenceMerges':
      return COMMAND_FRAMING_BYTES_MAX + 48;
    case 'commitMerge':
      return COMMAND_FRAMING_BYTES_MAX + 96 + command.source.startKey.byteLength + command.source.endKey.byteLength + 32 * command.source.peers.length;
  }
}

export function encodeCommands(commands: readonly EntryCommand[]): Uint8Array {
  const tuples: Tuple[] = commands.map((c): Tuple => {
    switch (c.op) {
      case 'put':
        return [Op.Put, c.key, c.value];
      case 'delete':
        return [Op.Delete, c.key];
      case 'cas':
        return [Op.Cas, c.key, c.expected, c.value];
      case 'deleteRange':
        return [Op.DeleteRange, c.start, c.end];
      case 'split':
        return [Op.Split, c.splitKey, c.newRegionId, c.newPeerIds, c.epoch.version, c.epoch.confVer];
      case 'prepareMerge':
        return [Op.PrepareMerge, c.targetRegionId, c.targetEpoch.version, c.targetEpoch.confVer, c.epoch.version, c.epoch.confVer];
      case 'commitMerge':
        return [Op.CommitMerge, regionTuple(c.source), c.prepareIndex, c.prepareTerm, c.targetEpoch.version, c.targetEpoch.confVer];
      case 'rollbackMerge':
        return [Op.RollbackMerge, c.epoch.version, c.epoch.confVer];
      case 'fenceMerges':
        return [Op.FenceMerges, c.epoch.version, c.epoch.confVer];
    }
  });
  // pack() returns a view of a shared buffer: copy before it is kept in the log.
  return Uint8Array.from(packr.pack([FORMAT_VERSION, tuples]));
}

function malformed(why: string): never {
  throw new StoreError('FLOTILLA_STORE_CORRUPT_ENTRY', `malformed command entry: ${why}`);
}

function bytes(v: unknown): Uint8Array {
  if (!(v instanceof Uint8Array)) malformed('expected bytes');
  return v;
}

/**
 * A copy, for bytes that outlive the apply: region boundaries. Decoded bins are views into the
 * entry's payload, which may share its buffer with other entries (the log cache's read slabs).
 */
function ownedBytes(v: unknown): Uint8Array {
  return new Uint8Array(bytes(v));
}

function bytesOrNull(v: unknown): Uint8Array | null {
  return v === null || v === undefined ? null : bytes(v);
}

function id(v: unknown): number {
  if (!Number.isSafeInteger(v) || (v as number) < 0) malformed('expected an id');
  return v as number;
}

const ROLES: readonly PeerRole[] = ['voter', 'learner'];

function regionTuple(r: RegionMeta): Tuple {
  return [r.id, r.startKey, r.endKey, r.epoch.version, r.epoch.confVer, r.peers.map((p) => [p.id, p.storeId, ROLES.indexOf(p.role)])];
}

function regionOf(v: unknown): RegionMeta {
  if (!Array.isArray(v) || !Array.isArray(v[5])) malformed('region');
  const peers = (v[5] as unknown[]).map((p) => {
    if (!Array.isArray(p)) malformed('region peer');
    const role = ROLES[p[2] as number];
    if (role === undefined) malformed('peer role');
    return { id: id(p[0]), storeId: id(p[1]), role };
  });
  return { id: id(v[0]), startKey: ownedBytes(v[1]), endKey: ownedBytes(v[2]), epoch: { version: id(v[3]), confVer: id(v[4]) }, peers };
}

export function decodeCommands(data: Uint8Array): EntryCommand[] {
  const decoded: unknown = packr.unpack(data);
  if (!Array.isArray(decoded) || decoded[0] !== FORMAT_VERSION || !Array.isArray(decoded[1])) malformed('bad envelope');
  return (decoded[1] as unknown[]).map((t): EntryCommand => {
    if (!Array.isArray(t)) malformed('command is not a tuple');
    switch (t[0]) {
      case Op.Put:
        return { op: 'put', key: bytes(t[1]), value: bytes(t[2]) };
      case Op.Delete:
        return { op: 'delete', key: bytes(t[1]) };
      case Op.Cas:
        return { op: 'cas', key: bytes(t[1]), expected: bytesOrNull(t[2]), value: bytesOrNull(t[3]) };
      case Op.DeleteRange:
        return { op: 'deleteRange', start: bytes(t[1]), end: bytes(t[2]) };
      case Op.Split: {
        if (!Array.isArray(t[3])) malformed('split peers');
        return { op: 'split', splitKey: ownedBytes(t[1]), newRegionId: id(t[2]), newPeerIds: (t[3] as unknown[]).map(id), epoch: { version: id(t[4]), confVer: id(t[5]) } };
      }
      case Op.PrepareMerge:
        return { op: 'prepareMerge', targetRegionId: id(t[1]), targetEpoch: { version: id(t[2]), confVer: id(t[3]) }, epoch: { version: id(t[4]), confVer: id(t[5]) } };
      case Op.CommitMerge:
        return { op: 'commitMerge', source: regionOf(t[1]), prepareIndex: id(t[2]), prepareTerm: id(t[3]), targetEpoch: { version: id(t[4]), confVer: id(t[5]) } };
      case Op.RollbackMerge:
        return { op: 'rollbackMerge', epoch: { version: id(t[1]), confVer: id(t[2]) } };
      case Op.FenceMerges:
        return { op: 'fenceMerges', epoch: { version: id(t[1]), confVer: id(t[2]) } };
      default:
        return malformed(`unknown opcode ${String(t[0])}`);
    }
  });
}
