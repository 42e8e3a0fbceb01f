/**
 * Transport benchmark: two TcpTransports on loopback.
 *
 *   node --import tsx benchmarks/transport/bench.ts [--quick] [--mode=worker|same-loop|both] [--tls]
 *
 * `--tls`: both transports speak mutual TLS (TcpTransportOptions.tls, the test credentials of
 * test/support/tls: ECDSA P-256), as stores started with --raft-tls-* do.
 *
 * Store 1 (the sender, main thread) and store 2 (the receiver) run either in ONE event loop
 * (`same-loop`: everything shares one core; cost per message of both sides together) or in two
 * threads (`worker`: the receiver in a worker thread with its own event loop, as two processes
 * would be; the 2 cores are shared by the two loops and the kernel's loopback).
 *
 * Workloads:
 * 1. appends: 1,000 groups each send ONE append with one 128-byte entry per event-loop turn
 *    (1,000 messages per turn to one peer). The sender keeps at most WINDOW messages unreceived
 *    (flow control like raft's inflight window), so the numbers are sustained, not queue fill.
 *    Variant "+ responses": the receiver answers every append with an appendResponse (raft's
 *    real traffic shape: both directions busy).
 * 2. heartbeats: one tick of 10,000 groups led on store 1 with a follower on store 2: 10,000
 *    beats coalesced into one HeartbeatBatch, answered by 10,000 responses in one
 *    HeartbeatResponseBatch. Ticks run back to back; reported per tick: wall time of the round
 *    trip, frames and bytes on the wire, and event-loop busy time of each side (ELU).
 */
import os from 'node:os';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { message, type Message } from '@flotilla/raft';
import type { Heartbeat, HeartbeatResponse, RaftEnvelope } from '@flotilla/wire';
// benchmarks/package.json does not list @flotilla/transport; the relative import keeps this self-contained.
import { TcpTransport, type InboundHandlers, type TransportTls } from '@flotilla/transport';
import { tlsCredentials } from '../../test/support/tls.ts';

const GROUPS = 1000;
const ENTRY_BYTES = 128;
const WINDOW = 20_000;
const BEAT_GROUPS = 10_000;
const CLUSTER = 1;

// Counters shared between the threads (Int32, Atomics).
const C_MESSAGES = 0; // raft messages received by store 2
const C_FRAMES = 1; // frames received by store 2
const C_BEATS = 2; // beats received by store 2
const COUNTERS = 4;

interface ReceiverConfig {
  readonly counters: SharedArrayBuffer;
  readonly respond: boolean;
  readonly tls: boolean;
}

/** The transports' TLS credentials with --tls (the worker gets the flag through its ReceiverConfig). */
function transportTls(on: boolean): { tls?: TransportTls } {
  return on ? { tls: tlsCredentials('peer') } : {};
}

function appendEnvelopes(): RaftEnvelope[] {
  const out: RaftEnvelope[] = [];
  for (let g = 1; g <= GROUPS; g++) {
    const data = new Uint8Array(ENTRY_BYTES).fill(g & 0xff);
    const m: Message = message({ type: 'append', from: g * 3 + 1, to: g * 3 + 2, term: 7, index: 1000 + g, logTerm: 7, commit: 1000 + g, entries: [{ index: 1001 + g, term: 7, type: 'normal', data }] });
    out.push({ regionId: g, fromPeer: m.from, toPeer: m.to, regionEpoch: { version: 3, confVer: 2 }, message: m });
  }
  return out;
}

function responseFor(env: RaftEnvelope): RaftEnvelope {
  const m: Message = message({ type: 'appendResponse', from: env.toPeer, to: env.fromPeer, term: 7, index: env.message.index + 1 });
  return { regionId: env.regionId, fromPeer: m.from, toPeer: m.to, message: m };
}

function beats(): Heartbeat[] {
  return Array.from({ length: BEAT_GROUPS }, (_, i) => ({ regionId: i + 1, fromPeer: (i + 1) * 3 + 1, toPeer: (i + 1) * 3 + 2, term: 7, commit: 5000 + i, leaderTick: 123456 }));
}

