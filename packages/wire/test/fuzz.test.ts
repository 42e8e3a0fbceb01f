/**
 * Fuzz (fast-check): random bytes, mutated valid frames, mutated payloads behind correct
 * checksums, structurally mutated msgpack trees and arbitrary msgpack values, thrown at the
 * FrameDecoder and at every message decoder. The decoders return a typed value or throw a
 * WireError — never a TypeError, RangeError or anything else — in bounded time, never buffer past
 * the frame bound, and whatever they accept re-encodes to the same thing.
 *
 * Seeded (FLOTILLA_FUZZ_SEED; a failure prints seed and path to replay it). Longer sessions:
 * FLOTILLA_FUZZ_RUNS_SCALE=50.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Packr, Unpackr } from 'msgpackr';
import {
  FRAME_KINDS,
  FRAME_PAYLOAD_BYTES_MAX,
  FrameDecoder,
  decodeFrame,
  encodeFrame,
  crc32c,
  crc32cUpdate,
  isWireError,
  limits,
  type FrameKindName,
  type WireErrorCode,
  type WireMessage,
} from '../src/index.ts';
import * as arb from './arbitraries.ts';

const H = limits.FRAME_HEADER_BYTES;
const KIND_NAMES = Object.keys(FRAME_KINDS) as FrameKindName[];
const LARGEST_KIND_BOUND = Math.max(...Object.values(FRAME_PAYLOAD_BYTES_MAX));
const CODES: ReadonlySet<WireErrorCode> = new Set<WireErrorCode>([
  'FLOTILLA_WIRE_FRAME_TOO_LARGE',
  'FLOTILLA_WIRE_CHECKSUM_MISMATCH',
  'FLOTILLA_WIRE_BAD_VERSION',
  'FLOTILLA_WIRE_UNKNOWN_KIND',
  'FLOTILLA_WIRE_MALFORMED',
  'FLOTILLA_WIRE_LIMIT_EXCEEDED',
  'FLOTILLA_WIRE_TRUNCATED',
]);
/** Generous: a run is a few hundred bytes to a few KiB; a hang or quadratic blow-up is seconds. */
const RUN_MS_MAX = 250;

const richPackr = new Packr({ useRecords: true, moreTypes: true, structuredClone: true, useBigIntExtension: true });
const plainUnpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

function expectWireError(err: unknown): void {
  if (!isWireError(err)) throw new Error(`decoder threw a non-WireError: ${String(err)}`, { cause: err });
  assert.ok(CODES.has(err.code), `unexpected code ${err.code}`);
}

function timed<T>(fn: () => T): T {
  const start = performance.now();
  try {
    return fn();
  } finally {
    const ms = performance.now() - start;
    assert.ok(ms < RUN_MS_MAX, `one input took ${ms.toFixed(1)} ms`);
  }
}

/**
 * Pushes `chunks` through a FrameDecoder and decodes every frame. Returns the messages, or null
 * after a WireError. Checks the buffering bound after every push.
 */
function decodeStream(chunks: readonly Uint8Array[]): WireMessage[] | null {
  const decoder = new FrameDecoder();
  const out: WireMessage[] = [];
  let pushed = 0;
  try {
    for (const chunk of chunks) {
      decoder.push(chunk, (f) => out.push(decodeFrame(f)));
      pushed += chunk.length;
      assert.ok(decoder.bufferedBytes <= pushed, 'buffers no more than it was given');
      assert.ok(decoder.bufferedBytes <= H + LARGEST_KIND_BOUND, 'buffers no more than one frame');
    }
    decoder.end();
    return out;
  } catch (err) {
    if (err instanceof assert.AssertionError) throw err;
    expectWireError(err);
    return null;
  }
}

/** Whatever a decoder accepted is a valid message: it re-encodes, and decodes to itself. */
function checkAccepted(messages: readonly WireMessage[]): void {
  for (const m of messages) {
    const again = decodeStream([encodeFrame(m)]);
    assert.deepStrictEqual(again, [m]);
  }
}

/** A frame with a correct checksum around any payload, past its kind's bound or not (unlike frameOf). */
function checkedFrame(kind: number, payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(H + payload.length);
  new DataView(frame.buffer).setUint32(0, payload.length);
  frame[4] = limits.WIRE_VERSION;
  frame[5] = kind;
  frame.set(payload, H);
  new DataView(frame.buffer).setUint32(6, crc32cUpdate(crc32c(frame, 4, 6), payload));
  return frame;
}

