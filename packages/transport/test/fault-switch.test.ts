/**
 * The fault-injection switch (fault-switch.ts): a TcpTransport given one drops traffic to and
 * from the stores it names, each direction on its own, and delivers again once healed; the
 * control file the store polls turns the switch; bad files are refused with a typed error.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { SeededRandom } from '@flotilla/raft';
import { FaultSwitch, TcpTransport, WALL_CLOCK_OFFSET_MAX_MS, isTransportError, parseFaultRules, wallClockOffsetMs, watchFaultControlFile, type FaultControl, type TransportError } from '../src/index.ts';
import { Recorder, beat, bytesOf, chunksOf, seqMessage, snapshotEnvelope, waitFor } from './helpers.ts';

const CLUSTER = 7;

interface FaultyNode {
  readonly store: number;
  readonly t: TcpTransport;
  readonly rec: Recorder;
  readonly faults: FaultSwitch;
}

describe('FaultSwitch in TcpTransport', () => {
  const transports: TcpTransport[] = [];
  afterEach(async () => {
    await Promise.all(transports.splice(0).map((t) => t.close()));
  });

  /** Two stores, each with its own switch, linked and up. */
  async function pair(): Promise<[FaultyNode, FaultyNode]> {
    const nodes: FaultyNode[] = [];
    for (const store of [1, 2]) {
      const faults = new FaultSwitch();
      const t = new TcpTransport({ localStore: store, clusterId: CLUSTER, random: new SeededRandom(store), faults, tuning: { reconnectBackoffBaseMs: 2, reconnectBackoffMaxMs: 20 } });
      transports.push(t);
      const rec = new Recorder();
      await t.start(rec);
      nodes.push({ store, t, rec, faults });
    }
    const [a, b] = nodes as [FaultyNode, FaultyNode];
    a.t.setPeer(b.store, b.t.address());
    b.t.setPeer(a.store, a.t.address());
    await waitFor('both links up', () => a.t.stats().get(2)?.state === 'up' && b.t.stats().get(1)?.state === 'up');
    return [a, b];
  }

  /**
   * Sends marker `seq` from one node to the other and waits until it either arrived or one of
   * the two switches counted a drop; then checks which of the two happened.
   */
  async function sendOneWay(from: FaultyNode, to: FaultyNode, seq: number, delivered: boolean): Promise<void> {
    const drops = (): number => from.faults.droppedOutbound + to.faults.droppedInbound;
    const dropsBefore = drops();
    const arrived = (): boolean => to.rec.messagesFrom(from.store).some((m) => m.message.index === seq);
    assert.equal(from.t.send(to.store, seqMessage(1, seq)), null, 'a send into a partition is accepted (and lost), not refused');
    await waitFor(`marker ${seq} from store ${from.store} delivered or dropped`, () => arrived() || drops() > dropsBefore);
    assert.equal(arrived(), delivered, `marker ${seq} from store ${from.store} to store ${to.store}`);
  }

  async function exchange(a: FaultyNode, b: FaultyNode, seq: number, toB: boolean, toA: boolean): Promise<void> {
    await sendOneWay(a, b, seq, toB);
    await sendOneWay(b, a, seq, toA);
  }

  it('drops each direction on its own (one-way partitions), both (full), and heals', async () => {
    const [a, b] = await pair();
    await exchange(a, b, 1, true, true);

    a.faults.set({ dropTo: [2], dropFrom: [] }); // 1 -> 2 cut at the sender
    await exchange(a, b, 2, false, true);

    a.faults.set({ dropTo: [], dropFrom: [2] }); // 2 -> 1 cut at the receiver
    await exchange(a, b, 3, true, false);
    const inboundDrops = a.faults.droppedInbound;
    b.t.sendHeartbeat(a.store, beat(1, 9));
    await waitFor('the heartbeat 2 -> 1 dropped', () => a.faults.droppedInbound > inboundDrops);
    assert.equal(a.rec.beatsFrom(2).length, 0, 'heartbeats from a blocked store are dropped too');

    a.faults.set({ dropTo: [2], dropFrom: [2] });
    await exchange(a, b, 4, false, false);

    a.faults.set({ dropTo: [], dropFrom: [] });
    await exchange(a, b, 5, true, true);
    assert.equal(a.t.stats().get(2)?.state, 'up', 'the connection stayed up throughout');
  });

  it('fails snapshots into a partition, both ways, and streams them once healed', async () => {
    const [a, b] = await pair();
    const image = bytesOf(64 * 1024, 3);
    a.faults.set({ dropTo: [2], dropFrom: [] });
    assert.equal(await a.t.sendSnapshot(b.store, snapshotEnvelope(1, 1), chunksOf(image, 4096)), 'failed');
    a.faults.set({ dropTo: [], dropFrom: [] });
    b.faults.set({ dropTo: [], dropFrom: [1] });
    assert.equal(await a.t.sendSnapshot(b.store, snapshotEnvelope(1, 2), chunksOf(image, 4096)), 'failed');
    b.faults.set({ dropTo: [], dropFrom: [] });
    assert.equal(await a.t.sendSnapshot(b.store, snapshotEnvelope(1, 3), chunksOf(image, 4096)), 'finished');
  });
});

