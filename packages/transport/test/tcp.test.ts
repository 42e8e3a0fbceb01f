/**
 * TcpTransport: the shared suite, plus what only real sockets have — handshakes, hostile bytes
 * from raw sockets, socket backpressure from a reader that stopped reading, stalls and timeouts.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { FRAME_KINDS, FrameDecoder, decodeFrame, encodeFrame, frameOf, isWireError, limits as wire, type RaftEnvelope } from '@flotilla/wire';
import { decodeHandshake, encodeHandshake, isTransportError, limits, type Handshake, type TransportErrorCode } from '../src/index.ts';
import { appendMessage, beat, bytesOf, chunksOf, cluster, nextTurn, seqMessage, snapshotEnvelope, tcpFixture, waitFor, type TransportFixture } from './helpers.ts';
import { describeTransport } from './suite.ts';

describeTransport('TcpTransport', tcpFixture);

const CLUSTER = 7;

function hello(fields: Partial<Handshake> = {}): Uint8Array {
  return encodeHandshake({ purpose: 'raft', role: 'hello', status: 'ok', clusterId: CLUSTER, fromStore: 5, toStore: 1, ...fields });
}

/** A raw client socket that records what it receives and when it closes. */
class RawClient {
  readonly socket: net.Socket;
  received = Buffer.alloc(0);
  closed = false;

  constructor(port: number) {
    this.socket = net.connect({ host: '127.0.0.1', port });
    this.socket.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
    });
    this.socket.on('error', () => {});
    this.socket.on('close', () => {
      this.closed = true;
    });
  }

  reply(): Handshake {
    return decodeHandshake(this.received.subarray(0, limits.HANDSHAKE_BYTES));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.socket.destroy();
    await waitFor('raw socket closed', () => this.closed);
  }
}

function hasError(fx: TransportFixture, code: TransportErrorCode, causeCode?: string): boolean {
  return fx.errors.some((e) => e.code === code && (causeCode === undefined || (isWireError(e.cause) && e.cause.code === causeCode)));
}

