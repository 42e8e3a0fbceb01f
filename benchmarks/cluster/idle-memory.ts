/**
 * Where an idle store's resident memory goes: the idle benchmark's cluster (three store
 * processes, one voter of every region on each), grown to a size and settled (every region led
 * and hibernating, then a full GC), and each store's RSS taken apart from outside:
 *
 * - the V8 heap (in use and committed) and external memory, from the store's metrics;
 * - glibc malloc, from `malloc_info()` called in the store through gdb: bytes the arenas hold
 *   from the system, how much of that is free chunks, and how many arenas there are;
 * - what `malloc_trim(0)` then gives back to the kernel (freed malloc memory kept resident).
 *
 *   node --import tsx benchmarks/cluster/idle-memory.ts [--regions=10000] [--window-s=20]
 *     [--trim] [--linger-s=30] [--reduce] [--heap-snapshot=DIR]
 *
 * --trim: malloc_trim(0) after the snapshot; --linger-s: idle that much longer and look again
 * (does V8's memory reducer shrink the heap by itself?); --reduce: then a memory-reducing GC
 * (`gc({ flavor: 'last-resort' })`) to show what V8 could give back; --heap-snapshot: store 1
 * writes a V8 heap snapshot into DIR at the end. FLOTILLA_KEEP_MALLOC_INFO=PREFIX keeps the
 * raw malloc_info XML. The stores get the production malloc settings (`useStoreMallocEnv`);
 * FLOTILLA_BENCH_GLIBC_MALLOC=1 measures glibc's defaults instead.
 *
 * Needs gdb and ptrace rights on the store processes (root in the dev container). Diagnostic
 * only: the benchmark itself (idle.ts) never stops a store in a debugger.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ProcessCluster, waitFor, type StoreHandle } from '../../test/support/cluster.ts';
import { REPO } from '../../test/support/process.ts';
import { rssBytes, scrape, useStoreMallocEnv } from './proc.ts';
import { STORES, grow, regionRoles } from './regions.ts';
import { median } from '../stats.ts';

const regions = Number(process.argv.find((a) => a.startsWith('--regions='))?.split('=')[1] ?? 10_000);
const trim = process.argv.includes('--trim');
/** With --heap-snapshot=DIR: store 1 writes a V8 heap snapshot there at the end. */
const heapSnapshotDir = process.argv.find((a) => a.startsWith('--heap-snapshot='))?.split('=')[1];
const HEAP_SNAPSHOT_SIGNAL = 'SIGXFSZ';
/** With --linger-s=N: N more idle seconds after the settled snapshot, then memory again. */
const lingerS = Number(process.argv.find((a) => a.startsWith('--linger-s='))?.split('=')[1] ?? 0);
/** Idle time before each snapshot, as the benchmark's measuring window. */
const windowS = Number(process.argv.find((a) => a.startsWith('--window-s='))?.split('=')[1] ?? 20);
const TICK_MS = 100;
/** Time for the stores' full GCs (and the sweeping after them) before memory is read. */
const GC_SETTLE_MS = 3_000;
/** gdb attaching, calling into the store and detaching; longer means it hangs. */
const GDB_DEADLINE_MS = 60_000;
const GC_ON_SIGNAL =
  'if (typeof globalThis.gc === "function") { process.on("SIGUSR2", () => { globalThis.gc(); globalThis.gc(); }); ' +
  'process.on("SIGPWR", () => globalThis.gc({ type: "major", execution: "sync", flavor: "last-resort" })); }';
const HEAP = ['nodejs_heap_size_used_bytes', 'nodejs_heap_size_total_bytes', 'nodejs_external_memory_bytes'] as const;
const MiB = 2 ** 20;

interface MallocSummary {
  readonly arenas: number;
  /** Bytes the arenas hold from the system (brk heap and arena heaps). */
  readonly systemBytes: number;
  /** Of those, bytes in free chunks (fast bins and the rest). */
  readonly freeBytes: number;
  /** Chunks mmapped directly (large allocations). */
  readonly mmapBytes: number;
  /** Per arena: [system MiB, free MiB]. */
  readonly perArena: [number, number][];
}

function gdbCall(pid: number, calls: string[]): void {
  execFileSync('gdb', ['-p', String(pid), '-batch', ...calls.flatMap((c) => ['-ex', c])], { stdio: 'ignore', timeout: GDB_DEADLINE_MS });
}

