/**
 * A backup folder's manifest.json: what `flotilla ctl backup` wrote and `flotilla ctl restore`
 * checks before writing anything. One entry per region file, in the order they were taken
 * (a restore writes them in that order, so where two overlap the later copy wins).
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SNAPSHOT_FORMAT_VERSION } from './frames.ts';

export const MANIFEST_FILE = 'manifest.json';
export const MANIFEST_FORMAT = 'flotilla-backup';
export const MANIFEST_VERSION = 1;

export const manifestLimits = Object.freeze({
  /** manifest.json is read whole: one entry is ~400 bytes, so ~100,000 regions. */
  bytesMax: 64 * 1024 * 1024,
  regionsMax: 100_000,
});

/** A region file's name: `region-<id>-<appliedIndex>.snap` (nothing else is opened). */
const REGION_FILE = /^region-[1-9][0-9]{0,15}-[0-9]{1,16}\.snap$/;
const HEX = /^(?:[0-9a-f]{2})*$/;
const SHA256 = /^[0-9a-f]{64}$/;

export interface ManifestRegion {
  readonly id: number;
  readonly file: string;
  /** The region's range when copied, lowercase hex ('' end: unbounded). */
  readonly startKey: string;
  readonly endKey: string;
  readonly epoch: { readonly version: number; readonly confVer: number };
  readonly appliedIndex: number;
  readonly appliedTerm: number;
  /** The store whose leader replica served the copy. */
  readonly storeId: number;
  readonly pairs: number;
  /** Key and value bytes. */
  readonly bytes: number;
  readonly fileBytes: number;
  readonly sha256: string;
  /** When the copy was taken (ISO 8601). */
  readonly takenAt: string;
}

export interface Manifest {
  readonly format: typeof MANIFEST_FORMAT;
  readonly version: typeof MANIFEST_VERSION;
  readonly snapshotFormatVersion: number;
  readonly createdAt: string;
  /** `all`: the regions cover the whole keyspace; `regions`: only those asked for. */
  readonly scope: 'all' | 'regions';
  readonly regions: readonly ManifestRegion[];
}

export function newManifest(scope: Manifest['scope'], regions: readonly ManifestRegion[]): Manifest {
  return { format: MANIFEST_FORMAT, version: MANIFEST_VERSION, snapshotFormatVersion: SNAPSHOT_FORMAT_VERSION, createdAt: new Date().toISOString(), scope, regions };
}

/** Written last, through a rename: a folder with a manifest.json holds a finished backup. */
export async function writeManifest(dir: string, manifest: Manifest): Promise<void> {
  const target = path.join(dir, MANIFEST_FILE);
  await writeFile(`${target}.partial`, `${JSON.stringify(manifest, null, 2)}\n`);
  await rename(`${target}.partial`, target);
}

/** A manifest that is not one: the message names the field. */
export class ManifestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ManifestError';
  }
}

export async function readManifest(dir: string): Promise<Manifest> {
  const file = path.join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ManifestError(code === 'ENOENT' ? `${file} does not exist: not a backup folder, or a backup that did not finish` : `cannot read ${file}: ${code ?? (err as Error).message}`);
  }
  if (text.length > manifestLimits.bytesMax) throw new ManifestError(`${MANIFEST_FILE} is over ${manifestLimits.bytesMax} bytes`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ManifestError(`${MANIFEST_FILE} is not JSON`);
  }
  return checkManifest(parsed);
}

function checkManifest(value: unknown): Manifest {
  const m = object(value, 'manifest');
  if (m.format !== MANIFEST_FORMAT) throw new ManifestError(`${MANIFEST_FILE}: format is ${JSON.stringify(m.format)}, expected "${MANIFEST_FORMAT}"`);
  if (m.version !== MANIFEST_VERSION) throw new ManifestError(`${MANIFEST_FILE}: version ${JSON.stringify(m.version)}; this flotilla reads version ${MANIFEST_VERSION}`);
  if (m.snapshotFormatVersion !== SNAPSHOT_FORMAT_VERSION) {
    throw new ManifestError(`${MANIFEST_FILE}: snapshot format ${JSON.stringify(m.snapshotFormatVersion)}; this flotilla reads ${SNAPSHOT_FORMAT_VERSION}`);
  }
  if (m.scope !== 'all' && m.scope !== 'regions') throw new ManifestError(`${MANIFEST_FILE}: scope must be "all" or "regions"`);
  if (!Array.isArray(m.regions) || m.regions.length > manifestLimits.regionsMax) throw new ManifestError(`${MANIFEST_FILE}: regions must be a list of at most ${manifestLimits.regionsMax}`);
  const regions = m.regions.map((r, i) => checkRegion(r, `regions[${i}]`));
  const files = new Set(regions.map((r) => r.file));
  if (files.size !== regions.length) throw new ManifestError(`${MANIFEST_FILE}: a file is listed twice`);
  return { format: MANIFEST_FORMAT, version: MANIFEST_VERSION, snapshotFormatVersion: SNAPSHOT_FORMAT_VERSION, createdAt: String(m.createdAt), scope: m.scope, regions };
}

function checkRegion(value: unknown, where: string): ManifestRegion {
  const r = object(value, where);
  const epoch = object(r.epoch, `${where}.epoch`);
  const file = r.file;
  if (typeof file !== 'string' || !REGION_FILE.test(file)) throw new ManifestError(`${MANIFEST_FILE}: ${where}.file must be a name like region-7-120.snap`);
  const hex = (name: 'startKey' | 'endKey'): string => {
    const v = r[name];
    if (typeof v !== 'string' || !HEX.test(v)) throw new ManifestError(`${MANIFEST_FILE}: ${where}.${name} must be lowercase hex`);
    return v;
  };
  const sha256 = r.sha256;
  if (typeof sha256 !== 'string' || !SHA256.test(sha256)) throw new ManifestError(`${MANIFEST_FILE}: ${where}.sha256 must be 64 hex digits`);
  return {
    id: count(r.id, `${where}.id`, 1),
    file,
    startKey: hex('startKey'),
    endKey: hex('endKey'),
    epoch: { version: count(epoch.version, `${where}.epoch.version`), confVer: count(epoch.confVer, `${where}.epoch.confVer`) },
    appliedIndex: count(r.appliedIndex, `${where}.appliedIndex`),
    appliedTerm: count(r.appliedTerm, `${where}.appliedTerm`),
    storeId: count(r.storeId, `${where}.storeId`),
    pairs: count(r.pairs, `${where}.pairs`),
    bytes: count(r.bytes, `${where}.bytes`),
    fileBytes: count(r.fileBytes, `${where}.fileBytes`),
    sha256,
    takenAt: String(r.takenAt),
  };
}

function object(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ManifestError(`${MANIFEST_FILE}: ${where} must be an object`);
  return value as Record<string, unknown>;
}

function count(value: unknown, where: string, min = 0): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) throw new ManifestError(`${MANIFEST_FILE}: ${where} must be an integer >= ${min}`);
  return value;
}
