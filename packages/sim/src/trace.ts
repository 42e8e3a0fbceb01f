/**
 * A running 32-bit FNV-1a hash of everything observable in a run (deliveries, applies, client
 * answers). Two runs of one seed must end with the same hash: the determinism test compares it.
 */
export class TraceHash {
  private h = 0x811c9dc5;
  events = 0;

  mix(...values: readonly number[]): void {
    let h = this.h;
    for (const v of values) {
      // Mix the number's 32-bit halves (covers indexes and terms beyond 2^32).
      const lo = v >>> 0;
      const hi = Math.floor(v / 4294967296) >>> 0;
      h = Math.imul(h ^ lo, 0x01000193) >>> 0;
      h = Math.imul(h ^ hi, 0x01000193) >>> 0;
    }
    this.h = h;
    this.events++;
  }

  mixString(s: string): void {
    let h = this.h;
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
    this.h = h;
  }

  get value(): string {
    return this.h.toString(16).padStart(8, '0');
  }
}

const MESSAGE_TYPE_CODES = new Map<string, number>();
/** A stable small number per message type, for hashing without strings. */
export function messageTypeCode(type: string): number {
  let code = MESSAGE_TYPE_CODES.get(type);
  if (code === undefined) {
    code = 0;
    for (let i = 0; i < type.length; i++) code = (Math.imul(code, 31) + type.charCodeAt(i)) >>> 0;
    MESSAGE_TYPE_CODES.set(type, code);
  }
  return code;
}
