import { randomUUID } from 'node:crypto';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { SeededRandom } from '@flotilla/raft';
import { RocksKvEngine, RocksLogEngine, type RegionMeta } from '@flotilla/storage';
import { FaultSwitch, TcpTransport } from '@flotilla/transport';
import { crc32cImplementation, type JoinRequest, type JoinResponse } from '@flotilla/wire';
import { monotonicNowMs } from '../clock.ts';
import { limits } from '../constants.ts';
import { DiskGuard, type DiskChange } from '../disk-guard.ts';
import { diskAnnouncer } from '../disk-quorum.ts';
import { StoreError, isStoreError } from '../errors.ts';
import { MultiRaftHost } from '../host.ts';
import { KvService } from '../kv-service.ts';
import { PdClient } from '../pd/pd-client.ts';
import { PdWorker } from '../pd/pd-worker.ts';
import { RegionFlow } from '../pd/region-flow.ts';
import { StoreServer } from '../server.ts';
import type { HostPort, StoreConfig } from './config.ts';
import { raiseEventLoopPriority } from './event-loop-priority.ts';
import { setEventLoopSlice } from './event-loop-slice.ts';
import { API_TLS, RAFT_TLS, type TlsWatch } from './tls-files.ts';
import { faultDiskProbe, followFaultControl } from './fault-control.ts';
import { errorFields, type Logger } from './logger.ts';

/** The data directory's identity file: a directory belongs to one store of one cluster. */
const IDENTITY_FILE = 'store.json';
const IDENTITY_FORMAT = 1;
/** Backoff of joins while PD elects or is not up yet. */
const JOIN_RETRY_MS = { first: 100, max: 2_000 };

/** The region a static cluster starts with: every key, one voter per listed store. */
export const INITIAL_REGION_ID = 1;

/**
 * A whole store: RocksDB log and KV engines, the TCP transport, the multi-raft host and the
 * HTTP API, started in that order and stopped in the reverse one. `main.ts` runs one per
 * process; tests and benchmarks start real processes of it.
 */
export class StoreProcess {
  private stopping: Promise<void> | null = null;
  private pdWorker: PdWorker | null = null;
  /** The fault-injection control file's watcher (tests only, --fault-control). */
  private faultControl: { stop(): void } | null = null;
  /** The TLS credential files' watchers (--raft-tls-*, --api-tls-*). */
  private readonly tlsWatches: TlsWatch[] = [];

  private constructor(
    readonly config: StoreConfig,
    readonly storeId: number,
    private readonly identity: Identity,
    private readonly logger: Logger,
    private readonly log: RocksLogEngine,
    private readonly kv: RocksKvEngine,
    readonly transport: TcpTransport,
    readonly host: MultiRaftHost,
    readonly server: StoreServer,
    private readonly disk: DiskGuard,
    private readonly pd: { client: PdClient; flow: RegionFlow } | null,
  ) {}

