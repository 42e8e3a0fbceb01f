/**
 * Every bound and default of @flotilla/client, in one place. Units and qualifiers last.
 * The checks at the bottom run at load time and state how the bounds relate.
 */
import { limits as wire } from '@flotilla/wire';

export const clientLimits = Object.freeze({
  // ---- Calls ---------------------------------------------------------------------------------
  /** A call's deadline when the caller gives none. */
  callTimeoutMsDefault: 10_000,
  /** The longest deadline a call may ask for (the store's own request bound). */
  callTimeoutMsMax: wire.kvTimeoutMsMax,
  /**
   * Attempts of one operation (each one request to a store) before the call fails with the
   * last error. Deadlines end most retry loops first; this bounds a loop that never waits.
   */
  attemptsMax: 64,
  /** Keys (getMany, deleteMany) or pairs (putMany) in one call. */
  keysPerCallMax: 100_000,

  // ---- Retries -------------------------------------------------------------------------------
  /** The first backoff; it doubles per retry up to backoffMsMax, with full jitter. */
  backoffMsBase: 5,
  backoffMsMax: 500,

  // ---- Coalescing, per store -----------------------------------------------------------------
  /**
   * Operations of one coalesced request. Everything queued for a store in one event-loop turn
   * goes out together, cut at this bound (well below the wire's kvRequestOpsMax).
   */
  batchOpsMax: 4_096,
  /** Estimated bytes (keys and values) of one coalesced request, below the wire's 32 MiB. */
  batchBytesMax: 8 * 1024 * 1024,
  /**
   * Write requests in flight to one store; past it, write operations wait and coalesce into
   * the next. Each holds a connection of its own (writes are never pipelined): a request the
   * HTTP client had to queue for a connection would lock its operations into a small batch
   * while later ones pile up behind it (at 256 calls in flight, 3.8 operations per request
   * instead of ~20, and a third of the throughput; benchmarks/RESULTS.md).
   */
  writeRequestsInFlightPerStoreMax: 4,
  /**
   * Read requests in flight to one store (pipelined on their own connections); past it, reads
   * coalesce into the next request. 8 rather than 32: at 64 and 256 reads in flight over 3
   * stores, reads per request rise and the stores' CPU per read falls (medians of 3 alternating
   * runs on 2026-11-24: 31,739 -> 34,773 reads/s at 64, 52,857 -> 59,013 at 256; within the
   * noise at 16; benchmarks/RESULTS.md).
   */
  readRequestsInFlightPerStoreMax: 8,
  /** Operations waiting to be sent to one store; past it, a call fails with FLOTILLA_CLIENT_BUSY. */
  queuedOpsPerStoreMax: 100_000,
  /** A request's timeout at the store when its operations allow more (one attempt's bound). */
  attemptTimeoutMsMax: 5_000,
  /** Added to the store's timeout for the HTTP answer (headers and body) to arrive. */
  answerGraceMs: 1_000,

  // ---- Connections ---------------------------------------------------------------------------
  /** undici connections per store for reads; writes have writeRequestsInFlightPerStoreMax more. */
  readConnectionsPerStore: 4,
  /** Read requests pipelined per connection (writes never share a connection's pipeline). */
  pipeliningPerConnection: 8,
  /** Idle keep-alive of a connection. */
  keepAliveTimeoutMs: 20_000,
  /**
   * After a connection to a store fails, its replicas are asked last and leader hints naming
   * it are ignored for this long (its followers name it until they elect a new leader).
   */
  suspectStoreMs: 1_000,
  /** Stores the client knows (addresses, connection pools). */
  storesMax: 4_096,

  // ---- Region cache and PD -------------------------------------------------------------------
  /** Regions cached; past it, the least recently used eighth is dropped. */
  regionCacheMax: 65_536,
  /** Regions asked of PD per page (scan prefetch, reverse scans). */
  pdRegionsPageMax: 1_024,
  /** Regions loaded from PD on a point miss (the key's region and the ones after it). */
  pdRegionsPerMissMax: 64,
  /** PD endpoints given to createClient. */
  pdEndpointsMax: 16,
  /** PD members tried (endpoints and leader hints) for one PD request. */
  pdAttemptsPerRequestMax: 8,
  /** One PD request, from sending to the whole answer. */
  pdRequestTimeoutMs: 5_000,
  /** PD answer bodies read (a page of 1,024 regions is ~0.5 MiB). */
  pdAnswerBytesMax: 16 * 1024 * 1024,
  /** Connections to each PD member. */
  pdConnectionsPerMember: 2,
  /** Concurrent identical PD look-ups share one request; at most this many are kept. */
  pdLookupsInFlightMax: 1_024,

  // ---- Scans ---------------------------------------------------------------------------------
  /** Rows asked of one region per scan request (the page size of scanIterator by default). */
  scanPageRowsDefault: 1_024,
  /** The page size a caller may ask for (the wire's bound of one scan op). */
  scanPageRowsMax: wire.kvScanRowsMax,
  /** The limit of one scan() call (its rows are held in memory). */
  scanRowsMax: 1_000_000,
});

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`client constants: ${what}`);
}
check(clientLimits.batchOpsMax <= wire.kvRequestOpsMax, 'a coalesced request fits the wire bound of operations');
check(clientLimits.batchBytesMax + wire.kvKeyBytesMax + wire.kvValueBytesMax + 64 * 1024 <= wire.kvRequestPayloadBytesMax, 'a full batch plus one maximal op fits the request payload');
check(clientLimits.readRequestsInFlightPerStoreMax <= clientLimits.readConnectionsPerStore * clientLimits.pipeliningPerConnection, 'every read request in flight has a place in a pipeline (none waits inside undici)');
check(clientLimits.writeRequestsInFlightPerStoreMax >= 1 && clientLimits.readRequestsInFlightPerStoreMax >= 1, 'at least one request of each kind in flight');
check(clientLimits.attemptTimeoutMsMax <= wire.kvTimeoutMsMax, 'an attempt timeout is a valid request timeout');
check(clientLimits.backoffMsBase > 0 && clientLimits.backoffMsBase <= clientLimits.backoffMsMax, 'backoff base within (0, max]');
check(clientLimits.scanPageRowsDefault <= clientLimits.scanPageRowsMax, 'default page within the bound');
check(clientLimits.pdRegionsPageMax <= 10_000, "a region page within PD's bound");
check(clientLimits.pdRegionsPerMissMax <= clientLimits.pdRegionsPageMax && clientLimits.pdRegionsPageMax <= clientLimits.regionCacheMax / 8, 'a page of regions fits the cache many times');
