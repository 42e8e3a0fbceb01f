/**
 * Checks shared by the codecs. Decoding side (`read*`): never trust the decoded shape — every
 * field's type and bound is checked and the result is built afresh. Encoding side (`arg*`): the
 * same rules, so that this side never writes what a peer would refuse (pair assertions around
 * the boundary).
 */
import { EMPTY_BYTES } from '@flotilla/raft';
import { decodeSlabBytes, decodeSlabItemBytesMax } from './constants.ts';
import { WireError } from './errors.ts';

// ---- Decoding ---------------------------------------------------------------------------------------

export function malformed(what: string): never {
  throw new WireError('FLOTILLA_WIRE_MALFORMED', what);
}

export function readTuple(value: unknown, length: number, what: string): readonly unknown[] {
  if (!Array.isArray(value)) malformed(`${what}: expected an array`);
  if (value.length !== length) malformed(`${what}: expected ${length} fields, got ${value.length}`);
  return value;
}

/** A tuple whose first field is a small tag deciding its length. */
export function readTagged(value: unknown, what: string): readonly unknown[] {
  if (!Array.isArray(value) || value.length === 0) malformed(`${what}: expected a tagged array`);
  return value;
}

export function readList(value: unknown, max: number, what: string): readonly unknown[] {
  if (!Array.isArray(value)) malformed(`${what}: expected an array`);
  if (value.length > max) throw new WireError('FLOTILLA_WIRE_LIMIT_EXCEEDED', `${what}: ${value.length} items, at most ${max}`);
  return value;
}

/** A non-negative safe integer (<= 2^53-1). */
export function readUint(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) malformed(`${what}: expected a non-negative integer`);
  return value;
}

/** An id: a positive safe integer. */
export function readId(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) malformed(`${what}: expected a positive integer id`);
  return value;
}

export function readUintAtMost(value: unknown, max: number, what: string): number {
  const n = readUint(value, what);
  if (n > max) throw new WireError('FLOTILLA_WIRE_LIMIT_EXCEEDED', `${what}: ${n}, at most ${max}`);
  return n;
}

export function readU32(value: unknown, what: string): number {
  const n = readUint(value, what);
  if (n > 0xffff_ffff) malformed(`${what}: expected a u32`);
  return n;
}

export function readBool(value: unknown, what: string): boolean {
  if (typeof value !== 'boolean') malformed(`${what}: expected a boolean`);
  return value;
}

let slab = new Uint8Array(decodeSlabBytes);
let slabUsed = 0;

/**
 * Bytes, copied: a decoded bin views the payload, and keeping the view would keep the whole
 * frame alive (a 128-byte entry pinning a 16 MiB frame in a log cache). Small copies share slabs
 * (see decodeSlabBytes): like Node's pooled Buffers, a result may share its ArrayBuffer with
 * other decoded bytes, so never transfer or view past it. Empty bins share one empty array.
 */
export function readBytes(value: unknown, max: number, what: string): Uint8Array {
  if (!(value instanceof Uint8Array)) malformed(`${what}: expected bytes`);
  const n = value.byteLength;
  if (n > max) throw new WireError('FLOTILLA_WIRE_LIMIT_EXCEEDED', `${what}: ${n} bytes, at most ${max}`);
  if (n === 0) return EMPTY_BYTES;
  let copy: Uint8Array;
  if (n <= decodeSlabItemBytesMax) {
    if (slabUsed + n > slab.length) {
      slab = new Uint8Array(decodeSlabBytes);
      slabUsed = 0;
    }
    copy = slab.subarray(slabUsed, slabUsed + n);
    slabUsed += n;
  } else {
    copy = new Uint8Array(n);
  }
  copy.set(value);
  return copy;
}

/**
 * A context (ReadIndex request id): nil when empty, so the common empty one costs a byte and no
 * bin object either side. One encoding per value: an empty bin is refused.
 */
export function readContext(value: unknown, max: number, what: string): Uint8Array {
  if (value === null) return EMPTY_BYTES;
  const bytes = readBytes(value, max, what);
  if (bytes.byteLength === 0) malformed(`${what}: an empty context is encoded as nil`);
  return bytes;
}

export function readBytesOrNull(value: unknown, max: number, what: string): Uint8Array | null {
  return value === null ? null : readBytes(value, max, what);
}

// ---- Encoding ---------------------------------------------------------------------------------------

export function invalid(what: string): never {
  throw new WireError('FLOTILLA_WIRE_INVALID_ARGUMENT', what);
}

export function tooLarge(what: string, n: number, max: number): never {
  throw new WireError('FLOTILLA_WIRE_LIMIT_EXCEEDED', `${what}: ${n}, at most ${max}`);
}

export function argUint(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < 0) invalid(`${what}: ${value} is not a non-negative safe integer`);
  return value;
}

export function argId(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value <= 0) invalid(`${what}: ${value} is not a positive safe integer`);
  return value;
}

export function argUintAtMost(value: number, max: number, what: string): number {
  argUint(value, what);
  if (value > max) tooLarge(what, value, max);
  return value;
}

export function argBytes(value: Uint8Array, max: number, what: string): Uint8Array {
  if (!(value instanceof Uint8Array)) invalid(`${what}: not bytes`);
  if (value.byteLength > max) tooLarge(`${what} bytes`, value.byteLength, max);
  return value;
}

export function argContext(value: Uint8Array, max: number, what: string): Uint8Array | null {
  argBytes(value, max, what);
  return value.byteLength === 0 ? null : value;
}

export function argCount(n: number, max: number, what: string): void {
  if (n > max) tooLarge(what, n, max);
}
