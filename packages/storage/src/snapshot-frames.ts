/**
 * The region snapshot stream's frame decoder, for tools outside a store (the CLI's backups):
 * a subpath of its own (`@flotilla/storage/snapshot-frames`) that loads no RocksDB. The format
 * is in kv-format.ts ("Snapshot frame").
 */
export { decodeFrame, type DecodedFrame } from './kv-format.ts';
export { SNAPSHOT_FORMAT_VERSION, snapshotChunkPairsMax, snapshotFrameBytesMax } from './constants.ts';
export { isStorageError } from './errors.ts';