/**
 * The stronger oracle for one accepted payload: as msgpack values, what was accepted and what its
 * decoded message re-encodes to are equal. So nothing was accepted by coercion (a string taken as
 * bytes, a float as an integer, a missing field defaulted): only integer widths may differ.
 */
function checkSameTree(payload: Uint8Array, accepted: readonly WireMessage[] | null): void {
  if (accepted === null) return;
  checkAccepted(accepted);
  assert.equal(accepted.length, 1);
  const reencoded = Buffer.from(encodeFrame(accepted[0]!).subarray(H));
  assert.deepStrictEqual(plainUnpackr.unpack(reencoded), plainUnpackr.unpack(Buffer.from(payload)));
}

// ---- Mutations of bytes -------------------------------------------------------------------------

type Mutation =
  | { readonly op: 'flip'; readonly at: number; readonly bit: number }
  | { readonly op: 'set'; readonly at: number; readonly value: number }
  | { readonly op: 'insert'; readonly at: number; readonly bytes: Uint8Array }
  | { readonly op: 'delete'; readonly at: number; readonly n: number }
  | { readonly op: 'truncate'; readonly at: number }
  | { readonly op: 'duplicate'; readonly at: number; readonly n: number };

const fraction = arb.fraction();
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fraction, bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant('set' as const), at: fraction, value: fc.constantFrom(0x00, 0x7f, 0x80, 0x90, 0xc0, 0xc1, 0xc4, 0xc6, 0xcf, 0xd4, 0xdd, 0xdf, 0xff) }),
  fc.record({ op: fc.constant('set' as const), at: fraction, value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant('insert' as const), at: fraction, bytes: fc.uint8Array({ minLength: 1, maxLength: 9 }) }),
  fc.record({ op: fc.constant('delete' as const), at: fraction, n: fc.integer({ min: 1, max: 9 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: fraction }),
  fc.record({ op: fc.constant('duplicate' as const), at: fraction, n: fc.integer({ min: 1, max: 32 }) }),
);

function mutate(input: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let bytes: Uint8Array = Uint8Array.from(input);
  for (const m of mutations) {
    if (bytes.length === 0) break;
    const at = Math.floor(m.at * bytes.length);
    switch (m.op) {
      case 'flip':
        bytes[at]! ^= 1 << m.bit;
        break;
      case 'set':
        bytes[at] = m.value;
        break;
      case 'insert':
        bytes = arb.concatBytes([bytes.subarray(0, at), m.bytes, bytes.subarray(at)]);
        break;
      case 'delete':
        bytes = arb.concatBytes([bytes.subarray(0, at), bytes.subarray(at + m.n)]);
        break;
      case 'truncate':
        bytes = bytes.slice(0, at);
        break;
      case 'duplicate':
        bytes = arb.concatBytes([bytes.subarray(0, at + m.n), bytes.subarray(at)]);
        break;
    }
  }
  return bytes;
}

const cuts = fc.array(fraction, { maxLength: 8 });

// ---- Mutations of decoded msgpack trees ---------------------------------------------------------------

const leaf: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 }),
  fc.constantFrom(-1, 0, 1, 255, 256, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 2 ** 64, 0.5, -0.0, Number.NaN, Number.POSITIVE_INFINITY),
  fc.double(),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }),
  fc.string({ maxLength: 8 }),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.uint8Array({ maxLength: 64 }),
  fc.constantFrom(new Uint8Array(limits.raftContextBytesMax + 1), new Uint8Array(limits.kvKeyBytesMax + 1)),
  fc.array(fc.nat(), { maxLength: 4 }),
  fc.dictionary(fc.string({ maxLength: 3 }), fc.nat(), { maxKeys: 2 }),
  fc.constant(new Map([[1, 2]])),
  fc.constant(new Set([1])),
  fc.constant(new Date(0)),
  fc.constant(new Float32Array(2)),
);

/**
 * Values of every msgpack type our payloads use, and of the edges of each: the near misses a
 * validator must tell apart (an integer where bytes belong, -1 or 2^53 where an id belongs, a
 * float, a boolean for a number, an empty or one-element array for a tuple, …).
 */
const CONFUSIONS: readonly unknown[] = [
  0, 1, 2, 5, 7, 8, 16, 17, 99, 255, -1, 0.5, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 1e300,
  null, true, false, Buffer.alloc(0), Buffer.alloc(3, 7), [], [0], [1, 1], [1, 2, 3],
];

type TreeEdit = { readonly at: number; readonly action: 'replace' | 'confuse' | 'remove' | 'append' | 'wrap'; readonly value: unknown; readonly pick: number };
const treeEdit: fc.Arbitrary<TreeEdit> = fc.record({
  at: fraction,
  action: fc.constantFrom('confuse', 'confuse', 'confuse', 'confuse', 'replace', 'remove', 'append', 'wrap'),
  value: leaf,
  pick: fraction,
});

