/**
 * Packs, the log's on-disk records of many entries (log-format.ts, log-batch.ts): a group's
 * entries of one batch share one key; a pack replaces the entries at and above its start, and
 * the batch that writes it deletes the packs it replaces; writes are cut into bounded packs;
 * version 1 directories (one key per entry) open, read and upgrade. The differential test runs
 * many writes per batch against the reference twin, reading every entry back from disk.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { RocksLevel } from '@nxtedition/rocksdb';
import type { ConfState, Entry, HardState } from '@flotilla/raft';
import { MemoryLogEngine, RocksLogEngine, type GroupWrite, type LogEngine } from '../src/index.ts';
import { logPackEntriesMax } from '../src/constants.ts';
import { TAG_FORMAT, TAG_RAFT_STATE, logKey, metaKey, sealValue, writeRaftStateValue } from '../src/log-format.ts';
import { LogShard } from '../src/log-shard.ts';
import { encodeChunk, pieceBytes, type TaskPiece } from '../src/log-task.ts';
import { Prng, entry, logKeys, tempDir } from './helpers.ts';

function piece(groupId: number, prevLast: number, first: number, terms: number[], commit = 0): TaskPiece {
  const entries = terms.map((term, i) => entry(first + i, term, new Uint8Array([first + i, term])));
  return {
    groupId,
    prevLast,
    newLast: first + terms.length - 1,
    truncatedIndex: 0,
    firstNew: first,
    flags: 0,
    truncatedBefore: null,
    entries,
    hardState: { term: Math.max(...terms), vote: 0, commit },
    confState: null,
    truncatedAfter: null,
  };
}

function chunkOf(...pieces: TaskPiece[]): Uint8Array {
  let bytes = 0;
  for (const p of pieces) bytes += pieceBytes(p);
  return encodeChunk(pieces, bytes);
}

/** [index, term] of entries [lo, hi) of a group as the shard reads them from disk. */
async function readTerms(shard: LogShard, groupId: number, lo: number, hi: number, maxBytes = 1 << 30): Promise<[number, number][]> {
  const bytes = await shard.read(groupId, lo, hi, maxBytes);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = view.getUint32(4);
  const out: [number, number][] = [];
  let at = 16;
  for (let i = 0; i < count; i++) {
    const term = view.getUint32(at) * 2 ** 32 + view.getUint32(at + 4);
    const data = bytes.subarray(at + 16, at + 16 + view.getUint32(at + 12));
    // Every entry carries its own index and term as payload: a read from a replaced pack shows.
    assert.deepEqual([...data], [(lo + i) & 0xff, term], `entry ${lo + i} payload`);
    out.push([lo + i, term]);
    at += 16 + data.byteLength;
  }
  return out;
}

async function withShard<T>(dir: string, use: (shard: LogShard) => Promise<T>): Promise<T> {
  const shard = await LogShard.open(dir);
  try {
    await shard.recover();
    return await use(shard);
  } finally {
    await shard.close();
  }
}