function mallocInfo(pid: number): MallocSummary {
  const file = `/tmp/flotilla-malloc-info-${pid}.xml`;
  gdbCall(pid, [
    `set $f = ((void*(*)(const char*, const char*))fopen)("${file}", "w")`,
    'call ((int(*)(int, void*))malloc_info)(0, $f)',
    'call ((int(*)(void*))fclose)($f)',
  ]);
  const xml = readFileSync(file, 'utf8');
  if (process.env.FLOTILLA_KEEP_MALLOC_INFO !== undefined) writeFileSync(`${process.env.FLOTILLA_KEEP_MALLOC_INFO}-${pid}.xml`, xml);
  rmSync(file);
  const perArena: [number, number][] = [];
  for (const heap of xml.split('<heap nr=').slice(1)) {
    const body = heap.slice(0, heap.indexOf('</heap>'));
    const num = (re: RegExp): number => Number(re.exec(body)?.[1] ?? 0);
    const free = num(/<total type="fast" count="\d+" size="(\d+)"/) + num(/<total type="rest" count="\d+" size="(\d+)"/);
    perArena.push([num(/<system type="current" size="(\d+)"/) / MiB, free / MiB]);
  }
  const tail = xml.slice(xml.lastIndexOf('</heap>'));
  const num = (re: RegExp): number => Number(re.exec(tail)?.[1] ?? 0);
  return {
    arenas: perArena.length,
    systemBytes: num(/<system type="current" size="(\d+)"/),
    freeBytes: num(/<total type="fast" count="\d+" size="(\d+)"/) + num(/<total type="rest" count="\d+" size="(\d+)"/),
    mmapBytes: num(/<total type="mmap" count="\d+" size="(\d+)"/),
    perArena,
  };
}

function status(pid: number): Record<string, number> {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const out: Record<string, number> = {};
  for (const key of ['VmRSS', 'RssAnon', 'RssFile', 'Threads']) {
    const v = new RegExp(`${key}:\\s+(\\d+)`).exec(text)?.[1];
    out[key] = Number(v ?? NaN);
  }
  return out;
}

/** The store's V8 heap spaces (prom-client's per-space gauges), as "name [committed, used]". */
async function heapSpaces(store: StoreHandle): Promise<string> {
  const res = await store.pool.request({ method: 'GET', path: '/metrics' });
  const text = await res.body.text();
  const total = new Map<string, number>();
  const used = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^nodejs_heap_space_size_(total|used)_bytes\{space="(\w+)"\} (\d+)/.exec(line);
    if (m) (m[1] === 'total' ? total : used).set(m[2]!, Number(m[3]) / MiB);
  }
  return [...total].filter(([, t]) => t > 0.05).map(([name, t]) => `${name} [${t.toFixed(1)}, ${(used.get(name) ?? 0).toFixed(1)}]`).join(' ');
}

async function snapshot(cluster: ProcessCluster, label: string): Promise<void> {
  const stores = [...cluster.stores.values()];
  // The allocation rate while idle: the growth of the heap in use between samples (a GC in
  // between shows as a drop, and the sample is skipped).
  const rates: number[][] = stores.map(() => []);
  let last = await Promise.all(stores.map(async (s) => (await scrape(s, [HEAP[0]])).get(HEAP[0])!));
  for (let t = 0; t < windowS; t++) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const now = await Promise.all(stores.map(async (s) => (await scrape(s, [HEAP[0]])).get(HEAP[0])!));
    now.forEach((n, i) => {
      if (n >= last[i]!) rates[i]!.push(n - last[i]!);
    });
    last = now;
  }
  process.stdout.write(`${label}, idle allocation (median heap growth per s, incl. scrapes): ${rates.map((r) => (median(r) / 1024).toFixed(0)).join(' / ')} KiB/s\n`);
  process.stdout.write(`${label}, before the GC: rss ${stores.map((s) => (rssBytes(s.child.pid!) / MiB).toFixed(1)).join(' / ')} MiB\n`);
  for (const s of stores) process.kill(s.child.pid!, 'SIGUSR2');
  await new Promise((resolve) => setTimeout(resolve, GC_SETTLE_MS));
  for (const s of stores) {
    const pid = s.child.pid!;
    const heap = await scrape(s, HEAP);
    const spaces = await heapSpaces(s);
    const st = status(pid);
    const m = mallocInfo(pid);
    const line = [
      `${label} store ${s.id}: rss ${(rssBytes(pid) / MiB).toFixed(1)} MiB (anon ${(st.RssAnon! / 1024).toFixed(1)}, file ${(st.RssFile! / 1024).toFixed(1)}), threads ${st.Threads}`,
      `  v8 heap used ${(heap.get(HEAP[0])! / MiB).toFixed(1)} committed ${(heap.get(HEAP[1])! / MiB).toFixed(1)} external ${(heap.get(HEAP[2])! / MiB).toFixed(1)} MiB`,
      `  v8 spaces [committed, used] MiB: ${spaces}`,
      `  malloc: ${m.arenas} arenas, system ${(m.systemBytes / MiB).toFixed(1)} MiB, free ${(m.freeBytes / MiB).toFixed(1)} MiB, mmapped ${(m.mmapBytes / MiB).toFixed(1)} MiB`,
      `  per arena [system, free] MiB: ${m.perArena.map(([a, b]) => `[${a.toFixed(1)}, ${b.toFixed(1)}]`).join(' ')}`,
    ];
    if (trim) {
      gdbCall(pid, ['call ((int(*)(unsigned long))malloc_trim)(0)']);
      line.push(`  after malloc_trim(0): rss ${(rssBytes(pid) / MiB).toFixed(1)} MiB`);
    }
    process.stdout.write(`${line.join('\n')}\n`);
  }
}

