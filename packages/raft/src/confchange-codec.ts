import { RaftError } from './errors.ts';
import type { ConfChange, ConfChangeSingle, ConfChangeTransition, ConfChangeType } from './types.ts';

/**
 * Configuration changes travel inside log entries, so the core must be able to read them back.
 * Format (version 1, little endian): u8 version, u8 transition, u16 change count,
 * count x (u8 type, f64 node id — ids up to 2^53), u32 context length, context.
 */
const FORMAT_VERSION = 1;
const TRANSITIONS: readonly ConfChangeTransition[] = ['auto', 'implicit', 'explicit'];
const TYPES: readonly ConfChangeType[] = ['addNode', 'removeNode', 'addLearnerNode'];
/** A configuration change touches a handful of members; anything larger is malformed. */
export const CONF_CHANGE_CHANGES_MAX = 64;
const CHANGE_BYTES = 1 + 8;

export function encodeConfChange(cc: ConfChange): Uint8Array {
  if (cc.changes.length > CONF_CHANGE_CHANGES_MAX) {
    throw new RaftError('FLOTILLA_RAFT_CONF_CHANGE_REJECTED', `a conf change carries at most ${CONF_CHANGE_CHANGES_MAX} changes`);
  }
  const bytes = new Uint8Array(4 + cc.changes.length * CHANGE_BYTES + 4 + cc.context.byteLength);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, FORMAT_VERSION);
  view.setUint8(1, TRANSITIONS.indexOf(cc.transition));
  view.setUint16(2, cc.changes.length, true);
  let at = 4;
  for (const change of cc.changes) {
    view.setUint8(at, TYPES.indexOf(change.type));
    view.setFloat64(at + 1, change.nodeId, true);
    at += CHANGE_BYTES;
  }
  view.setUint32(at, cc.context.byteLength, true);
  bytes.set(cc.context, at + 4);
  return bytes;
}

function malformed(why: string): never {
  throw new RaftError('FLOTILLA_RAFT_CONF_CHANGE_REJECTED', `malformed conf change entry: ${why}`);
}

export function decodeConfChange(bytes: Uint8Array): ConfChange {
  if (bytes.byteLength < 8) malformed('too short');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint8(0) !== FORMAT_VERSION) malformed(`unknown format version ${view.getUint8(0)}`);
  const transition = TRANSITIONS[view.getUint8(1)] ?? malformed('unknown transition');
  const count = view.getUint16(2, true);
  if (count > CONF_CHANGE_CHANGES_MAX) malformed(`${count} changes`);
  if (bytes.byteLength < 4 + count * CHANGE_BYTES + 4) malformed('truncated changes');
  const changes: ConfChangeSingle[] = [];
  let at = 4;
  for (let i = 0; i < count; i++) {
    const type = TYPES[view.getUint8(at)] ?? malformed('unknown change type');
    const nodeId = view.getFloat64(at + 1, true);
    if (!Number.isSafeInteger(nodeId) || nodeId < 0) malformed(`bad node id ${nodeId}`);
    changes.push({ type, nodeId });
    at += CHANGE_BYTES;
  }
  const contextLength = view.getUint32(at, true);
  if (bytes.byteLength !== at + 4 + contextLength) malformed('context length mismatch');
  return { transition, changes, context: bytes.slice(at + 4) };
}
