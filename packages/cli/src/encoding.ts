/**
 * Keys and values on the command line: utf8 (the default), hex or base64; and how the CLI
 * shows keys in tables (printable ASCII as is, anything else as 0x-hex).
 */
import { usageError } from './errors.ts';

export const KEY_ENCODINGS = ['utf8', 'hex', 'base64'] as const;
export type KeyEncoding = (typeof KEY_ENCODINGS)[number];

/** Bytes of a key or value written on the command line; a usage error when they don't decode. */
export function decodeArg(what: string, text: string, encoding: KeyEncoding): Uint8Array {
  switch (encoding) {
    case 'utf8':
      return new Uint8Array(Buffer.from(text, 'utf8'));
    case 'hex': {
      const clean = text.startsWith('0x') ? text.slice(2) : text;
      if (clean.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(clean)) throw usageError(`${what} "${text}" is not hex (an even number of 0-9a-f digits)`);
      return new Uint8Array(Buffer.from(clean, 'hex'));
    }
    case 'base64': {
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) throw usageError(`${what} "${text}" is not base64`);
      return new Uint8Array(Buffer.from(text, 'base64'));
    }
  }
}

/** Bytes as the user asked to see them (utf8: the raw bytes, decoded as far as they are text). */
export function encodeOut(bytes: Uint8Array, encoding: KeyEncoding): string {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return encoding === 'utf8' ? buffer.toString('utf8') : buffer.toString(encoding);
}

/** A key for tables and messages: printable ASCII as is, anything else as 0x-hex. */
export function displayKey(bytes: Uint8Array): string {
  for (const b of bytes) if (b < 0x20 || b > 0x7e) return `0x${Buffer.from(bytes).toString('hex')}`;
  return Buffer.from(bytes).toString('latin1');
}

/** A hex key from PD's JSON API for tables: '' start is (start), '' end is (end). */
export function displayHexKey(hex: string, side: 'start' | 'end'): string {
  if (hex === '') return side === 'start' ? '(start)' : '(end)';
  return displayKey(new Uint8Array(Buffer.from(hex, 'hex')));
}

export function hexOfBytes(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}
