import { limits as wireLimits } from '@flotilla/wire';
import { limits } from './constants.ts';

/**
 * Every bound of the client API server (`server.ts`), named once, with load-time checks of how
 * they relate to each other, to the store's limits and to the wire's.
 */
export const serverLimits = Object.freeze({
  /** Body of one POST /v1/kv; past it: 413 FLOTILLA_REQUEST_TOO_LARGE, refused while streaming. */
  requestBodyBytesMax: wireLimits.kvRequestPayloadBytesMax,
  /**
   * Body bytes of all admitted requests held by the server at once (buffered, or decoded and
   * being served); a request that would go past it is refused with 503 FLOTILLA_SERVER_BUSY.
   * Pipelined requests are all read ahead, so this (not the request count) bounds memory.
   */
  bodyBytesInFlightMax: 256 * 1024 * 1024,
  /** Requests admitted and not yet answered; past it: 503 FLOTILLA_SERVER_BUSY. */
  requestsInFlightMax: 8192,
  /** The back-off hint of a refused request (the body's retryAfterMs; Retry-After in whole seconds). */
  busyRetryAfterMs: 100,
  /** Open client connections; the listener refuses more. */
  connectionsMax: 4096,
  /** An idle keep-alive connection is closed after this long (clients should reuse sooner). */
  keepAliveTimeoutMs: 30_000,
  /** Time to receive a request's headers, and the whole request (Node's headersTimeout, requestTimeout). */
  headersTimeoutMs: 20_000,
  requestReceiveTimeoutMs: 60_000,
  /** Bytes of one request's headers (Node's maxHeaderSize). */
  headerBytesMax: 16 * 1024,
  /** close() waits this long for in-flight requests, then closes every connection. */
  drainTimeoutMs: 10_000,
  /** Body of one admin request (JSON); past it: 413 FLOTILLA_REQUEST_TOO_LARGE, refused while streaming. */
  adminBodyBytesMax: 1024 * 1024,
});

/** Bounds of the admin API's requests and answers (`admin-api.ts`). */
export const adminLimits = Object.freeze({
  /** Regions in one page of GET /v1/admin/regions: the default and the most a client may ask. */
  regionsPageDefault: 1_000,
  regionsPageMax: 10_000,
  /** How long a membership change, split or leader transfer is waited for, unless the body says. */
  waitMsDefault: 10_000,
  /** The most a body's `timeoutMs` may ask for (a held request keeps an in-flight slot). */
  waitMsMax: 60_000,
  /** How often a leader transfer's progress is checked (a status read costs microseconds). */
  transferPollMs: 10,
  /** Host names in PUT /v1/admin/stores/:storeId (a DNS name is at most 253 characters). */
  hostCharsMax: 253,
});

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`store server limits: ${what}`);
}

check(serverLimits.requestBodyBytesMax <= wireLimits.kvRequestPayloadBytesMax, 'a request body the wire refuses to decode must be refused before it is read');
check(serverLimits.requestBodyBytesMax >= wireLimits.kvKeyBytesMax + wireLimits.kvValueBytesMax + 1024, 'one maximal put fits a request body');
check(serverLimits.bodyBytesInFlightMax >= serverLimits.requestBodyBytesMax, 'one maximal request fits the in-flight byte budget');
check(serverLimits.requestsInFlightMax <= limits.requestsInFlightMax, "the server admits no more requests than the KV service serves (its own ServerBusy would be answered instead)");
check(serverLimits.busyRetryAfterMs > 0 && serverLimits.busyRetryAfterMs <= wireLimits.kvRetryAfterMsMax, 'the back-off hint fits the wire');
check(serverLimits.headersTimeoutMs <= serverLimits.requestReceiveTimeoutMs, 'Node requires headersTimeout <= requestTimeout');
check(serverLimits.drainTimeoutMs > 0, 'close() waits a positive time');
// A bootstrap body: two keys as hex, and every peer of a region (~60 characters each).
check(serverLimits.adminBodyBytesMax >= 4 * wireLimits.kvKeyBytesMax + wireLimits.regionPeersMax * 128 + 1024, 'a maximal region fits an admin body');
check(serverLimits.adminBodyBytesMax <= serverLimits.bodyBytesInFlightMax, 'one maximal admin body fits the in-flight byte budget');
check(adminLimits.regionsPageDefault >= 1 && adminLimits.regionsPageDefault <= adminLimits.regionsPageMax, 'the default page is a valid page');
check(adminLimits.waitMsDefault > 0 && adminLimits.waitMsDefault <= adminLimits.waitMsMax, 'the default wait is a valid wait');
check(adminLimits.transferPollMs > 0 && adminLimits.transferPollMs < adminLimits.waitMsDefault, 'a transfer is checked several times before its deadline');
