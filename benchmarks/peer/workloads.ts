/**
 * The workloads, the same for every system: 16-byte keys spread over the whole key space (the
 * hex of a 64-bit hash of the record number, so consecutive records land in different
 * regions), 128-byte values, and YCSB's request mixes with a scrambled zipfian (0.99) choice
 * of records (the hot records are spread over the key space too, as in YCSB).
 */

export const KEY_BYTES = 16;
export const VALUE_BYTES = 128;
export const SCAN_LENGTH = 10;
const ZIPFIAN_CONSTANT = 0.99;

export type WorkloadName = 'insert' | 'read' | 'ycsb-a' | 'ycsb-b' | 'ycsb-e';
export const WORKLOADS: readonly WorkloadName[] = ['insert', 'read', 'ycsb-a', 'ycsb-b', 'ycsb-e'];

export const WORKLOAD_TITLES: Readonly<Record<WorkloadName, string>> = {
  insert: 'write-only inserts of new keys',
  read: 'linearizable point reads of preloaded keys (uniform)',
  'ycsb-a': 'YCSB-A: 50% reads / 50% updates, zipfian 0.99',
  'ycsb-b': 'YCSB-B: 95% reads / 5% updates, zipfian 0.99',
  'ycsb-e': `YCSB-E: 95% scans of ${SCAN_LENGTH} / 5% inserts, zipfian 0.99 start keys`,
};

export type Operation = { readonly kind: 'read' | 'update' | 'insert'; readonly key: string } | { readonly kind: 'scan'; readonly key: string; readonly limit: number };

/** 32-bit avalanche mix (murmur3's finalizer). */
function mix32(x: number): number {
  let h = x >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

const hex8 = (n: number): string => n.toString(16).padStart(8, '0');

/** Record i's key: 16 hex characters, uniformly spread over the key space. */
export function keyOf(record: number): string {
  const high = mix32(record ^ 0x5bd1e995);
  const low = mix32(Math.imul(record, 0x9e3779b1) + 0x27d4eb2f);
  return hex8(high) + hex8(low);
}

/** N-1 keys cutting the key space into N equal ranges (for pre-splitting into regions). */
export function splitKeys(regions: number): string[] {
  return Array.from({ length: regions - 1 }, (_, i) => hex8(Math.floor(((i + 1) * 2 ** 32) / regions)));
}

/** YCSB's ZipfianGenerator (Gray et al., "Quickly generating billion-record synthetic databases"). */
export class Zipfian {
  private readonly alpha: number;
  private readonly zetan: number;
  private readonly eta: number;

  constructor(
    private readonly items: number,
    private readonly random: () => number,
    private readonly theta = ZIPFIAN_CONSTANT,
  ) {
    let zetan = 0;
    for (let i = 1; i <= items; i++) zetan += 1 / i ** theta;
    const zeta2 = 1 + 1 / 2 ** theta;
    this.zetan = zetan;
    this.alpha = 1 / (1 - theta);
    this.eta = (1 - (2 / items) ** (1 - theta)) / (1 - zeta2 / zetan);
  }

  /** A rank in [0, items): 0 the most popular. */
  next(): number {
    const u = this.random();
    const uz = u * this.zetan;
    if (uz < 1) return 0;
    if (uz < 1 + 0.5 ** this.theta) return 1;
    return Math.min(this.items - 1, Math.floor(this.items * (this.eta * u - this.eta + 1) ** this.alpha));
  }
}

/** The records a system holds: `records` preloaded, then inserts numbered after them. */
export class KeySpace {
  private inserted = 0;

  constructor(readonly records: number) {}

  nextInsert(): string {
    return keyOf(this.records + this.inserted++);
  }

  get insertedCount(): number {
    return this.inserted;
  }
}

/** A workload's operation chooser, for one system (its own key space, its own randomness). */
export function chooser(name: WorkloadName, keys: KeySpace, random: () => number): () => Operation {
  const zipfian = new Zipfian(keys.records, random);
  // Scrambled: the popular ranks are spread over the records (and so over the key space).
  const hot = (): string => keyOf(mix32(zipfian.next()) % keys.records);
  const uniform = (): string => keyOf(Math.floor(random() * keys.records));
  switch (name) {
    case 'insert':
      return () => ({ kind: 'insert', key: keys.nextInsert() });
    case 'read':
      return () => ({ kind: 'read', key: uniform() });
    case 'ycsb-a':
      return () => (random() < 0.5 ? { kind: 'read', key: hot() } : { kind: 'update', key: hot() });
    case 'ycsb-b':
      return () => (random() < 0.95 ? { kind: 'read', key: hot() } : { kind: 'update', key: hot() });
    case 'ycsb-e':
      return () => (random() < 0.95 ? { kind: 'scan', key: hot(), limit: SCAN_LENGTH } : { kind: 'insert', key: keys.nextInsert() });
  }
}

/** Seeded randomness (mulberry32): both systems see the same sequence of operations. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
