/**
 * Copies one region into a backup folder: asks the store PD names as the region's leader for
 * `GET /v1/admin/regions/:id/backup`, follows NotLeader hints, waits out elections, and writes
 * the frames to `region-<id>-<appliedIndex>.snap` as they arrive, each verified first. With
 * `tls` (--tls-*) the stores are dialed at https://, the client's certificate presented; a 401
 * or a store certificate that does not verify stops the backup at once.
 */
import { createHash } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Agent, request } from 'undici';
import { refusedCertificateMessage, tlsConnect, untrustedServer, untrustedServerMessage, type ClusterTls } from '../cluster-tls.ts';
import { hexOfBytes } from '../encoding.ts';
import { clusterError, describeNetworkError } from '../errors.ts';
import type { PdApi, PdRegionJson, PdStoreJson } from '../pd-api.ts';
import { FrameError, SnapshotReader, splitFrames } from './frames.ts';
import type { ManifestRegion } from './manifest.ts';

const API = '/pd/api/v1';
const BACKUP_PATH = (regionId: number): string => `/v1/admin/regions/${regionId}/backup`;

export const copyLimits = Object.freeze({
  /** Stores asked per region (NotLeader hints, elections, retries) before giving up. */
  attemptsMax: 16,
  /** Pause before asking PD again where a region is led (an election, a move). */
  retryPauseMs: 200,
  /** A store's error answer (JSON) is read up to this size. */
  errorBodyBytesMax: 64 * 1024,
});

/** A store's error answer, as the admin API writes it. */
interface StoreErrorBody {
  readonly error?: { readonly code?: string; readonly message?: string; readonly details?: { readonly leader?: { readonly storeId?: number } | null } };
}

/** What one attempt got: a stream written to the file, or why not. */
type Attempt =
  | { readonly kind: 'copied'; readonly entry: ManifestRegion }
  | { readonly kind: 'redirect'; readonly storeId: number }
  | { readonly kind: 'retry'; readonly problem: string };

/**
 * Where regions are led and stores listen, as PD says; refreshed when a store is unknown or
 * a region's leader is not where PD said.
 */
export class RegionCopier {
  private readonly agent: Agent;
  private stores = new Map<number, PdStoreJson>();

