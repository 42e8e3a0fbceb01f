/**
 * Wire micro-benchmark: encode + decode throughput of the two store-to-store frames that every
 * event-loop turn and every tick produce.
 *
 *   node --import tsx benchmarks/wire/bench.ts [--quick]
 *
 * Workloads:
 * - raftBatch: ONE RaftBatch frame to one store carrying 100 groups x 1 append with 1 entry of
 *   128 B (a busy turn of a multi-raft host).
 * - heartbeatBatch: ONE HeartbeatBatch frame with 1,000 beats (one tick of 1,000 groups led here
 *   with a follower on the destination), next to the same 1,000 heartbeats sent uncoalesced as
 *   RaftBatch envelopes (what coalescing saves).
 * Each is measured as encodeFrame (message -> frame bytes) and decode (FrameDecoder.push +
 * decodeFrame: checksum, structural scan, msgpackr, validation, copies). Median of 5 rounds.
 * Then the cost of each stage, to show where the time goes.
 */
import os from 'node:os';
import { message, type Message } from '@flotilla/raft';
// benchmarks/package.json does not list @flotilla/wire yet; the relative import keeps this self-contained.
import {
  FrameDecoder,
  coalesceHeartbeat,
  decodeFrame,
  encodeFrame,
  limits,
  type Frame,
  type RaftBatch,
  type WireMessage,
} from '@flotilla/wire';
// Internals, deliberately: the per-stage cost breakdown needs them (not public API).
import { crc32c } from '../../packages/wire/src/crc32c.ts';
import { heartbeatBatchTuple, readHeartbeatBatch } from '../../packages/wire/src/heartbeat-codec.ts';
import { packValue, scanPayload, unpackPayload } from '../../packages/wire/src/msgpack.ts';
import { raftBatchTuple, readRaftBatch } from '../../packages/wire/src/raft-codec.ts';
import { median } from '../stats.ts';

const quick = process.argv.includes('--quick');
const ROUND_MS = quick ? 150 : 600;
const ROUNDS = 5;
const WARMUP_MS = quick ? 200 : 1000;
const GROUPS = 100;
const ENTRY_BYTES = 128;
const BEATS = 1000;

function header(): void {
  const cpus = os.cpus();
  console.log('# Flotilla wire benchmark');
  console.log('');
  console.log(`- date: ${new Date().toISOString()}`);
  console.log(`- command: node --import tsx benchmarks/wire/bench.ts${quick ? ' --quick' : ''}`);
  console.log(`- node: ${process.version} (${process.platform}/${process.arch})`);
  console.log(`- machine: ${cpus.length} x ${cpus[0]?.model ?? 'unknown cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB memory`);
  console.log(`- config: ${ROUNDS} rounds of ${ROUND_MS} ms after ${WARMUP_MS} ms warm-up, median reported; msgpackr 2.1.3 (useRecords: false), wire format version ${limits.WIRE_VERSION}`);
  console.log('');
}

function raftBatch(): WireMessage {
  const messages = [];
  for (let g = 1; g <= GROUPS; g++) {
    const data = new Uint8Array(ENTRY_BYTES).fill(g & 0xff);
    const m: Message = message({ type: 'append', from: g * 3 + 1, to: g * 3 + 2, term: 7, index: 1000 + g, logTerm: 7, commit: 1000 + g, entries: [{ index: 1001 + g, term: 7, type: 'normal', data }] });
    messages.push({ regionId: g, fromPeer: m.from, toPeer: m.to, regionEpoch: { version: 3, confVer: 2 }, message: m });
  }
  return { kind: 'raftBatch', body: { fromStore: 1, toStore: 2, messages } };
}

function heartbeats(): Message[] {
  const out: Message[] = [];
  for (let g = 1; g <= BEATS; g++) out.push(message({ type: 'heartbeat', from: g * 3 + 1, to: g * 3 + 2, term: 7, commit: 5000 + g, leaderTick: 123456 }));
  return out;
}

function heartbeatBatch(): WireMessage {
  const beats = heartbeats().map((m, i) => coalesceHeartbeat(i + 1, m)!);
  return { kind: 'heartbeatBatch', body: { fromStore: 1, toStore: 2, beats } };
}

function uncoalesced(): WireMessage {
  const body: RaftBatch = { fromStore: 1, toStore: 2, messages: heartbeats().map((m, i) => ({ regionId: i + 1, fromPeer: m.from, toPeer: m.to, message: m })) };
  return { kind: 'raftBatch', body };
}

/** Runs `fn` repeatedly for `ms`; returns calls per second. */
function rate(fn: () => void, ms: number): number {
  let calls = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < 16; i++) fn();
    calls += 16;
    now = performance.now();
  }
  return (calls * 1000) / (now - start);
}

interface Row {
  readonly name: string;
  readonly items: number;
  readonly frameBytes: number;
  readonly encodePerSec: number;
  readonly decodePerSec: number;
  readonly roundTripPerSec: number;
}

