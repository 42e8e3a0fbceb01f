/**
 * The pieces on their own: handshake codec, backoff, the outbox's frame splitting, tuning
 * validation, the receiving chunk channel.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SeededRandom } from '@flotilla/raft';
import { limits as wire } from '@flotilla/wire';
import { ChunkChannel } from '../src/chunk-channel.ts';
import { Outbox } from '../src/outbox.ts';
import {
  HandshakeReader,
  TUNING_DEFAULTS,
  backoffCeilingMs,
  backoffDelayMs,
  decodeHandshake,
  encodeHandshake,
  isTransportError,
  limits,
  resolveTuning,
  type Handshake,
} from '../src/index.ts';
import { appendMessage, beat, seqMessage } from './helpers.ts';
import { checkEnvelope } from '../src/outbox.ts';

const sample: Handshake = { purpose: 'snapshot', role: 'reply', status: 'busy', clusterId: 2 ** 53 - 1, fromStore: 3, toStore: 2 ** 40 + 5 };

describe('handshake codec', () => {
  it('round-trips every field, ids up to 2^53-1', () => {
    const bytes = encodeHandshake(sample);
    assert.equal(bytes.length, limits.HANDSHAKE_BYTES);
    assert.deepEqual(decodeHandshake(bytes), sample);
    assert.deepEqual(decodeHandshake(encodeHandshake({ purpose: 'raft', role: 'hello', status: 'ok', clusterId: 1, fromStore: 1, toStore: 2 })).purpose, 'raft');
  });

  it('refuses any single flipped bit (magic, version, checksum or field checks)', () => {
    const bytes = encodeHandshake(sample);
    for (let bit = 0; bit < bytes.length * 8; bit++) {
      const copy = Uint8Array.from(bytes);
      copy[bit >> 3]! ^= 1 << (bit & 7);
      assert.throws(() => decodeHandshake(copy), (e: unknown) => isTransportError(e, 'FLOTILLA_TRANSPORT_BAD_HANDSHAKE'), `bit ${bit}`);
    }
  });

  it('refuses ids of 0 or past 2^53, and a hello with a status', () => {
    assert.throws(() => encodeHandshake({ ...sample, fromStore: 0 }), (e: unknown) => isTransportError(e, 'FLOTILLA_TRANSPORT_INVALID_ARGUMENT'));
    assert.throws(() => encodeHandshake({ ...sample, clusterId: 2 ** 53 }), (e: unknown) => isTransportError(e, 'FLOTILLA_TRANSPORT_INVALID_ARGUMENT'));
    assert.throws(() => encodeHandshake({ ...sample, role: 'hello' }), (e: unknown) => isTransportError(e, 'FLOTILLA_TRANSPORT_INVALID_ARGUMENT'));
  });

  it('reads a handshake split anywhere, and returns the bytes after it', () => {
    const bytes = encodeHandshake(sample);
    const stream = new Uint8Array([...bytes, 9, 8, 7]);
    for (let split = 1; split < stream.length; split++) {
      const reader = new HandshakeReader();
      const first = reader.push(stream.subarray(0, split));
      if (split < bytes.length) {
        assert.equal(first, null);
        const result = reader.push(stream.subarray(split));
        assert.deepEqual(result?.handshake, sample);
        assert.deepEqual([...result!.rest], [9, 8, 7]);
      } else {
        assert.deepEqual(first?.handshake, sample);
        assert.deepEqual([...first!.rest], [9, 8, 7].slice(0, split - bytes.length));
      }
    }
  });

  it('refuses a wrong magic as soon as four bytes are in', () => {
    const reader = new HandshakeReader();
    assert.equal(reader.push(new Uint8Array([0x46, 0x4c])), null);
    assert.throws(() => reader.push(new Uint8Array([0x00, 0x00])), (e: unknown) => isTransportError(e, 'FLOTILLA_TRANSPORT_BAD_HANDSHAKE'));
  });
});

describe('backoff', () => {
  it('doubles the ceiling per failure up to the cap', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map((n) => backoffCeilingMs(n, 50, 1000)), [50, 100, 200, 400, 800, 1000, 1000]);
    assert.equal(backoffCeilingMs(10_000, 50, 5000), 5000, 'no overflow after many failures');
  });

  it('draws full jitter in [0, ceiling] from the injected source: same seed, same delays', () => {
    const a = new SeededRandom(9);
    const b = new SeededRandom(9);
    const delaysA = Array.from({ length: 200 }, (_, i) => backoffDelayMs((i % 12) + 1, 10, 2000, a));
    const delaysB = Array.from({ length: 200 }, (_, i) => backoffDelayMs((i % 12) + 1, 10, 2000, b));
    assert.deepEqual(delaysA, delaysB);
    delaysA.forEach((d, i) => assert.ok(d >= 0 && d <= backoffCeilingMs((i % 12) + 1, 10, 2000)));
    assert.ok(new Set(delaysA).size > 50, 'jittered, not constant');
  });
});

describe('outbox', () => {
  it('builds one frame per kind, splitting raft messages only past the count bound', () => {
    const outbox = new Outbox({ messagesMax: 100_000, bytesMax: 256 * 1024 * 1024 });
    const n = wire.raftBatchMessagesMax * 2 + 1;
    for (let i = 0; i < n; i++) {
      const env = seqMessage(1, i);
      assert.ok(outbox.offerRaft(env, checkEnvelope(env)));
    }
    for (let i = 0; i < wire.heartbeatBatchBeatsMax + 1; i++) assert.ok(outbox.offerHeartbeat(beat(1, i)));
    const taken = outbox.take(1, 2);
    assert.deepEqual(
      taken.frames.map((f) => [f.kind, f.kind === 'raftBatch' ? f.body.messages.length : f.kind === 'heartbeatBatch' ? f.body.beats.length : -1]),
      [
        ['raftBatch', wire.raftBatchMessagesMax],
        ['raftBatch', wire.raftBatchMessagesMax],
        ['raftBatch', 1],
        ['heartbeatBatch', wire.heartbeatBatchBeatsMax],
        ['heartbeatBatch', 1],
      ],
    );
    assert.equal(taken.messages, n + wire.heartbeatBatchBeatsMax + 1);
    assert.ok(outbox.isEmpty);
    assert.equal(outbox.bytes, 0);
  });

  it('splits raft messages past the frame byte bound', () => {
    const outbox = new Outbox({ messagesMax: 1000, bytesMax: 256 * 1024 * 1024 });
    const entryBytes = 3 * 1024 * 1024;
    for (let i = 0; i < 12; i++) {
      const env = appendMessage(i + 1, 5, entryBytes);
      assert.ok(outbox.offerRaft(env, checkEnvelope(env)));
    }
    const sizes = outbox.take(1, 2).frames.map((f) => (f.kind === 'raftBatch' ? f.body.messages.length : 0));
    assert.deepEqual(sizes, [5, 5, 2], '5 × 3 MiB fit a 16 MiB frame, 6 do not');
  });
});

describe('tuning', () => {
  it('takes the defaults, accepts values within [1, ceiling], refuses others', () => {
    assert.deepEqual(resolveTuning(), TUNING_DEFAULTS);
    assert.equal(resolveTuning({ peerQueueMessagesMax: 5 }).peerQueueMessagesMax, 5);
    for (const bad of [{ peerQueueMessagesMax: 0 }, { snapshotChunksInFlight: limits.snapshotChunksInFlightMax + 1 }, { connectTimeoutMs: 1.5 }, { reconnectBackoffBaseMs: 100, reconnectBackoffMaxMs: 10 }, { nope: 1 } as object]) {
      assert.throws(() => resolveTuning(bad), (e: unknown) => isTransportError(e, 'FLOTILLA_TRANSPORT_INVALID_ARGUMENT'), JSON.stringify(bad));
    }
  });
});

describe('chunk channel', () => {
  it('acknowledges chunks as the consumer takes them, and refuses a sender past the bound', async () => {
    const taken: number[] = [];
    const channel = new ChunkChannel({ chunksMax: 2, bytesMax: 100 }, (n) => taken.push(n));
    assert.ok(channel.push(new Uint8Array(10)));
    assert.ok(channel.push(new Uint8Array(10)));
    assert.equal(channel.push(new Uint8Array(10)), false, 'past chunksMax');
    const seen: number[] = [];
    const consuming = (async () => {
      for await (const chunk of channel) seen.push(chunk.length);
    })();
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(taken, [1, 2]);
    assert.ok(channel.push(new Uint8Array(3)));
    channel.end();
    await consuming;
    assert.deepEqual(seen, [10, 10, 3]);
    assert.ok(channel.complete);
  });

  it('makes the pending read fail when the stream breaks', async () => {
    const channel = new ChunkChannel({ chunksMax: 2, bytesMax: 100 }, () => {});
    const reading = channel[Symbol.asyncIterator]().next();
    channel.fail(new Error('lost'));
    await assert.rejects(reading, /lost/);
    assert.equal(channel.complete, false);
  });

  it('is incomplete when the consumer stops early', async () => {
    const channel = new ChunkChannel({ chunksMax: 4, bytesMax: 100 }, () => {});
    channel.push(new Uint8Array(1));
    channel.push(new Uint8Array(1));
    channel.end();
    for await (const _ of channel) break;
    assert.equal(channel.complete, false);
  });
});