  /** Opens and starts everything; `onFailure` hears of a host that stopped on its own. */
  static async start(config: StoreConfig, baseLogger: Logger, onFailure: (err: unknown) => void): Promise<StoreProcess> {
    // Before the engines start their workers (the flag is the process's; a collection reads it).
    if (config.serialScavenges) v8.setFlagsFromString('--no-parallel-scavenge');
    await mkdir(config.dataDir, { recursive: true });
    // Before anything opens: a credential file that is missing or does not load stops the start.
    const raftTls = config.raftTls === undefined ? undefined : await RAFT_TLS.load(config.raftTls);
    const apiTls = config.apiTls === undefined ? undefined : await API_TLS.load(config.apiTls);
    const pdClient = config.pd ? new PdClient(config.pd, apiTls) : null;
    const identity = await claimDataDir(config, pdClient, baseLogger);
    const storeId = identity.storeId;
    const logger = config.storeId === undefined ? baseLogger.child({ storeId }) : baseLogger;
    // The engines' hooks reach the host, which needs the engines to exist first.
    let host: MultiRaftHost | undefined;
    let kv: RocksKvEngine | undefined;
    const log = await RocksLogEngine.open({
      dir: path.join(config.dataDir, 'log'),
      mode: config.appender,
      ...(config.logShards === undefined ? {} : { shards: config.logShards }),
      defaultShards: limits.logShardsDefault,
      appenderNice: config.appenderNice,
      onFetched: (groupId) => host?.onLogFetched(groupId),
      compactLimit: (groupId) => kv?.durableAppliedIndex(groupId) ?? 0,
    });
    logger.info({ recovery: log.recovery, shards: log.manifest.shards, placement: log.manifest.placement }, 'raft log engine open');
    kv = await RocksKvEngine.open({ dir: path.join(config.dataDir, 'kv') });
    logger.info({ recovery: kv.recovery }, 'kv engine open');
    // Only now: the engines' threads exist and keep their own priority and slice
    // (event-loop-priority.ts, event-loop-slice.ts). The slice keeps the raised nice.
    try {
      raiseEventLoopPriority(config.eventLoopPriority);
      setEventLoopSlice(config.eventLoopSliceUs);
    } catch (err) {
      await Promise.allSettled([log.close(), kv.close()]);
      throw err;
    }
    const faults = config.faultControl === undefined ? undefined : new FaultSwitch();
    const transport = new TcpTransport({
      localStore: storeId,
      clusterId: config.clusterId,
      listen: config.raftListen,
      ...(config.raftAdvertiseHost !== undefined ? { advertiseHost: config.raftAdvertiseHost } : {}),
      random: new SeededRandom(Date.now()),
      onError: (err) => logger.warn(errorFields(err), 'transport'),
      ...(faults ? { faults } : {}),
      ...(raftTls ? { tls: raftTls } : {}),
    });
    // The disk guard starts before the process object exists; its changes reach PD once it does.
    // Its critical level reaches the peer stores through the transport (disk-quorum.ts).
    let started: StoreProcess | null = null;
    const announceDisk = diskAnnouncer(transport);
    // Under fault control (tests) the file can set the free space the guard sees.
    let faultDiskBytes: number | null = null;
    const disk = new DiskGuard({
      storeId,
      dir: config.dataDir,
      reserveBytes: config.diskReserveBytes,
      checkMs: limits.diskCheckMs,
      ...(faults ? { probe: faultDiskProbe(() => faultDiskBytes) } : {}),
      onChange: (change) => {
        logDiskChange(logger, change);
        announceDisk(change);
        started?.pdWorker?.storeChanged();
      },
      onProbeError: (err) => logger.warn(errorFields(err), 'data disk: could not read its free space (statfs); keeping the last state'),
    });
    await disk.start();
    host = new MultiRaftHost({
      storeId,
      log,
      kv,
      transport,
      seed: Date.now(),
      tickMs: config.tickMs,
      hibernateAfterTicks: config.hibernateAfterTicks,
      readLease: config.readLease,
      readyCatchUpWaitMaxMs: config.readyCatchUpWaitMaxMs,
      refusesReplication: () => disk.refusesReplication(),
      events: logger,
      onFailure: (err) => {
        logger.fatal(errorFields(err), 'multi-raft host stopped on a failure');
        onFailure(err);
      },
    });
    await host.start();
    const service = new KvService(host, kv, () => disk.refusal());
    const flow = pdClient ? new RegionFlow(service) : null;
    const server = new StoreServer({
      service: flow ?? service,
      host,
      transport,
      listenHost: config.apiListen.host,
      port: config.apiListen.port,
      admin: { host, transport, kv },
      log: logger,
      disk: () => disk.status(),
      ...(apiTls ? { tls: apiTls } : {}),
    });
    const store = new StoreProcess(config, storeId, identity, logger, log, kv, transport, host, server, disk, pdClient && flow ? { client: pdClient, flow } : null);
    started = store;
    if (config.raftTls !== undefined) store.tlsWatches.push(RAFT_TLS.watch(config.raftTls, (creds) => transport.setTls(creds), logger));
    if (config.apiTls !== undefined) {
      store.tlsWatches.push(
        API_TLS.watch(config.apiTls, (creds) => {
          server.setTls(creds);
          pdClient?.setTls(creds);
        }, logger),
      );
    }
    if (faults && config.faultControl !== undefined) {
      store.faultControl = followFaultControl(config.faultControl, faults, logger, (control) => {
        if (control.diskAvailableBytes === faultDiskBytes) return;
        faultDiskBytes = control.diskAvailableBytes;
        void disk.check();
      });
    }
    await store.joinInitialCluster();
    const api = await server.listen();
    await store.joinPd(api);
    logger.info({ raftAddress: transport.address(), apiAddress: api, regions: host.stats().peers, crc32c: crc32cImplementation, eventLoopNice: os.getPriority(0), eventLoopSliceUs: config.eventLoopSliceUs, serialScavenges: config.serialScavenges, diskReserveBytes: disk.status().reserveBytes, raftTls: config.raftTls !== undefined, apiTls: config.apiTls !== undefined }, 'store started');
    return store;
  }

