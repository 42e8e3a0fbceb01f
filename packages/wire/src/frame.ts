/**
 * Framing. A frame is
 *
 *   u32 length ‖ u8 version ‖ u8 kind ‖ u32 crc32c(version ‖ kind ‖ payload) ‖ payload
 *
 * big-endian, `length` = payload bytes. The checksum covers the version and kind bytes too, so a
 * flipped kind cannot turn one valid message into another. The header is checked as soon as its
 * 10 bytes are in — version, kind (accepted on this connection?), length (within the kind's
 * bound?) — so a bad or oversized frame is refused before a byte of its body is buffered.
 */
import {
  FRAME_HEADER_BYTES,
  diskStatePayloadBytesMax,
  heartbeatBatchPayloadBytesMax,
  kvRequestPayloadBytesMax,
  kvResponsePayloadBytesMax,
  raftBatchPayloadBytesMax,
  snapshotAckPayloadBytesMax,
  snapshotChunkPayloadBytesMax,
  WIRE_VERSION,
} from './constants.ts';
import { crc32c, crc32cUpdate } from './crc32c.ts';
import { WireError, assert, isWireError } from './errors.ts';

/** The stable kind byte of each message. */
export const FRAME_KINDS = Object.freeze({
  raftBatch: 1,
  heartbeatBatch: 2,
  heartbeatResponseBatch: 3,
  snapshotChunk: 4,
  snapshotAck: 5,
  diskState: 6,
  kvRequest: 16,
  kvResponse: 17,
} as const);

export type FrameKindName = keyof typeof FRAME_KINDS;
export type FrameKind = (typeof FRAME_KINDS)[FrameKindName];

/** The payload bound of each kind: what a decoder accepts and an encoder may produce. */
export const FRAME_PAYLOAD_BYTES_MAX: Readonly<Record<FrameKindName, number>> = Object.freeze({
  raftBatch: raftBatchPayloadBytesMax,
  heartbeatBatch: heartbeatBatchPayloadBytesMax,
  heartbeatResponseBatch: heartbeatBatchPayloadBytesMax,
  snapshotChunk: snapshotChunkPayloadBytesMax,
  snapshotAck: snapshotAckPayloadBytesMax,
  diskState: diskStatePayloadBytesMax,
  kvRequest: kvRequestPayloadBytesMax,
  kvResponse: kvResponsePayloadBytesMax,
});

const NAME_BY_KIND: readonly (FrameKindName | undefined)[] = (() => {
  const names: (FrameKindName | undefined)[] = new Array<FrameKindName | undefined>(256).fill(undefined);
  for (const [name, kind] of Object.entries(FRAME_KINDS) as [FrameKindName, FrameKind][]) names[kind] = name;
  return names;
})();

export function frameKindName(kind: number): FrameKindName | undefined {
  return NAME_BY_KIND[kind];
}

/** A complete, checksum-verified frame. It owns its payload (no view of anyone's buffer). */
export interface Frame {
  readonly kind: FrameKind;
  readonly payload: Uint8Array;
}

/**
 * Writes the header into the first FRAME_HEADER_BYTES of `frame`, whose payload follows it.
 * The caller has checked the payload against its kind's bound.
 */
export function writeFrameHeader(frame: Uint8Array, kind: FrameKind): void {
  const length = frame.length - FRAME_HEADER_BYTES;
  assert(length >= 0 && length <= 0xffff_ffff, 'frame length fits the u32 prefix');
  writeU32(frame, 0, length);
  frame[4] = WIRE_VERSION;
  frame[5] = kind;
  const crc = crc32cUpdate(crc32c(frame, 4, 6), frame, FRAME_HEADER_BYTES, frame.length);
  writeU32(frame, 6, crc);
}

