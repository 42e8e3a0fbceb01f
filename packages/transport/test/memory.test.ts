/**
 * MemoryTransport: the shared suite, plus the fault injection only the twin has — drops,
 * one-way and two-way partitions, backpressure, delays counted in turns — and determinism.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { MemoryNetwork, MemoryTransport, type StoreId } from '../src/index.ts';
import { bytesOf, chunksOf, memoryFixture, nextTurn, Recorder, seqMessage, snapshotEnvelope, waitFor, type Node } from './helpers.ts';
import { describeTransport } from './suite.ts';

describeTransport('MemoryTransport', memoryFixture);

describe('MemoryNetwork faults', () => {
  let network: MemoryNetwork;
  let transports: MemoryTransport[];
  beforeEach(() => {
    network = new MemoryNetwork({ seed: 7 });
    transports = [];
  });
  afterEach(async () => {
    await Promise.all(transports.map((t) => t.close()));
  });

  async function start(stores: readonly StoreId[], net = network): Promise<Node[]> {
    const nodes: Node[] = [];
    for (const store of stores) {
      const rec = new Recorder();
      const t = new MemoryTransport(net, { localStore: store, tuning: { peerQueueMessagesMax: 100 } });
      transports.push(t);
      await t.start(rec);
      nodes.push({ store, t, rec });
    }
    for (const a of nodes) for (const b of nodes) if (a !== b) a.t.setPeer(b.store, b.t.address());
    await waitFor('all up', () => nodes.every((a) => nodes.every((b) => a === b || a.t.stats().get(b.store)?.state === 'up')));
    return nodes;
  }

  it('drops every frame of a link at rate 1, none at rate 0; the link stays up', async () => {
    const [a, b] = await start([1, 2]);
    network.drop(1, 2, 1);
    for (let i = 0; i < 5; i++) {
      a!.t.send(2, seqMessage(1, i));
      await nextTurn();
    }
    await waitFor('five frames dropped', () => network.framesDropped === 5);
    assert.equal(b!.rec.raftCalls.length, 0);
    assert.equal(a!.t.stats().get(2)!.state, 'up');
    assert.equal(a!.t.stats().get(2)!.framesSent, 5, 'counted as sent: the loss is the network’s');
    network.drop(1, 2, 0);
    a!.t.send(2, seqMessage(1, 5));
    await waitFor('delivered again', () => b!.rec.messagesFrom(1).length === 1);
  });

  it('is deterministic: the same seed drops the same frames', async () => {
    async function run(): Promise<number[]> {
      const net = new MemoryNetwork({ seed: 1234 });
      const [a, b] = await start([1, 2], net);
      net.drop(1, 2, 0.5);
      for (let i = 0; i < 60; i++) {
        a!.t.send(2, seqMessage(1, i));
        await nextTurn();
      }
      await waitFor('every frame settled', () => b!.rec.messagesFrom(1).length + net.framesDropped === 60);
      return b!.rec.messagesFrom(1).map((e) => e.message.index);
    }
    const first = await run();
    const second = await run();
    assert.deepEqual(first, second);
    assert.ok(first.length > 10 && first.length < 50, `about half delivered (${first.length})`);
  });

  it('one-way partition: the cut direction is down and queues, the other flows; heal delivers', async () => {
    const [a, b] = await start([1, 2]);
    network.partition(1, 2, { oneWay: true });
    await waitFor('1 sees 2 down', () => a!.rec.lastState(2) === 'down');
    for (let i = 0; i < 3; i++) assert.equal(a!.t.send(2, seqMessage(1, i)), null);
    assert.equal(b!.t.send(1, seqMessage(2, 0)), null);
    await waitFor('2 → 1 still flows', () => a!.rec.messagesFrom(2).length === 1);
    assert.equal(b!.rec.lastState(1), 'up');
    assert.equal(a!.t.stats().get(2)!.queuedMessages, 3);
    const overflow = Array.from({ length: 100 }, (_, i) => a!.t.send(2, seqMessage(1, 3 + i)));
    assert.equal(overflow.filter((r) => r === 'queueFull').length, 3, 'bounded while down');
    network.heal(1, 2);
    await waitFor('1 sees 2 up', () => a!.rec.lastState(2) === 'up');
    await waitFor('the queue flows', () => b!.rec.messagesFrom(1).length === 100);
    assert.deepEqual(b!.rec.messagesFrom(1).map((e) => e.message.index), Array.from({ length: 100 }, (_, i) => i));
    assert.equal(a!.t.stats().get(2)!.reconnects, 1);
  });

  it('two-way partition: both sides see each other down; frames in flight are lost', async () => {
    const [a, b, c] = await start([1, 2, 3]);
    network.delay(1, 2, 5);
    a!.t.send(2, seqMessage(1, 0));
    await nextTurn();
    await nextTurn();
    assert.equal(network.framesInFlight, 1);
    network.partition(1, 2);
    await waitFor('both down', () => a!.rec.lastState(2) === 'down' && b!.rec.lastState(1) === 'down');
    await waitFor('the delayed frame is lost', () => network.framesInFlight === 0);
    assert.equal(b!.rec.raftCalls.length, 0);
    // Store 3 is unaffected.
    a!.t.send(3, seqMessage(1, 1));
    b!.t.send(3, seqMessage(2, 1));
    await waitFor('3 hears both', () => c!.rec.raftCalls.length === 2);
    network.heal();
    await waitFor('both up', () => a!.rec.lastState(2) === 'up' && b!.rec.lastState(1) === 'up');
  });

  it('delays frames by whole turns and keeps their order', async () => {
    const [a, b] = await start([1, 2]);
    network.delay(1, 2, 3);
    const sentAt = network.turn;
    a!.t.send(2, seqMessage(1, 0));
    await waitFor('delivered', () => b!.rec.raftCalls.length === 1);
    assert.equal(network.turn - sentAt, 4, 'the flush turn + 3');
    // Shorter delay later: never overtakes what is already in flight.
    a!.t.send(2, seqMessage(1, 1));
    await nextTurn();
    network.delay(1, 2, 0);
    a!.t.send(2, seqMessage(1, 2));
    await waitFor('both delivered', () => b!.rec.messagesFrom(1).length === 3);
    assert.deepEqual(b!.rec.messagesFrom(1).map((e) => e.message.index), [0, 1, 2]);
  });

  it('block is backpressure: the link stays up, the queue fills and pushes back; unblock drains it', async () => {
    const [a, b] = await start([1, 2]);
    network.block(1, 2);
    const answers: (string | null)[] = [];
    for (let turn = 0; turn < 3; turn++) {
      for (let i = 0; i < 50; i++) answers.push(a!.t.send(2, seqMessage(1, turn * 50 + i)));
      await nextTurn();
    }
    assert.equal(answers.filter((r) => r === null).length, 100);
    assert.equal(answers.filter((r) => r === 'queueFull').length, 50);
    assert.equal(a!.t.stats().get(2)!.state, 'up');
    assert.equal(b!.rec.raftCalls.length, 0);
    network.unblock(1, 2);
    await waitFor('drained', () => b!.rec.messagesFrom(1).length === 100);
    assert.equal(b!.rec.raftCalls.length, 1, 'one frame for the whole queue');
  });

  it('a partition aborts a snapshot stream in progress', async () => {
    const [a, b] = await start([1, 2]);
    let seen = 0;
    b!.rec.snapshotHandler = async (_from, _envelope, chunks) => {
      for await (const _ of chunks) {
        seen++;
        if (seen === 3) network.partition(1, 2);
      }
    };
    assert.equal(await a!.t.sendSnapshot(2, snapshotEnvelope(4, 1), chunksOf(bytesOf(64 * 1024, 2), 4096)), 'failed');
    assert.equal(seen, 3);
  });
});