function responseTo(b: Heartbeat): HeartbeatResponse {
  return { regionId: b.regionId, fromPeer: b.toPeer, toPeer: b.fromPeer, term: b.term, leaderTick: b.leaderTick };
}

/** Store 2: counts what arrives; answers appends (optionally) and every heartbeat. */
async function startReceiver(config: ReceiverConfig): Promise<{ t: TcpTransport; setRespond(on: boolean): void }> {
  const counters = new Int32Array(config.counters);
  let respond = config.respond;
  const t: TcpTransport = new TcpTransport({ localStore: 2, clusterId: CLUSTER, ...transportTls(config.tls) });
  const handlers: InboundHandlers = {
    onRaftMessages(_from, messages) {
      Atomics.add(counters, C_MESSAGES, messages.length);
      Atomics.add(counters, C_FRAMES, 1);
      Atomics.notify(counters, C_MESSAGES);
      if (respond) for (const env of messages) t.send(1, responseFor(env));
    },
    onHeartbeats(_from, received) {
      Atomics.add(counters, C_BEATS, received.length);
      Atomics.add(counters, C_FRAMES, 1);
      for (const b of received) t.sendHeartbeatResponse(1, responseTo(b));
    },
    onHeartbeatResponses() {},
    async onSnapshot() {},
  };
  await t.start(handlers);
  return {
    t,
    setRespond(on) {
      respond = on;
    },
  };
}

// ---- worker side ----------------------------------------------------------------------------------------------
if (!isMainThread) {
  const config = workerData as ReceiverConfig;
  const receiver = await startReceiver(config);
  parentPort!.on('message', (msg: { type: string; port?: number; respond?: boolean }) => {
    if (msg.type === 'peer') receiver.t.setPeer(1, { host: '127.0.0.1', port: msg.port! });
    if (msg.type === 'respond') {
      receiver.setRespond(msg.respond === true);
      parentPort!.postMessage({ type: 'respondSet' });
    }
    if (msg.type === 'stats') {
      const s = receiver.t.stats().get(1);
      parentPort!.postMessage({ type: 'stats', bytesSent: s?.bytesSent ?? 0, framesSent: s?.framesSent ?? 0 });
    }
    if (msg.type === 'close') void receiver.t.close().then(() => parentPort!.postMessage({ type: 'closed' }));
  });
  parentPort!.postMessage({ type: 'ready', port: receiver.t.address().port });
}

// ---- main side --------------------------------------------------------------------------------------------------
const quick = process.argv.includes('--quick');
const modeArg = process.argv.find((a) => a.startsWith('--mode='))?.slice('--mode='.length) ?? 'both';
const TLS = process.argv.includes('--tls');
const DURATION_MS = quick ? 1500 : 5000;
const WARMUP_MS = quick ? 500 : 1500;
const TICKS = quick ? 30 : 100;

interface Side {
  /** The receiver's counters. */
  readonly counters: Int32Array;
  /** Resolves when the receiver's message count moved from `observed` (or soon after, anyway). */
  receiverMoved(observed: number): Promise<void>;
  setRespond(on: boolean): Promise<void>;
  receiverStats(): Promise<{ bytesSent: number; framesSent: number }>;
  /** Busy time of the receiver's event loop (ms), or null when it shares ours. */
  receiverBusyMs(): number | null;
  close(): Promise<void>;
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A count the handlers bump; `reached` resolves without spinning the event loop. */
class Counter {
  value = 0;
  private waiter: { target: number; resolve: () => void } | null = null;

  add(n: number): void {
    this.value += n;
    if (this.waiter !== null && this.value >= this.waiter.target) {
      const { resolve } = this.waiter;
      this.waiter = null;
      resolve();
    }
  }

  reached(target: number): Promise<void> {
    if (this.value >= target) return Promise.resolve();
    return new Promise((resolve) => (this.waiter = { target, resolve }));
  }
}

type WaitAsync = (array: Int32Array, index: number, value: number, timeoutMs: number) => { async: boolean; value: Promise<string> | string };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

async function waitUntil(condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('benchmark stalled');
    await nextTurn();
  }
}