/** Every (parent array, index) of a tree, in document order. */
function slots(value: unknown, out: Array<[unknown[], number]> = []): Array<[unknown[], number]> {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      out.push([value, i]);
      slots(value[i], out);
    }
  }
  return out;
}

function editTree(root: unknown, edits: readonly TreeEdit[]): unknown {
  for (const e of edits) {
    const all = slots(root);
    if (all.length === 0) return root;
    const [parent, i] = all[Math.floor(e.at * all.length)]!;
    if (e.action === 'replace') parent[i] = e.value;
    else if (e.action === 'confuse') parent[i] = CONFUSIONS[Math.floor(e.pick * CONFUSIONS.length)];
    else if (e.action === 'remove') parent.splice(i, 1);
    else if (e.action === 'append') parent.push(e.value);
    else parent[i] = [parent[i]];
  }
  return root;
}

describe('fuzz: FrameDecoder', () => {
  it('random bytes in random chunks: a WireError or frames, never more buffered than a frame', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), cuts, (bytes, c) => {
        timed(() => decodeStream(arb.splitAt(bytes, c)));
      }),
      arb.runs(400),
    );
  });

  it('random bodies behind plausible headers (right version, any kind, any length, any checksum)', () => {
    const header = fc.record({ kind: fc.oneof(fc.constantFrom(...Object.values(FRAME_KINDS)), fc.integer({ min: 0, max: 255 })), length: fc.oneof(fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 0, max: 0xffff_ffff })), crc: fc.integer({ min: 0, max: 0xffff_ffff }) });
    fc.assert(
      fc.property(header, fc.uint8Array({ maxLength: 3000 }), cuts, (h, body, c) => {
        const head = new Uint8Array(H);
        const view = new DataView(head.buffer);
        view.setUint32(0, h.length);
        head[4] = limits.WIRE_VERSION;
        head[5] = h.kind;
        view.setUint32(6, h.crc);
        timed(() => decodeStream(arb.splitAt(arb.concatBytes([head, body]), c)));
      }),
      arb.runs(400),
    );
  });

  it('mutated streams of valid frames: a WireError or valid messages', () => {
    fc.assert(
      fc.property(fc.array(arb.wireMessage(), { minLength: 1, maxLength: 3 }), fc.array(mutation, { minLength: 1, maxLength: 4 }), cuts, (messages, mutations, c) => {
        const stream = mutate(arb.concatBytes(messages.map((m) => Uint8Array.from(encodeFrame(m)))), mutations);
        const decoded = timed(() => decodeStream(arb.splitAt(stream, c)));
        if (decoded !== null) checkAccepted(decoded);
      }),
      arb.runs(400),
    );
  });

  it('valid frames always round-trip, in any split', () => {
    fc.assert(
      fc.property(fc.array(arb.wireMessage(), { maxLength: 4 }), cuts, (messages, c) => {
        const stream = arb.concatBytes(messages.map((m) => Uint8Array.from(encodeFrame(m))));
        assert.deepStrictEqual(decodeStream(arb.splitAt(stream, c)), messages);
      }),
      arb.runs(300),
    );
  });
});

describe('fuzz: message decoders (behind correct checksums)', () => {
  const kind = fc.constantFrom(...KIND_NAMES);

  it('random payloads of every kind', () => {
    fc.assert(
      fc.property(kind, fc.uint8Array({ maxLength: 1024 }), (k, payload) => {
        checkSameTree(payload, timed(() => decodeStream([checkedFrame(FRAME_KINDS[k], payload)])));
      }),
      arb.runs(500),
    );
  });

  it('mutated valid payloads, under their own and under other kinds', () => {
    fc.assert(
      fc.property(arb.wireMessage(), fc.array(mutation, { minLength: 1, maxLength: 3 }), fc.option(kind, { nil: undefined }), (m, mutations, other) => {
        const payload = mutate(Uint8Array.from(encodeFrame(m)).subarray(H), mutations);
        checkSameTree(payload, timed(() => decodeStream([checkedFrame(FRAME_KINDS[other ?? m.kind], payload)])));
      }),
      arb.runs(600),
    );
  });

  it('structurally mutated msgpack trees (wrong types, lengths, nesting, extensions)', () => {
    fc.assert(
      fc.property(arb.wireMessage(), fc.array(treeEdit, { minLength: 1, maxLength: 2 }), (m, edits) => {
        const tree: unknown = plainUnpackr.unpack(Uint8Array.from(encodeFrame(m)).subarray(H));
        let payload: Uint8Array;
        try {
          payload = richPackr.pack(editTree(tree, edits));
        } catch {
          return; // the test's own packer cannot write this value
        }
        checkSameTree(payload, timed(() => decodeStream([checkedFrame(FRAME_KINDS[m.kind], payload)])));
      }),
      arb.runs(800),
    );
  });

  it('arbitrary msgpack values of any shape', () => {
    const anything = fc.anything({ maxDepth: 4, maxKeys: 4, withBigInt: true, withMap: true, withSet: true, withDate: true, withTypedArray: true, withNullPrototype: true, withObjectString: true });
    fc.assert(
      fc.property(kind, anything, (k, value) => {
        let payload: Uint8Array;
        try {
          payload = richPackr.pack(value);
        } catch {
          return;
        }
        timed(() => decodeStream([checkedFrame(FRAME_KINDS[k], payload)]));
      }),
      arb.runs(400),
    );
  });
});

