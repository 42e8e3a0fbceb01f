/**
 * Reading region snapshot frames, as a store's backup endpoint sends them and a backup file
 * keeps them: frames back to back, each starting with its own u32 length. Every frame is
 * verified by the storage package's own decoder (length bound, crc32c, format version,
 * sequence; `@flotilla/storage/snapshot-frames`, which loads no RocksDB) before anything of
 * it is used; this module cuts the stream into frames and checks a snapshot is whole.
 */
import { SNAPSHOT_FORMAT_VERSION, decodeFrame as decodeStorageFrame, isStorageError, snapshotChunkPairsMax, snapshotFrameBytesMax } from '@flotilla/storage/snapshot-frames';

/** The snapshot format this CLI reads (the storage package's). */
export { SNAPSHOT_FORMAT_VERSION };

export const frameLimits = Object.freeze({
  /** One frame, as storage bounds it. */
  frameBytesMax: snapshotFrameBytesMax,
  /** Pairs in one data frame. */
  pairsPerFrameMax: snapshotChunkPairsMax,
});

const PREFIX_BYTES = 16;

/** A frame stream that is not a whole, intact region snapshot. */
export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FrameError';
  }
}

/** What a snapshot's header frame says about the region. */
export interface SnapshotHeader {
  readonly regionId: number;
  readonly startKey: Uint8Array;
  readonly endKey: Uint8Array;
  readonly epoch: { readonly version: number; readonly confVer: number };
  readonly appliedIndex: number;
  readonly appliedTerm: number;
}

export interface SnapshotTotals {
  readonly pairs: number;
  /** Key and value bytes of every pair. */
  readonly bytes: number;
  readonly dataFrames: number;
}

export interface Pair {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

export type SnapshotFrame =
  | { readonly kind: 'header'; readonly header: SnapshotHeader }
  | { readonly kind: 'data'; readonly pairs: readonly Pair[] }
  | { readonly kind: 'trailer'; readonly totals: SnapshotTotals };

/**
 * Checks one snapshot's frames in order: a header first, data frames, a trailer whose counts
 * match what came, nothing after it. `finish()` says whether the snapshot was whole.
 */
export class SnapshotReader {
  private seq = 0;
  private pairs = 0;
  private bytes = 0;
  private dataFrames = 0;
  private headerSeen: SnapshotHeader | null = null;
  private totals: SnapshotTotals | null = null;

  accept(frame: Uint8Array): SnapshotFrame {
    const seq = this.seq;
    if (this.totals !== null) throw new FrameError(`frame ${seq} follows the trailer`);
    const decoded = decodeFrame(frame, seq);
    this.seq++;
    if (seq === 0) {
      if (decoded.kind !== 'header') throw new FrameError('the first frame is not a header');
      this.headerSeen = decoded.header;
    } else if (decoded.kind === 'data') {
      this.pairs += decoded.pairs.length;
      for (const p of decoded.pairs) this.bytes += p.key.byteLength + p.value.byteLength;
      this.dataFrames++;
    } else if (decoded.kind === 'trailer') {
      const t = decoded.totals;
      if (t.pairs !== this.pairs || t.bytes !== this.bytes || t.dataFrames !== this.dataFrames) {
        throw new FrameError(`the trailer counts ${t.pairs} pairs, ${t.bytes} bytes, ${t.dataFrames} data frames; the frames hold ${this.pairs}, ${this.bytes}, ${this.dataFrames}`);
      }
      this.totals = t;
    } else {
      throw new FrameError(`frame ${seq} is a second header`);
    }
    return decoded;
  }

  /** The header, once seen. */
  get header(): SnapshotHeader | null {
    return this.headerSeen;
  }

  /** The snapshot's header and totals; a FrameError when it ended before its trailer. */
  finish(): { header: SnapshotHeader; totals: SnapshotTotals } {
    if (this.headerSeen === null || this.totals === null) throw new FrameError(`the snapshot ends after ${this.seq} frames, before its trailer (cut short)`);
    return { header: this.headerSeen, totals: this.totals };
  }
}

/** Verifies one frame (bound, checksum, version, sequence) and decodes it; a damaged one is a FrameError. */
export function decodeFrame(frame: Uint8Array, expectSeq: number): SnapshotFrame {
  let decoded;
  try {
    decoded = decodeStorageFrame(frame, expectSeq);
  } catch (err) {
    // Storage says "region snapshot: frame N: what"; the file name before it says the rest.
    if (isStorageError(err)) throw new FrameError(err.message.replace(/^region snapshot: /, ''));
    throw err;
  }
  switch (decoded.kind) {
    case 'header': {
      const { region, appliedIndex, appliedTerm } = decoded.state;
      return { kind: 'header', header: { regionId: region.id, startKey: region.startKey, endKey: region.endKey, epoch: region.epoch, appliedIndex, appliedTerm } };
    }
    case 'data':
      return { kind: 'data', pairs: decoded.pairs };
    case 'trailer':
      return { kind: 'trailer', totals: { pairs: decoded.pairs, bytes: decoded.bytes, dataFrames: decoded.dataFrames } };
  }
}

/**
 * Cuts a byte stream into frames by their length prefix, holding at most one frame (plus one
 * chunk) at a time. A length past the bound, or bytes left after the last frame, is a FrameError.
 */
export async function* splitFrames(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  let parts: Buffer[] = [];
  let held = 0;
  for await (const chunk of chunks) {
    parts.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    held += chunk.byteLength;
    for (;;) {
      if (held < 4) break;
      if (parts[0]!.byteLength < 4) parts = [Buffer.concat(parts, held)];
      const length = parts[0]!.readUInt32BE(0);
      if (length < PREFIX_BYTES || length > frameLimits.frameBytesMax) throw new FrameError(`a frame of ${length} bytes (at most ${frameLimits.frameBytesMax}): not a snapshot stream`);
      if (held < length) break;
      const all = parts.length === 1 ? parts[0]! : Buffer.concat(parts, held);
      // A copy: the frame outlives the chunk it came in (its pairs are kept until written).
      yield new Uint8Array(all.subarray(0, length));
      parts = held === length ? [] : [all.subarray(length)];
      held -= length;
    }
  }
  if (held > 0) throw new FrameError(`the stream ends inside a frame (${held} bytes left over)`);
}
