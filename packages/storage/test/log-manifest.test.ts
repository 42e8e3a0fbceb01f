/**
 * The log directory's manifest: a new directory spreads groups over its shards by a mix of the
 * group id (ids as PD allocates them, stepping by 4, once all landed in one shard of 2 or 4), a
 * directory created before keeps `groupId % shards`, and a placement this build does not know
 * is refused with a typed error.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { RocksLogEngine, isStorageError } from '../src/index.ts';
import { appenderShardsDefault } from '../src/constants.ts';
import { shardOf, type LogManifest } from '../src/log-manifest.ts';
import { entry, logKeys, tempDir } from './helpers.ts';

const MANIFEST = 'LOG-MANIFEST.json';

/** Region ids as PD hands them out: a split takes the region id and one id per peer (3). */
function pdRegionIds(count: number): number[] {
  return Array.from({ length: count }, (_, i) => 2 + 4 * i);
}

/** Groups of each shard directory of a closed engine, by their log keys. */
async function groupsPerShard(dir: string, shards: number): Promise<number[][]> {
  const result: number[][] = [];
  for (let i = 0; i < shards; i++) result.push([...new Set((await logKeys(path.join(dir, `log-${i}`))).map(([group]) => group))].sort((a, b) => a - b));
  return result;
}

async function writeOneEntryEach(dir: string, groups: readonly number[]): Promise<void> {
  const engine = await RocksLogEngine.open({ dir, mode: 'inline', cacheBytesMax: 0 });
  try {
    await engine.write(groups.map((groupId) => ({ groupId, entries: [entry(1, 1)], hardState: { term: 1, vote: 0, commit: 0 } })));
  } finally {
    await engine.close();
  }
}

/** Reopened, the engine finds every group where the placement puts it (recovery checks that) with its one entry. */
async function assertReopensWith(dir: string, groups: readonly number[]): Promise<void> {
  const reopened = await RocksLogEngine.open({ dir, mode: 'inline', cacheBytesMax: 0 });
  try {
    for (const id of groups) assert.equal(reopened.group(id).lastIndex(), 1, `group ${id}`);
  } finally {
    await reopened.close();
  }
}

async function manifestOf(dir: string): Promise<{ formatVersion: number; shards: number; placement?: string }> {
  return JSON.parse(await readFile(path.join(dir, MANIFEST), 'utf8')) as { formatVersion: number; shards: number; placement?: string };
}

