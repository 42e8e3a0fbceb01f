/**
 * Reading a region file of a backup folder back: its frames verified one by one, then the
 * whole file against its manifest entry (region, applied index, counts, size, sha256).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { hexOfBytes } from '../encoding.ts';
import { SnapshotReader, splitFrames, type Pair, type SnapshotHeader } from './frames.ts';
import type { ManifestRegion } from './manifest.ts';

/** A region file that is not what its manifest entry says (the message names what differs). */
export class RegionFileError extends Error {
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = 'RegionFileError';
  }
}

export const regionFileLimits = Object.freeze({
  /** Bytes read from a file at a time. */
  readChunkBytes: 1024 * 1024,
  /** Pairs held at once while a file is only checked. */
  checkBatchPairs: 4_096,
});

/**
 * The pairs of a region file in batches of at most `pairsMax` pairs and `bytesMax` bytes (one
 * larger pair alone), every frame verified before its pairs are given out; the file as a
 * whole is checked against `entry` at its end. Any problem is a RegionFileError.
 */
export async function* regionBatches(dir: string, entry: ManifestRegion, pairsMax: number, bytesMax: number): AsyncGenerator<Pair[]> {
  const reader = new SnapshotReader();
  const hash = createHash('sha256');
  let fileBytes = 0;
  let batch: Pair[] = [];
  let batchBytes = 0;
  try {
    const input = createReadStream(path.join(dir, entry.file), { highWaterMark: regionFileLimits.readChunkBytes });
    for await (const frame of splitFrames(input)) {
      const decoded = reader.accept(frame);
      hash.update(frame);
      fileBytes += frame.byteLength;
      if (decoded.kind === 'header') checkHeader(entry, decoded.header);
      if (decoded.kind !== 'data') continue;
      for (const pair of decoded.pairs) {
        const size = pair.key.byteLength + pair.value.byteLength;
        if (batch.length > 0 && (batch.length >= pairsMax || batchBytes + size > bytesMax)) {
          yield batch;
          batch = [];
          batchBytes = 0;
        }
        batch.push(pair);
        batchBytes += size;
      }
    }
    const { totals } = reader.finish();
    if (totals.pairs !== entry.pairs || totals.bytes !== entry.bytes) throw new Error(`holds ${totals.pairs} pairs (${totals.bytes} bytes); the manifest says ${entry.pairs} (${entry.bytes})`);
    if (fileBytes !== entry.fileBytes) throw new Error(`is ${fileBytes} bytes; the manifest says ${entry.fileBytes}`);
    if (hash.digest('hex') !== entry.sha256) throw new Error('its sha256 differs from the manifest (the file changed after the backup)');
  } catch (err) {
    if (err instanceof RegionFileError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new RegionFileError(entry.file, code === 'ENOENT' ? 'missing' : code !== undefined ? `cannot be read (${code})` : (err as Error).message);
  }
  if (batch.length > 0) yield batch;
}

/** Reads a region file to its end, checking everything; its pairs are dropped. */
export async function checkRegionFile(dir: string, entry: ManifestRegion): Promise<void> {
  for await (const batch of regionBatches(dir, entry, regionFileLimits.checkBatchPairs, regionFileLimits.readChunkBytes)) void batch;
}

function checkHeader(entry: ManifestRegion, header: SnapshotHeader): void {
  const said = `region ${entry.id} at applied index ${entry.appliedIndex}`;
  const holds = `region ${header.regionId} at applied index ${header.appliedIndex}`;
  if (header.regionId !== entry.id || header.appliedIndex !== entry.appliedIndex) throw new RegionFileError(entry.file, `holds ${holds}; the manifest says ${said}`);
  if (hexOfBytes(header.startKey) !== entry.startKey || hexOfBytes(header.endKey) !== entry.endKey) throw new RegionFileError(entry.file, 'its key range differs from the manifest');
}
