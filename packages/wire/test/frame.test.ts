/**
 * Framing: chunk splits as TCP delivers them, several frames per chunk, and every way a frame can
 * be bad — each refused with its typed error, before buffering where the header already tells.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { message } from '@flotilla/raft';
import {
  FRAME_KINDS,
  FRAME_PAYLOAD_BYTES_MAX,
  FrameDecoder,
  crc32c,
  crc32cUpdate,
  decodeFrame,
  encodeFrame,
  encodeSnapshotAck,
  frameOf,
  isWireError,
  limits,
  makeSnapshotChunk,
  type Frame,
  type FrameDecoderOptions,
  type WireErrorCode,
  type WireMessage,
} from '../src/index.ts';
import { SeededRandom } from '@flotilla/raft';
import { concatBytes } from './arbitraries.ts';

const H = limits.FRAME_HEADER_BYTES;

function sample(i: number): WireMessage {
  switch (i % 4) {
    case 0:
      return { kind: 'raftBatch', body: { fromStore: 1, toStore: 2, messages: [{ regionId: i + 1, fromPeer: 1, toPeer: 2, message: message({ type: 'append', from: 1, to: 2, term: 3, index: i, logTerm: 3, entries: [{ index: i + 1, term: 3, type: 'normal', data: Uint8Array.from({ length: 200 + i }, (_, j) => j) }] }) }] } };
    case 1:
      return { kind: 'heartbeatBatch', body: { fromStore: 1, toStore: 2, beats: [{ regionId: i + 1, fromPeer: 1, toPeer: 2, term: 3, commit: i, leaderTick: 7 }] } };
    case 2:
      return { kind: 'snapshotChunk', body: makeSnapshotChunk({ regionId: 9, snapshotId: 1, seq: i, last: false, data: new Uint8Array(i * 3) }) };
    default:
      return { kind: 'snapshotAck', body: { regionId: 9, snapshotId: 1, seq: i, status: 'received' } };
  }
}

function collect(chunks: readonly Uint8Array[], options?: FrameDecoderOptions): WireMessage[] {
  const decoder = new FrameDecoder(options);
  const out: WireMessage[] = [];
  for (const chunk of chunks) decoder.push(chunk, (f) => out.push(decodeFrame(f)));
  decoder.end();
  return out;
}

function failsWith(chunks: readonly Uint8Array[], code: WireErrorCode, options?: FrameDecoderOptions): { decoder: FrameDecoder; frames: Frame[] } {
  const decoder = new FrameDecoder(options);
  const frames: Frame[] = [];
  let thrown: unknown = null;
  try {
    for (const chunk of chunks) decoder.push(chunk, (f) => frames.push(f));
    decoder.end();
  } catch (err) {
    thrown = err;
  }
  assert.ok(isWireError(thrown), `expected ${code}, got ${String(thrown)}`);
  assert.equal(thrown.code, code, thrown.message);
  assert.equal(decoder.error, thrown);
  // failed for good
  assert.throws(() => decoder.push(new Uint8Array(1), () => {}), (err: unknown) => isWireError(err, 'FLOTILLA_WIRE_DECODER_FAILED'));
  assert.throws(() => decoder.end(), (err: unknown) => isWireError(err, 'FLOTILLA_WIRE_DECODER_FAILED'));
  return { decoder, frames };
}

/** A frame with a hand-made header. */
function rawFrame(payload: Uint8Array, { kind = FRAME_KINDS.snapshotAck as number, version = limits.WIRE_VERSION, length = payload.length, crc }: { kind?: number; version?: number; length?: number; crc?: number } = {}): Uint8Array {
  const frame = new Uint8Array(H + payload.length);
  new DataView(frame.buffer).setUint32(0, length);
  frame[4] = version;
  frame[5] = kind;
  frame.set(payload, H);
  new DataView(frame.buffer).setUint32(6, crc ?? crc32cUpdate(crc32c(frame, 4, 6), payload));
  return frame;
}

