/**
 * The msgpack layer: one stateless Packr/Unpackr pair (no records, no shared structures, no
 * extensions), and a structural scan that every payload passes BEFORE msgpackr sees it.
 *
 * Why the scan: msgpackr is a general decoder. Given hostile bytes it will build Maps, Sets,
 * Errors, RegExps, BigInts, cyclic references and "bundled strings" (an extension that jumps
 * around the buffer and can be made to re-read it: quadratic work), and deep nesting overflows
 * its recursive reader. Our payloads use a tiny subset — nil, booleans, numbers, bin and arrays,
 * nested at most `payloadNestingDepthMax` deep — so the scan accepts exactly that subset in one
 * iterative pass (O(bytes), no allocation) and msgpackr only ever decodes what we could have
 * written. Anything else is FLOTILLA_WIRE_MALFORMED.
 */
import { Packr, RESERVE_START_SPACE, Unpackr } from 'msgpackr';
import { payloadNestingDepthMax } from './constants.ts';
import { WireError, isWireError } from './errors.ts';

const packr = new Packr({
  useRecords: false,
  moreTypes: false, // a Uint8Array is bin, never the typed-array extension
  structuredClone: false,
  bundleStrings: false,
  useFloat32: 0,
});

const unpackr = new Unpackr({
  useRecords: false,
  mapsAsObjects: true,
  structuredClone: false,
  int64AsType: 'number', // exact up to 2^53-1; anything larger decodes >= 2^53 and fails the range checks
  copyBuffers: false, // bins are views here; the codecs copy the ones they keep (see check.ts `bytes`)
});

/**
 * Encodes `value` (a tuple of numbers, booleans, nulls, Uint8Arrays and arrays). With
 * `reserveBytes`, that many bytes are left free at the start of the result (a frame header).
 * The result views msgpackr's shared scratch buffer: keep it, send it, but never transfer its
 * ArrayBuffer to a worker (copy first).
 */
export function packValue(value: unknown, reserveBytes = 0): Uint8Array {
  return reserveBytes === 0 ? packr.pack(value) : packr.pack(value, RESERVE_START_SPACE | reserveBytes);
}

function malformed(what: string): never {
  throw new WireError('FLOTILLA_WIRE_MALFORMED', what);
}

/** Values still to read at each nesting depth of the scan (depth 0: the one top-level value). */
const SCAN_REMAINING = new Uint32Array(payloadNestingDepthMax + 1);

function truncated(pos: number): never {
  malformed(`payload truncated at byte ${pos}`);
}

/**
 * Checks that `bytes` hold exactly one msgpack value of the accepted subset, nested at most
 * `payloadNestingDepthMax` arrays deep, with no byte left over. Iterative, O(1) work per token
 * (a bin's bytes are skipped, not read), no allocation.
 */
export function scanPayload(bytes: Uint8Array): void {
  const end = bytes.length;
  const remaining = SCAN_REMAINING;
  remaining[0] = 1;
  let depth = 0;
  let pos = 0;
  for (;;) {
    if (remaining[depth] === 0) {
      if (depth === 0) break;
      depth--;
      continue;
    }
    remaining[depth]!--;
    if (pos >= end) truncated(pos);
    const token = bytes[pos++]!;
    if (token < 0x80 || token >= 0xe0) continue; // positive / negative fixint
    let length = 0; // of an array
    if (token >= 0x90 && token <= 0x9f) {
      length = token & 0x0f;
    } else {
      switch (token) {
        case 0xc0: // nil
        case 0xc2: // false
        case 0xc3: // true
          continue;
        case 0xcc: // uint 8
        case 0xd0: // int 8
          pos += 1;
          break;
        case 0xcd:
        case 0xd1:
          pos += 2;
          break;
        case 0xca: // float 32
        case 0xce:
        case 0xd2:
          pos += 4;
          break;
        case 0xcb: // float 64
        case 0xcf:
        case 0xd3:
          pos += 8;
          break;
        case 0xc4: // bin 8
          if (pos + 1 > end) truncated(pos);
          pos += 1 + bytes[pos]!;
          break;
        case 0xc5:
          if (pos + 2 > end) truncated(pos);
          pos += 2 + ((bytes[pos]! << 8) | bytes[pos + 1]!);
          break;
        case 0xc6:
          if (pos + 4 > end) truncated(pos);
          pos += 4 + readU32(bytes, pos);
          break;
        case 0xdc: // array 16
          if (pos + 2 > end) truncated(pos);
          length = (bytes[pos]! << 8) | bytes[pos + 1]!;
          pos += 2;
          break;
        case 0xdd:
          if (pos + 4 > end) truncated(pos);
          length = readU32(bytes, pos);
          pos += 4;
          break;
        default:
          // maps (0x80-0x8f, 0xde, 0xdf), strings (0xa0-0xbf, 0xd9-0xdb), extensions (0xc7-0xc9,
          // 0xd4-0xd8) and the never-used 0xc1: none of our payloads has them.
          return malformed(`unsupported msgpack token 0x${token.toString(16)} at byte ${pos - 1}`);
      }
      if (token !== 0xdc && token !== 0xdd) {
        if (pos > end) truncated(end);
        continue; // a scalar or a bin, skipped
      }
    }
    // An array: every element takes at least one byte, so a length past the rest is a lie.
    if (length > end - pos) truncated(pos);
    if (depth === payloadNestingDepthMax) malformed(`arrays nested deeper than ${payloadNestingDepthMax}`);
    remaining[++depth] = length;
  }
  if (pos !== end) malformed(`${end - pos} bytes after the payload's value`);
}

function readU32(bytes: Uint8Array, pos: number): number {
  return ((bytes[pos]! << 24) | (bytes[pos + 1]! << 16) | (bytes[pos + 2]! << 8) | bytes[pos + 3]!) >>> 0;
}

/** Scans, then decodes. Whatever msgpackr might still throw becomes MALFORMED (never escapes raw). */
export function unpackPayload(bytes: Uint8Array): unknown {
  scanPayload(bytes);
  try {
    const value: unknown = unpackr.unpack(bytes);
    return value;
  } catch (err) {
    if (isWireError(err)) throw err;
    throw new WireError('FLOTILLA_WIRE_MALFORMED', 'msgpack decoding failed', { cause: err });
  }
}
