/**
 * Idle scale: three store processes (RocksDB, TCP, production tick of 100 ms) hosting more and
 * more idle regions, one replica of each on every store. At each size, once every region has
 * a leader and has gone quiet (hibernated), it measures per store process over a window:
 * CPU (% of one core), resident memory, and what the transport sends (frames, raft messages,
 * bytes per second).
 *
 *   node --import tsx benchmarks/cluster/idle.ts [--quick] [--window-s=20]
 *
 * Targets (issue 4): CPU per store < 5% of a core at 10,000 regions per store; RSS growth per
 * idle region <= 10 KB; heartbeat traffic grows with stores, not regions.
 *
 * Memory is measured in a settled state: after the window, every store runs a full garbage
 * collection (the benchmark starts the stores with `--expose-gc` and a SIGUSR2 handler that
 * calls gc(), through NODE_OPTIONS), then its V8 heap in use (`nodejs_heap_size_used_bytes`)
 * and its RSS are read. Right after bootstrapping and electing thousands of regions, most of
 * the heap is garbage not yet collected, and RSS holds V8's heap headroom, the RocksDB
 * memtables and freed malloc memory. The target is judged on the settled RSS; the heap in use
 * shows how much of it is Flotilla's own objects. The stores get the glibc malloc settings of
 * every production launch (`useStoreMallocEnv`); `idle-memory.ts` takes a store's RSS apart.
 */
import { performance } from 'node:perf_hooks';
import { ProcessCluster, waitFor } from '../../test/support/cluster.ts';
import { cpuMs, fmt, machineCpuMs, machineLine, rssBytes, scrape, useStoreMallocEnv } from './proc.ts';
import { STORES, grow, regionRoles } from './regions.ts';

const quick = process.argv.includes('--quick');
const windowS = Number(process.argv.find((a) => a.startsWith('--window-s='))?.split('=')[1] ?? (quick ? 5 : 20));
const SIZES = quick ? [0, 500, 2_000] : [0, 1_000, 10_000];
const TICK_MS = 100;
const TRAFFIC = ['flotilla_transport_frames_sent_total', 'flotilla_transport_messages_sent_total', 'flotilla_transport_bytes_sent_total'] as const;
const HEAP_USED = 'nodejs_heap_size_used_bytes';
/** Time for the stores' full GCs (and the sweeping after them) before memory is read. */
const GC_SETTLE_MS = 2_000;
/** Loaded into every store process: SIGUSR2 runs a full garbage collection. */
const GC_ON_SIGNAL = 'if (typeof globalThis.gc === "function") process.on("SIGUSR2", () => { globalThis.gc(); globalThis.gc(); });';

interface Row {
  readonly regions: number;
  readonly cpuPct: number[];
  readonly rssMiB: number[];
  /** After a full GC in every store. */
  readonly heapUsedMiB: number[];
  readonly rssAfterGcMiB: number[];
  readonly framesPerS: number;
  readonly messagesPerS: number;
  readonly bytesPerS: number;
  readonly settleS: number;
  readonly othersPct: number;
}

/** Every region led and every replica hibernating, on every store. */
async function quiet(cluster: ProcessCluster, regions: number): Promise<boolean> {
  const { leaders, allHibernating } = await regionRoles(cluster);
  return allHibernating && leaders === regions;
}

async function measure(cluster: ProcessCluster, regions: number, settleS: number): Promise<Row> {
  const stores = [...cluster.stores.values()];
  const pids = stores.map((s) => s.child.pid!);
  const traffic0 = await Promise.all(stores.map((s) => scrape(s, TRAFFIC)));
  const cpu0 = pids.map(cpuMs);
  const machine0 = machineCpuMs();
  const t0 = performance.now();
  await new Promise((resolve) => setTimeout(resolve, windowS * 1000));
  const elapsedMs = performance.now() - t0;
  const cpu1 = pids.map(cpuMs);
  const machine1 = machineCpuMs();
  const traffic1 = await Promise.all(stores.map((s) => scrape(s, TRAFFIC)));
  const rate = (name: string): number => traffic1.reduce((sum, t, i) => sum + t.get(name)! - traffic0[i]!.get(name)!, 0) / (elapsedMs / 1000);
  const storesMs = cpu1.reduce((sum, c, i) => sum + c - cpu0[i]!, 0);
  const rssMiB = pids.map((pid) => rssBytes(pid) / 2 ** 20);
  // Settle: a full GC in every store, then the live heap and the RSS left.
  for (const pid of pids) process.kill(pid, 'SIGUSR2');
  await new Promise((resolve) => setTimeout(resolve, GC_SETTLE_MS));
  const heap = await Promise.all(stores.map((s) => scrape(s, [HEAP_USED])));
  return {
    regions,
    cpuPct: cpu1.map((c, i) => ((c - cpu0[i]!) / elapsedMs) * 100),
    rssMiB,
    heapUsedMiB: heap.map((h) => h.get(HEAP_USED)! / 2 ** 20),
    rssAfterGcMiB: pids.map((pid) => rssBytes(pid) / 2 ** 20),
    framesPerS: rate(TRAFFIC[0]),
    messagesPerS: rate(TRAFFIC[1]),
    bytesPerS: rate(TRAFFIC[2]),
    settleS,
    othersPct: ((machine1 - machine0 - storesMs) / elapsedMs) * 100,
  };
}

