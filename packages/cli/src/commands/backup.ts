/**
 * `flotilla ctl backup` and `flotilla ctl restore`.
 *
 * A backup is one point-in-time copy per region, each served by the region's leader after a
 * read barrier (it holds every write acknowledged before it was asked for), written to
 * `region-<id>-<appliedIndex>.snap` with every frame checked, then `manifest.json`. Regions are
 * copied one after another, so the copies are consistent per region, not across regions.
 *
 * A restore checks the manifest and every frame of every file before it writes anything, then
 * writes every pair through the SDK (putMany), whatever the cluster's regions are now.
 */
import { mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { ParsedArgs } from '../args.ts';
import { FrameError, type Pair } from '../backup/frames.ts';
import { MANIFEST_FILE, ManifestError, newManifest, readManifest, writeManifest, type Manifest, type ManifestRegion } from '../backup/manifest.ts';
import { RegionCopier } from '../backup/region-copy.ts';
import { RegionFileError, checkRegionFile, regionBatches } from '../backup/region-file.ts';
import { openDataClient } from '../data-client.ts';
import { CliError, EXIT, clusterError, isCliError, usageError, type ExitCode } from '../errors.ts';
import { bytes } from '../format.ts';
import type { PdApi, PdRegionJson } from '../pd-api.ts';
import { Progress } from '../progress.ts';
import { runBounded, workloadLimits } from '../workload.ts';

const API = '/pd/api/v1';

export const backupLimits = Object.freeze({
  /** Regions named by --region. */
  regionIdsMax: 10_000,
  /** Regions of one page of PD's region list. */
  regionsPageMax: 10_000,
  /** Times the ranges left uncovered (a split or merge during the backup) are listed again. */
  coverRoundsMax: 8,
  /** One putMany of a restore: pairs and key + value bytes (one larger pair goes alone). */
  restoreBatchPairs: 500,
  restoreBatchBytes: 1024 * 1024,
});

/** What a ctl command gets (ctl.ts builds it). */
export interface BackupContext {
  readonly args: ParsedArgs;
  readonly pd: PdApi;
  readonly json: boolean;
  readonly timeoutMs: number;
  out(text: string): void;
}

// ------------------------------------------------------------ backup

export async function runBackup(ctx: BackupContext): Promise<ExitCode> {
  const dir = ctx.args.string('out');
  if (dir === undefined || dir === '') throw usageError('ctl backup: --out DIR is required (flotilla ctl backup --help)');
  const ids = parseRegionIds(ctx.args.all('region'));
  const all = ctx.args.flag('all');
  if ((ids === null) === !all) throw usageError('ctl backup: give exactly one of --all and --region ID (repeat it, or ID,ID…)');
  await prepareFolder(dir);

  const startedMs = performance.now();
  const progress = new Progress();
  const copier = new RegionCopier(ctx.pd, dir, ctx.timeoutMs, ctx.pd.tls);
  const taken = new TakenRegions(dir);
  try {
    const listed = ids === null ? await listRegions(ctx.pd, '', '') : await Promise.all(ids.map((id) => ctx.pd.get<PdRegionJson>(`${API}/regions/${id}`)));
    await copyAll(copier, listed, taken, progress, ids !== null);
    if (ids === null) await coverKeyspace(ctx.pd, copier, taken, progress);
  } catch (err) {
    progress.done();
    if (!isCliError(err)) throw err;
    throw new CliError(err.exitCode, `ctl backup: ${err.message} (${dir} holds no finished backup: no ${MANIFEST_FILE})`);
  } finally {
    await copier.close();
  }
  const manifest = newManifest(ids === null ? 'all' : 'regions', taken.entries);
  await writeManifest(dir, manifest);
  progress.done();
  const seconds = (performance.now() - startedMs) / 1_000;
  const { pairs, dataBytes } = totals(manifest);
  if (ctx.json) {
    ctx.out(`${JSON.stringify({ dir, regions: manifest.regions.length, pairs, bytes: dataBytes, seconds: round(seconds), manifest: path.join(dir, MANIFEST_FILE) })}\n`);
  } else {
    ctx.out(`backed up ${manifest.regions.length} ${plural(manifest.regions.length, 'region')} (${pairs} ${plural(pairs, 'pair')}, ${bytes(dataBytes)}) to ${dir} in ${seconds.toFixed(1)} s\n`);
  }
  return EXIT.ok;
}

/** `--region 2,7` or `--region 2 --region 7` → [2, 7]; absent → null. */
function parseRegionIds(given: readonly string[]): number[] | null {
  if (given.length === 0) return null;
  const ids = given.flatMap((text) => text.split(',')).map((item) => item.trim());
  if (ids.length > backupLimits.regionIdsMax) throw usageError(`ctl backup: at most ${backupLimits.regionIdsMax} regions in --region`);
  const parsed = ids.map((item) => {
    const n = /^[1-9][0-9]{0,15}$/.test(item) ? Number(item) : NaN;
    if (!Number.isSafeInteger(n)) throw usageError(`ctl backup: --region takes region ids like 2 or 2,7; "${item}" is not one`);
    return n;
  });
  return [...new Set(parsed)];
}

/** Creates DIR; one that holds a finished backup already is refused (never mixed). */
async function prepareFolder(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    if ((await readdir(dir)).includes(MANIFEST_FILE)) throw usageError(`ctl backup: ${dir} holds a backup already (${MANIFEST_FILE}); choose a new folder`);
  } catch (err) {
    if (isCliError(err)) throw err;
    throw usageError(`ctl backup: cannot use --out ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** The copies taken so far, in the order taken; a region copied again replaces its older copy. */
class TakenRegions {
  readonly entries: ManifestRegion[] = [];

  constructor(private readonly dir: string) {}

  has(regionId: number, version: number): boolean {
    return this.entries.some((e) => e.id === regionId && e.epoch.version === version);
  }

  async add(entry: ManifestRegion): Promise<void> {
    const older = this.entries.findIndex((e) => e.id === entry.id);
    if (older !== -1) {
      const [replaced] = this.entries.splice(older, 1);
      if (replaced!.file !== entry.file) await rm(path.join(this.dir, replaced!.file), { force: true });
    }
    this.entries.push(entry);
  }
}

async function copyAll(copier: RegionCopier, regions: readonly PdRegionJson[], taken: TakenRegions, progress: Progress, mustExist: boolean): Promise<void> {
  let done = 0;
  for (const region of regions) {
    progress.update('backing up regions', done, regions.length);
    const entry = await copier.copy(region);
    if (entry === 'gone') {
      if (mustExist) throw clusterError(`region ${region.id} was merged into another region during the backup; back that one up`);
    } else {
      await taken.add(entry);
    }
    progress.update('backing up regions', ++done, regions.length);
  }
}

/**
 * With --all: a split or merge while regions were copied can leave a key range in no copy
 * (a region copied after it gave a range away, or merged away before its turn). Such ranges
 * are listed again and copied, until the copies cover every key.
 */
async function coverKeyspace(pd: PdApi, copier: RegionCopier, taken: TakenRegions, progress: Progress): Promise<void> {
  for (let round = 0; round < backupLimits.coverRoundsMax; round++) {
    const gaps = uncovered(taken.entries);
    if (gaps.length === 0) return;
    const regions: PdRegionJson[] = [];
    for (const gap of gaps) regions.push(...(await listRegions(pd, gap.start, gap.end)).filter((r) => !taken.has(r.id, r.epoch.version)));
    await copyAll(copier, regions, taken, progress, false);
  }
  const left = uncovered(taken.entries)[0];
  if (left !== undefined) throw clusterError(`the regions kept changing during the backup: keys [${left.start || '(start)'}, ${left.end || '(end)'}) are in no copy; try again`);
}

/** Key ranges (hex; '' end: unbounded) no copy covers. Hex strings sort as their bytes do. */
export function uncovered(entries: readonly Pick<ManifestRegion, 'startKey' | 'endKey'>[]): { start: string; end: string }[] {
  const gaps: { start: string; end: string }[] = [];
  let cursor: string | null = ''; // null: past the last key
  for (const e of [...entries].sort((a, b) => (a.startKey < b.startKey ? -1 : a.startKey > b.startKey ? 1 : 0))) {
    if (cursor === null) break;
    if (e.startKey > cursor) gaps.push({ start: cursor, end: e.startKey });
    if (e.endKey === '') cursor = null;
    else if (e.endKey > cursor) cursor = e.endKey;
  }
  if (cursor !== null) gaps.push({ start: cursor, end: '' });
  return gaps;
}

/** Every region overlapping [start, end) (hex), in key order, page after page. */
async function listRegions(pd: PdApi, start: string, end: string): Promise<PdRegionJson[]> {
  const regions: PdRegionJson[] = [];
  let from = start;
  for (;;) {
    const page = await pd.get<{ regions: PdRegionJson[]; more: boolean }>(`${API}/regions?start=${from}&end=${end}&limit=${backupLimits.regionsPageMax}`);
    regions.push(...page.regions);
    const last = page.regions[page.regions.length - 1];
    if (!page.more || last === undefined || last.endKey === '') return regions;
    from = last.endKey;
  }
}

// ------------------------------------------------------------ restore

export async function runRestore(ctx: BackupContext): Promise<ExitCode> {
  const dir = ctx.args.string('in');
  if (dir === undefined || dir === '') throw usageError('ctl restore: --in DIR is required (flotilla ctl restore --help)');
  const concurrency = ctx.args.integer('concurrency', 1, workloadLimits.loadConcurrencyMax);
  const progress = new Progress();
  const manifest = await checkBackup(dir, progress);
  const { pairs, dataBytes } = totals(manifest);
  const what = `${manifest.regions.length} ${plural(manifest.regions.length, 'region')}, ${pairs} ${plural(pairs, 'pair')} (${bytes(dataBytes)})`;
  if (ctx.args.flag('check')) {
    progress.done();
    if (ctx.json) ctx.out(`${JSON.stringify({ dir, intact: true, regions: manifest.regions.length, pairs, bytes: dataBytes })}\n`);
    else ctx.out(`backup ${dir} is intact: ${what}, taken ${manifest.createdAt}\n`);
    return EXIT.ok;
  }

  const startedMs = performance.now();
  const client = openDataClient(ctx.pd.urls, ctx.timeoutMs, ctx.pd.tls);
  let written = 0;
  try {
    // In the order taken: where two copies overlap (a merge during the backup), the later wins.
    for (const entry of manifest.regions) {
      await runBounded(regionBatches(dir, entry, backupLimits.restoreBatchPairs, backupLimits.restoreBatchBytes), concurrency, async (batch: Pair[]) => {
        await client.putMany(batch);
        written += batch.length;
        progress.update('restoring', written, pairs);
      });
    }
  } catch (err) {
    progress.done();
    const problem = err instanceof RegionFileError ? `backup ${dir} changed while it was restored: ${err.message}` : isCliError(err) ? err.message : null;
    if (problem === null) throw err;
    throw new CliError(isCliError(err) ? err.exitCode : EXIT.usage, `ctl restore: ${problem} (${written} of ${pairs} pairs were written before it; restoring again is safe)`);
  } finally {
    await client.close();
  }
  progress.done();
  const seconds = (performance.now() - startedMs) / 1_000;
  if (ctx.json) ctx.out(`${JSON.stringify({ dir, regions: manifest.regions.length, pairs: written, bytes: dataBytes, seconds: round(seconds) })}\n`);
  else ctx.out(`restored ${what} from ${dir} in ${seconds.toFixed(1)} s\n`);
  return EXIT.ok;
}

/** The manifest, and every file checked against it frame by frame; a damaged backup is refused. */
async function checkBackup(dir: string, progress: Progress): Promise<Manifest> {
  try {
    const manifest = await readManifest(dir);
    let done = 0;
    for (const entry of manifest.regions) {
      progress.update('checking backup', done, manifest.regions.length);
      await checkRegionFile(dir, entry);
      progress.update('checking backup', ++done, manifest.regions.length);
    }
    return manifest;
  } catch (err) {
    progress.done();
    if (err instanceof ManifestError) throw usageError(`ctl restore: ${dir}: ${err.message}; nothing was written`);
    if (err instanceof RegionFileError || err instanceof FrameError) throw usageError(`ctl restore: backup ${dir} is damaged: ${err.message}; nothing was written`);
    throw err;
  }
}

function totals(manifest: Manifest): { pairs: number; dataBytes: number } {
  let pairs = 0;
  let dataBytes = 0;
  for (const r of manifest.regions) {
    pairs += r.pairs;
    dataBytes += r.bytes;
  }
  return { pairs, dataBytes };
}

function plural(n: number, word: string): string {
  return n === 1 ? word : `${word}s`;
}

function round(seconds: number): number {
  return Math.round(seconds * 1_000) / 1_000;
}