async function setupSameLoop(sender: TcpTransport): Promise<Side> {
  const counters = new Int32Array(new SharedArrayBuffer(COUNTERS * 4));
  const receiver = await startReceiver({ counters: counters.buffer as SharedArrayBuffer, respond: false, tls: TLS });
  receiver.t.setPeer(1, sender.address());
  sender.setPeer(2, receiver.t.address());
  return {
    counters,
    receiverMoved: () => nextTurn(),
    setRespond: (on) => {
      receiver.setRespond(on);
      return Promise.resolve();
    },
    receiverStats: () => {
      const s = receiver.t.stats().get(1);
      return Promise.resolve({ bytesSent: s?.bytesSent ?? 0, framesSent: s?.framesSent ?? 0 });
    },
    receiverBusyMs: () => null,
    close: () => receiver.t.close(),
  };
}

async function setupWorker(sender: TcpTransport): Promise<Side> {
  const shared = new SharedArrayBuffer(COUNTERS * 4);
  const counters = new Int32Array(shared);
  // The worker runs this same file. On this Node 20, `--import tsx` does not reach a raw Worker's
  // ESM loader, so an eval'd entry registers tsx's ESM hooks first, then imports the TypeScript.
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = `import(${JSON.stringify(tsx)}).then((api) => api.register()).then(() => import(${JSON.stringify(import.meta.url)}))`;
  const worker = new Worker(entry, { eval: true, workerData: { counters: shared, respond: false, tls: TLS } satisfies ReceiverConfig });
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('error', reject);
    worker.once('message', (msg: { type: string; port: number }) => resolve(msg.port));
  });
  worker.postMessage({ type: 'peer', port: sender.address().port });
  sender.setPeer(2, { host: '127.0.0.1', port });
  const request = <T>(msg: object, reply: string): Promise<T> =>
    new Promise<T>((resolve) => {
      const onMessage = (m: { type: string }): void => {
        if (m.type === reply) {
          worker.off('message', onMessage);
          resolve(m as T);
        }
      };
      worker.on('message', onMessage);
      worker.postMessage(msg);
    });
  return {
    counters,
    receiverMoved: async (observed) => {
      const result = waitAsync(counters, C_MESSAGES, observed, 50);
      if (result.async) await result.value;
    },
    setRespond: async (on) => {
      await request({ type: 'respond', respond: on }, 'respondSet');
    },
    receiverStats: () => request<{ bytesSent: number; framesSent: number }>({ type: 'stats' }, 'stats'),
    receiverBusyMs: () => worker.performance.eventLoopUtilization().active,
    close: async () => {
      await request({ type: 'close' }, 'closed');
      await worker.terminate();
    },
  };
}

interface AppendResult {
  readonly messagesPerSec: number;
  readonly framesPerSec: number;
  readonly bytesPerSec: number;
  readonly messagesPerFrame: number;
  readonly responsesPerSec: number;
  readonly senderBusy: number;
  readonly receiverBusy: number | null;
}