  /**
   * With a placement driver: tells PD where this store really listens (the first join, before
   * the listeners existed, gave the configured addresses), founds the cluster's first region
   * when PD says this store founded it and no region is here yet, and starts the heartbeats.
   */
  private async joinPd(api: HostPort): Promise<void> {
    if (!this.pd) return;
    const answer = await joinWithRetry(this.pd.client, this.joinRequest(hostPort(this.transport.address()), api), this.logger);
    if (answer.bootstrapRegion && this.kv.regions().length === 0) {
      await this.host.bootstrapRegion(answer.bootstrapRegion);
      this.logger.info({ regionId: answer.bootstrapRegion.id }, 'founded the cluster\'s first region (PD chose this store)');
    }
    this.pdWorker = new PdWorker({
      storeId: this.storeId,
      dataDir: this.config.dataDir,
      client: this.pd.client,
      host: this.host,
      kv: this.kv,
      transport: this.transport,
      flow: this.pd.flow,
      events: this.logger,
      storeHeartbeatMs: this.config.storeHeartbeatMs,
      regionHeartbeatMs: this.config.regionHeartbeatMs,
      refusingWrites: () => this.disk.refusesWrites(),
    });
    this.pdWorker.start();
  }

  private joinRequest(raft: HostPort, api: HostPort): JoinRequest {
    return {
      clusterId: this.config.clusterId,
      token: this.identity.token ?? '',
      storeId: this.storeId,
      raftAddress: `${bracketed(raft.host)}:${raft.port}`,
      apiAddress: `${bracketed(this.config.apiAdvertiseHost ?? api.host)}:${api.port}`,
      labels: this.config.labels,
    };
  }

  /**
   * A static cluster: learn every listed store's address, and on this store's first start
   * (no region at all, not even a removed one) bootstrap region 1 as one of its founders.
   */
  private async joinInitialCluster(): Promise<void> {
    const cluster = this.config.initialCluster;
    if (!cluster) return;
    for (const [storeId, address] of cluster) if (storeId !== this.storeId) this.transport.setPeer(storeId, address);
    if (this.kv.regions().length > 0) return;
    await this.host.bootstrapRegion(initialRegion(cluster));
    this.logger.info({ regionId: INITIAL_REGION_ID, stores: [...cluster.keys()] }, 'bootstrapped the initial region');
  }

  /**
   * Graceful shutdown (SIGTERM): readiness goes 503, leaderships move to other stores, the
   * clients' requests in flight are answered, then everything closes. Idempotent.
   */
  shutdown(reason: string): Promise<void> {
    this.stopping ??= this.stop(reason);
    return this.stopping;
  }

  private async stop(reason: string): Promise<void> {
    const started = monotonicNowMs();
    this.logger.info({ reason }, 'shutting down');
    this.faultControl?.stop();
    for (const watch of this.tlsWatches) watch.stop();
    this.server.markStopping();
    const stillLeading = await this.host.transferLeadersAway(this.config.shutdownTimeoutMs / 2);
    this.logger.info({ stillLeading, ms: Math.round(monotonicNowMs() - started) }, 'leaderships moved away');
    await this.pdWorker?.stop();
    await this.pd?.client.close();
    await this.server.close();
    this.disk.stop();
    await this.host.close();
    await this.log.close();
    await this.kv.close();
    this.logger.info({ ms: Math.round(monotonicNowMs() - started) }, 'stopped');
  }
}

/** Region 1 of a static cluster: all keys, store i's peer has id i (ids never reused later). */
export function initialRegion(cluster: ReadonlyMap<number, HostPort>): RegionMeta {
  const storeIds = [...cluster.keys()].sort((a, b) => a - b);
  return {
    id: INITIAL_REGION_ID,
    startKey: new Uint8Array(0),
    endKey: new Uint8Array(0),
    epoch: { version: 1, confVer: 1 },
    peers: storeIds.map((storeId) => ({ id: storeId, storeId, role: 'voter' })),
  };
}

/** The data directory's identity: which store of which cluster it belongs to. */
interface Identity {
  readonly storeId: number;
  readonly clusterId: number;
  /** With PD: the random token PD knows this directory by (a retried join is recognised by it). */
  readonly token?: string;
}

