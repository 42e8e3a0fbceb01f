/**
 * Raft core benchmark: the pure state machine alone, in one thread, no I/O.
 *
 *   node --import tsx benchmarks/raft-core/bench.ts [--quick] [--json]
 *
 * 1. throughput: a 3-voter group, MemoryStorage on every node, messages handed directly to the
 *    receiving RawNode. An entry counts as committed once it has been APPLIED on the leader AND
 *    on both followers; the rate is entries / wall time until the last one was applied everywhere.
 * 2. ready cycle: the cost of hasReady() + ready() + advance() on the leader and on a follower
 *    when each Ready carries N new entries (the host's MemoryStorage.append is not timed).
 * 3. hibernation: 10,000 hibernated groups (3 peers each), every peer ticked: time per tick,
 *    messages and Readys produced (must be 0); an awake cluster of the same size for contrast.
 *
 * Payload buffers come from a pre-built pool (a host receives them from clients), so the
 * numbers are the core's cost plus the in-memory log, not the cost of allocating payloads.
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BOOTSTRAP_HARD_STATE,
  LIMITS,
  MemoryStorage,
  RawNode,
  SeededRandom,
  bootstrapSnapshot,
  decodeConfChange,
  type Message,
  type NodeId,
  type RaftConfig,
} from '@flotilla/raft';

// ---------------------------------------------------------------- configuration

const QUICK = process.argv.includes('--quick');
const JSON_OUT = process.argv.includes('--json');
/** `--only=throughput|ready|hibernation` runs one section (for profiling). */
const ONLY = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
const SECTIONS = ['throughput', 'ready', 'hibernation'] as const;
if (ONLY !== undefined && !(SECTIONS as readonly string[]).includes(ONLY)) throw new Error(`--only must be one of ${SECTIONS.join(', ')}`);
const runs = (section: (typeof SECTIONS)[number]): boolean => ONLY === undefined || ONLY === section;

const ENTRY_PAYLOAD_BYTES = 128;
const PAYLOAD_POOL_SIZE = 4096;
const VOTERS: readonly NodeId[] = [1, 2, 3];
/** Entries per propose() call. */
const BATCH_SIZES: readonly number[] = [64, 256, 1024];
/** propose() calls between two Ready cycles. */
const PROPOSALS_PER_CYCLE = 4;
/** Entries each throughput run commits (per batch size). */
const THROUGHPUT_ENTRIES = QUICK ? 1_000_000 : 5_000_000;
/** Compact every storage up to its applied index this often (bounds memory like a host would). */
const COMPACT_EVERY_CYCLES = 64;
const READY_CYCLE_SIZES: readonly number[] = [1, 64, 256, 1024];
const READY_CYCLE_ITERATIONS = QUICK ? 300 : 2000;
const HIBERNATED_GROUPS = 10_000;
const HIBERNATION_TICK_ROUNDS = QUICK ? 20 : 100;
const HIBERNATE_AFTER_TICKS = 2;
const AWAKE_TICK_ROUNDS = QUICK ? 5 : 20;
const TARGET_ENTRIES_PER_SECOND = 1_000_000;

const NODE_OPTIONS: Partial<RaftConfig> = { electionTicks: 10, heartbeatTicks: 1 };

// ---------------------------------------------------------------- a minimal in-thread host

const payloads: Uint8Array[] = Array.from({ length: PAYLOAD_POOL_SIZE }, (_, i) => new Uint8Array(ENTRY_PAYLOAD_BYTES).fill(i & 0xff));

function batch(size: number, offset: number): Uint8Array[] {
  const out: Uint8Array[] = new Array(size);
  for (let i = 0; i < size; i++) out[i] = payloads[(offset + i) % PAYLOAD_POOL_SIZE]!;
  return out;
}

interface Peer {
  readonly id: NodeId;
  readonly node: RawNode;
  readonly storage: MemoryStorage;
  /** Normal, non-empty entries applied. */
  appliedEntries: number;
}

class Group {
  readonly peers = new Map<NodeId, Peer>();
  /** Messages produced and not yet delivered. */
  outbox: Message[] = [];
  messagesSent = 0;