async function runAppends(sender: TcpTransport, side: Side, responses: Counter, respond: boolean): Promise<AppendResult> {
  await side.setRespond(respond);
  const envelopes = appendEnvelopes();
  let sent = Atomics.load(side.counters, C_MESSAGES);
  const messagesAtStart = sent;
  const responsesAtStart = responses.value;
  let stop = false;
  const pump = async (): Promise<void> => {
    while (!stop) {
      const received = Atomics.load(side.counters, C_MESSAGES);
      if (sent - received >= WINDOW) {
        await side.receiverMoved(received); // window full: idle until the receiver moves
        continue;
      }
      for (const env of envelopes) if (sender.send(2, env) === null) sent++;
      await nextTurn();
    }
  };
  const pumping = pump();
  await delay(WARMUP_MS);
  const m0 = Atomics.load(side.counters, C_MESSAGES);
  const s0 = sender.stats().get(2)!;
  const r0 = responses.value;
  const e0 = performance.eventLoopUtilization();
  const w0 = side.receiverBusyMs();
  const t0 = performance.now();
  await delay(DURATION_MS);
  const t1 = performance.now();
  const m1 = Atomics.load(side.counters, C_MESSAGES);
  const s1 = sender.stats().get(2)!;
  const r1 = responses.value;
  const e1 = performance.eventLoopUtilization(e0);
  const w1 = side.receiverBusyMs();
  stop = true;
  await pumping;
  await waitUntil(() => Atomics.load(side.counters, C_MESSAGES) >= sent);
  if (respond) await responses.reached(responsesAtStart + sent - messagesAtStart);
  const seconds = (t1 - t0) / 1000;
  return {
    messagesPerSec: (m1 - m0) / seconds,
    framesPerSec: (s1.framesSent - s0.framesSent) / seconds,
    bytesPerSec: (s1.bytesSent - s0.bytesSent) / seconds,
    messagesPerFrame: (s1.messagesSent - s0.messagesSent) / Math.max(1, s1.framesSent - s0.framesSent),
    responsesPerSec: (r1 - r0) / seconds,
    senderBusy: e1.utilization,
    receiverBusy: w0 === null || w1 === null ? null : (w1 - w0) / (t1 - t0),
  };
}

interface BeatResult {
  readonly ticks: number;
  readonly wallMsP50: number;
  readonly wallMsP99: number;
  readonly framesPerTick: number;
  readonly bytesPerTick: number;
  readonly responseBytesPerTick: number;
  readonly senderBusyMsPerTick: number;
  readonly receiverBusyMsPerTick: number | null;
}

async function runHeartbeats(sender: TcpTransport, side: Side, beatResponses: Counter): Promise<BeatResult> {
  const all = beats();
  const tick = async (): Promise<number> => {
    const start = performance.now();
    const target = beatResponses.value + BEAT_GROUPS;
    for (const b of all) sender.sendHeartbeat(2, b);
    await beatResponses.reached(target);
    return performance.now() - start;
  };
  for (let i = 0; i < Math.ceil(TICKS / 4); i++) await tick(); // warm-up
  const s0 = sender.stats().get(2)!;
  const rs0 = await side.receiverStats();
  const e0 = performance.eventLoopUtilization();
  const w0 = side.receiverBusyMs();
  const walls: number[] = [];
  for (let i = 0; i < TICKS; i++) walls.push(await tick());
  const e1 = performance.eventLoopUtilization(e0);
  const w1 = side.receiverBusyMs();
  const s1 = sender.stats().get(2)!;
  const rs1 = await side.receiverStats();
  walls.sort((a, b) => a - b);
  return {
    ticks: TICKS,
    wallMsP50: walls[Math.floor(walls.length / 2)]!,
    wallMsP99: walls[Math.min(walls.length - 1, Math.floor(walls.length * 0.99))]!,
    framesPerTick: (s1.framesSent - s0.framesSent) / TICKS,
    bytesPerTick: (s1.bytesSent - s0.bytesSent) / TICKS,
    responseBytesPerTick: (rs1.bytesSent - rs0.bytesSent) / TICKS,
    senderBusyMsPerTick: e1.active / TICKS,
    receiverBusyMsPerTick: w0 === null || w1 === null ? null : (w1 - w0) / TICKS,
  };
}

function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