/** A frame around a payload that was encoded separately (copies it). */
export function frameOf(kind: FrameKind, payload: Uint8Array): Uint8Array {
  const name = frameKindName(kind);
  if (name === undefined) throw new WireError('FLOTILLA_WIRE_INVALID_ARGUMENT', `unknown frame kind ${kind}`);
  if (payload.length > FRAME_PAYLOAD_BYTES_MAX[name]) {
    throw new WireError('FLOTILLA_WIRE_FRAME_TOO_LARGE', `${name} payload of ${payload.length} bytes, at most ${FRAME_PAYLOAD_BYTES_MAX[name]}`);
  }
  const frame = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  frame.set(payload, FRAME_HEADER_BYTES);
  writeFrameHeader(frame, kind);
  return frame;
}

function writeU32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value >>> 24;
  bytes[at + 1] = (value >>> 16) & 0xff;
  bytes[at + 2] = (value >>> 8) & 0xff;
  bytes[at + 3] = value & 0xff;
}

function readU32(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}

export interface FrameDecoderOptions {
  /** Kinds accepted on this connection (default: all). Any other kind is UNKNOWN_KIND. */
  readonly kinds?: readonly FrameKindName[];
  /** A tighter payload bound for this connection; each kind's own bound still applies. */
  readonly payloadBytesMax?: number;
}

/**
 * Turns a byte stream, in chunks of any size, into frames. Work is bounded per byte; memory is
 * bounded by the frame being read (its declared length, checked against the bound before its
 * body is buffered, and only as its bytes actually arrive). The decoder never keeps a reference
 * to a pushed chunk.
 *
 * Any malformed input throws a WireError and leaves the decoder failed: every later call throws
 * FLOTILLA_WIRE_DECODER_FAILED (close the connection; a stream cannot be resynchronised).
 */
export class FrameDecoder {
  /** Payload bound by kind byte; -1: not accepted. */
  private readonly limits: Int32Array;
  private readonly header = new Uint8Array(FRAME_HEADER_BYTES);
  private headerFill = 0;
  /** Payload length of the frame being read; -1 while reading a header. */
  private bodyLength = -1;
  private bodyFill = 0;
  private pieces: Uint8Array[] = [];
  private kind: FrameKind = FRAME_KINDS.raftBatch;
  private crc = 0;
  private expectedCrc = 0;
  private failure: WireError | null = null;

  constructor(options: FrameDecoderOptions = {}) {
    this.limits = new Int32Array(256).fill(-1);
    const connectionMax = options.payloadBytesMax ?? Number.POSITIVE_INFINITY;
    assert(connectionMax >= 0, 'payloadBytesMax >= 0');
    const names = options.kinds ?? (Object.keys(FRAME_KINDS) as FrameKindName[]);
    for (const name of names) {
      const kind = FRAME_KINDS[name];
      assert(kind !== undefined, `frame kind '${String(name)}' exists`);
      this.limits[kind] = Math.min(FRAME_PAYLOAD_BYTES_MAX[name], connectionMax);
    }
  }

  /** Bytes held for the frame being read (header and body so far). */
  get bufferedBytes(): number {
    return this.headerFill + this.bodyFill;
  }

  /** The error that failed this decoder, if any. */
  get error(): WireError | null {
    return this.failure;
  }

  /**
   * Consumes `chunk`, calling `onFrame` for each frame it completes, in order. Frames before a
   * bad one are delivered; then this throws. If `onFrame` throws, the decoder fails too (the rest
   * of the chunk is unread) and the handler's error propagates.
   */
  push(chunk: Uint8Array, onFrame: (frame: Frame) => void): void {
    if (this.failure !== null) throw new WireError('FLOTILLA_WIRE_DECODER_FAILED', `decoder failed earlier: ${this.failure.message}`, { cause: this.failure });
    try {
      this.consume(chunk, onFrame);
    } catch (err) {
      this.failure = isWireError(err) ? err : new WireError('FLOTILLA_WIRE_DECODER_FAILED', 'the frame handler threw', { cause: err });
      this.pieces = [];
      throw err;
    }
  }