  constructor(options: Partial<RaftConfig>, seed: number) {
    const random = new SeededRandom(seed);
    for (const id of VOTERS) {
      const storage = new MemoryStorage();
      storage.applySnapshot(bootstrapSnapshot({ voters: [...VOTERS], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false }));
      storage.setHardState(BOOTSTRAP_HARD_STATE);
      const node = new RawNode({ id, storage, random, ...NODE_OPTIONS, ...options });
      this.peers.set(id, { id, node, storage, appliedEntries: 0 });
    }
  }

  peer(id: NodeId): Peer {
    const p = this.peers.get(id);
    if (!p) throw new Error(`no peer ${id}`);
    return p;
  }

  /** One host Ready cycle for `p`: persist, queue messages, apply, advance. True if it had one. */
  cycle(p: Peer): boolean {
    if (!p.node.hasReady()) return false;
    const rd = p.node.ready();
    if (rd.snapshot) p.storage.applySnapshot(rd.snapshot);
    if (rd.entries.length > 0) p.storage.append(rd.entries);
    if (rd.hardState) p.storage.setHardState(rd.hardState);
    for (const m of rd.messages) this.outbox.push(m);
    this.messagesSent += rd.messages.length;
    for (const e of rd.committedEntries) {
      if (e.type === 'confChange') p.node.applyConfChange(decodeConfChange(e.data));
      else if (e.data.byteLength > 0) p.appliedEntries++;
    }
    p.node.advance(rd);
    return true;
  }

  deliver(): boolean {
    const out = this.outbox;
    if (out.length === 0) return false;
    this.outbox = [];
    for (const m of out) this.peers.get(m.to)?.node.step(m);
    return true;
  }

  /** Every peer's Ready once, then deliver. */
  round(): boolean {
    let any = false;
    for (const p of this.peers.values()) if (this.cycle(p)) any = true;
    return this.deliver() || any;
  }

  stabilize(roundsMax = 10_000): void {
    for (let i = 0; i < roundsMax; i++) if (!this.round()) return;
    throw new Error('group did not stabilize');
  }

  tickAll(): void {
    for (const p of this.peers.values()) p.node.tick();
  }

  elect(id: NodeId): Peer {
    const p = this.peer(id);
    p.node.campaign();
    this.stabilize();
    if (p.node.status().role !== 'leader') throw new Error(`peer ${id} did not win`);
    return p;
  }

  compact(): void {
    for (const p of this.peers.values()) {
      const applied = p.node.status().applied;
      if (applied > p.storage.firstIndex()) p.storage.compact(applied);
    }
  }
}

// ---------------------------------------------------------------- 1. throughput

interface ThroughputResult {
  batchEntries: number;
  proposalsPerCycle: number;
  entries: number;
  seconds: number;
  entriesPerSecond: number;
  cycles: number;
  messages: number;
  heapUsedMb: number;
}