/** Replicas on store `id` that lead their region. */
async function leadersOn(cluster: ProcessCluster, id: number): Promise<number> {
  let leaders = 0;
  let after = 0;
  for (;;) {
    const page = await cluster.expectAdmin<{ regions: { role: string }[]; next: number | null }>(id, 'GET', `/v1/admin/regions?after=${after}&limit=10000`);
    leaders += page.regions.filter((r) => r.role === 'leader').length;
    if (page.next === null) return leaders;
    after = page.next;
  }
}

async function main(): Promise<void> {
  const gcImport = `data:text/javascript;base64,${Buffer.from(GC_ON_SIGNAL).toString('base64')}`;
  const snapshotFlag = heapSnapshotDir === undefined ? '' : ` --heapsnapshot-signal=${HEAP_SNAPSHOT_SIGNAL}`;
  process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --expose-gc --import=${gcImport}${snapshotFlag}`.trim();
  useStoreMallocEnv();
  const cluster = new ProcessCluster({ tickMs: TICK_MS });
  try {
    for (const id of STORES) await cluster.startStore(id);
    await snapshot(cluster, '0 regions');
    // The idle benchmark's steps: a tenth first, then the rest.
    const first = Math.floor(regions / 10);
    await grow(cluster, 0, first, false);
    await waitFor(`${first} regions led and hibernating`, async () => {
      const { leaders, allHibernating } = await regionRoles(cluster);
      return allHibernating && leaders === first;
    }, 600_000);
    await grow(cluster, first, regions, true);
    await waitFor(`${regions} regions led and hibernating`, async () => {
      const { leaders, allHibernating } = await regionRoles(cluster);
      return allHibernating && leaders === regions;
    }, 600_000);
    const leadersPerStore = await Promise.all(STORES.map((id) => leadersOn(cluster, id)));
    process.stdout.write(`leaders per store: ${leadersPerStore.join(' / ')}\n`);
    await snapshot(cluster, `${regions} regions`);
    if (lingerS > 0) {
      // Does V8 give the slack back by itself? Its memory reducer starts after a mark-compact
      // that shrank the heap, waits ~8 s, then runs memory-reducing GCs if allocation is low.
      await new Promise((resolve) => setTimeout(resolve, lingerS * 1000));
      for (const s of cluster.stores.values()) {
        const heap = await scrape(s, HEAP);
        process.stdout.write(`${lingerS} s later, no forced GC, store ${s.id}: rss ${(rssBytes(s.child.pid!) / MiB).toFixed(1)} MiB, heap used ${(heap.get(HEAP[0])! / MiB).toFixed(1)} committed ${(heap.get(HEAP[1])! / MiB).toFixed(1)} MiB; ${await heapSpaces(s)}\n`);
      }
    }
    if (process.argv.includes('--reduce')) {
      // What V8 could give back: a memory-reducing GC (as its memory reducer or a memory
      // pressure notification runs), which compacts every fragmented page and shrinks new space.
      for (const s of cluster.stores.values()) process.kill(s.child.pid!, 'SIGPWR');
      await new Promise((resolve) => setTimeout(resolve, GC_SETTLE_MS));
      for (const s of cluster.stores.values()) {
        const heap = await scrape(s, HEAP);
        process.stdout.write(`after a memory-reducing GC, store ${s.id}: rss ${(rssBytes(s.child.pid!) / MiB).toFixed(1)} MiB, heap used ${(heap.get(HEAP[0])! / MiB).toFixed(1)} committed ${(heap.get(HEAP[1])! / MiB).toFixed(1)} MiB; ${await heapSpaces(s)}\n`);
      }
    }
    if (heapSnapshotDir !== undefined) {
      // Store 1 writes a heap snapshot (--heapsnapshot-signal in NODE_OPTIONS) into the repo dir.
      const before = new Set(readdirSync(REPO));
      process.kill(cluster.running(1).child.pid!, HEAP_SNAPSHOT_SIGNAL);
      await waitFor('heap snapshot written', () => readdirSync(REPO).some((f) => !before.has(f) && f.endsWith('.heapsnapshot')), 300_000);
      const file = readdirSync(REPO).find((f) => !before.has(f) && f.endsWith('.heapsnapshot'))!;
      // Written when the process has closed it: wait for the size to stay put.
      let size = -1;
      for (;;) {
        await new Promise((resolve) => setTimeout(resolve, 3_000));
        const now = statSync(path.join(REPO, file)).size;
        if (now > 0 && now === size) break;
        size = now;
      }
      renameSync(path.join(REPO, file), path.join(heapSnapshotDir, file));
      process.stdout.write(`heap snapshot of store 1: ${path.join(heapSnapshotDir, file)}\n`);
    }
  } finally {
    await cluster.close();
  }
}

await main();