describe('FrameDecoder', () => {
  const messages = Array.from({ length: 24 }, (_, i) => sample(i));
  const stream = concatBytes(messages.map(encodeFrame));

  it('decodes a stream fed one byte at a time', () => {
    const chunks = Array.from({ length: stream.length }, (_, i) => stream.subarray(i, i + 1));
    assert.deepStrictEqual(collect(chunks), messages);
  });

  it('decodes every frame of one chunk, and of random splits', () => {
    assert.deepStrictEqual(collect([stream]), messages);
    const random = new SeededRandom(7);
    for (let round = 0; round < 200; round++) {
      const chunks: Uint8Array[] = [];
      for (let at = 0; at < stream.length; ) {
        const n = 1 + random.nextInt(round % 2 === 0 ? 16 : 700);
        chunks.push(stream.subarray(at, at + n));
        at += n;
      }
      assert.deepStrictEqual(collect(chunks), messages);
    }
  });

  it('keeps no reference to pushed chunks: frames own their payloads', () => {
    const frame = encodeFrame(messages[0]!);
    const copy = Uint8Array.from(frame);
    const frames: Frame[] = [];
    const decoder = new FrameDecoder();
    decoder.push(copy.subarray(0, 20), (f) => frames.push(f));
    decoder.push(copy.subarray(20), (f) => frames.push(f));
    const whole = Uint8Array.from(frame);
    decoder.push(whole, (f) => frames.push(f));
    copy.fill(0);
    whole.fill(0);
    assert.deepStrictEqual(frames.map(decodeFrame), [messages[0], messages[0]]);
  });

  it('accepts an empty payload as a frame (the message decoder then refuses it)', () => {
    const frames: Frame[] = [];
    new FrameDecoder().push(rawFrame(new Uint8Array(0)), (f) => frames.push(f));
    assert.equal(frames.length, 1);
    assert.equal(frames[0]!.payload.length, 0);
    assert.throws(() => decodeFrame(frames[0]!), (err: unknown) => isWireError(err, 'FLOTILLA_WIRE_MALFORMED'));
  });

  it('refuses an oversized length prefix from the header alone, without buffering', () => {
    const before = process.memoryUsage().arrayBuffers;
    const header = rawFrame(new Uint8Array(0), { kind: FRAME_KINDS.raftBatch, length: 0xffff_ffff }).subarray(0, H);
    const { decoder } = failsWith([header], 'FLOTILLA_WIRE_FRAME_TOO_LARGE');
    assert.equal(decoder.bufferedBytes, 0);
    assert.ok(process.memoryUsage().arrayBuffers - before < 1024 * 1024, 'nothing near the declared size was allocated');
    // one byte over the kind's own bound, even though far under the absolute one
    failsWith([rawFrame(new Uint8Array(0), { kind: FRAME_KINDS.snapshotAck, length: limits.snapshotAckPayloadBytesMax + 1 }).subarray(0, H)], 'FLOTILLA_WIRE_FRAME_TOO_LARGE');
    // and a connection's tighter bound
    failsWith([encodeFrame(messages[0]!)], 'FLOTILLA_WIRE_FRAME_TOO_LARGE', { payloadBytesMax: 16 });
  });

  it('buffers a large frame only as its bytes arrive', () => {
    const decoder = new FrameDecoder();
    const header = rawFrame(new Uint8Array(0), { kind: FRAME_KINDS.raftBatch, length: limits.raftBatchPayloadBytesMax }).subarray(0, H);
    decoder.push(header, () => assert.fail('no frame yet'));
    assert.equal(decoder.bufferedBytes, 0);
    decoder.push(new Uint8Array(1000), () => assert.fail('no frame yet'));
    assert.equal(decoder.bufferedBytes, 1000);
    assert.throws(() => decoder.end(), (err: unknown) => isWireError(err, 'FLOTILLA_WIRE_TRUNCATED'));
  });

  it('refuses a bad version before the body', () => {
    failsWith([rawFrame(new Uint8Array(4), { version: 2 }).subarray(0, H)], 'FLOTILLA_WIRE_BAD_VERSION');
    failsWith([rawFrame(new Uint8Array(4), { version: 0 })], 'FLOTILLA_WIRE_BAD_VERSION');
  });

  it('refuses unknown kinds, and kinds not accepted on this connection', () => {
    failsWith([rawFrame(new Uint8Array(4), { kind: 0 })], 'FLOTILLA_WIRE_UNKNOWN_KIND');
    failsWith([rawFrame(new Uint8Array(4), { kind: 7 })], 'FLOTILLA_WIRE_UNKNOWN_KIND');
    failsWith([rawFrame(new Uint8Array(4), { kind: 255 })], 'FLOTILLA_WIRE_UNKNOWN_KIND');
    failsWith([encodeFrame({ kind: 'kvRequest', body: { requestId: 1, ops: [] } })], 'FLOTILLA_WIRE_UNKNOWN_KIND', { kinds: ['raftBatch', 'heartbeatBatch'] });
    assert.throws(() => decodeFrame({ kind: 99 as never, payload: new Uint8Array(0) }), (err: unknown) => isWireError(err, 'FLOTILLA_WIRE_UNKNOWN_KIND'));
  });

  it('refuses a bad checksum, a flipped payload bit and a flipped kind', () => {
    const payload = encodeSnapshotAck({ regionId: 1, snapshotId: 2, seq: 3, status: 'applied' });
    failsWith([rawFrame(payload, { crc: 0 })], 'FLOTILLA_WIRE_CHECKSUM_MISMATCH');
    const frame = encodeFrame(messages[0]!);
    for (const at of [H, H + 7, frame.length - 1]) {
      const bad = Uint8Array.from(frame);
      bad[at]! ^= 0x10;
      failsWith([bad], 'FLOTILLA_WIRE_CHECKSUM_MISMATCH');
      failsWith([bad.subarray(0, 13), bad.subarray(13)], 'FLOTILLA_WIRE_CHECKSUM_MISMATCH');
    }
    // the checksum covers the kind: a raftBatch relabelled as a kvRequest is caught at the frame
    const relabelled = Uint8Array.from(frame);
    relabelled[5] = FRAME_KINDS.kvRequest;
    failsWith([relabelled], 'FLOTILLA_WIRE_CHECKSUM_MISMATCH');
  });

  it('delivers the frames before a bad one, then fails', () => {
    const good = encodeFrame(messages[1]!);
    const bad = rawFrame(new Uint8Array(4), { crc: 1 });
    const { frames } = failsWith([concatBytes([good, good, bad, good])], 'FLOTILLA_WIRE_CHECKSUM_MISMATCH');
    assert.equal(frames.length, 2);
  });

  it('reports a stream that ends inside a header or a payload as truncated', () => {
    const frame = encodeFrame(messages[0]!);
    failsWith([frame.subarray(0, 3)], 'FLOTILLA_WIRE_TRUNCATED');
    failsWith([frame.subarray(0, H)], 'FLOTILLA_WIRE_TRUNCATED');
    failsWith([frame.subarray(0, frame.length - 1)], 'FLOTILLA_WIRE_TRUNCATED');
    failsWith([frame, frame.subarray(0, 20)], 'FLOTILLA_WIRE_TRUNCATED');
    const decoder = new FrameDecoder();
    decoder.push(frame, () => {});
    decoder.end(); // a clean end between frames
  });

  it('fails when the frame handler throws, and lets its error through', () => {
    const decoder = new FrameDecoder();
    const boom = new Error('handler');
    assert.throws(() => decoder.push(encodeFrame(messages[0]!), () => { throw boom; }), (err: unknown) => err === boom);
    assert.ok(isWireError(decoder.error, 'FLOTILLA_WIRE_DECODER_FAILED'));
    assert.throws(() => decoder.push(new Uint8Array(0), () => {}), (err: unknown) => isWireError(err, 'FLOTILLA_WIRE_DECODER_FAILED'));
  });

  it('frameOf frames a separately encoded payload, within its kind bound', () => {
    const payload = encodeSnapshotAck({ regionId: 1, snapshotId: 2, seq: 3, status: 'rejected' });
    assert.deepStrictEqual(collect([frameOf(FRAME_KINDS.snapshotAck, payload)]), [{ kind: 'snapshotAck', body: { regionId: 1, snapshotId: 2, seq: 3, status: 'rejected' } }]);
    assert.throws(() => frameOf(FRAME_KINDS.snapshotAck, new Uint8Array(FRAME_PAYLOAD_BYTES_MAX.snapshotAck + 1)), (err: unknown) => isWireError(err, 'FLOTILLA_WIRE_FRAME_TOO_LARGE'));
    assert.throws(() => frameOf(42 as never, payload), (err: unknown) => isWireError(err, 'FLOTILLA_WIRE_INVALID_ARGUMENT'));
  });

  it('encodeFrame results stay intact across later encodes (shared scratch memory)', () => {
    const frames = messages.map(encodeFrame);
    const copies = frames.map((f) => Uint8Array.from(f));
    for (let i = 0; i < 2000; i++) encodeFrame(messages[i % messages.length]!);
    assert.deepStrictEqual(frames.map((f) => Uint8Array.from(f)), copies);
  });
});