function throughput(batchEntries: number): ThroughputResult {
  const g = new Group({}, 1);
  const leader = g.elect(1);
  const followers = [g.peer(2), g.peer(3)];
  const perCycle = batchEntries * PROPOSALS_PER_CYCLE;
  const total = Math.ceil(THROUGHPUT_ENTRIES / perCycle) * perCycle;
  let proposed = 0;
  let cycles = 0;
  const allApplied = (): boolean => leader.appliedEntries === total && followers.every((f) => f.appliedEntries === total);

  const start = process.hrtime.bigint();
  while (!allApplied()) {
    if (proposed < total) {
      for (let i = 0; i < PROPOSALS_PER_CYCLE; i++) {
        leader.node.propose(batch(batchEntries, proposed));
        proposed += batchEntries;
      }
    }
    if (!g.round() && proposed >= total && !allApplied()) {
      // Nothing moves but not everything is applied: only ticks can help (should not happen).
      g.tickAll();
    }
    cycles++;
    if (cycles % COMPACT_EVERY_CYCLES === 0) g.compact();
    if (cycles > 100 * (total / perCycle) + 10_000) throw new Error('throughput run does not converge');
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return {
    batchEntries,
    proposalsPerCycle: PROPOSALS_PER_CYCLE,
    entries: total,
    seconds,
    entriesPerSecond: total / seconds,
    cycles,
    messages: g.messagesSent,
    heapUsedMb: process.memoryUsage().heapUsed / 2 ** 20,
  };
}

// ---------------------------------------------------------------- 2. ready cycle cost

interface ReadyCycleResult {
  entriesPerReady: number;
  iterations: number;
  leaderMicrosMedian: number;
  leaderMicrosP99: number;
  leaderMicrosMean: number;
  followerMicrosMedian: number;
  followerMicrosP99: number;
  /** Leader median divided by the entries per Ready. */
  leaderNanosPerEntry: number;
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** hasReady + ready + advance timed; the host's persistence (MemoryStorage.append) is not. */
function timedCycle(g: Group, p: Peer): number {
  const t0 = process.hrtime.bigint();
  const has = p.node.hasReady();
  if (!has) return Number(process.hrtime.bigint() - t0);
  const rd = p.node.ready();
  const t1 = process.hrtime.bigint();
  if (rd.entries.length > 0) p.storage.append(rd.entries);
  if (rd.hardState) p.storage.setHardState(rd.hardState);
  for (const m of rd.messages) g.outbox.push(m);
  for (const e of rd.committedEntries) if (e.data.byteLength > 0) p.appliedEntries++;
  const t2 = process.hrtime.bigint();
  p.node.advance(rd);
  const t3 = process.hrtime.bigint();
  return Number(t1 - t0 + (t3 - t2));
}

function readyCycle(entriesPerReady: number): ReadyCycleResult {
  const g = new Group({}, 2);
  const leader = g.elect(1);
  const follower = g.peer(2);
  const leaderNanos: number[] = [];
  const followerNanos: number[] = [];
  const warmup = Math.floor(READY_CYCLE_ITERATIONS / 5);
  for (let i = 0; i < warmup + READY_CYCLE_ITERATIONS; i++) {
    leader.node.propose(batch(entriesPerReady, i * entriesPerReady));
    // Leader: persists N entries, sends 2 appends, applies what the last round committed.
    const l = timedCycle(g, leader);
    g.deliver();
    // Follower: persists N entries, answers, applies.
    const f = timedCycle(g, follower);
    g.cycle(g.peer(3));
    g.deliver();
    if (i >= warmup) {
      leaderNanos.push(l);
      followerNanos.push(f);
    }
    if (i % COMPACT_EVERY_CYCLES === 0) g.compact();
  }
  g.stabilize();
  const ls = [...leaderNanos].sort((a, b) => a - b);
  const fs = [...followerNanos].sort((a, b) => a - b);
  return {
    entriesPerReady,
    iterations: READY_CYCLE_ITERATIONS,
    leaderMicrosMedian: quantile(ls, 0.5) / 1000,
    leaderMicrosP99: quantile(ls, 0.99) / 1000,
    leaderMicrosMean: ls.reduce((a, b) => a + b, 0) / ls.length / 1000,
    followerMicrosMedian: quantile(fs, 0.5) / 1000,
    followerMicrosP99: quantile(fs, 0.99) / 1000,
    leaderNanosPerEntry: quantile(ls, 0.5) / entriesPerReady,
  };
}

// ---------------------------------------------------------------- 3. hibernation

interface HibernationResult {
  groups: number;
  peers: number;
  tickRounds: number;
  nanosPerPeerTick: number;
  millisPerRoundAllGroups: number;
  messages: number;
  readys: number;
  termChanges: number;
  awakeNanosPerPeerTick: number;
  awakeMessagesPerRound: number;
  setupSeconds: number;
}

function hibernation(): HibernationResult {
  const setupStart = process.hrtime.bigint();
  const groups: Group[] = [];
  for (let i = 0; i < HIBERNATED_GROUPS; i++) {
    const g = new Group({ hibernateAfterTicks: HIBERNATE_AFTER_TICKS }, i + 1);
    g.elect(1);
    for (let t = 0; t < 10 * HIBERNATE_AFTER_TICKS; t++) {
      g.tickAll();
      g.stabilize();
    }
    for (const p of g.peers.values()) {
      if (!p.node.status().hibernating) throw new Error(`group ${i} peer ${p.id} did not hibernate`);
    }
    g.messagesSent = 0;
    groups.push(g);
  }
  const setupSeconds = Number(process.hrtime.bigint() - setupStart) / 1e9;
  const terms = groups.map((g) => g.peer(1).node.status().term);
  const nodes: RawNode[] = groups.flatMap((g) => [...g.peers.values()].map((p) => p.node));

  let readys = 0;
  const start = process.hrtime.bigint();
  for (let r = 0; r < HIBERNATION_TICK_ROUNDS; r++) {
    for (const n of nodes) n.tick();
  }
  const tickNanos = Number(process.hrtime.bigint() - start);
  // After all the ticking: what would the host have had to do?
  for (const g of groups) {
    for (const p of g.peers.values()) if (p.node.hasReady()) readys++;
    for (const p of g.peers.values()) g.cycle(p);
  }
  const messages = groups.reduce((sum, g) => sum + g.messagesSent + g.outbox.length, 0);
  const termChanges = groups.filter((g, i) => g.peer(1).node.status().term !== terms[i]).length;

  // Contrast: the same number of groups, awake (no hibernation), ticked the same way.
  const awake: Group[] = [];
  for (let i = 0; i < HIBERNATED_GROUPS; i++) {
    const g = new Group({}, i + 1);
    g.elect(1);
    g.messagesSent = 0;
    awake.push(g);
  }
  const awakeNodes = awake.flatMap((g) => [...g.peers.values()].map((p) => p.node));
  let awakeNanos = 0;
  for (let r = 0; r < AWAKE_TICK_ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    for (const n of awakeNodes) n.tick();
    awakeNanos += Number(process.hrtime.bigint() - t0);
    for (const g of awake) g.stabilize(); // not timed: the host's work
  }
  const awakeMessages = awake.reduce((sum, g) => sum + g.messagesSent, 0);

  return {
    groups: HIBERNATED_GROUPS,
    peers: nodes.length,
    tickRounds: HIBERNATION_TICK_ROUNDS,
    nanosPerPeerTick: tickNanos / (HIBERNATION_TICK_ROUNDS * nodes.length),
    millisPerRoundAllGroups: tickNanos / HIBERNATION_TICK_ROUNDS / 1e6,
    messages,
    readys,
    termChanges,
    awakeNanosPerPeerTick: awakeNanos / (AWAKE_TICK_ROUNDS * awakeNodes.length),
    awakeMessagesPerRound: awakeMessages / AWAKE_TICK_ROUNDS,
    setupSeconds,
  };
}

// ---------------------------------------------------------------- report

function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function table(headers: string[], rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map(String));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]!.length)));
  const line = (r: string[]): string => `| ${r.map((c, i) => c.padStart(widths[i]!)).join(' | ')} |`;
  return [line(headers), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.map(line)].join('\n');
}

