/**
 * The manifest of a log directory (`LOG-MANIFEST.json`, versioned): it fixes the shard count
 * when the directory is created, because a group's shard is `groupId % shards`. A manifest of an
 * older format this build reads (LOG_FORMAT_VERSION_OLDEST) is rewritten with the current version
 * on open: from then on the shards hold records older builds cannot read, and they say so.
 */
import { mkdir, open as openFile, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { LOG_FORMAT_VERSION, LOG_FORMAT_VERSION_OLDEST, appenderShardsDefault, appenderShardsMax } from './constants.ts';
import { StorageError } from './errors.ts';

const MANIFEST = 'LOG-MANIFEST.json';

/** Reads or creates the manifest that fixes the shard count of a log directory. */
export async function resolveManifest(dir: string, requested: number | undefined): Promise<number> {
  if (requested !== undefined && !(Number.isInteger(requested) && requested >= 1 && requested <= appenderShardsMax)) {
    throw new StorageError('FLOTILLA_STORAGE_LIMIT_EXCEEDED', `shards ${requested} outside 1..${appenderShardsMax}`);
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
    let manifest: { formatVersion?: unknown; shards?: unknown };
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
    if (version < LOG_FORMAT_VERSION) await writeManifest(dir, file, shards);
    return shards;
  }
  const shards = requested ?? appenderShardsDefault;
  await writeManifest(dir, file, shards);
  return shards;
}

/** Writes the manifest atomically (temporary file, fsync, rename, fsync of the directory). */
async function writeManifest(dir: string, file: string, shards: number): Promise<void> {
  const tmp = `${file}.tmp`;
  const handle = await openFile(tmp, 'w');
  try {
    await handle.writeFile(JSON.stringify({ formatVersion: LOG_FORMAT_VERSION, shards }) + '\n');
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
