/** Shared test helpers (not a test file). */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { RocksLevel } from '@nxtedition/rocksdb';
import { SeededRandom, isRaftError, type ConfState, type Entry } from '@flotilla/raft';
import type { KvCommand, LogEngine, RegionMeta } from '../src/index.ts';
import { waitFor } from '../../../test/support/wait.ts';

export { waitFor };

export async function tempDir(prefix: string): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `flotilla-${prefix}-`));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** The shared seeded PRNG plus the draws these tests need: a failing run prints its seed. */
export class Prng extends SeededRandom {
  constructor(readonly seed: number) {
    super(seed);
  }
  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + this.nextInt(hi - lo + 1);
  }
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.nextInt(256);
    return b;
  }
}


/** Counts onFetched notifications so readers can wait for the fetch they triggered. */
export class FetchSignal {
  count = 0;
  readonly onFetched = (): void => {
    this.count++;
  };
}

/** entries() as the core calls it, retrying while the engine reads from disk. */
export async function readEntries(engine: LogEngine, signal: FetchSignal, groupId: number, lo: number, hi: number, maxBytes = Number.MAX_SAFE_INTEGER): Promise<Entry[]> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const before = signal.count;
    try {
      return engine.group(groupId).entries(lo, hi, maxBytes);
    } catch (err) {
      if (!isRaftError(err, 'FLOTILLA_RAFT_LOG_TEMPORARILY_UNAVAILABLE')) throw err;
    }
    await waitFor(`fetch of group ${groupId} [${lo},${hi})`, () => signal.count > before);
  }
  throw new Error(`group ${groupId}: entries [${lo},${hi}) never became available`);
}

/** The log column's keys of a closed shard, as [groupId, first index] pairs in key order. */
export async function logKeys(shardDir: string): Promise<[number, number][]> {
  const db = new RocksLevel(shardDir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open({ columns: { default: {}, meta: {}, log: {} }, infoLogLevel: 'error' });
  try {
    const keys: [number, number][] = [];
    const it = db.iterator({ column: db.columns['log']! });
    try {
      for (;;) {
        const rows = await it.nextv(1000);
        if (rows.length === 0) return keys;
        for (const [key] of rows) keys.push([Number(key.readBigUInt64BE(0)), Number(key.readBigUInt64BE(8))]);
      }
    } finally {
      await it.close();
    }
  } finally {
    await db.close();
  }
}

export function entry(index: number, term: number, data: Uint8Array = new Uint8Array([index & 0xff])): Entry {
  return { index, term, type: 'normal', data };
}

/** The (never joint) raft configuration a region's peers stand for, by role. */
export function confOf(region: RegionMeta): ConfState {
  return {
    voters: region.peers.filter((p) => p.role === 'voter').map((p) => p.id),
    votersOutgoing: [],
    learners: region.peers.filter((p) => p.role === 'learner').map((p) => p.id),
    learnersNext: [],
    autoLeave: false,
  };
}

/** A putRegion command with the configuration of the region's peers (created at `appliedIndex`). */
export function putRegion(region: RegionMeta, appliedIndex?: number, appliedTerm?: number): KvCommand {
  return { op: 'putRegion', region, confState: confOf(region), ...(appliedIndex !== undefined ? { appliedIndex } : {}), ...(appliedTerm !== undefined ? { appliedTerm } : {}) };
}
