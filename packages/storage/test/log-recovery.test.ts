/**
 * Recovery, corruption and backpressure of the RocksDB log engine: damaged values are detected
 * by checksum and never returned; a damaged tail above the commit index is cut; damage at or
 * below it is a typed error; stale entries are collected; formats are versioned; a full shard
 * pushes back; the shard owner asserts submission order.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { writeFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { RocksLevel } from '@nxtedition/rocksdb';
import { isStorageError, RocksLogEngine, type GroupWrite } from '../src/index.ts';
import { logKey, metaKey, PACK_HEADER_BYTES, PACKED_ENTRY_HEADER_BYTES, sealValue, TAG_FORMAT, TAG_RAFT_STATE, valueChecksum } from '../src/log-format.ts';
import { LogShard } from '../src/log-shard.ts';
import { encodeChunk, pieceBytes, type TaskPiece } from '../src/log-task.ts';
import { entry, logKeys, tempDir } from './helpers.ts';

/** Opens a shard's RocksDB behind the engine's back and edits one value. */
async function editValue(shardDir: string, column: 'meta' | 'log', key: Uint8Array, edit: (value: Buffer | undefined) => Buffer | null): Promise<void> {
  const db = new RocksLevel(shardDir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open({ columns: { default: {}, meta: {}, log: {} }, infoLogLevel: 'error' });
  try {
    const col = db.columns[column]!;
    const [value] = await db.getMany([key], { column: col });
    const next = edit(value);
    if (next === null) await db.batch([{ type: 'del', key, column: col }], { sync: true });
    else await db.batch([{ type: 'put', key, value: next, column: col }], { sync: true });
  } finally {
    await db.close();
  }
}

function flip(at: number): (value: Buffer | undefined) => Buffer {
  return (value) => {
    assert.ok(value !== undefined, 'value exists');
    const copy = Buffer.from(value);
    copy[at] = copy[at]! ^ 0x40;
    return copy;
  };
}

/** Offset of the first payload byte of a pack's first entry. */
const FIRST_DATA_BYTE = PACK_HEADER_BYTES + PACKED_ENTRY_HEADER_BYTES;

/**
 * Group 1: entries 1..10 in three packs (three awaited writes, three batches) at 1 (1..5),
 * 6 (6..7) and 8 (8..10); group 2: entries 1..2 in one pack.
 */
async function seed(dir: string, commit: number): Promise<void> {
  // One shard, so every group lives in log-0 (later opens read the shard count from the manifest).
  const engine = await RocksLogEngine.open({ dir, mode: 'inline', shards: 1 });
  const group1 = (from: number, to: number): GroupWrite => ({
    groupId: 1,
    entries: Array.from({ length: to - from + 1 }, (_, i) => entry(from + i, 1, new Uint8Array(32).fill(from + i - 1))),
    hardState: { term: 1, vote: 1, commit: Math.min(commit, to) },
  });
  await engine.write([group1(1, 5), { groupId: 2, entries: [entry(1, 1), entry(2, 1)], hardState: { term: 1, vote: 1, commit: 2 } }]);
  await engine.write([group1(6, 7)]);
  await engine.write([group1(8, 10)]);
  await engine.close();
}

describe('log recovery', () => {
  it('cuts at a damaged pack above the commit index, and persists the cut', async () => {
    const tmp = await tempDir('recover-cut');
    try {
      await seed(tmp.dir, 5);
      // Flip a payload byte of the pack holding entries 6..7 (the pack at 8 is the last one).
      await editValue(path.join(tmp.dir, 'log-0'), 'log', logKey(1, 6), flip(FIRST_DATA_BYTE + 1));
      let engine = await RocksLogEngine.open({ dir: tmp.dir, mode: 'inline' });
      assert.deepEqual(engine.recovery.cut.map((c) => [c.groupId, c.fromIndex, c.lastIndexBefore]), [[1, 6, 10]]);
      assert.match(engine.recovery.cut[0]!.reason, /checksum/);
      assert.equal(engine.group(1).lastIndex(), 5);
      assert.equal(engine.group(1).hardState().commit, 5);
      assert.equal(engine.group(2).lastIndex(), 2);
      const kept = await engine.loadEntries(1, 1, 6, Number.MAX_SAFE_INTEGER);
      assert.deepEqual(kept.map((e) => e.data[0]), [0, 1, 2, 3, 4]);
      // The log continues after the cut.
      await engine.write([{ groupId: 1, entries: [entry(6, 2)], hardState: { term: 2, vote: 1, commit: 5 } }]);
      await engine.close();
      engine = await RocksLogEngine.open({ dir: tmp.dir, mode: 'inline' });
      assert.deepEqual(engine.recovery.cut, []);
      assert.equal(engine.group(1).lastIndex(), 6);
      assert.equal(engine.group(1).term(6), 2);
      await engine.close();
    } finally {
      await tmp.remove();
    }
  });

  it('refuses to open when a group\'s last pack is damaged (it holds the newest commit and last index)', async () => {
    const tmp = await tempDir('recover-last');
    try {
      await seed(tmp.dir, 5);
      await editValue(path.join(tmp.dir, 'log-0'), 'log', logKey(1, 8), flip(FIRST_DATA_BYTE + 4));
      await assert.rejects(RocksLogEngine.open({ dir: tmp.dir, mode: 'inline' }), (e) => isStorageError(e, 'FLOTILLA_STORAGE_CORRUPTION') && /group 1: its last pack is damaged/.test(e.message));
    } finally {
      await tmp.remove();
    }
  });

  it('trims the pack left last by a cut, so entries a cut pack had replaced stay replaced', async () => {
    const tmp = await tempDir('recover-trim');
    try {
      let engine = await RocksLogEngine.open({ dir: tmp.dir, mode: 'inline', shards: 1 });
      const terms1 = Array.from({ length: 10 }, (_, i) => entry(i + 1, 1));
      await engine.write([{ groupId: 1, entries: terms1, hardState: { term: 1, vote: 1, commit: 3 } }]);
      // 6..7 at term 2 replace 6..10 (a pack at 6); then 8..9 (a pack at 8).
      await engine.write([{ groupId: 1, entries: [entry(6, 2), entry(7, 2)], hardState: { term: 2, vote: 1, commit: 3 } }]);
      await engine.write([{ groupId: 1, entries: [entry(8, 2), entry(9, 2)], hardState: { term: 2, vote: 1, commit: 4 } }]);
      await engine.close();
      assert.deepEqual(await logKeys(path.join(tmp.dir, 'log-0')), [[1, 1], [1, 6], [1, 8]]);
      await editValue(path.join(tmp.dir, 'log-0'), 'log', logKey(1, 6), flip(FIRST_DATA_BYTE));
      engine = await RocksLogEngine.open({ dir: tmp.dir, mode: 'inline' });
      assert.deepEqual(engine.recovery.cut.map((c) => [c.fromIndex, c.lastIndexBefore]), [[6, 9]]);
      assert.equal(engine.group(1).lastIndex(), 5);
      await engine.close();
      // Reopened: the pack at 1 ends at 5 now; its old entries 6..10 must not come back.
      engine = await RocksLogEngine.open({ dir: tmp.dir, mode: 'inline' });
      assert.deepEqual(engine.recovery.cut, []);
      assert.equal(engine.group(1).lastIndex(), 5);
      assert.equal(engine.group(1).hardState().commit, 4);
      await engine.close();
      assert.deepEqual(await logKeys(path.join(tmp.dir, 'log-0')), [[1, 1]]);
    } finally {
      await tmp.remove();
    }
  });

  it('cuts at a missing pack above the commit index', async () => {
    const tmp = await tempDir('recover-gap');
    try {
      await seed(tmp.dir, 5);
      await editValue(path.join(tmp.dir, 'log-0'), 'log', logKey(1, 6), () => null);
      const engine = await RocksLogEngine.open({ dir: tmp.dir, mode: 'inline' });
      assert.deepEqual(engine.recovery.cut.map((c) => [c.groupId, c.fromIndex]), [[1, 6]]);
      assert.equal(engine.group(1).lastIndex(), 5);
      assert.equal(engine.recovery.staleEntries, 3, 'entries 8..10 beyond the cut are collected');
      await engine.close();
      assert.deepEqual(await logKeys(path.join(tmp.dir, 'log-0')), [[1, 1], [2, 1]]);
    } finally {
      await tmp.remove();
    }
  });

  it('refuses to open when a committed entry is damaged', async () => {
    const tmp = await tempDir('recover-committed');
    try {
      await seed(tmp.dir, 9);
      // A damaged term in the pack at 6: entries 6 and 7 are committed.
      await editValue(path.join(tmp.dir, 'log-0'), 'log', logKey(1, 6), flip(PACK_HEADER_BYTES + 7));
      await assert.rejects(RocksLogEngine.open({ dir: tmp.dir, mode: 'inline' }), (e) => isStorageError(e, 'FLOTILLA_STORAGE_CORRUPTION') && /committed entry 6/.test(e.message));
      // Also through a worker: the typed error crosses the thread boundary.
      await assert.rejects(RocksLogEngine.open({ dir: tmp.dir, mode: 'worker' }), (e) => /FLOTILLA_STORAGE_CORRUPTION|committed entry 6/.test(String((e as Error).message) + String((e as { code?: string }).code)));
    } finally {
      await tmp.remove();
    }
  });

  it('refuses to open when a hard state record is damaged', async () => {
    const tmp = await tempDir('recover-state');
    try {
      await seed(tmp.dir, 3);
      await editValue(path.join(tmp.dir, 'log-0'), 'meta', metaKey(TAG_RAFT_STATE, 2), flip(17));
      await assert.rejects(RocksLogEngine.open({ dir: tmp.dir, mode: 'inline' }), (e) => isStorageError(e, 'FLOTILLA_STORAGE_CORRUPTION'));
    } finally {
      await tmp.remove();
    }
  });

  it('collects packs above the recorded last index', async () => {
    const tmp = await tempDir('recover-stale');
    try {
      await seed(tmp.dir, 3);
      // A version 1 entry beyond the last index (as a version 1 shard could leave: it
      // range-deleted a replaced suffix after the batch).
      await editValue(path.join(tmp.dir, 'log-0'), 'log', logKey(2, 3), () => {
        const v = Buffer.alloc(17);
        v[4] = 1;
        sealValue(logKey(2, 3), v);
        return v;
      });
      let engine = await RocksLogEngine.open({ dir: tmp.dir, mode: 'inline' });
      assert.equal(engine.recovery.staleEntries, 1);
      assert.deepEqual(engine.recovery.cut, []);
      assert.equal(engine.group(2).lastIndex(), 2);
      await engine.close();
      engine = await RocksLogEngine.open({ dir: tmp.dir, mode: 'inline' });
      assert.equal(engine.recovery.staleEntries, 0);
      await engine.close();
    } finally {
      await tmp.remove();
    }
  });

  it('refuses a shard with data but no format record', async () => {
    const tmp = await tempDir('recover-no-format');
    try {
      await seed(tmp.dir, 3);
      await editValue(path.join(tmp.dir, 'log-0'), 'meta', metaKey(TAG_FORMAT, 0), () => null);
      await assert.rejects(RocksLogEngine.open({ dir: tmp.dir, mode: 'inline' }), (e) => isStorageError(e, 'FLOTILLA_STORAGE_CORRUPTION') && /without a format record/.test(e.message));
      // Packs and no meta record at all: refused too, not taken for a fresh shard.
      for (const groupId of [1, 2]) await editValue(path.join(tmp.dir, 'log-0'), 'meta', metaKey(TAG_RAFT_STATE, groupId), () => null);
      await assert.rejects(RocksLogEngine.open({ dir: tmp.dir, mode: 'inline' }), (e) => isStorageError(e, 'FLOTILLA_STORAGE_CORRUPTION') && /without a format record/.test(e.message));
    } finally {
      await tmp.remove();
    }
  });

  it('checks format versions (records and manifest) and the shard count', async () => {
    const tmp = await tempDir('recover-format');
    try {
      await seed(tmp.dir, 3);
      await assert.rejects(RocksLogEngine.open({ dir: tmp.dir, mode: 'inline', shards: 2 }), (e) => isStorageError(e, 'FLOTILLA_STORAGE_CONTRACT_VIOLATION'));
      const formatKey = metaKey(TAG_FORMAT, 0);
      await editValue(path.join(tmp.dir, 'log-0'), 'meta', formatKey, (value) => {
        const copy = Buffer.from(value!);
        copy[4] = 99;
        // Re-seal so only the version differs.
        copy.writeUInt32BE(valueChecksum(formatKey, copy), 0);
        return copy;
      });
      await assert.rejects(RocksLogEngine.open({ dir: tmp.dir, mode: 'inline' }), (e) => isStorageError(e, 'FLOTILLA_STORAGE_FORMAT_VERSION'));
      await writeFile(path.join(tmp.dir, 'LOG-MANIFEST.json'), JSON.stringify({ formatVersion: 99, shards: 1 }));
      await assert.rejects(RocksLogEngine.open({ dir: tmp.dir, mode: 'inline' }), (e) => isStorageError(e, 'FLOTILLA_STORAGE_FORMAT_VERSION'));
    } finally {
      await tmp.remove();
    }
  });
});

function piece(groupId: number, prevLast: number, entries: { index: number; term: number }[]): TaskPiece {
  const last = entries.length > 0 ? entries[entries.length - 1]!.index : prevLast;
  return {
    groupId,
    prevLast,
    newLast: last,
    truncatedIndex: 0,
    firstNew: entries[0]?.index ?? 0,
    flags: 0,
    truncatedBefore: null,
    entries: entries.map((e) => entry(e.index, e.term)),
    hardState: { term: 1, vote: 0, commit: 0 },
    confState: null,
    truncatedAfter: null,
  };
}

function task(seq: number, pieces: TaskPiece[]): [number, Uint8Array[]] {
  let bytes = 0;
  for (const p of pieces) bytes += pieceBytes(p);
  return [seq, [encodeChunk(pieces, bytes)]];
}

describe('log shard owner', () => {
  it('detects a damaged value on read and never returns it', async () => {
    const tmp = await tempDir('shard-read');
    const shard = await LogShard.open(tmp.dir);
    try {
      await shard.recover();
      await shard.append(...task(1, [piece(7, 0, [{ index: 1, term: 1 }, { index: 2, term: 1 }, { index: 3, term: 1 }])]));
      const good = await shard.read(7, 1, 4, 1 << 20);
      assert.equal(new DataView(good.buffer).getUint32(4), 3);
      await shard.append(...task(2, [piece(7, 3, [{ index: 4, term: 1 }, { index: 5, term: 1 }])]));
      // Bit rot after open: flip a payload byte of the second entry of the pack at 1, as stored
      // (a pack: header, then term u64 | type u8 | 0 ×3 | dataBytes u32 | data per entry).
      const it = await shard.rawGet('log', logKey(7, 1));
      assert.equal(it.length, PACK_HEADER_BYTES + 3 * (PACKED_ENTRY_HEADER_BYTES + 1));
      const second = PACK_HEADER_BYTES + PACKED_ENTRY_HEADER_BYTES + 1 + PACKED_ENTRY_HEADER_BYTES;
      it[second] = it[second]! ^ 1;
      await shard.rawPut('log', logKey(7, 1), it);
      await assert.rejects(shard.read(7, 1, 4, 1 << 20), (e) => isStorageError(e, 'FLOTILLA_STORAGE_CORRUPTION') && /pack at 1: checksum/.test(e.message));
      await assert.rejects(shard.read(7, 3, 6, 1 << 20), (e) => isStorageError(e, 'FLOTILLA_STORAGE_CORRUPTION') && /pack at 1: checksum/.test(e.message));
      // The next pack alone is still fine.
      const next = await shard.read(7, 4, 6, 1 << 20);
      assert.equal(new DataView(next.buffer).getUint32(4), 2);
    } finally {
      await shard.close();
      await tmp.remove();
    }
  });

  it('asserts the order of tasks and of each group', async () => {
    const tmp = await tempDir('shard-order');
    const shard = await LogShard.open(tmp.dir);
    try {
      await shard.recover();
      await assert.rejects(shard.append(...task(2, [piece(1, 0, [{ index: 1, term: 1 }])])), /task sequence/);
      const fresh = await LogShard.open(path.join(tmp.dir, 'b'));
      try {
        await fresh.recover();
        await fresh.append(...task(1, [piece(1, 0, [{ index: 1, term: 1 }])]));
        // A piece that claims the log ended at 5 when it ends at 1: tasks were reordered.
        await assert.rejects(fresh.append(...task(2, [piece(1, 5, [{ index: 6, term: 1 }])])), /order broken/);
      } finally {
        await fresh.close();
      }
    } finally {
      await shard.close();
      await tmp.remove();
    }
  });
});

describe('log backpressure', () => {
  it('rejects with QUEUE_FULL when a shard is full, changes nothing, and recovers after writable()', async () => {
    const tmp = await tempDir('queue-full');
    try {
      const engine = await RocksLogEngine.open({ dir: tmp.dir, mode: 'worker', taskBytesMax: 16 * 1024 });
      const data = new Uint8Array(1000);
      const accepted: Promise<void>[] = [];
      const last = new Map<number, number>();
      let full = 0;
      for (let i = 0; i < 200 && full === 0; i++) {
        const groupId = 1 + (i % 7);
        const index = (last.get(groupId) ?? 0) + 1;
        const p = engine.write([{ groupId, entries: [entry(index, 1, data)] }]);
        try {
          // A rejection for a full queue happens before anything changes, so it is already settled.
          await Promise.race([p, Promise.resolve('pending')]);
          accepted.push(p);
          last.set(groupId, index);
        } catch (err) {
          assert.ok(isStorageError(err, 'FLOTILLA_STORAGE_QUEUE_FULL'), String(err));
          full++;
          assert.equal(engine.group(groupId).lastIndex(), index - 1, 'a rejected write changes nothing');
        }
      }
      assert.equal(full, 1, 'the queue filled up');
      await engine.writable();
      const groupId = 1;
      const index = (last.get(groupId) ?? 0) + 1;
      await engine.write([{ groupId, entries: [entry(index, 1, data)] }]);
      last.set(groupId, index);
      await Promise.all(accepted);
      await engine.close();
      const reopened = await RocksLogEngine.open({ dir: tmp.dir, mode: 'inline' });
      for (const [g, l] of last) assert.equal(reopened.group(g).lastIndex(), l);
      await reopened.close();
    } finally {
      await tmp.remove();
    }
  });

  it('rejects a single write larger than a task with LIMIT_EXCEEDED', async () => {
    const tmp = await tempDir('limit');
    try {
      const engine = await RocksLogEngine.open({ dir: tmp.dir, mode: 'inline', taskBytesMax: 8192 });
      await assert.rejects(engine.write([{ groupId: 1, entries: [entry(1, 1, new Uint8Array(10_000))] }]), (e) => isStorageError(e, 'FLOTILLA_STORAGE_LIMIT_EXCEEDED'));
      assert.equal(engine.hasGroup(1), false);
      await engine.close();
    } finally {
      await tmp.remove();
    }
  });
});