describe('TcpTransport (sockets)', () => {
  let fx: TransportFixture;
  const raws: RawClient[] = [];
  const servers: net.Server[] = [];
  const serverSockets: net.Socket[] = [];
  beforeEach(() => {
    fx = tcpFixture();
  });
  afterEach(async () => {
    await Promise.all(raws.splice(0).map((r) => r.close()));
    await fx.dispose();
    // A paused socket never reads its EOF: destroy the fake peers' sockets, then their servers.
    for (const socket of serverSockets.splice(0)) socket.destroy();
    await Promise.all(servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  });

  function raw(port: number): RawClient {
    const client = new RawClient(port);
    raws.push(client);
    return client;
  }

  /** Store 2 keeps getting store 1's messages: the transport still serves its real peers. */
  async function stillServing(a: { t: { send(to: number, e: RaftEnvelope): unknown } }, b: { rec: { messagesFrom(s: number): RaftEnvelope[] } }, seq: number): Promise<void> {
    a.t.send(2, seqMessage(1, seq));
    await waitFor(`message ${seq} still delivered`, () => b.rec.messagesFrom(1).some((e) => e.message.index === seq));
  }

  it('flush() writes what is queued at once, one frame per destination; later sends wait for the turn', async () => {
    const [a, b] = await cluster(fx, [1, 2]);
    for (let g = 1; g <= 10; g++) a!.t.send(2, appendMessage(g, 1, 64));
    a!.t.flush();
    assert.equal(a!.t.stats().get(2)!.framesSent, 1, 'written before the turn ended');
    a!.t.send(2, appendMessage(11, 1, 64));
    a!.t.send(2, appendMessage(12, 1, 64));
    assert.equal(a!.t.stats().get(2)!.framesSent, 1, 'without flush(), the end of the turn');
    await waitFor('all 12 messages', () => b!.rec.messagesFrom(1).length === 12);
    assert.equal(a!.t.stats().get(2)!.framesSent, 2);
    assert.deepEqual(b!.rec.messagesFrom(1).map((e) => e.regionId), Array.from({ length: 12 }, (_, i) => i + 1));
  });

  it('closes a connection that sends garbage instead of a handshake, and keeps serving', async () => {
    const [a, b] = await cluster(fx, [1, 2]);
    const port = b!.t.address().port;
    const garbage = raw(port);
    garbage.socket.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await waitFor('garbage connection closed', () => garbage.closed);
    assert.equal(garbage.received.length, 0, 'nothing answered to garbage');
    assert.ok(hasError(fx, 'FLOTILLA_TRANSPORT_BAD_HANDSHAKE'));
    // Almost a handshake: right magic but another version; and a flipped bit (checksum).
    const v2 = hello();
    v2[4] = 2;
    const fixed = encodeHandshake({ purpose: 'raft', role: 'hello', status: 'ok', clusterId: CLUSTER, fromStore: 5, toStore: 2 });
    const flipped = Uint8Array.from(fixed);
    flipped[20]! ^= 1;
    for (const bytes of [v2, flipped]) {
      const client = raw(port);
      client.socket.write(bytes);
      await waitFor('bad handshake closed', () => client.closed);
    }
    await stillServing(a!, b!, 1);
    assert.equal(b!.rec.raftCalls.every((c) => c.from === 1), true);
  });

  it('answers a handshake from another cluster or meant for another store, then closes', async () => {
    const [a, b] = await cluster(fx, [1, 2]);
    const port = b!.t.address().port;
    const cases: [Partial<Handshake>, Handshake['status'], TransportErrorCode][] = [
      [{ clusterId: 8, toStore: 2 }, 'clusterMismatch', 'FLOTILLA_TRANSPORT_CLUSTER_MISMATCH'],
      [{ toStore: 3 }, 'storeMismatch', 'FLOTILLA_TRANSPORT_STORE_MISMATCH'],
      [{ fromStore: 2, toStore: 2 }, 'storeMismatch', 'FLOTILLA_TRANSPORT_STORE_MISMATCH'],
    ];
    for (const [fields, status, code] of cases) {
      const client = raw(port);
      client.socket.write(hello(fields));
      await waitFor(`${status} answered and closed`, () => client.closed);
      const reply = client.reply();
      assert.equal(reply.role, 'reply');
      assert.equal(reply.status, status);
      assert.equal(reply.fromStore, 2);
      assert.ok(hasError(fx, code), code);
    }
    await stillServing(a!, b!, 2);
  });

  it('closes the connection of a malformed, oversized or misaddressed frame, and keeps serving', async () => {
    const [a, b] = await cluster(fx, [1, 2]);
    const port = b!.t.address().port;
    async function afterHandshake(fromStore: number): Promise<RawClient> {
      const client = raw(port);
      client.socket.write(hello({ fromStore, toStore: 2 }));
      await waitFor('handshake reply', () => client.received.length >= limits.HANDSHAKE_BYTES);
      assert.equal(client.reply().status, 'ok');
      return client;
    }
    // A header declaring more than a RaftBatch may carry: refused from the header alone.
    const oversized = await afterHandshake(5);
    const header = Buffer.alloc(wire.FRAME_HEADER_BYTES);
    header.writeUInt32BE(wire.raftBatchPayloadBytesMax + 1, 0);
    header[4] = wire.WIRE_VERSION;
    header[5] = FRAME_KINDS.raftBatch;
    oversized.socket.write(header);
    await waitFor('oversized frame: connection closed', () => oversized.closed);
    assert.ok(hasError(fx, 'FLOTILLA_TRANSPORT_BAD_FRAME', 'FLOTILLA_WIRE_FRAME_TOO_LARGE'));
    // A corrupted frame (checksum).
    const corrupt = await afterHandshake(6);
    const frame = Buffer.from(encodeFrame({ kind: 'raftBatch', body: { fromStore: 6, toStore: 2, messages: [seqMessage(1, 1)] } }));
    frame[frame.length - 1]! ^= 0xff;
    corrupt.socket.write(frame);
    await waitFor('corrupt frame: connection closed', () => corrupt.closed);
    assert.ok(hasError(fx, 'FLOTILLA_TRANSPORT_BAD_FRAME', 'FLOTILLA_WIRE_CHECKSUM_MISMATCH'));
    // A valid frame claiming to come from another store than the handshake said.
    const liar = await afterHandshake(7);
    liar.socket.write(encodeFrame({ kind: 'raftBatch', body: { fromStore: 1, toStore: 2, messages: [seqMessage(1, 1)] } }));
    await waitFor('misaddressed frame: connection closed', () => liar.closed);
    assert.ok(hasError(fx, 'FLOTILLA_TRANSPORT_PROTOCOL'));
    // A snapshot chunk on a raft connection: a kind this connection does not accept.
    const wrongKind = await afterHandshake(8);
    wrongKind.socket.write(frameOf(FRAME_KINDS.snapshotAck, new Uint8Array([0x94, 1, 1, 0, 0])));
    await waitFor('wrong kind: connection closed', () => wrongKind.closed);
    assert.ok(hasError(fx, 'FLOTILLA_TRANSPORT_BAD_FRAME', 'FLOTILLA_WIRE_UNKNOWN_KIND'));
    // A good frame from a raw peer is delivered (the raw socket speaks the protocol correctly).
    const good = await afterHandshake(9);
    good.socket.write(encodeFrame({ kind: 'heartbeatBatch', body: { fromStore: 9, toStore: 2, beats: [beat(3, 4)] } }));
    await waitFor('a raw peer delivered', () => b!.rec.beatsFrom(9).length === 1);
    await stillServing(a!, b!, 3);
    assert.equal(b!.rec.messagesFrom(1).length, 1, 'only the real peer’s message came through');
  });

  it('closes a connection that never completes its handshake', async () => {
    const [a, b] = await cluster(fx, [1, 2], { tuning: { handshakeTimeoutMs: 50 } });
    const silent = raw(b!.t.address().port);
    silent.socket.write(hello({ toStore: 2 }).subarray(0, 10));
    await waitFor('silent connection closed', () => silent.closed);
    assert.ok(hasError(fx, 'FLOTILLA_TRANSPORT_HANDSHAKE_TIMEOUT'));
    await stillServing(a!, b!, 4);
  });

  it('reports both sides of a cluster mismatch and of a stale address', async () => {
    const [a, b] = await cluster(fx, [1, 2]);
    // Store 1 believes store 3 lives where store 2 does.
    a!.t.setPeer(3, b!.t.address());
    await waitFor('stale address refused', () => hasError(fx, 'FLOTILLA_TRANSPORT_STORE_MISMATCH'));
    await waitFor('store 3 down', () => a!.rec.lastState(3) === 'down');
    assert.ok(fx.errors.filter((e) => e.code === 'FLOTILLA_TRANSPORT_STORE_MISMATCH').length >= 2, 'reported by the acceptor and the dialer');
    await stillServing(a!, b!, 5);
  });

  /**
   * A fake store 5: a raw server that answers the handshake and then stops reading, like a peer
   * whose event loop is stuck. Returns a way to resume reading and the frames read.
   */
  async function slowReader(): Promise<{ port: number; resume(): void; envelopes: RaftEnvelope[]; socket(): net.Socket | null }> {
    let conn: net.Socket | null = null;
    const envelopes: RaftEnvelope[] = [];
    const decoder = new FrameDecoder({ kinds: ['raftBatch', 'heartbeatBatch', 'heartbeatResponseBatch'] });
    const server = net.createServer((socket) => {
      conn = socket;
      serverSockets.push(socket);
      socket.on('error', () => {});
      let handshaken = false;
      socket.on('data', (chunk: Buffer) => {
        let rest: Uint8Array = chunk;
        if (!handshaken) {
          handshaken = true;
          const h = decodeHandshake(chunk.subarray(0, limits.HANDSHAKE_BYTES));
          socket.write(encodeHandshake({ purpose: 'raft', role: 'reply', status: 'ok', clusterId: CLUSTER, fromStore: 5, toStore: h.fromStore }));
          socket.pause();
          rest = chunk.subarray(limits.HANDSHAKE_BYTES);
        }
        decoder.push(rest, (f) => {
          const m = decodeFrame(f);
          if (m.kind === 'raftBatch') envelopes.push(...m.body.messages);
        });
      });
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      port: (server.address() as net.AddressInfo).port,
      resume: () => conn?.resume(),
      envelopes,
      socket: () => conn,
    };
  }

  it('stops flushing to a peer that stopped reading (socket backpressure) without slowing the others', async () => {
    const [a, b] = await cluster(fx, [1, 2], { tuning: { peerQueueBytesMax: 1024 * 1024 } });
    const slow = await slowReader();
    a!.t.setPeer(5, { host: '127.0.0.1', port: slow.port });
    await waitFor('store 5 up', () => a!.t.stats().get(5)?.state === 'up');
    let accepted = 0;
    let refused = 0;
    let turn = 0;
    const deadline = Date.now() + 10_000;
    // Offer 512 KiB per turn to the slow store (half its queue) and one message to the live one,
    // until pushback: the queue can only fill if flushing to the slow store stopped.
    while (refused === 0) {
      assert.ok(Date.now() < deadline, 'pushback within 10 s');
      for (let i = 0; i < 8; i++) {
        if (a!.t.send(5, appendMessage(1, accepted, 64 * 1024)) === null) accepted++;
        else refused++;
      }
      a!.t.send(2, seqMessage(1, turn++));
      await nextTurn();
    }
    const live = turn;
    await waitFor('the live peer got every turn', () => b!.rec.messagesFrom(1).length === live);
    assert.equal(a!.t.stats().get(5)!.state, 'up', 'backpressure is not a failure');
    assert.ok(a!.t.stats().get(5)!.queuedMessages > 0, 'the slow peer’s queue holds the rest');
    assert.ok(a!.t.stats().get(5)!.refusedQueueFull > 0);
    // The reader wakes up: everything accepted arrives, in order.
    slow.resume();
    await waitFor('every accepted message read', () => slow.envelopes.length === accepted, 20_000);
    assert.deepEqual(slow.envelopes.map((e) => e.message.index), Array.from({ length: accepted }, (_, i) => i));
    assert.equal(a!.t.send(5, appendMessage(1, accepted, 64 * 1024)), null, 'the queue takes messages again');
  });

  it('closes a connection stalled for writeStallTimeoutMs and reports the peer down', async () => {
    const [a] = await cluster(fx, [1, 2], { tuning: { writeStallTimeoutMs: 100, peerQueueBytesMax: 1024 * 1024 } });
    const slow = await slowReader();
    a!.t.setPeer(5, { host: '127.0.0.1', port: slow.port });
    await waitFor('store 5 up', () => a!.t.stats().get(5)?.state === 'up');
    const deadline = Date.now() + 10_000;
    let i = 0;
    while (!hasError(fx, 'FLOTILLA_TRANSPORT_WRITE_STALLED')) {
      assert.ok(Date.now() < deadline, 'stall detected within 10 s');
      a!.t.send(5, appendMessage(1, i++, 64 * 1024));
      await nextTurn();
    }
    await waitFor('store 5 down', () => a!.rec.lastState(5) === 'down');
    slow.socket()?.destroy();
  });

  it('fails a snapshot whose receiver stops reading (idle timeout), and one lost with its connection', async () => {
    const [a, b] = await cluster(fx, [1, 2], { tuning: { snapshotIdleTimeoutMs: 150, snapshotChunksInFlight: 2 } });
    let release: () => void = () => {};
    b!.rec.snapshotHandler = async (_from, _envelope, chunks) => {
      const iterator = chunks[Symbol.asyncIterator]();
      await iterator.next();
      await new Promise<void>((resolve) => (release = resolve)); // stuck
      await iterator.return?.();
    };
    const image = bytesOf(512 * 1024, 1);
    assert.equal(await a!.t.sendSnapshot(2, snapshotEnvelope(4, 1), chunksOf(image, 32 * 1024)), 'failed');
    assert.ok(hasError(fx, 'FLOTILLA_TRANSPORT_SNAPSHOT_TIMEOUT'));
    release();
    // The receiving transport closes mid-stream.
    let chunksSeen = 0;
    b!.rec.snapshotHandler = async (_from, _envelope, chunks) => {
      for await (const _ of chunks) {
        chunksSeen++;
        if (chunksSeen === 2) void b!.t.close();
      }
    };
    assert.equal(await a!.t.sendSnapshot(2, snapshotEnvelope(4, 2), chunksOf(image, 32 * 1024)), 'failed');
  });

  it('fails a snapshot whose sender stalls (receiver idle timeout)', async () => {
    const [a, b] = await cluster(fx, [1, 2], { tuning: { snapshotIdleTimeoutMs: 100 } });
    let receiverSaw: unknown = null;
    b!.rec.snapshotHandler = async (_from, _envelope, chunks) => {
      try {
        for await (const _ of chunks) {
          // read
        }
      } catch (err) {
        receiverSaw = err;
        throw err;
      }
    };
    let unblock: () => void = () => {};
    async function* stalls(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array(100);
      await new Promise<void>((resolve) => (unblock = resolve));
    }
    assert.equal(await a!.t.sendSnapshot(2, snapshotEnvelope(4, 1), stalls()), 'failed');
    assert.ok(isTransportError(receiverSaw, 'FLOTILLA_TRANSPORT_SNAPSHOT_TIMEOUT'), String(receiverSaw));
    unblock();
  });

  it('refuses snapshot streams past snapshotReceivesMax', async () => {
    const [a, b] = await cluster(fx, [1, 2], { tuning: { snapshotReceivesMax: 1 } });
    let release: () => void = () => {};
    let started = 0;
    b!.rec.snapshotHandler = async (_from, _envelope, chunks) => {
      started++;
      await new Promise<void>((resolve) => (release = resolve));
      for await (const _ of chunks) {
        // read
      }
    };
    const first = a!.t.sendSnapshot(2, snapshotEnvelope(4, 1), chunksOf(new Uint8Array(1000), 100));
    await waitFor('first stream started', () => started === 1);
    assert.equal(await a!.t.sendSnapshot(2, snapshotEnvelope(5, 2), chunksOf(new Uint8Array(1000), 100)), 'failed');
    assert.ok(hasError(fx, 'FLOTILLA_TRANSPORT_LIMIT_EXCEEDED'));
    release();
    assert.equal(await first, 'finished');
  });

  it('treats a peer that accepts but never answers the handshake as a failed dial, and retries', async () => {
    const [a, b] = await cluster(fx, [1, 2], { tuning: { connectTimeoutMs: 50 } });
    let accepted = 0;
    const mute = net.createServer((socket) => {
      accepted++;
      serverSockets.push(socket);
      socket.on('error', () => {});
    });
    servers.push(mute);
    await new Promise<void>((resolve) => mute.listen(0, '127.0.0.1', resolve));
    a!.t.setPeer(5, { host: '127.0.0.1', port: (mute.address() as net.AddressInfo).port });
    await waitFor('two dials timed out', () => accepted >= 2 && fx.errors.filter((e) => e.code === 'FLOTILLA_TRANSPORT_CONNECT_FAILED' && e.store === 5).length >= 2);
    assert.equal(a!.rec.lastState(5), 'down');
    assert.deepEqual(a!.rec.peerStates.filter(([s]) => s === 5), [[5, 'down']], 'down reported once, not per attempt');
    await stillServing(a!, b!, 7);
  });

  it('keeps one raft connection per peer: a redial replaces the old inbound connection', async () => {
    const [a, b] = await cluster(fx, [1, 2]);
    // Point store 1 at the same address again via a different host spelling: a redial.
    a!.t.setPeer(2, { host: 'localhost', port: b!.t.address().port });
    await waitFor('redialed and up', () => a!.t.stats().get(2)?.state === 'up' && a!.rec.peerStates.filter(([s, st]) => s === 2 && st === 'up').length === 2);
    await stillServing(a!, b!, 6);
  });
});
