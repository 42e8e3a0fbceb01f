/**
 * Heartbeats of AWAKE regions: three store processes with hibernation off
 * (`--hibernate-after-ticks 0`), so every region heartbeats every tick interval. At each size
 * it measures what the transports send (frames, raft messages and bytes per second) and the
 * stores' CPU. The transport coalesces every region's heartbeat to a store into one message
 * per tick: frames per second should stay flat as regions grow, only bytes grow (a beat is
 * ~20 bytes inside the frame).
 *
 *   node --import tsx benchmarks/cluster/heartbeats.ts [--quick] [--window-s=10]
 */
import { performance } from 'node:perf_hooks';
import { ProcessCluster, waitFor } from '../../test/support/cluster.ts';
import { cpuMs, fmt, machineLine, scrape, useStoreMallocEnv } from './proc.ts';
import { STORES, grow, regionRoles } from './regions.ts';

const quick = process.argv.includes('--quick');
const windowS = Number(process.argv.find((a) => a.startsWith('--window-s='))?.split('=')[1] ?? (quick ? 5 : 10));
const SIZES = quick ? [100, 1_000] : [100, 1_000, 4_000];
const TICK_MS = 100;
const TRAFFIC = ['flotilla_transport_frames_sent_total', 'flotilla_transport_messages_sent_total', 'flotilla_transport_bytes_sent_total'] as const;

interface Row {
  readonly regions: number;
  readonly framesPerS: number;
  readonly messagesPerS: number;
  readonly bytesPerS: number;
  readonly cpuPct: number[];
}

async function measure(cluster: ProcessCluster, regions: number): Promise<Row> {
  const stores = [...cluster.stores.values()];
  const before = await Promise.all(stores.map((s) => scrape(s, TRAFFIC)));
  const cpu0 = stores.map((s) => cpuMs(s.child.pid!));
  const t0 = performance.now();
  await new Promise((resolve) => setTimeout(resolve, windowS * 1000));
  const elapsedS = (performance.now() - t0) / 1000;
  const cpu1 = stores.map((s) => cpuMs(s.child.pid!));
  const after = await Promise.all(stores.map((s) => scrape(s, TRAFFIC)));
  const rate = (name: string): number => after.reduce((sum, t, i) => sum + t.get(name)! - before[i]!.get(name)!, 0) / elapsedS;
  return {
    regions,
    framesPerS: rate(TRAFFIC[0]),
    messagesPerS: rate(TRAFFIC[1]),
    bytesPerS: rate(TRAFFIC[2]),
    cpuPct: cpu1.map((c, i) => ((c - cpu0[i]!) / (elapsedS * 1000)) * 100),
  };
}

async function main(): Promise<void> {
  useStoreMallocEnv();
  const cluster = new ProcessCluster({ tickMs: TICK_MS, args: ['--hibernate-after-ticks', '0'] });
  const rows: Row[] = [];
  try {
    for (const id of STORES) await cluster.startStore(id);
    let current = 0;
    for (const size of SIZES) {
      await grow(cluster, current, size, size === SIZES[SIZES.length - 1]);
      current = size;
      await waitFor(`${size} regions led`, async () => (await regionRoles(cluster)).leaders === size, 600_000);
      const row = await measure(cluster, size);
      rows.push(row);
      process.stderr.write(`${size} awake regions: ${row.framesPerS.toFixed(0)} frames/s, ${row.messagesPerS.toFixed(0)} msgs/s, ${fmt(row.bytesPerS)} B/s\n`);
    }
  } finally {
    await cluster.close();
  }
  const first = rows[0]!;
  const last = rows[rows.length - 1]!;
  const lines = [
    '# Flotilla heartbeats of awake regions',
    '',
    `- date: ${new Date().toISOString()}`,
    `- command: node --import tsx benchmarks/cluster/heartbeats.ts${quick ? ' --quick' : ''} --window-s=${windowS}`,
    `- node: ${process.version} (${process.platform}/${process.arch})`,
    `- machine: ${machineLine()}`,
    `- config: 3 store processes on loopback, hibernation off, tick ${TICK_MS} ms (a heartbeat every 2 ticks), every region with a voter on each store; ${windowS} s measured per size once every region had a leader`,
    '',
    '| awake regions per store | frames/s (all stores) | raft messages/s (all) | bytes/s (all) | CPU % of a core (stores 1/2/3) |',
    '|---:|---:|---:|---:|---|',
    ...rows.map((r) => `| ${fmt(r.regions)} | ${fmt(r.framesPerS)} | ${fmt(r.messagesPerS)} | ${fmt(r.bytesPerS)} | ${r.cpuPct.map((c) => c.toFixed(1)).join(' / ')} |`),
    '',
    `Regions ×${fmt(last.regions / first.regions)}: frames ×${(last.framesPerS / first.framesPerS).toFixed(2)}, messages ×${(last.messagesPerS / first.messagesPerS).toFixed(2)}, bytes ×${(last.bytesPerS / first.bytesPerS).toFixed(2)}.`,
    '',
  ];
  process.stdout.write(lines.join('\n'));
}

await main();