function main(): void {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const root = path.resolve(here, '..', '..');
  const script = path.relative(root, fileURLToPath(import.meta.url));
  const command = ['node', ...process.execArgv, script, ...process.argv.slice(2)].join(' ');
  const cpus = os.cpus();
  const machine = {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
  };
  const config = {
    voters: VOTERS.length,
    entryPayloadBytes: ENTRY_PAYLOAD_BYTES,
    batchSizes: BATCH_SIZES,
    proposalsPerCycle: PROPOSALS_PER_CYCLE,
    throughputEntries: THROUGHPUT_ENTRIES,
    appendBytesMax: LIMITS.appendBytesMax,
    inflightMessagesMax: LIMITS.inflightMessagesMax,
    uncommittedBytesMax: LIMITS.uncommittedBytesMax,
    committedBytesPerReadyMax: LIMITS.committedBytesPerReadyMax,
    electionTicks: NODE_OPTIONS.electionTicks,
    heartbeatTicks: NODE_OPTIONS.heartbeatTicks,
    hibernateAfterTicks: HIBERNATE_AFTER_TICKS,
    quick: QUICK,
  };
  console.log('# Flotilla raft-core benchmark');
  console.log(`command : ${command}`);
  const startedAt = new Date().toISOString();
  console.log(`date    : ${startedAt}`);
  console.log(`node    : ${process.version}`);
  console.log(`machine : ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGb} GB, ${machine.platform}`);
  console.log(`config  : ${JSON.stringify(config)}`);
  console.log('');

  const tp: ThroughputResult[] = [];
  if (runs('throughput')) {
    console.log('## 1. Throughput (3 voters, one thread; an entry counts once applied on the leader AND both followers)');
    for (const size of BATCH_SIZES) {
      const r = throughput(size);
      tp.push(r);
      console.log(`  batch ${size}: ${fmt(r.entriesPerSecond)} entries/s`);
    }
    console.log(
      table(
        ['entries/propose', 'proposals/cycle', 'entries', 'seconds', 'committed entries/s', 'vs target 1M/s', 'cycles', 'messages', 'heap MB'],
        tp.map((r) => [r.batchEntries, r.proposalsPerCycle, fmt(r.entries), fmt(r.seconds, 2), fmt(r.entriesPerSecond), `${fmt((100 * r.entriesPerSecond) / TARGET_ENTRIES_PER_SECOND, 1)}%`, fmt(r.cycles), fmt(r.messages), fmt(r.heapUsedMb)]),
      ),
    );
    console.log('');
  }

  const rc: ReadyCycleResult[] = [];
  if (runs('ready')) {
    console.log(`## 2. Ready cycle cost (hasReady + ready + advance; host persistence not timed; ${fmt(READY_CYCLE_ITERATIONS)} cycles each)`);
    for (const size of READY_CYCLE_SIZES) readyCycle(size); // warm the JIT on every shape first
    for (const size of READY_CYCLE_SIZES) rc.push(readyCycle(size));
    console.log(
      table(
        ['entries/Ready', 'leader µs p50', 'leader µs p99', 'leader µs mean', 'follower µs p50', 'follower µs p99', 'leader ns/entry (p50)'],
        rc.map((r) => [r.entriesPerReady, fmt(r.leaderMicrosMedian, 2), fmt(r.leaderMicrosP99, 2), fmt(r.leaderMicrosMean, 2), fmt(r.followerMicrosMedian, 2), fmt(r.followerMicrosP99, 2), fmt(r.leaderNanosPerEntry, 1)]),
      ),
    );
    console.log('');
  }

  let hb: HibernationResult | null = null;
  if (runs('hibernation')) {
    console.log(`## 3. Hibernation (${fmt(HIBERNATED_GROUPS)} groups x 3 peers, every peer ticked)`);
    hb = hibernation();
    console.log(
      table(
        ['state', 'peers', 'tick rounds', 'ns/peer tick', 'ms/round (all groups)', 'messages', 'Readys', 'term changes'],
        [
          ['hibernated', fmt(hb.peers), hb.tickRounds, fmt(hb.nanosPerPeerTick, 1), fmt(hb.millisPerRoundAllGroups, 3), hb.messages, hb.readys, hb.termChanges],
          ['awake (contrast)', fmt(hb.peers), AWAKE_TICK_ROUNDS, fmt(hb.awakeNanosPerPeerTick, 1), fmt((hb.awakeNanosPerPeerTick * hb.peers) / 1e6, 3), `${fmt(hb.awakeMessagesPerRound)}/round`, '-', '-'],
        ],
      ),
    );
    console.log(`  (setup of the hibernated groups: ${fmt(hb.setupSeconds, 1)} s; 'messages' of the awake run counts heartbeats and their responses)`);
    if (hb.messages !== 0 || hb.readys !== 0 || hb.termChanges !== 0) {
      console.log('  FAIL: hibernated groups produced messages, Readys or elections');
      process.exitCode = 1;
    }
    console.log('');
  }

  if (tp.length > 0) {
    const best = Math.max(...tp.map((r) => r.entriesPerSecond));
    const worst = Math.min(...tp.map((r) => r.entriesPerSecond));
    console.log(`target ${fmt(TARGET_ENTRIES_PER_SECOND)} committed entries/s on one core: best ${fmt(best)} (${fmt((100 * best) / TARGET_ENTRIES_PER_SECOND, 1)}%), worst ${fmt(worst)}`);
  }

  if (JSON_OUT) {
    const file = path.join(here, 'results.json');
    const results = { command, date: startedAt, node: process.version, machine, config, throughput: tp, readyCycle: rc, hibernation: hb };
    writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
    console.log(`wrote ${path.relative(root, file)}`);
  }
}

main();
