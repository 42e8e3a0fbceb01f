import type { KvCommand } from '@flotilla/storage';
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
}

type Tuple = readonly unknown[];

export function encodeCommands(commands: readonly KvCommand[]): Uint8Array {
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
      default:
        throw new StoreError('FLOTILLA_STORE_INTERNAL', `command ${c.op} is not proposed through entries`);
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

function bytesOrNull(v: unknown): Uint8Array | null {
  return v === null || v === undefined ? null : bytes(v);
}

export function decodeCommands(data: Uint8Array): KvCommand[] {
  const decoded: unknown = packr.unpack(data);
  if (!Array.isArray(decoded) || decoded[0] !== FORMAT_VERSION || !Array.isArray(decoded[1])) malformed('bad envelope');
  return (decoded[1] as unknown[]).map((t): KvCommand => {
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
      default:
        return malformed(`unknown opcode ${String(t[0])}`);
    }
  });
}
