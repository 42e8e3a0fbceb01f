/**
 * The cache of one group's recent entries (a contiguous suffix of its log), kept as BYTES in one
 * ring buffer per group, with index, term, type, offset and length in typed-array rings. A write
 * copies payloads in; a read copies the range it returns out (the Entry objects' `data` view the
 * copy, in a read slab shared with other reads: see readSpace), so the ring's memory can be
 * reused at once.
 *
 * Why not keep the caller's Entry objects (the first design)? Objects kept for ~1,000 appends
 * survive scavenges, and every scavenge copied them (~11-27% of the main thread, most event-loop
 * stalls). Why not append-only buffers handed out as views? Each cached byte was then a fresh
 * off-heap allocation, and that allocation rate drove V8 into a full mark-compact every ~0.5 s
 * (3-6 ms pauses). With the ring, appending allocates nothing in the steady state; the copy
 * moves to reads. Measured in benchmarks/storage/RESULTS.md.
 *
 * Memory: the ring holds the cached payload plus at most as much again (it doubles when full and
 * is released when the cache empties), so the engine's payload budget bounds it. A store keeps
 * one cache per group, most of them idle with an entry or two: the slots of an entry (term,
 * offset, length, type) are packed into ONE Int32Array of 16 bytes per entry — four typed arrays
 * cost ~900 bytes per idle group, one of SLOTS_MIN slots ~260 (it stays on the V8 heap).
 */
import { ENTRY_OVERHEAD_BYTES, type Entry, type EntryType } from '@flotilla/raft';
import { logCacheReadSlabBytes, logCacheReadSlabPieceBytesMax, logCacheRingBytesMin } from './constants.ts';
import { assert, fail } from './errors.ts';

const TYPES: readonly EntryType[] = ['normal', 'confChange'];
/** 4 slots of 16 bytes: 64 bytes, the largest typed array V8 keeps on its heap (no malloc). */
const SLOTS_MIN = 4;
const EMPTY = new Uint8Array(0);
/** Int32s per slot: term (low 32 bits, high bits), payload offset, payload length * 2 + type. */
const STRIDE = 4;
const TERM_LO = 0;
const TERM_HI = 1;
const OFFSET = 2;
const LENGTH_TYPE = 3;
const TWO_32 = 2 ** 32;
/** A payload length must fit in 30 bits (length * 2 + type in an int32). */
const PAYLOAD_BYTES_MAX = 2 ** 30 - 1;
const NO_SLOTS = new Int32Array(0);

/**
 * Reads copy payloads into shared slabs, as Node's Buffer pool does: a new ArrayBuffer per read
 * cost ~350 ns of a ~400 ns one-entry read (its backing store is malloc'd and tracked), and a
 * store at 4,096 active regions makes one such read per group and cycle to apply. A slab is
 * retained while any entry read from it is, so whoever keeps part of an entry for long copies
 * it (the store's command decoder copies the keys of region metadata); reads larger than
 * logCacheReadSlabPieceBytesMax get a buffer of their own.
 */
let readSlab = new ArrayBuffer(0);
let readSlabAt = 0;

/** Room for `n` payload bytes: the buffer and the offset to write them at. */
function readSpace(n: number): { readonly buffer: ArrayBuffer; readonly at: number } {
  if (n > logCacheReadSlabPieceBytesMax) return { buffer: new ArrayBuffer(n), at: 0 };
  if (readSlabAt + n > readSlab.byteLength) {
    readSlab = new ArrayBuffer(logCacheReadSlabBytes);
    readSlabAt = 0;
  }
  const at = readSlabAt;
  readSlabAt += n;
  return { buffer: readSlab, at };
}

export class EntryCache {
  /** Index of the first cached entry; `first + count - 1` is the last. */
  first: number;
  count = 0;
  /** Payload bytes cached. */
  bytes = 0;
  /** Slot of entry `first + k` is (head + k) & (capacity - 1); its fields start at slot * STRIDE. */
  private head = 0;
  private capacity = 0;
  private slots = NO_SLOTS;
  /** Payload ring; the next payload goes at `tail` (or wraps to 0). */
  private ring: Uint8Array = EMPTY;
  private tail = 0;

  constructor(first: number) {
    this.first = first;
  }

  /** Appends one entry; its index must be `first + count`. */
  push(e: Entry): void {
    const n = e.data.byteLength;
    if (n > PAYLOAD_BYTES_MAX) fail(`an entry payload of ${n} bytes does not fit in the cache`);
    if (this.count === this.capacity) this.resizeSlots(Math.max(SLOTS_MIN, this.capacity * 2));
    let at = this.placeFor(n);
    if (at < 0) {
      this.relayout(Math.max(logCacheRingBytesMin, 2 * (this.bytes + n)));
      at = this.placeFor(n);
      if (at < 0) fail(`cache ring of ${this.ring.byteLength} bytes has no room for ${n} after growing`);
    }
    const slot = ((this.head + this.count) & (this.capacity - 1)) * STRIDE;
    const s = this.slots;
    s[slot + TERM_LO] = e.term >>> 0;
    s[slot + TERM_HI] = Math.floor(e.term / TWO_32);
    s[slot + OFFSET] = at;
    s[slot + LENGTH_TYPE] = n * 2 + (e.type === 'normal' ? 0 : 1);
    this.ring.set(e.data, at);
    this.tail = at + n;
    this.count++;
    this.bytes += n;
  }