function measure(name: string, items: number, m: WireMessage): Row {
  const frame = Uint8Array.from(encodeFrame(m));
  let sink = 0;
  const decodeOnce = (): void => {
    const decoder = new FrameDecoder();
    decoder.push(frame, (f: Frame) => {
      const decoded = decodeFrame(f);
      sink += decoded.kind.length;
    });
  };
  const encodeOnce = (): void => {
    sink += encodeFrame(m).length;
  };
  const roundTripOnce = (): void => {
    const bytes = encodeFrame(m);
    const decoder = new FrameDecoder();
    decoder.push(bytes, (f: Frame) => {
      sink += decodeFrame(f).kind.length;
    });
  };
  rate(roundTripOnce, WARMUP_MS);
  const enc: number[] = [];
  const dec: number[] = [];
  const rt: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    enc.push(rate(encodeOnce, ROUND_MS));
    dec.push(rate(decodeOnce, ROUND_MS));
    rt.push(rate(roundTripOnce, ROUND_MS));
  }
  if (sink === 42) console.log(''); // keep the work observable
  return { name, items, frameBytes: frame.length, encodePerSec: median(enc), decodePerSec: median(dec), roundTripPerSec: median(rt) };
}

function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function main(): void {
  header();
  const rows = [
    measure(`RaftBatch: ${GROUPS} groups x 1 append x 1 entry of ${ENTRY_BYTES} B`, GROUPS, raftBatch()),
    measure(`HeartbeatBatch: ${fmt(BEATS)} coalesced beats`, BEATS, heartbeatBatch()),
    measure(`(for comparison) the same ${fmt(BEATS)} heartbeats as RaftBatch envelopes`, BEATS, uncoalesced()),
  ];
  console.log('| frame | bytes | bytes/item | encode frames/s | decode frames/s | round trip frames/s | round trip µs/frame | round trip items/s | round trip MB/s |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(
      `| ${r.name} | ${fmt(r.frameBytes)} | ${fmt(r.frameBytes / r.items, 1)} | ${fmt(r.encodePerSec)} | ${fmt(r.decodePerSec)} | ${fmt(r.roundTripPerSec)} | ${fmt(1e6 / r.roundTripPerSec, 1)} | ${fmt(r.roundTripPerSec * r.items)} | ${fmt((r.roundTripPerSec * r.frameBytes) / 1e6, 1)} |`,
    );
  }
  const [, hb, raw] = rows;
  console.log('');
  console.log(`Coalescing 1,000 heartbeats: ${fmt(raw!.frameBytes / hb!.frameBytes, 1)}x fewer bytes, ${fmt(hb!.roundTripPerSec / raw!.roundTripPerSec, 1)}x faster round trip than as raft envelopes.`);
  breakdown();
}

/** µs per call of each stage (median of rounds). */
function stage(fn: () => unknown): number {
  let sink = 0;
  const run = (): void => {
    sink += fn() === undefined ? 0 : 1;
  };
  rate(run, WARMUP_MS / 4);
  const rates: number[] = [];
  for (let r = 0; r < ROUNDS; r++) rates.push(rate(run, ROUND_MS / 3));
  if (sink === -1) console.log('');
  return 1e6 / median(rates);
}

function breakdown(): void {
  const raft = raftBatch();
  const beats = heartbeatBatch();
  if (raft.kind !== 'raftBatch' || beats.kind !== 'heartbeatBatch') throw new Error('unreachable');
  const cases = [
    { name: 'RaftBatch 100 x 128 B', tuple: () => raftBatchTuple(raft.body), read: readRaftBatch, message: raft },
    { name: 'HeartbeatBatch 1,000', tuple: () => heartbeatBatchTuple(beats.body), read: readHeartbeatBatch, message: beats },
  ];
  console.log('');
  console.log('## Where the time goes (µs per frame)');
  console.log('');
  console.log('| frame | encode: build tuples | encode: msgpackr pack | encode: crc32c | decode: FrameDecoder (copy + crc32c) | decode: structural scan | decode: msgpackr unpack | decode: validate + copy bytes |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const c of cases) {
    const tuple = c.tuple();
    const payload = Uint8Array.from(packValue(tuple));
    const frame = Uint8Array.from(encodeFrame(c.message));
    const tree = unpackPayload(payload);
    const cells = [
      stage(c.tuple),
      stage(() => packValue(tuple)),
      stage(() => crc32c(payload)),
      stage(() => new FrameDecoder().push(frame, () => {})),
      stage(() => scanPayload(payload)),
      stage(() => unpackPayload(payload)) - stage(() => scanPayload(payload)),
      stage(() => c.read(tree)),
    ];
    console.log(`| ${c.name} | ${cells.map((x) => fmt(x, 1)).join(' | ')} |`);
  }
}

main();
