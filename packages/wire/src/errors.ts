/**
 * Typed errors of @flotilla/wire. Callers branch on the stable `code`, never on the message.
 * The brand check (`isWireError`) survives duplicate installs of this package.
 *
 * Every code but INVALID_ARGUMENT means "the peer sent something this side will not read":
 * the connection that carried it is closed (its FrameDecoder is failed for good).
 */
export type WireErrorCode =
  | 'FLOTILLA_WIRE_FRAME_TOO_LARGE' // a length prefix or an encoded payload past the bound of its kind
  | 'FLOTILLA_WIRE_CHECKSUM_MISMATCH' // a frame's CRC-32C, or a snapshot chunk's, does not match its bytes
  | 'FLOTILLA_WIRE_BAD_VERSION' // a frame of a format version this code does not know
  | 'FLOTILLA_WIRE_UNKNOWN_KIND' // a frame kind that does not exist, or is not accepted on this connection
  | 'FLOTILLA_WIRE_MALFORMED' // a payload that is not the expected msgpack shape (type, tuple length, range)
  | 'FLOTILLA_WIRE_LIMIT_EXCEEDED' // a count or size bound of constants.ts exceeded (decoding or encoding)
  | 'FLOTILLA_WIRE_TRUNCATED' // the stream ended inside a frame
  | 'FLOTILLA_WIRE_DECODER_FAILED' // a FrameDecoder was used after it failed (the cause is the first error)
  | 'FLOTILLA_WIRE_INVALID_ARGUMENT'; // an encoder was given a value no peer would accept (negative id, local message type)

const BRAND = Symbol.for('flotilla.wire.error');

export class WireError extends Error {
  readonly code: WireErrorCode;
  readonly [BRAND] = true;

  constructor(code: WireErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WireError';
    this.code = code;
  }
}

export function isWireError(err: unknown, code?: WireErrorCode): err is WireError {
  if (typeof err !== 'object' || err === null) return false;
  if ((err as { [BRAND]?: unknown })[BRAND] !== true) return false;
  return code === undefined || (err as WireError).code === code;
}

/** A broken invariant is a bug: it stops the process, it is not handled. */
export function assert(condition: unknown, what: string): asserts condition {
  if (!condition) throw new Error(`wire assertion failed: ${what}`);
}
