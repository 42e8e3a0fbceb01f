/** @flotilla/storage — the public API. Internals stay internal. */
export { StorageError, isStorageError } from './errors.ts';
export type { StorageErrorCode } from './errors.ts';
import * as limits from './constants.ts';
/** Every bound of the package (constants.ts), read-only. */
export { limits };
export { crc32c, crc32cUpdate } from './crc32c.ts';
export type {
  GroupLog,
  GroupWrite,
  LogEngine,
  LogEngineHooks,
  LogEngineStats,
  LogWriteOptions,
  LogRecoveryReport,
} from './log-types.ts';
export { RocksLogEngine, openLogEngine } from './log-engine.ts';
export type { RocksLogEngineOptions } from './log-engine.ts';
export type { LogManifest, ShardPlacement } from './log-manifest.ts';
export type { AppenderMode } from './shard-client.ts';
export { MemoryLogEngine, MemoryLogDisk } from './memory-log-engine.ts';
export type {
  ApplyResult,
  CommandError,
  CommandResult,
  KvCommand,
  KvEngine,
  KvPair,
  MergeState,
  PeerRole,
  RegionApply,
  RegionEpoch,
  RegionMeta,
  RegionPeer,
  RegionSnapshotSource,
  RegionState,
  RegionStatus,
  ScanOptions,
  ScanResult,
  SnapshotAdmission,
} from './kv-types.ts';
export { RocksKvEngine, openKvEngine } from './kv-engine.ts';
export type { KvRecoveryReport, RocksKvEngineOptions } from './kv-engine.ts';
export { MemoryKvEngine, MemoryKvDisk } from './memory-kv-engine.ts';
