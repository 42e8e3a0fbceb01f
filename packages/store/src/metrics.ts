import type { PeerStats, StoreId } from '@flotilla/transport';
import { KV_ERROR_CODES, type KvErrorCode, type KvOp, type KvOpName, type KvOpResult } from '@flotilla/wire';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AdminEndpoint } from './admin-api.ts';
import { API_ERROR_CODES, type ApiErrorCode } from './api-errors.ts';
import type { DiskStatus } from './disk-guard.ts';
import type { HostObserver, HostStats, ReplicaCounts } from './host-types.ts';

/**
 * The store's Prometheus metrics, on ONE Registry per store instance (never prom-client's
 * global one, so several stores in one process — the tests — never mix their numbers).
 *
 * Counters on hot paths never touch prom-client (a labelled inc costs ~0.3 µs): a request
 * adds to plain typed arrays (per request and per operation), flushed into the counters at
 * scrape time by their `collect()`. The latency histogram takes one observe per request
 * (~0.5 µs, about 1% of a request's server time; per request kind only, 8 series). The host's
 * and the transport's numbers are read at scrape time from their `stats()`.
 */

const OP_NAMES: readonly KvOpName[] = ['get', 'put', 'delete', 'cas', 'deleteRange', 'scan'];

/** What a request did: the kind of all its operations, `mixed`, or `none` (empty, or not decoded). */
export type RequestKind = KvOpName | 'mixed' | 'none';
const REQUEST_KINDS: readonly RequestKind[] = [...OP_NAMES, 'mixed', 'none'];

/** How a request or an operation ended: OK, a KvError code, or a transport-level error code. */
export type ResultCode = 'OK' | KvErrorCode | ApiErrorCode;
/** Once each: the admin API's codes reuse the KvError names they mean (NOT_LEADER, …). */
const RESULT_CODES: readonly ResultCode[] = [...new Set<ResultCode>(['OK', ...KV_ERROR_CODES, ...API_ERROR_CODES])];

/** Buckets of the ready loop's steps (a log write's fsync, an apply batch), in seconds: 50 µs … 2.5 s. */
const STEP_SECONDS_BUCKETS: readonly number[] = Object.freeze([0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5]);
/** Groups carried by one ready cycle. */
const CYCLE_GROUPS_BUCKETS: readonly number[] = Object.freeze([1, 2, 4, 8, 16, 64, 256, 1024, 4096, 16384]);

