/**
 * A store's data disk as it tells its peers (types.ts, DiskState), on the raft stream:
 *
 *   DiskState = [fromStore, toStore, refusesReplication, availableBytes, reserveBytes]
 */
import { argId, argUint, readBool, readId, readTuple, readUint } from './check.ts';
import type { DiskState } from './types.ts';

export function diskStateTuple(state: DiskState): unknown[] {
  return [argId(state.fromStore, 'fromStore'), argId(state.toStore, 'toStore'), state.refusesReplication === true, argUint(state.availableBytes, 'availableBytes'), argUint(state.reserveBytes, 'reserveBytes')];
}

export function readDiskState(value: unknown): DiskState {
  const t = readTuple(value, 5, 'DiskState');
  return {
    fromStore: readId(t[0], 'fromStore'),
    toStore: readId(t[1], 'toStore'),
    refusesReplication: readBool(t[2], 'refusesReplication'),
    availableBytes: readUint(t[3], 'availableBytes'),
    reserveBytes: readUint(t[4], 'reserveBytes'),
  };
}