describe('log packs', () => {
  it("packs a group's entries of one batch (several tasks) into one record", async () => {
    const tmp = await tempDir('packs-merge');
    try {
      await withShard(tmp.dir, async (shard) => {
        // Three tasks written as one batch, as a worker does with the tasks that queued up.
        const chunks = [1, 2, 3].map((i) => chunkOf(piece(7, i - 1, i, [1]), piece(8, i - 1, i, [1])));
        await shard.append(1, chunks, 3);
        assert.deepEqual(await readTerms(shard, 7, 1, 4), [[1, 1], [2, 1], [3, 1]]);
        // The next batch starts a pack of its own.
        await shard.append(4, [chunkOf(piece(7, 3, 4, [1, 1]))]);
        assert.deepEqual(await readTerms(shard, 7, 2, 6), [[2, 1], [3, 1], [4, 1], [5, 1]]);
        // A read's byte budget counts payloads (2 bytes each here), across packs; one entry at least.
        assert.deepEqual(await readTerms(shard, 7, 2, 6, 6), [[2, 1], [3, 1], [4, 1]]);
        assert.deepEqual(await readTerms(shard, 7, 2, 6, 1), [[2, 1]]);
      });
      assert.deepEqual(await logKeys(tmp.dir), [[7, 1], [7, 4], [8, 1]]);
      await withShard(tmp.dir, async (shard) => {
        assert.deepEqual(await readTerms(shard, 7, 1, 6), [[1, 1], [2, 1], [3, 1], [4, 1], [5, 1]]);
        assert.deepEqual(await readTerms(shard, 8, 1, 4), [[1, 1], [2, 1], [3, 1]]);
      });
    } finally {
      await tmp.remove();
    }
  });

  it('replaces a suffix within a batch and across batches, deleting the packs it replaces', async () => {
    const tmp = await tempDir('packs-replace');
    try {
      await withShard(tmp.dir, async (shard) => {
        // One batch: 1..5 at term 1, then 3..4 at term 2 replaces 3..5 (the pack is trimmed).
        await shard.append(1, [chunkOf(piece(7, 0, 1, [1, 1, 1, 1, 1])), chunkOf(piece(7, 5, 3, [2, 2]))], 2);
        assert.deepEqual(await readTerms(shard, 7, 1, 5), [[1, 1], [2, 1], [3, 2], [4, 2]]);
        await shard.append(3, [chunkOf(piece(7, 4, 5, [2, 2]))]);
        await shard.append(4, [chunkOf(piece(7, 6, 7, [2]))]);
      });
      assert.deepEqual(await logKeys(tmp.dir), [[7, 1], [7, 5], [7, 7]]);
      await withShard(tmp.dir, async (shard) => {
        // 2..8 at term 3 replaces the packs at 5 and 7: read 5 from them and the test fails.
        await shard.append(1, [chunkOf(piece(7, 7, 2, [3, 3, 3, 3, 3, 3, 3]))]);
        assert.deepEqual(await readTerms(shard, 7, 1, 9), [[1, 1], [2, 3], [3, 3], [4, 3], [5, 3], [6, 3], [7, 3], [8, 3]]);
        // In one batch: a pack at 9, replaced from 9 by the next task, then from 6 by a third.
        await shard.append(2, [chunkOf(piece(7, 8, 9, [3, 3])), chunkOf(piece(7, 10, 9, [4])), chunkOf(piece(7, 9, 6, [5, 5]))], 4);
        assert.deepEqual(await readTerms(shard, 7, 4, 8), [[4, 3], [5, 3], [6, 5], [7, 5]]);
      });
      assert.deepEqual(await logKeys(tmp.dir), [[7, 1], [7, 2], [7, 6]]);
      await withShard(tmp.dir, async (shard) => {
        assert.deepEqual(await readTerms(shard, 7, 1, 8), [[1, 1], [2, 3], [3, 3], [4, 3], [5, 3], [6, 5], [7, 5]]);
      });
    } finally {
      await tmp.remove();
    }
  });

  it('reads from the packs it started with while an append deletes some of them', async () => {
    const tmp = await tempDir('packs-read-race');
    try {
      await withShard(tmp.dir, async (shard) => {
        await shard.append(1, [chunkOf(piece(7, 0, 1, [1, 1, 1], 3))]);
        await shard.append(2, [chunkOf(piece(7, 3, 4, [1, 1], 5))]);
        await shard.append(3, [chunkOf(piece(7, 5, 6, [1, 1], 7))]);
        // The read runs up to its first await; the compaction's batch (to 5: the packs at 1 and 4
        // go) is planned and written before the read goes on.
        const reading = readTerms(shard, 7, 4, 8);
        const compaction: TaskPiece = { ...piece(7, 7, 0, [], 7), newLast: 7, truncatedIndex: 5, truncatedAfter: { index: 5, term: 1 }, hardState: { term: 1, vote: 0, commit: 7 } };
        await shard.append(4, [chunkOf(compaction)]);
        assert.deepEqual(await reading, [[4, 1], [5, 1], [6, 1], [7, 1]]);
        assert.deepEqual(await readTerms(shard, 7, 6, 8), [[6, 1], [7, 1]]);
      });
      assert.deepEqual(await logKeys(tmp.dir), [[7, 6]]);
    } finally {
      await tmp.remove();
    }
  });

  it('cuts a large write into bounded packs and drops packs below a compaction', async () => {
    const tmp = await tempDir('packs-bounds');
    try {
      const engine = await RocksLogEngine.open({ dir: tmp.dir, mode: 'inline', shards: 1, cacheBytesMax: 0 });
      const count = 2 * logPackEntriesMax + 10;
      const entries = Array.from({ length: count }, (_, i) => entry(i + 1, 1));
      await engine.write([{ groupId: 3, entries, hardState: { term: 1, vote: 1, commit: count } }]);
      // Three entries of 600 KB: the second would take the first pack past logPackBytesMax.
      const big = new Uint8Array(600 * 1024).fill(9);
      await engine.write([{ groupId: 4, entries: [entry(1, 1, big), entry(2, 1, big), entry(3, 1, big)], hardState: { term: 1, vote: 1, commit: 3 } }]);
      const read = await engine.loadEntries(3, 1, count + 1, Number.MAX_SAFE_INTEGER);
      assert.deepEqual(
        read.map((e) => e.index),
        entries.map((e) => e.index),
      );
      assert.equal((await engine.loadEntries(4, 2, 4, Number.MAX_SAFE_INTEGER)).length, 2);
      // Compacting to 300 keeps the pack holding 301 (at 257) and deletes the one before it;
      // compacting a whole log deletes all its packs.
      await engine.write([
        { groupId: 3, compactTo: 300 },
        { groupId: 4, compactTo: 3 },
      ]);
      await engine.close();
      const starts = [1, logPackEntriesMax + 1, 2 * logPackEntriesMax + 1];
      assert.deepEqual(
        await logKeys(path.join(tmp.dir, 'log-0')),
        starts.slice(1).map((s) => [3, s]),
      );
      const again = await RocksLogEngine.open({ dir: tmp.dir, mode: 'inline', cacheBytesMax: 0 });
      assert.deepEqual(again.recovery.cut, []);
      assert.equal(again.recovery.staleEntries, 0);
      const tail = await again.loadEntries(3, 301, count + 1, Number.MAX_SAFE_INTEGER);
      assert.deepEqual(
        tail.map((e) => e.index),
        entries.slice(300).map((e) => e.index),
      );
      await again.close();
    } finally {
      await tmp.remove();
    }
  });

  it('opens a version 1 directory (one key per entry), reads it and upgrades it', async () => {
    const tmp = await tempDir('packs-v1');
    try {
      await writeV1Directory(tmp.dir);
      let engine = await RocksLogEngine.open({ dir: tmp.dir, mode: 'inline', cacheBytesMax: 0 });
      assert.deepEqual(engine.recovery.cut, []);
      assert.equal(engine.recovery.staleEntries, 1, 'the version 1 entry above the last index is collected');
      assert.equal(engine.group(5).lastIndex(), 3);
      assert.deepEqual(
        (await engine.loadEntries(5, 1, 4, Number.MAX_SAFE_INTEGER)).map((e) => [e.index, e.term, [...e.data]]),
        [
          [1, 1, [1]],
          [2, 1, [2]],
          [3, 2, [3]],
        ],
      );
      // Appending replaces entry 3 (one key per entry) with a pack from 3.
      await engine.write([{ groupId: 5, entries: [entry(3, 3), entry(4, 3)], hardState: { term: 3, vote: 1, commit: 2 } }]);
      await engine.close();
      assert.deepEqual(JSON.parse(await readFile(path.join(tmp.dir, 'LOG-MANIFEST.json'), 'utf8')), { formatVersion: 2, shards: 1, placement: 'modulo' }, 'upgraded, keeping the placement its groups were written with');
      engine = await RocksLogEngine.open({ dir: tmp.dir, mode: 'inline', cacheBytesMax: 0 });
      assert.equal(engine.recovery.staleEntries, 0);
      assert.deepEqual(
        (await engine.loadEntries(5, 1, 5, Number.MAX_SAFE_INTEGER)).map((e) => [e.index, e.term]),
        [
          [1, 1],
          [2, 1],
          [3, 3],
          [4, 3],
        ],
      );
      await engine.close();
      const db = new RocksLevel(path.join(tmp.dir, 'log-0'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
      await db.open({ columns: { default: {}, meta: {}, log: {} }, infoLogLevel: 'error' });
      try {
        const [format] = await db.getMany([metaKey(TAG_FORMAT, 0)], { column: db.columns['meta']! });
        assert.equal(format?.[4], 2, 'the format record was upgraded');
      } finally {
        await db.close();
      }
    } finally {
      await tmp.remove();
    }
  });

  for (const mode of ['inline', 'worker'] as const) {
    it(`matches the reference twin with many writes per batch, reading from disk (${mode})`, async () => {
      const seed = Number(process.env['FLOTILLA_SEED'] ?? 0x9ac5) + (mode === 'worker' ? 1 : 0);
      await differential(seed, mode);
    });
  }
});

/** A version 1 log directory as that build wrote it: group 5 has entries 1..3 and a stale 4. */
async function writeV1Directory(dir: string): Promise<void> {
  await writeFile(path.join(dir, 'LOG-MANIFEST.json'), JSON.stringify({ formatVersion: 1, shards: 1 }) + '\n');
  const db = new RocksLevel(path.join(dir, 'log-0'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open({ createIfMissing: true, columns: { default: {}, meta: {}, log: {} }, infoLogLevel: 'error' });
  try {
    const meta = db.columns['meta']!;
    const log = db.columns['log']!;
    const v1 = (key: Uint8Array, value: Buffer): Buffer => {
      value[4] = 1;
      sealValue(key, value);
      return value;
    };
    const formatKey = metaKey(TAG_FORMAT, 0);
    const stateKey = metaKey(TAG_RAFT_STATE, 5);
    const state = Buffer.alloc(40);
    writeRaftStateValue(state, 0, { term: 2, vote: 1, commit: 2 }, 3);
    const ops: { type: 'put'; key: Buffer; value: Buffer; column: typeof meta }[] = [
      { type: 'put', key: formatKey, value: v1(formatKey, Buffer.alloc(8)), column: meta },
      { type: 'put', key: stateKey, value: v1(stateKey, state), column: meta },
    ];
    for (const [index, term] of [
      [1, 1],
      [2, 1],
      [3, 2],
      [4, 2],
    ] as const) {
      // crc u32 | ver u8 | type u8 | 0 u16 | term u64 | data
      const key = logKey(5, index);
      const value = Buffer.alloc(17);
      value.writeBigUInt64BE(BigInt(term), 8);
      value[16] = index;
      ops.push({ type: 'put', key, value: v1(key, value), column: log });
    }
    await db.batch(ops, { sync: true });
  } finally {
    await db.close();
  }
}

/**
 * Random writes to a few groups — appends, suffix replacements, compactions, snapshots — several
 * rounds per step issued without waiting, so one batch carries several pieces of a group; after
 * each step every group is compared with the twin, entries read from disk (no cache), and now
 * and then the engine restarts.
 */
async function differential(seed: number, mode: 'inline' | 'worker'): Promise<void> {
  const rng = new Prng(seed);
  const tmp = await tempDir(`packs-twin-${mode}`);
  const open = (): Promise<RocksLogEngine> => RocksLogEngine.open({ dir: tmp.dir, mode, shards: 2, cacheBytesMax: 0 });
  let engine = await open();
  const ref = new MemoryLogEngine();
  const groups = [11, 12, 13, 14, 15];
  const terms = new Map<number, number>(groups.map((g) => [g, 1]));
  const conf: ConfState = { voters: [1], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false };
  try {
    for (let step = 0; step < 80; step++) {
      const pending: Promise<void>[] = [];
      for (let round = rng.int(1, 4); round > 0; round--) {
        const writes = groups.filter(() => rng.next() < 0.6).map((g) => randomWrite(rng, ref, g, terms, conf));
        if (writes.length === 0) continue;
        await ref.write(writes);
        pending.push(engine.write(writes));
      }
      await Promise.all(pending);
      for (const g of groups) await compareGroup(engine, ref, g, `seed ${seed} step ${step}`);
      if (rng.next() < 0.1) {
        await engine.close();
        engine = await open();
        for (const g of groups) await compareGroup(engine, ref, g, `seed ${seed} step ${step} after restart`);
      }
    }
  } finally {
    await engine.close();
    await tmp.remove();
  }
}

function randomWrite(rng: Prng, ref: MemoryLogEngine, g: number, terms: Map<number, number>, conf: ConfState): GroupWrite {
  const view = ref.group(g);
  const hs = view.hardState();
  const first = view.firstIndex();
  const last = view.lastIndex();
  const roll = rng.next();
  if (roll < 0.04) {
    const term = terms.get(g)! + 1;
    terms.set(g, term);
    const index = last + rng.int(1, 5);
    return { groupId: g, snapshot: { index, term, confState: conf }, hardState: { term, vote: 0, commit: index } };
  }
  if (roll < 0.85) {
    // Append, often replacing an uncommitted suffix with a higher term.
    const conflict = rng.next() < 0.35 && last > hs.commit;
    const from = conflict ? rng.int(Math.max(first, hs.commit + 1), last) : last + 1;
    if (conflict) terms.set(g, terms.get(g)! + 1);
    const term = terms.get(g)!;
    const count = rng.int(1, rng.next() < 0.1 ? 300 : 6);
    const entries: Entry[] = Array.from({ length: count }, (_, i) => ({ index: from + i, term, type: 'normal', data: rng.bytes(rng.int(0, 64)) }));
    const newLast = from + count - 1;
    const hardState: HardState = { term: Math.max(term, hs.term), vote: term > hs.term ? 1 : hs.vote, commit: Math.min(newLast, hs.commit + rng.int(0, 3)) };
    return { groupId: g, entries, hardState };
  }
  if (hs.commit >= first) return { groupId: g, compactTo: rng.int(first, hs.commit) };
  return { groupId: g, confState: conf };
}

async function compareGroup(engine: LogEngine, ref: MemoryLogEngine, g: number, where: string): Promise<void> {
  const a = engine.group(g);
  const b = ref.group(g);
  assert.equal(a.firstIndex(), b.firstIndex(), `${where} group ${g} first index`);
  assert.equal(a.lastIndex(), b.lastIndex(), `${where} group ${g} last index`);
  if (a.lastIndex() < a.firstIndex()) return;
  const got = await engine.loadEntries(g, a.firstIndex(), a.lastIndex() + 1, Number.MAX_SAFE_INTEGER);
  const want = b.entries(a.firstIndex(), a.lastIndex() + 1, Number.MAX_SAFE_INTEGER);
  assert.deepEqual(
    got.map((e) => [e.index, e.term, Buffer.from(e.data).toString('hex')]),
    want.map((e) => [e.index, e.term, Buffer.from(e.data).toString('hex')]),
    `${where} group ${g} entries`,
  );
}
