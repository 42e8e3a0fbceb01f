/**
 * The machine's own limits, measured in the same run as the systems: synced RocksDB appends of
 * one 128-byte entry per fsync and of large batches (benchmarks/storage's raw probe, with the
 * log shard's RocksDB options), and the loopback TCP round trip (1-byte ping-pong on one
 * connection, no Flotilla or etcd code).
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { RAW_CONFIGS, RawDb } from '../storage/raw.ts';
import { VALUE_BYTES } from './workloads.ts';

export interface MachineLimits {
  readonly syncedAppendsPerS: number;
  readonly batchEntries: number;
  readonly syncedBatchEntriesPerS: number;
  readonly syncedBatchesPerS: number;
  readonly loopbackRoundTripUs: { readonly p50: number; readonly p99: number };
  readonly loopbackRoundTripsPerS: number;
}

const BATCH_ENTRIES = 1_024;
const LOG_SHARD_OPTIONS = RAW_CONFIGS.find((c) => c.name === 'log shard options') ?? RAW_CONFIGS[0]!;

export async function measureMachine(probeMs: number): Promise<MachineLimits> {
  const value = Buffer.alloc(VALUE_BYTES, 7);
  const db = await RawDb.open(LOG_SHARD_OPTIONS);
  let one;
  let batch;
  try {
    await db.batches(1, Math.min(300, probeMs), value); // warm-up
    one = await db.batches(1, probeMs, value);
    batch = await db.batches(BATCH_ENTRIES, probeMs, value);
  } finally {
    await db.close();
  }
  const rtt = await loopbackRoundTrips(probeMs);
  return {
    syncedAppendsPerS: one.perSec,
    batchEntries: BATCH_ENTRIES,
    syncedBatchEntriesPerS: batch.perSec,
    syncedBatchesPerS: batch.perSec / BATCH_ENTRIES,
    loopbackRoundTripUs: rtt.us,
    loopbackRoundTripsPerS: rtt.perS,
  };
}

/** One byte to an echo server and back, one at a time, for `ms`. */
async function loopbackRoundTrips(ms: number): Promise<{ us: { p50: number; p99: number }; perS: number }> {
  const server = net.createServer((socket) => socket.on('data', (d) => socket.write(d)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const socket = net.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  const samples: number[] = [];
  const started = performance.now();
  try {
    while (performance.now() - started < ms) {
      const t0 = performance.now();
      const echoed = new Promise<void>((resolve) => socket.once('data', () => resolve()));
      socket.write('x');
      await echoed;
      samples.push((performance.now() - t0) * 1000);
    }
  } finally {
    socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  samples.sort((a, b) => a - b);
  const at = (q: number): number => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? NaN;
  return { us: { p50: at(0.5), p99: at(0.99) }, perS: samples.length / ((performance.now() - started) / 1000) };
}