describe('fault control files', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('parses rules and refuses anything else with a typed error', () => {
    assert.deepEqual(parseFaultRules('{"dropTo":[3,1],"dropFrom":[2]}'), { dropTo: [3, 1], dropFrom: [2], clockOffsetMs: 0, diskAvailableBytes: null });
    assert.deepEqual(parseFaultRules('{}'), { dropTo: [], dropFrom: [], clockOffsetMs: 0, diskAvailableBytes: null });
    assert.deepEqual(parseFaultRules('{"clockOffsetMs":-90000}'), { dropTo: [], dropFrom: [], clockOffsetMs: -90_000, diskAvailableBytes: null });
    assert.deepEqual(parseFaultRules('{"diskAvailableBytes":0}'), { dropTo: [], dropFrom: [], clockOffsetMs: 0, diskAvailableBytes: 0 });
    const tooFar = JSON.stringify({ clockOffsetMs: WALL_CLOCK_OFFSET_MAX_MS + 1 });
    for (const bad of ['nope', '[]', '{"dropTo":[0]}', '{"dropTo":[1.5]}', '{"dropFrom":"2"}', '{"drop":[1]}', '{"clockOffsetMs":1.5}', '{"clockOffsetMs":"1"}', tooFar, '{"diskAvailableBytes":-1}', '{"diskAvailableBytes":"0"}']) {
      assert.throws(() => parseFaultRules(bad), (err: unknown) => isTransportError(err, 'FLOTILLA_TRANSPORT_INVALID_ARGUMENT'), bad);
    }
  });

  it('follows the file: rules when present, none when removed, the old ones kept over a bad file', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'flotilla-faults-'));
    const file = path.join(dir, 'faults.json');
    const faults = new FaultSwitch();
    const errors: TransportError[] = [];
    const changes: FaultControl[] = [];
    const watcher = watchFaultControlFile(file, faults, (err) => errors.push(err), (rules) => changes.push(rules));
    try {
      const write = async (text: string): Promise<void> => {
        await writeFile(`${file}.tmp`, text);
        await rename(`${file}.tmp`, file);
      };
      await write('{"dropTo":[4,2],"dropFrom":[5],"diskAvailableBytes":12}');
      await waitFor('rules read', () => faults.rules().dropTo.length === 2, 10_000);
      assert.deepEqual(faults.rules(), { dropTo: [2, 4], dropFrom: [5] });
      await write('{"dropTo":"everyone"}');
      await waitFor('the bad file reported', () => errors.length === 1, 10_000);
      assert.deepEqual(faults.rules(), { dropTo: [2, 4], dropFrom: [5] });
      await rm(file);
      await waitFor('healed once the file is gone', () => faults.rules().dropTo.length === 0 && faults.rules().dropFrom.length === 0, 10_000);
      assert.deepEqual(
        changes,
        [
          { dropTo: [2, 4], dropFrom: [5], clockOffsetMs: 0, diskAvailableBytes: 12 },
          { dropTo: [], dropFrom: [], clockOffsetMs: 0, diskAvailableBytes: null },
        ],
        'every change heard, the bad file not',
      );
    } finally {
      watcher.stop();
    }
  });

  it('jumps the wall clock (Date.now only, not the monotonic clock) and puts it back', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'flotilla-faults-'));
    const file = path.join(dir, 'faults.json');
    const hourMs = 3_600_000;
    const watcher = watchFaultControlFile(file, new FaultSwitch(), (err) => assert.fail(err.message));
    try {
      await writeFile(file, JSON.stringify({ clockOffsetMs: hourMs }));
      await waitFor('the clock jumped', () => wallClockOffsetMs() === hourMs, 10_000);
      const [wall, monotonic] = [Date.now(), performance.timeOrigin + performance.now()];
      assert.ok(wall - monotonic > hourMs - 1_000 && wall - monotonic < hourMs + 1_000, `Date.now() is an hour ahead of the monotonic clock (${wall - monotonic} ms)`);
      await writeFile(file, JSON.stringify({ clockOffsetMs: -hourMs }));
      await waitFor('the clock jumped back', () => wallClockOffsetMs() === -hourMs, 10_000);
      assert.ok(Date.now() < performance.timeOrigin + performance.now() - hourMs + 1_000, 'and now an hour behind');
    } finally {
      watcher.stop();
    }
    assert.equal(wallClockOffsetMs(), 0, 'stop() restores the real clock');
    assert.ok(Math.abs(Date.now() - (performance.timeOrigin + performance.now())) < 1_000);
  });
});