async function main(): Promise<void> {
  // The store processes inherit the environment: expose gc() and run it on SIGUSR2.
  const gcImport = `data:text/javascript;base64,${Buffer.from(GC_ON_SIGNAL).toString('base64')}`;
  process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --expose-gc --import=${gcImport}`.trim();
  useStoreMallocEnv();
  const cluster = new ProcessCluster({ tickMs: TICK_MS });
  const rows: Row[] = [];
  try {
    for (const id of STORES) await cluster.startStore(id);
    let current = 0;
    for (const size of SIZES) {
      const started = performance.now();
      await grow(cluster, current, size, size === SIZES[SIZES.length - 1]);
      current = size;
      if (size > 0) await waitFor(`${size} regions led and hibernating`, () => quiet(cluster, size), 600_000);
      const row = await measure(cluster, size, (performance.now() - started) / 1000);
      rows.push(row);
      process.stderr.write(
        `${size} regions: cpu ${row.cpuPct.map((c) => c.toFixed(2)).join('/')}%, rss ${row.rssMiB.map((r) => r.toFixed(0)).join('/')} MiB, after gc: heap used ${row.heapUsedMiB.map((r) => r.toFixed(1)).join('/')} MiB, rss ${row.rssAfterGcMiB.map((r) => r.toFixed(0)).join('/')} MiB, ${row.messagesPerS.toFixed(1)} msgs/s\n`,
      );
    }
  } finally {
    await cluster.close();
  }
  report(rows);
}

function report(rows: readonly Row[]): void {
  const base = rows[0]!;
  const top = rows[rows.length - 1]!;
  const perRegionKB = (of: (r: Row) => number[]): number[] => of(top).map((mib, i) => ((mib - of(base)[i]!) * 1024) / top.regions);
  const heapKB = perRegionKB((r) => r.heapUsedMiB);
  const rssKB = perRegionKB((r) => r.rssMiB);
  const rssAfterGcKB = perRegionKB((r) => r.rssAfterGcMiB);
  const kb = (xs: number[]): string => xs.map((k) => k.toFixed(1)).join(' / ');
  const maxCpu = Math.max(...top.cpuPct);
  const lines = [
    '# Flotilla idle-scale benchmark',
    '',
    `- date: ${new Date().toISOString()}`,
    `- command: node --import tsx benchmarks/cluster/idle.ts${quick ? ' --quick' : ''} --window-s=${windowS}`,
    `- node: ${process.version} (${process.platform}/${process.arch})`,
    `- machine: ${machineLine()}`,
    `- config: 3 store processes on loopback, every region with one voter on each store; tick ${TICK_MS} ms, hibernation after 20 ticks; ${windowS} s measured per size once every region was led and hibernating; RocksDB log with 1 appender shard; stores started with MALLOC_ARENA_MAX=${process.env.MALLOC_ARENA_MAX ?? '(glibc default)'} MALLOC_MMAP_THRESHOLD_=${process.env.MALLOC_MMAP_THRESHOLD_ ?? '(glibc default)'} (storeMallocEnv)`,
    '',
    '| regions per store | settle s | CPU % of a core (stores 1/2/3) | RSS MiB (1/2/3) | after a full GC: heap used MiB | after a full GC: RSS MiB | frames/s (all stores) | raft messages/s (all) | bytes/s (all) | others' + "'" + ' CPU % |',
    '|---:|---:|---|---|---|---|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${fmt(r.regions)} | ${fmt(r.settleS, 1)} | ${r.cpuPct.map((c) => c.toFixed(2)).join(' / ')} | ${r.rssMiB.map((m) => m.toFixed(0)).join(' / ')} | ${r.heapUsedMiB.map((m) => m.toFixed(1)).join(' / ')} | ${r.rssAfterGcMiB.map((m) => m.toFixed(0)).join(' / ')} | ${fmt(r.framesPerS, 1)} | ${fmt(r.messagesPerS, 1)} | ${fmt(r.bytesPerS)} | ${r.othersPct.toFixed(0)} |`,
    ),
    '',
    '## Targets',
    '',
    `- CPU per store process < 5% of a core at ${fmt(top.regions)} idle regions: max ${maxCpu.toFixed(2)}% — ${maxCpu < 5 ? 'MET' : 'NOT MET'}`,
    `- RSS growth per idle region <= 10 KB, settled (after a full GC): ${kb(rssAfterGcKB)} KB — ${rssAfterGcKB.every((k) => k <= 10) ? 'MET' : 'NOT MET'} (during the window, before the GC: ${kb(rssKB)} KB)`,
    `- of which the V8 heap in use (after the GC): ${kb(heapKB)} KB per region; the rest is V8 heap headroom, RocksDB memtables and block cache, and freed malloc memory`,
    `- heartbeat traffic grows with stores, not regions: ${fmt(rows[1]?.messagesPerS ?? 0, 1)} → ${fmt(top.messagesPerS, 1)} raft messages/s and ${fmt(rows[1]?.framesPerS ?? 0, 1)} → ${fmt(top.framesPerS, 1)} frames/s from ${fmt(rows[1]?.regions ?? 0)} to ${fmt(top.regions)} regions`,
    '',
  ];
  process.stdout.write(lines.join('\n'));
}

await main();