function bundledStringsBomb(k: number, stringBytes: number): Uint8Array {
  const target = 6 * k + 1;
  const bytes = new Uint8Array(target + 2 * (5 + stringBytes));
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < k; i++) {
    bytes.set([0xd6, 0x62], 6 * i); // fixext 4, type 0x62 (bundled strings), data: the jump
    view.setUint32(6 * i + 2, target - 6 * i - 2);
  }
  bytes[6 * k] = 0xc0;
  for (const at of [target, target + 5 + stringBytes]) {
    bytes[at] = 0xdb; // str 32
    view.setUint32(at + 1, stringBytes);
    bytes.fill(0x61, at + 5, at + 5 + stringBytes);
  }
  return bytes;
}

describe('fuzz: hostile msgpack is refused quickly and typed', () => {
  const hostile: Array<[string, Uint8Array]> = [
    ['100k nested arrays (stack overflow in a recursive reader)', new Uint8Array(100_000).fill(0x91)],
    ['an array32 claiming 2^32-1 elements', Uint8Array.of(0xdd, 0xff, 0xff, 0xff, 0xff, 0x01)],
    ['a bin32 claiming 4 GiB', Uint8Array.of(0x93, 1, 2, 0xc6, 0xff, 0xff, 0xff, 0xff, 0)],
    ['a map32 claiming 2^32-1 pairs', Uint8Array.of(0xdf, 0xff, 0xff, 0xff, 0xff)],
    // msgpackr's "bundled strings" extension jumps ahead to two strings and back: 2,000 nested
    // ones aimed at the same two 400 KB strings make msgpackr itself decode 1.6 GB (~1 s here;
    // quadratic, so minutes for a 16 MiB frame). The scan refuses the extension up front.
    ['bundled strings aimed at one place (quadratic work in msgpackr)', bundledStringsBomb(2000, 400_000)],
    ['a record definition', Uint8Array.of(0xd4, 0x72, 0x40, 0x91, 0xa1, 0x61, 0x01)],
    ['a huge BigInt extension', (() => {
      const bytes = new Uint8Array(6 + 1_000_000);
      bytes.set([0xc9, 0x00, 0x0f, 0x42, 0x40, 0x42]);
      return bytes;
    })()],
    ['a RegExp extension', richPackr.pack(/(a+)+$/)],
    ['a cyclic structured clone', (() => {
      const a: unknown[] = [];
      a.push(a);
      return richPackr.pack(a);
    })()],
    ['one million zero bytes', new Uint8Array(1_000_000)],
    ['1 MiB of 0xc1', new Uint8Array(1 << 20).fill(0xc1)],
  ];
  // "Quickly" is judged on this process's CPU time, not the wall clock: the machines are
  // shared, and a linear pass over 1 MiB took 104 ms of wall time under a load of 15. The
  // quadratic case this guards against costs ~1 s of CPU; a linear refusal a few ms.
  const CPU_MS_MAX = 250;
  for (const [name, payload] of hostile) {
    it(name, () => {
      for (const k of KIND_NAMES) {
        if (payload.length > FRAME_PAYLOAD_BYTES_MAX[k]) continue;
        const start = process.cpuUsage();
        assert.equal(decodeStream([checkedFrame(FRAME_KINDS[k], payload)]), null, `${k} accepted it`);
        const used = process.cpuUsage(start);
        const cpuMs = (used.user + used.system) / 1000;
        assert.ok(cpuMs < CPU_MS_MAX, `${k}: ${cpuMs.toFixed(1)} ms of CPU`);
      }
    });
  }
});
