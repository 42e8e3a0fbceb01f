/**
 * The client workloads, through the SDK (@flotilla/client), every operation recorded in the
 * History:
 *
 * - registers: get / put / cas on single keys with values unique in the run. Workers are split
 *   into groups and each key belongs to one group, so at most `workersPerGroup` (≤ 10) clients
 *   ever touch a key. Half the operations go to a few hot keys per group (contention), the rest
 *   anywhere among the `activeKeys` (≥ 1,000). A key retires after `opsPerKeyMax` operations and
 *   a fresh one takes its place, which keeps every key's history small enough to check.
 * - set: adds of unique elements (one key each under SET_PREFIX); after the heal one scan must
 *   find every acknowledged add.
 */
import type { KvInput, KvOutput } from '@flotilla/sim';
import { createClient, type FlotillaClient } from '../../packages/client/src/index.ts';
import type { SeededRandom } from '../../packages/raft/src/index.ts';
import type { History } from './history.ts';

export const REGISTER_PREFIX = 'r/';
export const SET_PREFIX = 's/';

export interface WorkloadOptions {
  readonly pdUrls: readonly string[];
  /** Register workers; split into groups of at most `workersPerGroup`. */
  readonly registerWorkers: number;
  readonly workersPerGroup: number;
  /** Keys in use at once (the first ones: r/00000 …); at least 1,000. */
  readonly activeKeys: number;
  readonly opsPerKeyMax: number;
  readonly setWorkers: number;
  /** SDK clients the workers share (each coalesces its calls per store). */
  readonly clients: number;
  /** Deadline of one call: past it a write's outcome is unknown. */
  readonly callTimeoutMs: number;
}

/**
 * Slots of each group that take HOT_SHARE of its operations: their keys see several clients at
 * once (contention is what a linearizability check needs), and retire, and move on, quickly.
 */
const HOT_SLOTS_PER_GROUP = 4;
const HOT_SHARE = 0.5;
/** Worker ids of the set workload start here (register workers count from 1). */
const SET_WORKER_ID_BASE = 10_000;

export function registerKey(index: number): string {
  return `${REGISTER_PREFIX}${String(index).padStart(6, '0')}`;
}

/**
 * Runs the workloads until `stop()`; `finish()` then waits for every worker's last call.
 * `random` draws every choice (keys, operations) — the clock still decides the interleaving.
 */
export class Workloads {
  private readonly clients: FlotillaClient[];
  private running = true;
  private readonly workers: Promise<void>[] = [];
  /** Key slot → key index now in that slot (slot = index at the start; retired keys move on). */
  private readonly slots: number[];
  private readonly opsOnKey = new Map<number, number>();
  private nextKeyIndex: number;
  /** Per key, the values of recent successful answers: what a cas should expect. */
  private readonly lastSeen = new Map<number, string | null>();
  /** Keys ever in use (the final reads cover each): the active ones, and the fresh ones that replaced retired ones. */
  readonly keysUsed = new Set<number>();

  constructor(
    private readonly options: WorkloadOptions,
    private readonly history: History,
    private readonly random: SeededRandom,
  ) {
    if (options.workersPerGroup > 10) throw new Error('at most 10 clients per key');
    this.clients = Array.from({ length: options.clients }, () => createClient({ pd: options.pdUrls, timeoutMs: options.callTimeoutMs }));
    this.slots = Array.from({ length: options.activeKeys }, (_, i) => i);
    for (const index of this.slots) this.keysUsed.add(index);
    this.nextKeyIndex = options.activeKeys;
  }

  start(): void {
    const groups = Math.ceil(this.options.registerWorkers / this.options.workersPerGroup);
    for (let w = 0; w < this.options.registerWorkers; w++) this.workers.push(this.registerWorker(w + 1, w % groups, groups));
    for (let w = 0; w < this.options.setWorkers; w++) this.workers.push(this.setWorker(SET_WORKER_ID_BASE + w, w));
  }

  stop(): void {
    this.running = false;
  }

  async finish(): Promise<void> {
    this.stop();
    await Promise.all(this.workers);
  }

  client(i = 0): FlotillaClient {
    return this.clients[i % this.clients.length]!;
  }

  async close(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.close()));
  }

  private async registerWorker(id: number, group: number, groups: number): Promise<void> {
    const client = this.client(id);
    let sequence = 0;
    while (this.running) {
      // Slots of this group only: slot % groups === group.
      const slotCount = Math.ceil((this.slots.length - group) / groups);
      const hot = this.random.chance(HOT_SHARE);
      const slot = group + groups * this.random.nextInt(hot ? Math.min(HOT_SLOTS_PER_GROUP, slotCount) : slotCount);
      const keyIndex = this.slots[slot]!;
      this.retireIfDone(slot, keyIndex);
      const key = registerKey(keyIndex);
      const input = this.nextInput(key, keyIndex, `${id}.${++sequence}`);
      const output = await this.history.register(id, input, () => call(client, input));
      const seen = output === undefined ? undefined : valueAfter(input, output);
      if (seen !== undefined) this.lastSeen.set(keyIndex, seen);
    }
  }

  private nextInput(key: string, keyIndex: number, unique: string): KvInput {
    const roll = this.random.next();
    if (roll < 0.4) return { kind: 'get', key };
    if (roll < 0.7) return { kind: 'put', key, value: `v${unique}` };
    return { kind: 'cas', key, expected: this.lastSeen.get(keyIndex) ?? null, next: `c${unique}` };
  }

  /** Counts an operation on the key; past opsPerKeyMax the slot moves to a fresh key. */
  private retireIfDone(slot: number, keyIndex: number): void {
    const ops = (this.opsOnKey.get(keyIndex) ?? 0) + 1;
    this.opsOnKey.set(keyIndex, ops);
    if (ops < this.options.opsPerKeyMax) return;
    this.opsOnKey.delete(keyIndex);
    this.lastSeen.delete(keyIndex);
    this.slots[slot] = this.nextKeyIndex;
    this.keysUsed.add(this.nextKeyIndex++);
  }

  private async setWorker(id: number, index: number): Promise<void> {
    const client = this.client(index);
    let sequence = 0;
    while (this.running) {
      const element = `${id}.${String(++sequence).padStart(7, '0')}`;
      await this.history.add(element, () => client.put(`${SET_PREFIX}${element}`, element));
    }
  }
}

/** The key's value an answer shows (undefined: it shows none, e.g. a cas that did not swap). */
function valueAfter(input: KvInput, output: KvOutput): string | null | undefined {
  if (output.kind === 'get') return output.value;
  if (input.kind === 'put') return input.value;
  if (input.kind === 'cas' && output.kind === 'cas' && output.swapped) return input.next;
  return undefined;
}

async function call(client: FlotillaClient, input: KvInput): Promise<KvOutput> {
  switch (input.kind) {
    case 'get': {
      const value = await client.get(input.key);
      return { kind: 'get', value: value === null ? null : value.toString() };
    }
    case 'put':
      await client.put(input.key, input.value);
      return { kind: 'put' };
    case 'cas': {
      const result = await client.compareAndSwap(input.key, input.expected, input.next);
      return { kind: 'cas', swapped: result.succeeded };
    }
  }
}

/** The final read of a register key, recorded like any other get (client id 0: the checker's reader). */
export async function finalRegisterRead(history: History, client: FlotillaClient, keyIndex: number): Promise<KvOutput | undefined> {
  const input: KvInput = { kind: 'get', key: registerKey(keyIndex) };
  return history.register(0, input, () => call(client, input));
}
