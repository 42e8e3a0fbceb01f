/**
 * The manifest of a log directory (`LOG-MANIFEST.json`, versioned): it fixes, when the directory
 * is created, the shard count and how a group's id picks its shard (`placement`), because a
 * group's records live in that shard. A manifest of an older format this build reads
 * (LOG_FORMAT_VERSION_OLDEST) is rewritten with the current version on open: from then on the
 * shards hold records older builds cannot read, and they say so.
 */
import { mkdir, open as openFile, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { LOG_FORMAT_VERSION, LOG_FORMAT_VERSION_OLDEST, appenderShardsDefault, appenderShardsMax } from './constants.ts';
import { StorageError } from './errors.ts';

const MANIFEST = 'LOG-MANIFEST.json';

/**
 * How a group's id picks its shard.
 * - 'mixed' (every directory created since 2026-11-24): a 32-bit mix of the id, so ids in any
 *   arithmetic progression spread evenly. PD hands out a split's new region id and its peers'
 *   ids from one counter (4 ids per split of a 3-replica region), so a store's region ids step
 *   by 4: taken modulo 2 or 4 they all landed in one shard, and the other appenders idled.
 * - 'modulo': `groupId % shards`, the directories created before; they keep it (a group's
 *   records stay where they were written).
 * A build from before placements ignores the field: on a 'mixed' directory of several shards
 * its recovery stops at the first group found outside `groupId % shards`, before any write.
 */
export type ShardPlacement = 'mixed' | 'modulo';
const PLACEMENTS: readonly ShardPlacement[] = ['mixed', 'modulo'];

export interface LogManifest {
  readonly shards: number;
  readonly placement: ShardPlacement;
}

/** The shard of a group (0 ≤ result < manifest.shards). */
export function shardOf(groupId: number, manifest: LogManifest): number {
  if (manifest.placement === 'modulo') return groupId % manifest.shards;
  // murmur3's 32-bit finalizer over the id's low and high words (ids are safe integers)
  let h = (groupId >>> 0) ^ Math.floor(groupId / 0x1_0000_0000);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return ((h ^ (h >>> 16)) >>> 0) % manifest.shards;
}

/** Reads or creates the manifest that fixes the shard count and placement of a log directory. */
export async function resolveManifest(dir: string, requested: number | undefined, fallback = appenderShardsDefault): Promise<LogManifest> {
  for (const [what, count] of [['shards', requested], ['defaultShards', fallback]] as const) {
    if (count !== undefined && !(Number.isInteger(count) && count >= 1 && count <= appenderShardsMax)) {
      throw new StorageError('FLOTILLA_STORAGE_LIMIT_EXCEEDED', `${what} ${count} outside 1..${appenderShardsMax}`);
    }
  }
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, MANIFEST);
  let text: string | null = null;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (text !== null) {
    let manifest: { formatVersion?: unknown; shards?: unknown; placement?: unknown };
    try {
      manifest = JSON.parse(text) as typeof manifest;
    } catch (err) {
      throw new StorageError('FLOTILLA_STORAGE_CORRUPTION', `${file}: not JSON`, { cause: err });
    }
    const version = manifest.formatVersion;
    if (typeof version !== 'number' || !(version >= LOG_FORMAT_VERSION_OLDEST && version <= LOG_FORMAT_VERSION)) {
      throw new StorageError('FLOTILLA_STORAGE_FORMAT_VERSION', `${file}: format version ${String(version)}, this build reads ${LOG_FORMAT_VERSION_OLDEST}..${LOG_FORMAT_VERSION}`);
    }
    const shards = manifest.shards;
    if (typeof shards !== 'number' || !Number.isInteger(shards) || shards < 1 || shards > appenderShardsMax) {
      throw new StorageError('FLOTILLA_STORAGE_CORRUPTION', `${file}: bad shard count`);
    }
    if (requested !== undefined && requested !== shards) {
      throw new StorageError('FLOTILLA_STORAGE_CONTRACT_VIOLATION', `${dir} was created with ${shards} shards, ${requested} requested`);
    }
    // Absent: written before placements existed, when every directory was 'modulo'.
    const placement = manifest.placement ?? 'modulo';
    if (!PLACEMENTS.includes(placement as ShardPlacement)) {
      throw new StorageError('FLOTILLA_STORAGE_FORMAT_VERSION', `${file}: shard placement ${JSON.stringify(placement)}, this build knows ${PLACEMENTS.join(', ')}`);
    }
    const found: LogManifest = { shards, placement: placement as ShardPlacement };
    if (version < LOG_FORMAT_VERSION) await writeManifest(dir, file, found);
    return found;
  }
  const created: LogManifest = { shards: requested ?? fallback, placement: 'mixed' };
  await writeManifest(dir, file, created);
  return created;
}

/** Writes the manifest atomically (temporary file, fsync, rename, fsync of the directory). */
async function writeManifest(dir: string, file: string, manifest: LogManifest): Promise<void> {
  const tmp = `${file}.tmp`;
  const handle = await openFile(tmp, 'w');
  try {
    await handle.writeFile(JSON.stringify({ formatVersion: LOG_FORMAT_VERSION, shards: manifest.shards, placement: manifest.placement }) + '\n');
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, file);
  const dirHandle = await openFile(dir, 'r');
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
}
