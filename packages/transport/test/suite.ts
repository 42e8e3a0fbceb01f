/**
 * The shared behaviour of every PeerTransport: run by tcp.test.ts on TcpTransport and by
 * memory.test.ts on MemoryTransport, so the twin cannot drift from the real thing.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { crc32c, limits as wire, type RaftEnvelope } from '@flotilla/wire';
import { isTransportError, type SnapshotOutcome } from '../src/index.ts';
import {
  appendMessage,
  beat,
  beatResponse,
  bytesOf,
  chunksOf,
  cluster,
  nextTurn,
  Recorder,
  seqMessage,
  snapshotEnvelope,
  waitFor,
  type TransportFixture,
} from './helpers.ts';

export function describeTransport(name: string, makeFixture: () => TransportFixture): void {
  describe(`${name} (shared PeerTransport suite)`, () => {
    let fx: TransportFixture;
    beforeEach(() => {
      fx = makeFixture();
    });
    afterEach(async () => {
      await fx.dispose();
    });

    it('coalesces the messages of 1,000 groups into one RaftBatch frame per destination per turn', async () => {
      const [a, b, c] = await cluster(fx, [1, 2, 3]);
      for (let g = 1; g <= 1000; g++) {
        assert.equal(a!.t.send(2, appendMessage(g, 10, 128)), null);
        assert.equal(a!.t.send(3, appendMessage(g, 20, 128)), null);
      }
      await waitFor('1,000 messages at each destination', () => b!.rec.messagesFrom(1).length === 1000 && c!.rec.messagesFrom(1).length === 1000);
      assert.equal(b!.rec.raftCalls.length, 1, 'one delivery at store 2');
      assert.equal(c!.rec.raftCalls.length, 1, 'one delivery at store 3');
      const stats = a!.t.stats();
      assert.equal(stats.get(2)!.framesSent, 1);
      assert.equal(stats.get(3)!.framesSent, 1);
      assert.equal(stats.get(2)!.messagesSent, 1000);
      assert.ok(stats.get(2)!.bytesSent > 1000 * 128, 'bytes counted');
      assert.equal(b!.t.stats().get(1)!.framesReceived, 1);
      const got = b!.rec.messagesFrom(1);
      assert.deepEqual(got.map((e) => e.regionId), Array.from({ length: 1000 }, (_, i) => i + 1));
      assert.deepEqual(got[41]!.message.entries[0]!.data, new Uint8Array(128).fill(10));
      assert.deepEqual(got[41]!.regionEpoch, { version: 1, confVer: 1 });
      // The next turn is the next frame.
      a!.t.send(2, appendMessage(5, 11, 128));
      await waitFor('the next turn', () => b!.rec.messagesFrom(1).length === 1001);
      assert.equal(a!.t.stats().get(2)!.framesSent, 2);
    });

    it('keeps per-peer order across turns, and across frames split at the message bound', async () => {
      const [a, b] = await cluster(fx, [1, 2]);
      let seq = 0;
      for (let turn = 0; turn < 20; turn++) {
        for (let i = 0; i < 100; i++) assert.equal(a!.t.send(2, seqMessage((i % 50) + 1, seq++)), null);
        await nextTurn();
      }
      // One turn past raftBatchMessagesMax: split into two frames, order kept.
      const big = wire.raftBatchMessagesMax + 500;
      for (let i = 0; i < big; i++) assert.equal(a!.t.send(2, seqMessage((i % 50) + 1, seq++)), null);
      await waitFor('every message', () => b!.rec.messagesFrom(1).length === seq);
      const indexes = b!.rec.messagesFrom(1).map((e) => e.message.index);
      assert.deepEqual(indexes, Array.from({ length: seq }, (_, i) => i));
      const last = b!.rec.raftCalls.slice(-2).map((c) => c.messages.length);
      assert.deepEqual(last, [wire.raftBatchMessagesMax, 500], 'split exactly at the bound');
    });

    it('coalesces heartbeats and heartbeat responses: one frame each per store pair per turn', async () => {
      const [a, b] = await cluster(fx, [1, 2]);
      const beats = Array.from({ length: 1000 }, (_, i) => beat(i + 1, i));
      const responses = Array.from({ length: 1000 }, (_, i) => beatResponse(i + 1, i));
      for (const x of beats) assert.equal(a!.t.sendHeartbeat(2, x), null);
      for (const x of responses) assert.equal(a!.t.sendHeartbeatResponse(2, x), null);
      await waitFor('beats and responses', () => b!.rec.beatCalls.length === 1 && b!.rec.responseCalls.length === 1);
      assert.deepEqual(b!.rec.beatCalls[0]!.beats, beats);
      assert.deepEqual(b!.rec.responseCalls[0]!.beats, responses);
      assert.equal(a!.t.stats().get(2)!.framesSent, 2);
      assert.equal(a!.t.stats().get(2)!.messagesSent, 2000);
      // A context survives coalescing.
      const withContext = { ...beat(7, 1), context: new Uint8Array([9, 9, 9]) };
      a!.t.sendHeartbeat(2, withContext);
      await waitFor('the beat with a context', () => b!.rec.beatCalls.length === 2);
      assert.deepEqual(b!.rec.beatCalls[1]!.beats, [withContext]);
    });

    it('a dead peer never blocks live ones; down/up reported; reconnects after the peer restarts', async () => {
      const [a, b] = await cluster(fx, [1, 2]);
      a!.t.setPeer(3, await fx.deadAddress());
      await waitFor('store 3 reported down', () => a!.rec.lastState(3) === 'down');
      for (let turn = 0; turn < 10; turn++) {
        assert.equal(a!.t.send(2, seqMessage(1, turn)), null);
        assert.equal(a!.t.send(3, seqMessage(1, turn)), null);
        await nextTurn();
      }
      await waitFor('live peer served', () => b!.rec.messagesFrom(1).length === 10);
      assert.notEqual(a!.t.stats().get(3)!.state, 'up');
      assert.equal(a!.t.stats().get(3)!.queuedMessages, 10, 'queued for the dead peer, within the bound');
      // Store 3 comes up at a new address: what was queued arrives, in order.
      const rec3 = new Recorder();
      const t3 = fx.create(3);
      await t3.start(rec3);
      a!.t.setPeer(3, t3.address());
      await waitFor('store 3 reported up', () => a!.rec.lastState(3) === 'up');
      await waitFor('queued messages delivered', () => rec3.messagesFrom(1).length === 10);
      assert.deepEqual(rec3.messagesFrom(1).map((e) => e.message.index), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      // Store 2 restarts at a new address: down, then up again; reconnects counted.
      await b!.t.close();
      await waitFor('store 2 reported down', () => a!.rec.lastState(2) === 'down');
      const rec2 = new Recorder();
      const t2 = fx.create(2);
      await t2.start(rec2);
      a!.t.setPeer(2, t2.address());
      await waitFor('store 2 reported up again', () => a!.rec.lastState(2) === 'up');
      a!.t.send(2, seqMessage(1, 99));
      await waitFor('delivered to the restarted store', () => rec2.messagesFrom(1).length === 1);
      assert.ok(a!.t.stats().get(2)!.reconnects >= 1);
      const transitions = a!.rec.peerStates.filter(([s]) => s === 2).map(([, state]) => state);
      assert.deepEqual(transitions, ['up', 'down', 'up'], 'transitions only, never repeats');
    });

    it('tells every peer its disk state, again on each new connection; a receiver forgets it with the connection', async () => {
      const [a, b, c] = await cluster(fx, [1, 2, 3]);
      const full = { refusesReplication: true, availableBytes: 5, reserveBytes: 10 };
      b!.t.announceDiskState(full);
      // Ahead of the turn's raft traffic.
      assert.equal(b!.t.send(1, seqMessage(1, 0)), null);
      await waitFor('stores 1 and 3 heard store 2', () => a!.rec.lastDisk(2) !== undefined && c!.rec.lastDisk(2) !== undefined);
      assert.deepEqual(a!.rec.lastDisk(2), full);
      assert.deepEqual(c!.rec.lastDisk(2), full);
      await waitFor('the raft message', () => a!.rec.messagesFrom(2).length === 1);
      assert.equal(a!.rec.diskStates.length, 1, 'said once');
      assert.equal(a!.rec.lastDisk(3), undefined, 'a store that never announced says nothing');
      // Store 2 goes away: what it said goes with it; restarted, it says nothing until it announces.
      await b!.t.close();
      await waitFor('store 1 forgot store 2', () => a!.rec.lastDisk(2) === null);
      await waitFor('store 3 forgot store 2', () => c!.rec.lastDisk(2) === null);
      const t2 = fx.create(2);
      const rec2 = new Recorder();
      await t2.start(rec2);
      for (const [store, t] of [[1, a!.t], [3, c!.t]] as const) {
        t.setPeer(2, t2.address());
        t2.setPeer(store, t.address());
      }
      assert.equal(t2.send(1, seqMessage(1, 1)), null);
      await waitFor('store 1 hears the restarted store 2', () => a!.rec.messagesFrom(2).length === 2);
      assert.equal(a!.rec.lastDisk(2), null);
      // Store 3 said it once; store 1 restarts and hears it again on the new connection.
      c!.t.announceDiskState(full);
      await waitFor('store 1 heard store 3', () => a!.rec.lastDisk(3) !== undefined);
      await a!.t.close();
      const t1 = fx.create(1);
      const rec1 = new Recorder();
      await t1.start(rec1);
      c!.t.setPeer(1, t1.address());
      t1.setPeer(3, c!.t.address());
      await waitFor('the restarted store 1 heard store 3 without a new announcement', () => rec1.lastDisk(3) !== undefined);
      assert.deepEqual(rec1.lastDisk(3), full);
      const room = { refusesReplication: false, availableBytes: 50, reserveBytes: 10 };
      c!.t.announceDiskState(room);
      await waitFor('store 1 heard that store 3 has room', () => rec1.lastDisk(3)?.refusesReplication === false);
      assert.deepEqual(rec1.lastDisk(3), room);
      assert.throws(() => c!.t.announceDiskState({ refusesReplication: true, availableBytes: -1, reserveBytes: 0 }), (err: unknown) => isTransportError(err, 'FLOTILLA_TRANSPORT_INVALID_ARGUMENT'));
    });

    it("pushes back with 'queueFull' past the per-peer bounds; 'peerUnknown'; 'closed'", async () => {
      const [a, b] = await cluster(fx, [1, 2], { tuning: { peerQueueMessagesMax: 100, peerQueueBytesMax: 64 * 1024 } });
      const answers = Array.from({ length: 150 }, (_, i) => a!.t.send(2, seqMessage(1, i)));
      assert.deepEqual(answers.slice(0, 100), new Array(100).fill(null));
      assert.deepEqual(answers.slice(100), new Array(50).fill('queueFull'));
      assert.equal(a!.t.sendHeartbeat(2, beat(1, 1)), 'queueFull', 'beats share the bound');
      assert.equal(a!.t.stats().get(2)!.refusedQueueFull, 51);
      assert.equal(a!.t.stats().get(2)!.queuedMessages, 100);
      await waitFor('the accepted 100 delivered', () => b!.rec.messagesFrom(1).length === 100);
      assert.deepEqual(b!.rec.messagesFrom(1).map((e) => e.message.index), Array.from({ length: 100 }, (_, i) => i));
      assert.equal(a!.t.stats().get(2)!.queuedMessages, 0);
      // The byte bound: 16 KiB entries, 64 KiB of queue (an empty queue takes any one message).
      const sizes = Array.from({ length: 6 }, (_, i) => a!.t.send(2, appendMessage(1, i, 16 * 1024)));
      assert.deepEqual(sizes, [null, null, null, 'queueFull', 'queueFull', 'queueFull']);
      assert.equal(a!.t.send(2, appendMessage(1, 9, 100 * 1024)), 'queueFull');
      await waitFor('the accepted appends delivered', () => b!.rec.messagesFrom(1).length === 103);
      assert.equal(a!.t.send(2, appendMessage(1, 9, 100 * 1024)), null, 'an empty queue takes a message larger than its byte bound');
      assert.equal(a!.t.send(9, seqMessage(1, 1)), 'peerUnknown');
      assert.equal(a!.t.sendHeartbeat(9, beat(1, 1)), 'peerUnknown');
      await a!.t.close();
      assert.equal(a!.t.send(2, seqMessage(1, 1)), 'closed');
      assert.equal(a!.t.sendHeartbeatResponse(2, beatResponse(1, 1)), 'closed');
    });

    it('streams a multi-MiB snapshot in chunks while heartbeats keep flowing on the raft connection', async () => {
      const [a, b] = await cluster(fx, [1, 2]);
      const image = bytesOf(8 * 1024 * 1024, 5);
      const chunkBytes = 128 * 1024;
      const received: Uint8Array[] = [];
      let beatsDuringStream = 0;
      let envelopeSeen: RaftEnvelope | null = null;
      b!.rec.snapshotHandler = async (from, envelope, chunks) => {
        assert.equal(from, 1);
        envelopeSeen = envelope;
        for await (const chunk of chunks) {
          received.push(chunk);
          if (received.length % 8 === 1) {
            // Mid-stream: a heartbeat from the sender must get through now.
            const before = b!.rec.beatsFrom(1).length;
            assert.equal(a!.t.sendHeartbeat(2, beat(1, received.length)), null);
            await waitFor('a heartbeat during the snapshot stream', () => b!.rec.beatsFrom(1).length === before + 1);
            beatsDuringStream++;
          }
        }
      };
      const outcome = await a!.t.sendSnapshot(2, snapshotEnvelope(4, 77), chunksOf(image, chunkBytes));
      assert.equal(outcome, 'finished');
      assert.equal(received.length, image.length / chunkBytes, 'chunk boundaries kept');
      assert.ok(received.every((c) => c.length === chunkBytes));
      const joined = Buffer.concat(received);
      assert.equal(crc32c(joined), crc32c(image));
      assert.equal(beatsDuringStream, 8);
      assert.equal(envelopeSeen!.snapshotId, 77);
      assert.equal(envelopeSeen!.message.type, 'snapshot');
      assert.deepEqual(envelopeSeen!.message.snapshot!.metadata.confState.voters, [41, 42]);
      // An empty stream is a valid stream.
      let emptyChunks = -1;
      b!.rec.snapshotHandler = async (_from, _envelope, chunks) => {
        emptyChunks = 0;
        for await (const _ of chunks) emptyChunks++;
      };
      assert.equal(await a!.t.sendSnapshot(2, snapshotEnvelope(5, 78), chunksOf(new Uint8Array(0), 1)), 'finished');
      assert.equal(emptyChunks, 0);
    });

    it("answers 'failed' when the receiver rejects the snapshot, stops reading early, or the source fails", async () => {
      const [a, b] = await cluster(fx, [1, 2]);
      const image = bytesOf(1024 * 1024, 6);
      b!.rec.snapshotHandler = async (_from, _envelope, chunks) => {
        for await (const _ of chunks) throw new Error('no room for this region');
      };
      assert.equal(await a!.t.sendSnapshot(2, snapshotEnvelope(4, 1), chunksOf(image, 64 * 1024)), 'failed');
      assert.ok(fx.errors.some((e) => isTransportError(e, 'FLOTILLA_TRANSPORT_SNAPSHOT_REJECTED')));
      // Returning without reading every chunk is not an install.
      b!.rec.snapshotHandler = async () => {};
      assert.equal(await a!.t.sendSnapshot(2, snapshotEnvelope(4, 2), chunksOf(image, 64 * 1024)), 'failed');
      // The source fails mid-stream: the receiver's iteration throws, the outcome is 'failed'.
      let receiverSaw: unknown = null;
      b!.rec.snapshotHandler = async (_from, _envelope, chunks) => {
        try {
          for await (const _ of chunks) {
            // keep reading
          }
        } catch (err) {
          receiverSaw = err;
          throw err;
        }
      };
      async function* failing(): AsyncGenerator<Uint8Array> {
        yield new Uint8Array(10);
        throw new Error('disk read failed');
      }
      assert.equal(await a!.t.sendSnapshot(2, snapshotEnvelope(4, 3), failing()), 'failed');
      await waitFor('the receiver saw the stream break', () => receiverSaw !== null);
      assert.ok(isTransportError(receiverSaw, 'FLOTILLA_TRANSPORT_SNAPSHOT_ABORTED'), `receiver saw ${String(receiverSaw)}`);
      // A chunk larger than one SnapshotChunk frame can carry is refused before it is sent.
      async function* oversized(): AsyncGenerator<Uint8Array> {
        yield new Uint8Array(wire.snapshotChunkDataBytesMax + 1);
      }
      b!.rec.snapshotHandler = new Recorder().snapshotHandler;
      assert.equal(await a!.t.sendSnapshot(2, snapshotEnvelope(4, 4), oversized()), 'failed');
      // And the connection keeps working afterwards.
      assert.equal(await a!.t.sendSnapshot(2, snapshotEnvelope(4, 5), chunksOf(image, 64 * 1024)), 'finished');
    });

    it("answers 'failed' for a snapshot to an unknown or unreachable store", async () => {
      const [a] = await cluster(fx, [1, 2]);
      assert.equal(await a!.t.sendSnapshot(9, snapshotEnvelope(4, 1), chunksOf(new Uint8Array(10), 5)), 'failed');
      a!.t.setPeer(3, await fx.deadAddress());
      const outcome: SnapshotOutcome = await a!.t.sendSnapshot(3, snapshotEnvelope(4, 2), chunksOf(new Uint8Array(10), 5));
      assert.equal(outcome, 'failed');
    });

    it('removePeer stops traffic to the store and forgets it; setPeer brings it back', async () => {
      const [a, b] = await cluster(fx, [1, 2]);
      a!.t.send(2, seqMessage(1, 1));
      a!.t.removePeer(2);
      assert.equal(a!.t.send(2, seqMessage(1, 2)), 'peerUnknown');
      assert.equal(a!.t.stats().has(2), false);
      a!.t.removePeer(2); // idempotent
      a!.t.setPeer(2, b!.t.address());
      await waitFor('back up', () => a!.t.stats().get(2)?.state === 'up');
      assert.equal(a!.t.send(2, seqMessage(1, 3)), null);
      await waitFor('delivered', () => b!.rec.messagesFrom(1).some((e) => e.message.index === 3));
      assert.equal(b!.rec.messagesFrom(1).some((e) => e.message.index === 1), false, 'the queue of a removed peer is dropped');
    });

    it('never connects stores of different clusters', async () => {
      const [a] = await cluster(fx, [1, 2]);
      const rec = new Recorder();
      const stranger = fx.create(5, { clusterId: 99 });
      await stranger.start(rec);
      a!.t.setPeer(5, stranger.address());
      stranger.setPeer(1, a!.t.address());
      assert.equal(a!.t.send(5, seqMessage(1, 1)), null);
      await waitFor('store 5 reported down', () => a!.rec.lastState(5) === 'down' && rec.lastState(1) === 'down');
      for (let i = 0; i < 20; i++) await nextTurn();
      assert.equal(rec.raftCalls.length, 0);
      assert.notEqual(a!.t.stats().get(5)!.state, 'up');
    });

    it('refuses contract violations with typed errors, thrown to the caller', async () => {
      const [a] = await cluster(fx, [1, 2]);
      const local = { ...seqMessage(1, 1), message: { ...seqMessage(1, 1).message, type: 'hup' as const } };
      assert.throws(() => a!.t.send(2, local), (e: unknown) => isTransportError(e, 'FLOTILLA_TRANSPORT_INVALID_ARGUMENT'));
      assert.throws(() => a!.t.send(2, snapshotEnvelope(1, 1)), (e: unknown) => isTransportError(e, 'FLOTILLA_TRANSPORT_INVALID_ARGUMENT'));
      const mismatched = { ...seqMessage(1, 1), fromPeer: 999 };
      assert.throws(() => a!.t.send(2, mismatched), (e: unknown) => isTransportError(e, 'FLOTILLA_TRANSPORT_INVALID_ARGUMENT'));
      assert.throws(() => a!.t.sendHeartbeat(2, { ...beat(1, 1), regionId: 0 }), (e: unknown) => isTransportError(e, 'FLOTILLA_TRANSPORT_INVALID_ARGUMENT'));
      const huge = appendMessage(1, 1, wire.raftBatchPayloadBytesMax);
      assert.throws(() => a!.t.send(2, huge), (e: unknown) => isTransportError(e, 'FLOTILLA_TRANSPORT_MESSAGE_TOO_LARGE'));
      await assert.rejects(a!.t.sendSnapshot(2, seqMessage(1, 1), chunksOf(new Uint8Array(1), 1)), (e: unknown) => isTransportError(e, 'FLOTILLA_TRANSPORT_INVALID_ARGUMENT'));
      assert.throws(() => a!.t.setPeer(1, a!.t.address()), (e: unknown) => isTransportError(e, 'FLOTILLA_TRANSPORT_INVALID_ARGUMENT'));
      assert.throws(() => fx.create(3).address(), (e: unknown) => isTransportError(e, 'FLOTILLA_TRANSPORT_NOT_STARTED'));
    });
  });
}