/**
 * Binds the data directory to this store and cluster on first use, and refuses it to any
 * other: a store started on another store's data would vote with someone else's log. With
 * PD, the first start joins the cluster to learn its store id (retrying while PD elects).
 */
async function claimDataDir(config: StoreConfig, pd: PdClient | null, logger: Logger): Promise<Identity> {
  const file = path.join(config.dataDir, IDENTITY_FILE);
  const found = await readIdentity(file);
  if (found) {
    const wrongStore = config.storeId !== undefined && found.storeId !== config.storeId;
    if (found.clusterId !== config.clusterId || wrongStore || (pd !== null) !== (found.token !== undefined)) {
      throw new StoreError(
        'FLOTILLA_STORE_INVALID_CONFIG',
        `${config.dataDir} belongs to store ${found.storeId} of cluster ${found.clusterId}${found.token ? ' (placed by PD)' : ' (static)'}, not ${config.storeId === undefined ? 'a PD-placed store' : `store ${config.storeId}`} of cluster ${config.clusterId}`,
      );
    }
    return found;
  }
  let identity: Identity;
  if (pd) {
    const token = randomUUID();
    const first = await joinWithRetry(pd, { clusterId: config.clusterId, token, raftAddress: `${bracketed(config.raftListen.host)}:${config.raftListen.port}`, apiAddress: `${bracketed(config.apiAdvertiseHost ?? config.apiListen.host)}:${config.apiListen.port}`, labels: config.labels }, logger);
    identity = { storeId: first.storeId, clusterId: config.clusterId, token };
  } else {
    identity = { storeId: config.storeId!, clusterId: config.clusterId };
  }
  await writeDurably(file, JSON.stringify({ format: IDENTITY_FORMAT, ...identity }) + '\n');
  return identity;
}

async function readIdentity(file: string): Promise<Identity | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  let found: { format?: unknown; storeId?: unknown; clusterId?: unknown; token?: unknown };
  try {
    found = JSON.parse(text) as typeof found;
  } catch {
    throw new StoreError('FLOTILLA_STORE_INVALID_CONFIG', `${file} is not valid JSON; restore it or use another --data-dir`);
  }
  const { format, storeId, clusterId, token } = found;
  if (format !== IDENTITY_FORMAT || typeof storeId !== 'number' || typeof clusterId !== 'number' || (token !== undefined && typeof token !== 'string')) {
    throw new StoreError('FLOTILLA_STORE_INVALID_CONFIG', `${file} is not a store identity this build reads (format ${String(format)})`);
  }
  return { storeId, clusterId, ...(token === undefined ? {} : { token }) };
}

/** Joins PD, retrying (with capped backoff) while no PD member can answer. */
async function joinWithRetry(pd: PdClient, request: JoinRequest, logger: Logger): Promise<JoinResponse> {
  let waitMs = JOIN_RETRY_MS.first;
  for (;;) {
    try {
      return await pd.join(request);
    } catch (err) {
      if (!isStoreError(err, 'FLOTILLA_STORE_PD_UNAVAILABLE')) throw err;
      logger.warn({ err: err.message }, 'joining PD: no member answered; retrying');
    }
    await new Promise((resolve) => setTimeout(resolve, waitMs));
    waitMs = Math.min(waitMs * 2, JOIN_RETRY_MS.max);
  }
}

function bracketed(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

function hostPort(address: { host: string; port: number }): HostPort {
  return { host: address.host, port: address.port };
}

/** Write to a temporary file, fsync it, rename over the target, fsync the directory. */
async function writeDurably(file: string, content: string): Promise<void> {
  const temporary = `${file}.tmp`;
  const handle = await open(temporary, 'w');
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, file);
  const dir = await open(path.dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/** One log line per change of the disk guard's state (disk-guard.ts), worded for the operator. */
function logDiskChange(logger: Logger, change: DiskChange): void {
  const fields = { availableBytes: change.space.availableBytes, capacityBytes: change.space.capacityBytes, reserveBytes: change.reserveBytes };
  if (change.critical) {
    logger.warn(fields, 'data disk critically short of space (below half the reserve): refusing puts and compare-and-swaps, and taking no replicated entries (appends, snapshots) from other stores; the replicas here fall behind until space is freed');
  } else if (change.low) {
    logger.warn(fields, 'data disk short of space: refusing puts and compare-and-swaps (FLOTILLA_DISK_FULL) until space is freed; reads, deletes and replication go on');
  } else {
    logger.info(fields, 'data disk has room again: accepting all writes');
  }
}