  /** Drops entries from `index` on (a conflicting suffix); returns the payload bytes freed. */
  truncateFrom(index: number): number {
    const keep = Math.max(0, index - this.first);
    if (keep >= this.count) return 0;
    let freed = 0;
    for (let k = keep; k < this.count; k++) freed += this.lengthAt(k);
    // The space is reused: reads copy, nothing outside points into the ring.
    this.tail = this.slots[this.slotOf(keep) + OFFSET]!;
    this.count = keep;
    this.bytes -= freed;
    if (this.count === 0) this.release();
    return freed;
  }

  /** Drops entries below `index` (eviction, compaction); returns the payload bytes freed. */
  dropBelow(index: number): number {
    const drop = Math.min(this.count, index - this.first);
    if (drop <= 0) return 0;
    let freed = 0;
    for (let k = 0; k < drop; k++) freed += this.lengthAt(k);
    this.head = (this.head + drop) & (this.capacity - 1);
    this.count -= drop;
    this.first += drop;
    this.bytes -= freed;
    if (this.count === 0) this.release();
    return freed;
  }

  /** Empties the cache; the next cached entry will be `nextFirst`. Returns the bytes freed. */
  clear(nextFirst: number): number {
    const freed = this.bytes;
    this.count = 0;
    this.bytes = 0;
    this.first = nextFirst;
    this.release();
    return freed;
  }

  /**
   * Entries [lo, hi) (all cached), the longest prefix within `maxBytes` counted as the core counts
   * them (payload + ENTRY_OVERHEAD_BYTES), but never empty when the range is not. Their payloads
   * are copied into one new buffer.
   */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo < this.first || hi > this.first + this.count) fail(`cache of [${this.first}, ${this.first + this.count}) asked for [${lo}, ${hi})`);
    if (lo >= hi) return [];
    const mask = this.capacity - 1;
    const base = this.head - this.first;
    const s = this.slots;
    // How many fit, and their payload bytes.
    let end = lo;
    let size = 0;
    let payload = 0;
    while (end < hi) {
      const n = s[((base + end) & mask) * STRIDE + LENGTH_TYPE]! >>> 1;
      size += n + ENTRY_OVERHEAD_BYTES;
      if (end > lo && size > maxBytes) break;
      payload += n;
      end++;
    }
    const space = readSpace(payload);
    const buffer = space.buffer;
    let at = space.at;
    const out: Entry[] = new Array(end - lo);
    const ring = this.ring;
    for (let index = lo; index < end; index++) {
      const slot = ((base + index) & mask) * STRIDE;
      const lengthType = s[slot + LENGTH_TYPE]!;
      const n = lengthType >>> 1;
      const from = s[slot + OFFSET]!;
      const data = new Uint8Array(buffer, at, n);
      data.set(ring.subarray(from, from + n));
      const term = s[slot + TERM_HI]! * TWO_32 + (s[slot + TERM_LO]! >>> 0);
      out[index - lo] = { index, term, type: TYPES[lengthType & 1]!, data };
      at += n;
    }
    return out;
  }

  /** Where a payload of `n` bytes fits in the ring without overwriting cached ones (-1: full). */
  private placeFor(n: number): number {
    const size = this.ring.byteLength;
    // Nothing (or only empty payloads) in the ring: start over at 0.
    if (this.count === 0 || this.bytes === 0) return n <= size ? 0 : -1;
    const start = this.slots[this.head * STRIDE + OFFSET]!;
    if (this.tail > start) {
      // Used: [start, tail). Free: [tail, size) then [0, start).
      if (size - this.tail >= n) return this.tail;
      return start >= n ? 0 : -1;
    }
    // Wrapped. Used: [start, size) and [0, tail). Free: [tail, start).
    return start - this.tail >= n ? this.tail : -1;
  }

  /** Moves the cached payloads, in order, to the start of a new ring of `capacity` bytes. */
  private relayout(capacity: number): void {
    const next = new Uint8Array(capacity);
    let at = 0;
    for (let k = 0; k < this.count; k++) {
      const slot = this.slotOf(k);
      const from = this.slots[slot + OFFSET]!;
      const n = this.slots[slot + LENGTH_TYPE]! >>> 1;
      next.set(this.ring.subarray(from, from + n), at);
      this.slots[slot + OFFSET] = at;
      at += n;
    }
    this.ring = next;
    this.tail = at;
  }

  private release(): void {
    // Nothing cached: let go of the ring and keep few slots.
    this.ring = EMPTY;
    this.tail = 0;
    this.head = 0;
    if (this.capacity > SLOTS_MIN * 4) this.resizeSlots(SLOTS_MIN);
  }

  /** Where the fields of the k-th cached entry start in `slots`. */
  private slotOf(k: number): number {
    return ((this.head + k) & (this.capacity - 1)) * STRIDE;
  }

  private lengthAt(k: number): number {
    return this.slots[this.slotOf(k) + LENGTH_TYPE]! >>> 1;
  }

  private resizeSlots(capacity: number): void {
    assert(capacity >= this.count && (capacity & (capacity - 1)) === 0, 'slot capacity is a power of two holding the window');
    const slots = new Int32Array(capacity * STRIDE);
    for (let k = 0; k < this.count; k++) {
      const from = this.slotOf(k);
      for (let f = 0; f < STRIDE; f++) slots[k * STRIDE + f] = this.slots[from + f]!;
    }
    this.slots = slots;
    this.capacity = capacity;
    this.head = 0;
  }
}