describe('log manifest: shard placement', () => {
  it('mixed placement spreads PD-allocated ids (stepping by 4) evenly over 2, 3 and 4 shards', () => {
    const ids = pdRegionIds(4_000);
    for (const shards of [2, 3, 4]) {
      const manifest: LogManifest = { shards, placement: 'mixed' };
      const counts = new Array<number>(shards).fill(0);
      for (const id of ids) counts[shardOf(id, manifest)]!++;
      const even = ids.length / shards;
      for (const [shard, n] of counts.entries()) assert.ok(Math.abs(n - even) < even * 0.1, `${shards} shards: shard ${shard} holds ${n} of ${ids.length}`);
    }
    // Ids past 2^32 too: ids that differ only in their high word do not share one shard.
    const two: LogManifest = { shards: 2, placement: 'mixed' };
    const high = Array.from({ length: 64 }, (_, k) => shardOf((k + 1) * 2 ** 32 + 2, two));
    assert.ok(high.includes(0) && high.includes(1), `high-word ids: ${high.join('')}`);
    assert.ok([0, 1].includes(shardOf(Number.MAX_SAFE_INTEGER, two)));
  });

  it('a new directory is created with mixed placement and its groups land in both shards', async () => {
    const tmp = await tempDir('manifest-new');
    try {
      const groups = pdRegionIds(16);
      const engine = await RocksLogEngine.open({ dir: tmp.dir, mode: 'inline', shards: 2, cacheBytesMax: 0 });
      assert.deepEqual(engine.manifest, { shards: 2, placement: 'mixed' });
      await engine.close();
      assert.deepEqual(await manifestOf(tmp.dir), { formatVersion: 2, shards: 2, placement: 'mixed' });
      await writeOneEntryEach(tmp.dir, groups);
      const perShard = await groupsPerShard(tmp.dir, 2);
      assert.ok(perShard.every((g) => g.length >= 4), `groups per shard: ${JSON.stringify(perShard)}`);
      assert.deepEqual(perShard.flat().sort((a, b) => a - b), groups);
      for (const [shard, ids] of perShard.entries()) for (const id of ids) assert.equal(shardOf(id, { shards: 2, placement: 'mixed' }), shard);
      await assertReopensWith(tmp.dir, groups);
    } finally {
      await tmp.remove();
    }
  });

  it('a directory whose manifest predates placements keeps groupId % shards', async () => {
    const tmp = await tempDir('manifest-modulo');
    try {
      await writeFile(path.join(tmp.dir, MANIFEST), JSON.stringify({ formatVersion: 2, shards: 2 }) + '\n');
      const groups = [1, 2, 3, 4, 5, 6, 7, 8];
      await writeOneEntryEach(tmp.dir, groups);
      assert.deepEqual(await groupsPerShard(tmp.dir, 2), [
        [2, 4, 6, 8],
        [1, 3, 5, 7],
      ]);
      await assertReopensWith(tmp.dir, groups);
      assert.deepEqual(await manifestOf(tmp.dir), { formatVersion: 2, shards: 2 }, 'left as it was');
    } finally {
      await tmp.remove();
    }
  });

  it('opened without a shard count, a directory keeps the count it was created with (whatever the default for new ones); a different count is refused', async () => {
    const tmp = await tempDir('manifest-count');
    try {
      await (await RocksLogEngine.open({ dir: tmp.dir, mode: 'inline', shards: 3, cacheBytesMax: 0 })).close();
      await writeOneEntryEach(tmp.dir, pdRegionIds(12));
      assert.equal((await groupsPerShard(tmp.dir, 3)).flat().length, 12);
      await assert.rejects(RocksLogEngine.open({ dir: tmp.dir, mode: 'inline', shards: 1 }), (err: unknown) => isStorageError(err) && err.code === 'FLOTILLA_STORAGE_CONTRACT_VIOLATION');
      // A default for new directories does not change an existing one.
      const kept = await RocksLogEngine.open({ dir: tmp.dir, mode: 'inline', defaultShards: 1, cacheBytesMax: 0 });
      await kept.close();
      assert.equal((await manifestOf(tmp.dir)).shards, 3);
      const fresh = await tempDir('manifest-default');
      try {
        await (await RocksLogEngine.open({ dir: path.join(fresh.dir, 'engine-default'), mode: 'inline', cacheBytesMax: 0 })).close();
        assert.equal((await manifestOf(path.join(fresh.dir, 'engine-default'))).shards, appenderShardsDefault);
        await (await RocksLogEngine.open({ dir: path.join(fresh.dir, 'caller-default'), mode: 'inline', defaultShards: 4, cacheBytesMax: 0 })).close();
        assert.equal((await manifestOf(path.join(fresh.dir, 'caller-default'))).shards, 4);
        await assert.rejects(RocksLogEngine.open({ dir: path.join(fresh.dir, 'bad'), mode: 'inline', defaultShards: 0 }), (err: unknown) => isStorageError(err) && err.code === 'FLOTILLA_STORAGE_LIMIT_EXCEEDED' && /defaultShards/.test(err.message));
      } finally {
        await fresh.remove();
      }
    } finally {
      await tmp.remove();
    }
  });

  it('an unknown placement is refused with FLOTILLA_STORAGE_FORMAT_VERSION', async () => {
    const tmp = await tempDir('manifest-unknown');
    try {
      await writeFile(path.join(tmp.dir, MANIFEST), JSON.stringify({ formatVersion: 2, shards: 2, placement: 'consistent-hash' }) + '\n');
      await assert.rejects(RocksLogEngine.open({ dir: tmp.dir, mode: 'inline' }), (err: unknown) => isStorageError(err) && err.code === 'FLOTILLA_STORAGE_FORMAT_VERSION' && /consistent-hash/.test(err.message));
    } finally {
      await tmp.remove();
    }
  });
});
