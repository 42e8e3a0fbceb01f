/** @flotilla/raft — the public API of the pure Raft core. Internals stay internal. */
export { RawNode } from './raw-node.ts';
export type { RaftStatus, ProgressStatus, ProposalPosition, SnapshotOutcome } from './raw-node.ts';
export { LIMITS, resolveConfig } from './config.ts';
export type { RaftConfig, RandomSource, ReadOnlyOption, InjectedFaults } from './config.ts';
export { LeaseClock, maxTickGapMs } from './lease-clock.ts';
export type { LeaseTiming } from './lease-clock.ts';
export { RaftError, isRaftError } from './errors.ts';
export type { RaftErrorCode } from './errors.ts';
export type { RaftStorage } from './storage.ts';
export { MemoryStorage } from './memory-storage.ts';
export { encodeConfChange, decodeConfChange, CONF_CHANGE_CHANGES_MAX } from './confchange-codec.ts';
export { BOOTSTRAP_INDEX, BOOTSTRAP_TERM, BOOTSTRAP_HARD_STATE, bootstrapSnapshot } from './bootstrap.ts';
export { confStatesEqual } from './tracker.ts';
export { entryBytes, entriesBytes, ENTRY_OVERHEAD_BYTES, bytesEqual } from './util.ts';
export { SeededRandom } from './random.ts';
export {
  EMPTY_BYTES,
  EMPTY_CONF_STATE,
  EMPTY_HARD_STATE,
  NO_NODE,
  message,
  sendableBeforePersist,
} from './types.ts';
export type {
  ConfChange,
  ConfChangeSingle,
  ConfChangeTransition,
  ConfChangeType,
  ConfState,
  Entry,
  EntryType,
  HardState,
  Message,
  MessageType,
  NodeId,
  Ready,
  ReadState,
  Snapshot,
  SnapshotMetadata,
  SoftState,
  StateRole,
} from './types.ts';