/** Request latency buckets, in seconds (0.5 ms … 10 s, the default request timeout). */
export const REQUEST_SECONDS_BUCKETS: readonly number[] = Object.freeze([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);

const kindIndex = new Map<string, number>(REQUEST_KINDS.map((k, i) => [k, i]));
const opIndex = new Map<string, number>(OP_NAMES.map((k, i) => [k, i]));
const codeIndex = new Map<string, number>(RESULT_CODES.map((c, i) => [c, i]));

/** What the metrics read from the host, the transport and the server at scrape time. */
export interface MetricsSources {
  readonly host: { stats(): HostStats; replicaCounts?(): ReplicaCounts; readonly peerDisks?: { readonly refusingCount: number } };
  readonly transport: { stats(): ReadonlyMap<StoreId, PeerStats>; tlsCertificateExpiry?(): number | null };
  readonly server: () => { readonly requestsInFlight: number; readonly connections: number; readonly bodyBytesInFlight: number };
  /** The data disk's guard (disk-guard.ts); without it, no disk series. */
  readonly disk?: () => DiskStatus;
}

/**
 * The series of the raft port's certificate expiry (with --raft-tls-*): `name` is the store's
 * or a PD member's (each names it in full, so deploy's alert check finds it in the source).
 */
export function raftTlsExpiryGauge(registers: Registry[], name: string, expiry: () => number | null): void {
  const help = "When the raft port's TLS certificate in use expires, in Unix seconds (--raft-tls-cert; re-read when the file changes)";
  gauge(registers, name, help, () => expiry() ?? 0);
}

export interface StoreMetricsOptions {
  /** Node process metrics (CPU, memory, event loop lag, GC) on this store's registry. Default: true. */
  readonly defaultMetrics?: boolean;
}

export class StoreMetrics {
  readonly registry = new Registry();
  /** Requests by kind and code: [kind * codes + code], added since the last scrape. */
  private readonly requests = new Float64Array(REQUEST_KINDS.length * RESULT_CODES.length);
  /** Operations by name and code: [op * codes + code], added since the last scrape. */
  private readonly operations = new Float64Array(OP_NAMES.length * RESULT_CODES.length);
  /** One bound child per request kind: ~0.5 µs an observe, once per request (not per operation). */
  private readonly latency: readonly { observe(seconds: number): void }[];
  private readonly adminRequests: Counter<'endpoint' | 'code'>;
  private readonly adminLatency: Histogram<'endpoint'>;
  private scrape: Promise<string> | null = null;
  /** The host's timings, into histograms (one observe per cycle step or proposal). */
  readonly hostObserver: HostObserver;

  constructor(sources: MetricsSources, options: StoreMetricsOptions = {}) {
    const registers = [this.registry];
    const requests = this.requests;
    const operations = this.operations;
    new Counter({
      name: 'flotilla_store_kv_requests_total',
      help: 'Client KV requests answered, by kind (the operation of all its ops, mixed, or none) and result code (OK: the request was served; per-operation outcomes are in flotilla_store_kv_operations_total)',
      labelNames: ['op', 'code'],
      registers,
      collect() {
        flushInto(this, requests, REQUEST_KINDS);
      },
    });
    new Counter({
      name: 'flotilla_store_kv_operations_total',
      help: 'Operations of served client KV requests, by operation and result code',
      labelNames: ['op', 'code'],
      registers,
      collect() {
        flushInto(this, operations, OP_NAMES);
      },
    });
    const latency = new Histogram({
      name: 'flotilla_store_kv_request_duration_seconds',
      help: 'Client KV request latency, from the request to its response, by request kind',
      labelNames: ['op'],
      buckets: [...REQUEST_SECONDS_BUCKETS],
      registers,
    });
    this.latency = REQUEST_KINDS.map((op) => latency.labels({ op }));
    // Admin requests (admin-api.ts) are operators' and rare: inc and observe directly. Their
    // own series, not a `kind` of the KV ones, so KV rates stay KV rates. Labels: the fixed
    // endpoint list (plus `unknown` for a path or method that matched none) and the codes.
    this.adminRequests = new Counter({
      name: 'flotilla_store_admin_requests_total',
      help: 'Admin API requests answered, by endpoint (METHOD path-template) and result code',
      labelNames: ['endpoint', 'code'],
      registers,
    });
    this.adminLatency = new Histogram({
      name: 'flotilla_store_admin_request_duration_seconds',
      help: 'Admin API request latency (membership changes, splits and transfers wait until done), by endpoint',
      labelNames: ['endpoint'],
      buckets: [...REQUEST_SECONDS_BUCKETS],
      registers,
    });
    gauge(registers, 'flotilla_store_kv_requests_in_flight', 'Requests admitted and not yet answered (client KV and admin: they share the bound)', () => sources.server().requestsInFlight);
    gauge(registers, 'flotilla_store_kv_request_body_bytes_in_flight', 'Body bytes of admitted requests (client KV and admin) held by the server', () => sources.server().bodyBytesInFlight);
    gauge(registers, 'flotilla_store_http_connections', 'Open client API connections', () => sources.server().connections);

    const transport = sources.transport;
    if (transport.tlsCertificateExpiry?.() != null) raftTlsExpiryGauge(registers, 'flotilla_store_raft_tls_certificate_expiry_timestamp_seconds', () => transport.tlsCertificateExpiry?.() ?? null);

    const disk = sources.disk;
    if (disk) {
      gauge(registers, 'flotilla_store_disk_available_bytes', "Free bytes of the data directory's filesystem at the last check (statfs, every diskCheckMs)", () => disk().space?.availableBytes ?? 0);
      gauge(registers, 'flotilla_store_disk_capacity_bytes', "Size of the data directory's filesystem", () => disk().space?.capacityBytes ?? 0);
      gauge(registers, 'flotilla_store_disk_reserve_bytes', 'Free space below which the store refuses writes that add data (--disk-reserve-bytes; 0: never)', () => disk().reserveBytes ?? 0);
      gauge(registers, 'flotilla_store_disk_writes_refused', '1 while the store refuses puts and compare-and-swaps for lack of disk space (FLOTILLA_DISK_FULL), else 0', () => (disk().low ? 1 : 0));
      gauge(registers, 'flotilla_store_disk_replication_refused', '1 while the store also takes no replicated entries (appends, snapshots) for lack of disk space (below half the reserve), else 0', () => (disk().critical ? 1 : 0));
    }

    // The host: a gauge for the peer count, counters mirrored from its cumulative stats.
    gauge(registers, 'flotilla_store_peers', 'Region replicas (peers) hosted by this store', () => sources.host.stats().peers);
    const peerDisks = sources.host.peerDisks;
    if (peerDisks) {
      gauge(registers, 'flotilla_store_peer_stores_refusing_replication', 'Peer stores that said their data disk is critically short of space (they take no replicated entries): regions led here with too few voters elsewhere refuse writes (FLOTILLA_DISK_FULL)', () => peerDisks.refusingCount);
    }
    this.hostObserver = hostHistograms(registers);
    const counts = sources.host.replicaCounts?.bind(sources.host);
    if (counts) {
      new Gauge({
        name: 'flotilla_store_replicas',
        help: 'Replicas here by state (counted at scrape time): leader, hibernating, without_leader (knows no leader of its region), merging (a frozen merge source)',
        labelNames: ['state'],
        registers,
        collect() {
          const c = counts();
          this.set({ state: 'leader' }, c.leaders);
          this.set({ state: 'hibernating' }, c.hibernating);
          this.set({ state: 'without_leader' }, c.withoutLeader);
          this.set({ state: 'merging' }, c.merging);
        },
      });
    }
    const hostCounters: readonly [keyof HostStats, string, string][] = [
      ['readyCycles', 'flotilla_store_ready_cycles_total', 'Ready-loop cycles that had work'],
      ['groupTicks', 'flotilla_store_group_ticks_total', 'Raft groups ticked: each tick visits the groups not known to hibernate, and all of them every tickSweepTicks ticks'],
      ['logWrites', 'flotilla_store_log_writes_total', 'Log-engine writes (one per cycle with entries or hard states)'],
      ['logSyncs', 'flotilla_store_log_syncs_total', 'fsyncs of the raft log engine (each makes the appends and hard states of many groups durable)'],
      ['applyBatches', 'flotilla_store_apply_batches_total', 'KV-engine apply batches (one per cycle with committed entries)'],
      ['messagesSent', 'flotilla_store_raft_messages_sent_total', 'Raft messages handed to the transport'],
      ['messagesDropped', 'flotilla_store_raft_messages_dropped_total', 'Raft messages the transport refused or that had no known store (Raft retransmits)'],
      ['snapshotsSent', 'flotilla_store_snapshots_sent_total', 'Region snapshots streamed to other stores'],
      ['snapshotsReceived', 'flotilla_store_snapshots_received_total', 'Region snapshots received and installed'],
      ['replicationRefusedForDisk', 'flotilla_store_disk_replication_refused_total', 'Raft appends with entries dropped and snapshots refused while the data disk was critically short of space (below half the reserve; Raft retransmits)'],
      ['replicationWithheldForDisk', 'flotilla_store_replication_withheld_for_disk_total', 'Raft appends with entries and snapshots not sent to peer stores that said their data disk is critically short (they would drop them; sent again once they have room)'],
      ['compactions', 'flotilla_store_log_compactions_total', 'Region log compactions'],
      ['readLeaseStalls', 'flotilla_store_read_lease_stalls_total', 'Times the ticks fell behind real time (a blocked event loop) and every read lease here was voided: linearizable reads take ReadIndex rounds until the next heartbeat is acknowledged'],
    ];
    for (const [field, name, help] of hostCounters) {
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(sources.host.stats()[field]);
        },
      });
    }

    // The transport, per peer store (cardinality: the stores of the cluster).
    const peerCounters: readonly [keyof PeerStats, string, string][] = [
      ['framesSent', 'flotilla_transport_frames_sent_total', 'Frames sent to a peer store'],
      ['messagesSent', 'flotilla_transport_messages_sent_total', 'Raft messages sent to a peer store'],
      ['bytesSent', 'flotilla_transport_bytes_sent_total', 'Bytes sent to a peer store'],
      ['framesReceived', 'flotilla_transport_frames_received_total', 'Frames received from a peer store'],
      ['refusedQueueFull', 'flotilla_transport_refused_queue_full_total', 'Messages refused because the queue to a peer store was full'],
      ['reconnects', 'flotilla_transport_reconnects_total', 'Reconnections to a peer store'],
    ];
    for (const [field, name, help] of peerCounters) {
      new Counter({
        name,
        help,
        labelNames: ['peer_store'],
        registers,
        collect() {
          this.reset();
          for (const [store, stats] of sources.transport.stats()) this.inc({ peer_store: store }, stats[field] as number);
        },
      });
    }
    new Gauge({
      name: 'flotilla_transport_queued_messages',
      help: 'Messages queued for a peer store',
      labelNames: ['peer_store'],
      registers,
      collect() {
        this.reset();
        for (const [store, stats] of sources.transport.stats()) this.set({ peer_store: store }, stats.queuedMessages);
      },
    });
    const states: readonly PeerStats['state'][] = ['connecting', 'up', 'backoff', 'down'];
    new Gauge({
      name: 'flotilla_transport_peer_state',
      help: "The connection state to a peer store: 1 for the current state, 0 for the others",
      labelNames: ['peer_store', 'state'],
      registers,
      collect() {
        this.reset();
        for (const [store, stats] of sources.transport.stats()) {
          for (const state of states) this.set({ peer_store: store, state }, stats.state === state ? 1 : 0);
        }
      },
    });

    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** One answered request (hot path: typed-array adds only). `ops`/`results` when it was served. */
  recordRequest(kind: RequestKind, code: ResultCode, seconds: number, ops?: readonly KvOp[], results?: readonly KvOpResult[]): void {
    const k = kindIndex.get(kind)!;
    this.requests[k * RESULT_CODES.length + codeIndex.get(code)!]! += 1;
    this.latency[k]!.observe(seconds);
    if (ops === undefined || results === undefined) return;
    for (let i = 0; i < ops.length; i++) {
      const result = results[i];
      const c = result === undefined ? codeIndex.get('FLOTILLA_INTERNAL')! : codeIndex.get(result.op === 'error' ? result.error.code : 'OK')!;
      this.operations[opIndex.get(ops[i]!.op)! * RESULT_CODES.length + c]! += 1;
    }
  }

  /** One answered admin request. */
  recordAdmin(endpoint: AdminEndpoint | 'unknown', code: 'OK' | ApiErrorCode, seconds: number): void {
    this.adminRequests.inc({ endpoint, code });
    this.adminLatency.observe({ endpoint }, seconds);
  }

  /** The exposition text; concurrent scrapes share one rendering (it costs milliseconds). */
  metrics(): Promise<string> {
    if (this.scrape) return this.scrape;
    const scrape = this.registry.metrics().finally(() => {
      this.scrape = null;
    });
    this.scrape = scrape;
    return scrape;
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** The kind of a decoded request's operations. */
export function requestKind(ops: readonly KvOp[]): RequestKind {
  const first = ops[0];
  if (first === undefined) return 'none';
  for (const op of ops) if (op.op !== first.op) return 'mixed';
  return first.op;
}

/** Adds the locally accumulated counts to a counter (labels op × code) and clears them. */
function flushInto(counter: Counter<'op' | 'code'>, counts: Float64Array, ops: readonly string[]): void {
  for (let i = 0; i < counts.length; i++) {
    const n = counts[i]!;
    if (n === 0) continue;
    counts[i] = 0;
    counter.inc({ op: ops[Math.floor(i / RESULT_CODES.length)]!, code: RESULT_CODES[i % RESULT_CODES.length]! }, n);
  }
}

function gauge(registers: Registry[], name: string, help: string, read: () => number): void {
  new Gauge({
    name,
    help,
    registers,
    collect() {
      this.set(read());
    },
  });
}

/** The ready loop's histograms: log write (fsync) and apply latency, groups per cycle, proposal to applied. */
function hostHistograms(registers: Registry[]): HostObserver {
  const logWrite = new Histogram({ name: 'flotilla_store_log_write_duration_seconds', help: 'One log-engine write of a ready cycle (entries and hard states of every group: one fsync on an appender)', buckets: [...STEP_SECONDS_BUCKETS], registers });
  const apply = new Histogram({ name: 'flotilla_store_apply_duration_seconds', help: 'One KV apply batch of a ready cycle (committed entries of every group)', buckets: [...STEP_SECONDS_BUCKETS], registers });
  const groups = new Histogram({ name: 'flotilla_store_ready_cycle_groups', help: 'Raft groups with work in one ready cycle', buckets: [...CYCLE_GROUPS_BUCKETS], registers });
  const commit = new Histogram({ name: 'flotilla_store_proposal_apply_duration_seconds', help: 'From proposing a write entry here to its apply here (replication, fsyncs, commit and apply)', buckets: [...REQUEST_SECONDS_BUCKETS], registers });
  return {
    logWrite: (seconds) => logWrite.observe(seconds),
    apply: (seconds) => apply.observe(seconds),
    cycle: (n) => groups.observe(n),
    proposalApplied: (seconds) => commit.observe(seconds),
  };
}
