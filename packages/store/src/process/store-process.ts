import { mkdir, open, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { SeededRandom } from '@flotilla/raft';
import { RocksKvEngine, RocksLogEngine, type RegionMeta } from '@flotilla/storage';
import { TcpTransport } from '@flotilla/transport';
import { StoreError } from '../errors.ts';
import { MultiRaftHost } from '../host.ts';
import { KvService } from '../kv-service.ts';
import { StoreServer } from '../server.ts';
import type { HostPort, StoreConfig } from './config.ts';
import { errorFields, type Logger } from './logger.ts';

/** The data directory's identity file: a directory belongs to one store of one cluster. */
const IDENTITY_FILE = 'store.json';
const IDENTITY_FORMAT = 1;

/** The region a static cluster starts with: every key, one voter per listed store. */
export const INITIAL_REGION_ID = 1;

/**
 * A whole store: RocksDB log and KV engines, the TCP transport, the multi-raft host and the
 * HTTP API, started in that order and stopped in the reverse one. `main.ts` runs one per
 * process; tests and benchmarks start real processes of it.
 */
export class StoreProcess {
  private stopping: Promise<void> | null = null;

  private constructor(
    readonly config: StoreConfig,
    private readonly logger: Logger,
    private readonly log: RocksLogEngine,
    private readonly kv: RocksKvEngine,
    readonly transport: TcpTransport,
    readonly host: MultiRaftHost,
    readonly server: StoreServer,
  ) {}

  /** Opens and starts everything; `onFailure` hears of a host that stopped on its own. */
  static async start(config: StoreConfig, logger: Logger, onFailure: (err: unknown) => void): Promise<StoreProcess> {
    await mkdir(config.dataDir, { recursive: true });
    await claimDataDir(config);
    // The engines' hooks reach the host, which needs the engines to exist first.
    let host: MultiRaftHost | undefined;
    let kv: RocksKvEngine | undefined;
    const log = await RocksLogEngine.open({
      dir: path.join(config.dataDir, 'log'),
      mode: config.appender,
      shards: config.logShards,
      onFetched: (groupId) => host?.onLogFetched(groupId),
      compactLimit: (groupId) => kv?.durableAppliedIndex(groupId) ?? 0,
    });
    logger.info({ recovery: log.recovery }, 'raft log engine open');
    kv = await RocksKvEngine.open({ dir: path.join(config.dataDir, 'kv') });
    logger.info({ recovery: kv.recovery }, 'kv engine open');
    const transport = new TcpTransport({
      localStore: config.storeId,
      clusterId: config.clusterId,
      listen: config.raftListen,
      ...(config.raftAdvertiseHost !== undefined ? { advertiseHost: config.raftAdvertiseHost } : {}),
      random: new SeededRandom(Date.now()),
      onError: (err) => logger.warn(errorFields(err), 'transport'),
    });
    host = new MultiRaftHost({
      storeId: config.storeId,
      log,
      kv,
      transport,
      seed: Date.now(),
      tickMs: config.tickMs,
      hibernateAfterTicks: config.hibernateAfterTicks,
      events: logger,
      onFailure: (err) => {
        logger.fatal(errorFields(err), 'multi-raft host stopped on a failure');
        onFailure(err);
      },
    });
    await host.start();
    const server = new StoreServer({
      service: new KvService(host, kv),
      host,
      transport,
      listenHost: config.apiListen.host,
      port: config.apiListen.port,
      admin: { host, transport },
      log: logger,
    });
    const store = new StoreProcess(config, logger, log, kv, transport, host, server);
    await store.joinInitialCluster();
    const api = await server.listen();
    logger.info({ raftAddress: transport.address(), apiAddress: api, regions: host.stats().peers }, 'store started');
    return store;
  }

  /**
   * A static cluster: learn every listed store's address, and on this store's first start
   * (no region at all, not even a removed one) bootstrap region 1 as one of its founders.
   */
  private async joinInitialCluster(): Promise<void> {
    const cluster = this.config.initialCluster;
    if (!cluster) return;
    for (const [storeId, address] of cluster) if (storeId !== this.config.storeId) this.transport.setPeer(storeId, address);
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
    const started = Date.now();
    this.logger.info({ reason }, 'shutting down');
    this.server.markStopping();
    const stillLeading = await this.host.transferLeadersAway(this.config.shutdownTimeoutMs / 2);
    this.logger.info({ stillLeading, ms: Date.now() - started }, 'leaderships moved away');
    await this.server.close();
    await this.host.close();
    await this.log.close();
    await this.kv.close();
    this.logger.info({ ms: Date.now() - started }, 'stopped');
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

/**
 * Binds the data directory to this store and cluster on first use, and refuses it to any
 * other: a store started on another store's data would vote with someone else's log.
 */
async function claimDataDir(config: StoreConfig): Promise<void> {
  const file = path.join(config.dataDir, IDENTITY_FILE);
  const identity = { format: IDENTITY_FORMAT, storeId: config.storeId, clusterId: config.clusterId };
  let text: string | undefined;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (text === undefined) {
    await writeDurably(file, JSON.stringify(identity) + '\n');
    return;
  }
  let found: { format?: unknown; storeId?: unknown; clusterId?: unknown };
  try {
    found = JSON.parse(text) as typeof found;
  } catch {
    throw new StoreError('FLOTILLA_STORE_INVALID_CONFIG', `${file} is not valid JSON; restore it or use another --data-dir`);
  }
  if (found.format !== IDENTITY_FORMAT || found.storeId !== config.storeId || found.clusterId !== config.clusterId) {
    throw new StoreError(
      'FLOTILLA_STORE_INVALID_CONFIG',
      `${config.dataDir} belongs to store ${String(found.storeId)} of cluster ${String(found.clusterId)} (format ${String(found.format)}), not store ${config.storeId} of cluster ${config.clusterId}`,
    );
  }
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