async function runMode(mode: 'same-loop' | 'worker'): Promise<void> {
  const responses = new Counter();
  const beatResponses = new Counter();
  const sender = new TcpTransport({ localStore: 1, clusterId: CLUSTER, ...transportTls(TLS) });
  await sender.start({
    onRaftMessages(_from, messages) {
      responses.add(messages.length);
    },
    onHeartbeats() {},
    onHeartbeatResponses(_from, received) {
      beatResponses.add(received.length);
    },
    async onSnapshot() {},
  });
  const side = mode === 'worker' ? await setupWorker(sender) : await setupSameLoop(sender);
  await waitUntil(() => sender.stats().get(2)?.state === 'up');
  const oneWay = await runAppends(sender, side, responses, false);
  const both = await runAppends(sender, side, responses, true);
  const hb = await runHeartbeats(sender, side, beatResponses);
  await side.close();
  await sender.close();

  const busy = (r: AppendResult): string => (r.receiverBusy === null ? 'one loop: 100%' : `${fmt(r.senderBusy * 100)}% / ${fmt(r.receiverBusy * 100)}%`);
  console.log(`## mode: ${mode}${mode === 'worker' ? ' (receiver in a worker thread: two event loops)' : ' (both stores in one event loop)'}`);
  console.log('');
  console.log('| workload | messages/s delivered | frames/s (1 → 2) | MB/s (1 → 2) | messages per frame | responses/s (2 → 1) | event loop busy (store 1 / store 2) |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  console.log(`| 1,000 groups × 1 append (128 B) per turn | ${fmt(oneWay.messagesPerSec)} | ${fmt(oneWay.framesPerSec)} | ${fmt(oneWay.bytesPerSec / 1e6, 1)} | ${fmt(oneWay.messagesPerFrame)} | — | ${busy(oneWay)} |`);
  console.log(`| same + an appendResponse for each | ${fmt(both.messagesPerSec)} | ${fmt(both.framesPerSec)} | ${fmt(both.bytesPerSec / 1e6, 1)} | ${fmt(both.messagesPerFrame)} | ${fmt(both.responsesPerSec)} | ${busy(both)} |`);
  console.log('');
  console.log(`Heartbeats: one tick of ${fmt(BEAT_GROUPS)} groups (store 1 leads, follower on store 2), ${hb.ticks} ticks back to back:`);
  console.log('');
  console.log('| per tick | value |');
  console.log('|---|---:|');
  console.log(`| round trip (beats out, responses back), p50 / p99 | ${fmt(hb.wallMsP50, 2)} ms / ${fmt(hb.wallMsP99, 2)} ms |`);
  console.log(`| frames 1 → 2 | ${fmt(hb.framesPerTick, 1)} |`);
  console.log(`| bytes 1 → 2 (beats) / 2 → 1 (responses) | ${fmt(hb.bytesPerTick)} / ${fmt(hb.responseBytesPerTick)} (${fmt(hb.bytesPerTick / BEAT_GROUPS, 1)} / ${fmt(hb.responseBytesPerTick / BEAT_GROUPS, 1)} per group) |`);
  console.log(`| event-loop busy, store 1 | ${fmt(hb.senderBusyMsPerTick, 2)} ms${hb.receiverBusyMsPerTick === null ? ' (both stores: one loop)' : ''} |`);
  if (hb.receiverBusyMsPerTick !== null) console.log(`| event-loop busy, store 2 | ${fmt(hb.receiverBusyMsPerTick, 2)} ms |`);
  console.log('');
}

if (isMainThread) {
  const cpus = os.cpus();
  console.log('# Flotilla transport benchmark');
  console.log('');
  console.log(`- date: ${new Date().toISOString()}`);
  console.log(`- command: node --import tsx benchmarks/transport/bench.ts${process.argv.slice(2).length > 0 ? ` ${process.argv.slice(2).join(' ')}` : ''}`);
  console.log(`- node: ${process.version} (${process.platform}/${process.arch})`);
  console.log(`- machine: ${cpus.length} x ${cpus[0]?.model ?? 'unknown cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB memory, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log(`- config: two TcpTransports on 127.0.0.1, default tuning, ${TLS ? 'mutual TLS (ECDSA P-256 test credentials)' : 'plain TCP'}; appends: ${fmt(GROUPS)} groups × one ${ENTRY_BYTES}-byte entry per turn, window ${fmt(WINDOW)} messages, ${WARMUP_MS} ms warm-up + ${DURATION_MS} ms measured; heartbeats: ${fmt(BEAT_GROUPS)} groups per tick, ${TICKS} ticks after ${Math.ceil(TICKS / 4)} warm-up`);
  console.log('');
  if (modeArg === 'same-loop' || modeArg === 'both') await runMode('same-loop');
  if (modeArg === 'worker' || modeArg === 'both') await runMode('worker');
}
