/** Keys and values: bytes (Uint8Array or Buffer) or strings (UTF-8), compared as bytes. */
import { compareBytes as compareKeys, keyInRange, limits as wire } from '@flotilla/wire';
import { ClientError } from './errors.ts';

/** A key or value as a caller gives it: bytes, or a string (encoded as UTF-8). */
export type Bytes = Uint8Array | string;

const EMPTY = new Uint8Array(0);

/** The bytes of a key or value; strings are UTF-8. */
export function toBytes(value: Bytes, what: string): Uint8Array {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (value instanceof Uint8Array) return value;
  throw new ClientError('FLOTILLA_INVALID_ARGUMENT', `${what}: expected a string or a Uint8Array`);
}

export function keyOf(value: Bytes, what = 'key'): Uint8Array {
  const key = toBytes(value, what);
  if (key.byteLength > wire.kvKeyBytesMax) throw new ClientError('FLOTILLA_INVALID_ARGUMENT', `${what}: ${key.byteLength} bytes, at most ${wire.kvKeyBytesMax}`);
  return key;
}

/** A range bound; undefined is the empty key (the start of the keyspace, or no end). */
export function boundOf(value: Bytes | undefined, what: string): Uint8Array {
  return value === undefined ? EMPTY : keyOf(value, what);
}

export function valueOf(value: Bytes, what = 'value'): Uint8Array {
  const bytes = toBytes(value, what);
  if (bytes.byteLength > wire.kvValueBytesMax) throw new ClientError('FLOTILLA_INVALID_ARGUMENT', `${what}: ${bytes.byteLength} bytes, at most ${wire.kvValueBytesMax}`);
  return bytes;
}

/** Bytes as a Buffer without copying (callers get `.toString()` for free). */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Byte order of keys, and whether a key is in [start, end) (an empty end: unbounded); the stores compare the same way. */
export { compareKeys, keyInRange };

/** The smaller of two range ends, an empty end meaning unbounded. */
export function minEnd(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.byteLength === 0) return b;
  if (b.byteLength === 0) return a;
  return compareKeys(a, b) <= 0 ? a : b;
}

/** The larger of two range starts. */
export function maxStart(a: Uint8Array, b: Uint8Array): Uint8Array {
  return compareKeys(a, b) >= 0 ? a : b;
}

/** The smallest key after `key`: key ‖ 0x00. */
export function successor(key: Uint8Array): Uint8Array {
  const next = new Uint8Array(key.byteLength + 1);
  next.set(key);
  return next;
}

export function hexOf(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}