  constructor(
    private readonly pd: PdApi,
    private readonly dir: string,
    /** How long one store may take to answer, and to send each next chunk. */
    private readonly timeoutMs: number,
    /** The client's credentials for a cluster whose APIs are HTTPS (--tls-*). */
    private readonly tls: ClusterTls | undefined = undefined,
  ) {
    const connect = tls === undefined ? { timeout: timeoutMs } : { ...tlsConnect(tls), timeout: timeoutMs };
    this.agent = new Agent({ connect, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, connections: 2 });
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  /**
   * Copies the region as PD listed it. Resolves 'gone' when PD no longer has a region of that
   * id where it was (merged away): the caller lists that range again.
   */
  async copy(listed: PdRegionJson): Promise<ManifestRegion | 'gone'> {
    let region = listed;
    let storeId = leaderStore(region);
    let problem = 'no store asked yet';
    for (let attempt = 0; attempt < copyLimits.attemptsMax; attempt++) {
      const answer = storeId === undefined ? { kind: 'retry' as const, problem: `PD knows no leader of region ${region.id}` } : await this.attempt(region.id, storeId);
      if (answer.kind === 'copied') return answer.entry;
      if (answer.kind === 'redirect') {
        storeId = answer.storeId;
        continue;
      }
      problem = answer.problem;
      await pause(copyLimits.retryPauseMs);
      const now = await this.current(region);
      if (now === 'gone') return 'gone';
      region = now;
      storeId = leaderStore(region);
    }
    throw clusterError(`backup of region ${listed.id}: no leader served it after ${copyLimits.attemptsMax} attempts; last: ${problem}`);
  }

  /** The region as PD sees it now: the one starting where it started, if it is still the same. */
  private async current(region: PdRegionJson): Promise<PdRegionJson | 'gone'> {
    const page = await this.pd.get<{ regions: PdRegionJson[] }>(`${API}/regions?start=${region.startKey}&end=&limit=1`);
    const now = page.regions[0];
    return now !== undefined && now.id === region.id ? now : 'gone';
  }

  private async attempt(regionId: number, storeId: number): Promise<Attempt> {
    const address = await this.apiAddress(storeId);
    if (address === undefined) return { kind: 'retry', problem: `PD knows no store ${storeId}` };
    const url = `${this.tls === undefined ? 'http' : 'https'}://${address}${BACKUP_PATH(regionId)}`;
    let res;
    try {
      res = await request(url, { dispatcher: this.agent, method: 'GET' });
    } catch (err) {
      const untrusted = untrustedServer(err);
      if (untrusted !== undefined) throw clusterError(`backup of region ${regionId}: ${untrustedServerMessage(`store ${storeId} (${address})`, untrusted)}`);
      return { kind: 'retry', problem: `store ${storeId} (${address}): ${describeNetworkError(err, this.timeoutMs)}` };
    }
    if (res.statusCode !== 200) return refusal(regionId, storeId, address, res.statusCode, await boundedText(res.body), this.tls !== undefined);
    try {
      return { kind: 'copied', entry: await this.write(regionId, storeId, res.body) };
    } catch (err) {
      if (err instanceof FrameError) throw clusterError(`backup of region ${regionId}: store ${storeId} sent a broken snapshot: ${err.message}`);
      return { kind: 'retry', problem: `store ${storeId} (${address}) broke off the snapshot: ${describeNetworkError(err, this.timeoutMs)}` };
    }
  }

  /** Writes the frames as they come (each verified first), then names the file after the applied index. */
  private async write(regionId: number, storeId: number, body: AsyncIterable<Uint8Array>): Promise<ManifestRegion> {
    const partial = path.join(this.dir, `region-${regionId}.partial`);
    const file = await open(partial, 'w');
    const reader = new SnapshotReader();
    const hash = createHash('sha256');
    let fileBytes = 0;
    let done = false;
    try {
      for await (const frame of splitFrames(body)) {
        reader.accept(frame);
        hash.update(frame);
        await file.write(frame);
        fileBytes += frame.byteLength;
      }
      const { header, totals } = reader.finish();
      if (header.regionId !== regionId) throw new FrameError(`the snapshot is of region ${header.regionId}, not ${regionId}`);
      await file.sync();
      await file.close();
      const name = `region-${regionId}-${header.appliedIndex}.snap`;
      await rename(partial, path.join(this.dir, name));
      done = true;
      return {
        id: regionId,
        file: name,
        startKey: hexOfBytes(header.startKey),
        endKey: hexOfBytes(header.endKey),
        epoch: header.epoch,
        appliedIndex: header.appliedIndex,
        appliedTerm: header.appliedTerm,
        storeId,
        pairs: totals.pairs,
        bytes: totals.bytes,
        fileBytes,
        sha256: hash.digest('hex'),
        takenAt: new Date().toISOString(),
      };
    } finally {
      if (!done) {
        await file.close().catch(() => {});
        await rm(partial, { force: true });
      }
    }
  }

  private async apiAddress(storeId: number): Promise<string | undefined> {
    if (!this.stores.has(storeId)) {
      const body = await this.pd.get<{ stores: PdStoreJson[] }>(`${API}/stores`);
      this.stores = new Map(body.stores.map((s) => [s.id, s]));
    }
    return this.stores.get(storeId)?.apiAddress;
  }
}

/** The store PD names as leading the region, else its first voter (which will redirect). */
function leaderStore(region: PdRegionJson): number | undefined {
  return region.leader?.storeId ?? region.peers.find((p) => p.role === 'voter')?.storeId;
}

/** A store's refusal: follow a leader hint, wait out what passes, fail on the rest. */
function refusal(regionId: number, storeId: number, address: string, status: number, text: string, tlsGiven: boolean): Attempt {
  let body: StoreErrorBody | null = null;
  try {
    body = JSON.parse(text) as StoreErrorBody;
  } catch {
    // not JSON: reported below by status
  }
  const code = body?.error?.code ?? `HTTP ${status}`;
  const message = `store ${storeId}: ${body?.error?.message ?? text.slice(0, 200)} (${code})`;
  if (status === 401) throw clusterError(`backup of region ${regionId}: ${refusedCertificateMessage(`store ${storeId} (${address})`, `${body?.error?.message ?? text.slice(0, 200)} (${code})`, tlsGiven)}`);
  const hinted = body?.error?.details?.leader?.storeId;
  if (code === 'FLOTILLA_NOT_LEADER' && typeof hinted === 'number' && hinted !== storeId) return { kind: 'redirect', storeId: hinted };
  if (['FLOTILLA_NOT_LEADER', 'FLOTILLA_REGION_NOT_FOUND', 'FLOTILLA_SERVER_BUSY', 'FLOTILLA_TIMEOUT'].includes(code)) return { kind: 'retry', problem: message };
  if (status === 404 && body?.error === undefined) throw clusterError(`backup of region ${regionId}: store ${storeId} has no backup endpoint (an older flotilla store?)`);
  throw clusterError(`backup of region ${regionId}: ${message}`);
}

async function boundedText(body: AsyncIterable<Uint8Array> & { destroy(): unknown }): Promise<string> {
  const parts: Buffer[] = [];
  let held = 0;
  for await (const chunk of body) {
    parts.push(Buffer.from(chunk));
    held += chunk.byteLength;
    if (held > copyLimits.errorBodyBytesMax) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(parts).subarray(0, copyLimits.errorBodyBytesMax).toString('utf8');
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