  /** The stream ended: throws TRUNCATED if it ended inside a frame. */
  end(): void {
    if (this.failure !== null) throw new WireError('FLOTILLA_WIRE_DECODER_FAILED', `decoder failed earlier: ${this.failure.message}`, { cause: this.failure });
    if (this.headerFill > 0 || this.bodyLength >= 0) {
      const what = this.bodyLength >= 0 ? `${this.bodyFill} of ${this.bodyLength} payload bytes` : `${this.headerFill} of ${FRAME_HEADER_BYTES} header bytes`;
      this.failure = new WireError('FLOTILLA_WIRE_TRUNCATED', `stream ended inside a frame (${what})`);
      this.pieces = [];
      throw this.failure;
    }
  }

  private consume(chunk: Uint8Array, onFrame: (frame: Frame) => void): void {
    const end = chunk.length;
    let pos = 0;
    while (pos < end) {
      if (this.bodyLength < 0) {
        if (this.headerFill === 0 && end - pos >= FRAME_HEADER_BYTES) {
          this.acceptHeader(chunk, pos);
          pos += FRAME_HEADER_BYTES;
        } else {
          const take = Math.min(FRAME_HEADER_BYTES - this.headerFill, end - pos);
          this.header.set(chunk.subarray(pos, pos + take), this.headerFill);
          this.headerFill += take;
          pos += take;
          if (this.headerFill < FRAME_HEADER_BYTES) return;
          this.acceptHeader(this.header, 0);
          this.headerFill = 0;
        }
        if (end - pos >= this.bodyLength) {
          // Fast path: the whole body is in this chunk.
          const payload = copyOf(chunk, pos, pos + this.bodyLength);
          pos += this.bodyLength;
          this.crc = crc32cUpdate(this.crc, payload);
          this.complete(payload, onFrame);
        }
        continue;
      }
      const take = Math.min(this.bodyLength - this.bodyFill, end - pos);
      const piece = copyOf(chunk, pos, pos + take);
      pos += take;
      this.crc = crc32cUpdate(this.crc, piece);
      this.pieces.push(piece);
      this.bodyFill += take;
      if (this.bodyFill === this.bodyLength) this.complete(concat(this.pieces, this.bodyLength), onFrame);
    }
  }

  private acceptHeader(bytes: Uint8Array, at: number): void {
    const length = readU32(bytes, at);
    const version = bytes[at + 4]!;
    const kind = bytes[at + 5]!;
    if (version !== WIRE_VERSION) throw new WireError('FLOTILLA_WIRE_BAD_VERSION', `frame version ${version}, this side reads version ${WIRE_VERSION}`);
    const limit = this.limits[kind]!;
    if (limit < 0) {
      const name = frameKindName(kind);
      throw new WireError('FLOTILLA_WIRE_UNKNOWN_KIND', name === undefined ? `unknown frame kind ${kind}` : `frame kind ${name} is not accepted on this connection`);
    }
    if (length > limit) throw new WireError('FLOTILLA_WIRE_FRAME_TOO_LARGE', `frame of kind ${frameKindName(kind)} declares ${length} payload bytes, at most ${limit}`);
    this.kind = kind as FrameKind;
    this.bodyLength = length;
    this.bodyFill = 0;
    this.expectedCrc = readU32(bytes, at + 6);
    this.crc = crc32c(bytes, at + 4, at + 6);
  }

  private complete(payload: Uint8Array, onFrame: (frame: Frame) => void): void {
    const kind = this.kind;
    const crc = this.crc;
    this.bodyLength = -1;
    this.bodyFill = 0;
    this.pieces = [];
    if (crc !== this.expectedCrc) throw new WireError('FLOTILLA_WIRE_CHECKSUM_MISMATCH', `frame of kind ${frameKindName(kind)} (${payload.length} bytes) fails its checksum`);
    onFrame({ kind, payload });
  }
}

function copyOf(bytes: Uint8Array, start: number, end: number): Uint8Array {
  const copy = new Uint8Array(end - start);
  copy.set(bytes.subarray(start, end));
  return copy;
}

function concat(pieces: readonly Uint8Array[], length: number): Uint8Array {
  if (pieces.length === 1) return pieces[0]!;
  const out = new Uint8Array(length);
  let at = 0;
  for (const piece of pieces) {
    out.set(piece, at);
    at += piece.length;
  }
  return out;
}
