/**
 * JSON errors of the store's HTTP server, with a stable code:
 *
 *   { "error": { "code": "FLOTILLA_MALFORMED_REQUEST", "message": "...", ...details } }   application/json
 *
 * - On the client API (`/v1/kv`), only transport-level errors: the HTTP exchange itself was
 *   wrong (a body that is not a KvRequest, a wrong path, method or media type), so there is no
 *   KvRequest to answer with a KvResponse. Everything about the request's operations
 *   (including RequestTooLarge and ServerBusy) is a KvResponse error in msgpack instead, so a
 *   client tells the two apart by the content type.
 * - On the admin API (`/v1/admin/`, JSON throughout), every error. Those named like a KvError
 *   mean the same thing and carry the same details (`leader`, `currentRegions`, `retryAfterMs`).
 */
export type ApiErrorCode =
  | 'FLOTILLA_MALFORMED_REQUEST' // 400: not a KvRequest (bad msgpack, wrong shape, bad HTTP); an admin field (`field`)
  | 'FLOTILLA_UNAUTHENTICATED' // 401: an HTTPS API (--api-tls-*) without a client certificate signed by its CA
  | 'FLOTILLA_NOT_FOUND' // 404: no such endpoint
  | 'FLOTILLA_METHOD_NOT_ALLOWED' // 405: the endpoint exists; see the Allow header
  | 'FLOTILLA_REQUEST_TIMEOUT' // 408: the request was not received in time
  | 'FLOTILLA_UNSUPPORTED_MEDIA_TYPE' // 415: a KvRequest body must be application/x-msgpack, an admin body application/json
  | 'FLOTILLA_HEADERS_TOO_LARGE' // 431
  | 'FLOTILLA_INTERNAL' // 500: a bug in the store; the outcome of the request's writes is unknown
  // The admin API's (admin-api.ts):
  | 'FLOTILLA_REGION_NOT_FOUND' // 404: no replica of the region on this store (`regionId`)
  | 'FLOTILLA_NOT_LEADER' // 409: this replica does not lead; `leader` ({peerId, storeId} or null) hints who does
  | 'FLOTILLA_REGION_EXISTS' // 409: bootstrap or split into a region this store already hosts
  | 'FLOTILLA_EPOCH_NOT_MATCH' // 409: the region changed (a stale split key, a stale view); `currentRegions`
  | 'FLOTILLA_CONFLICT' // 409: well-formed, but impossible in the region's current state (e.g. no voter left)
  | 'FLOTILLA_REQUEST_TOO_LARGE' // 413: an admin body over adminBodyBytesMax
  | 'FLOTILLA_SERVER_BUSY' // 503 + Retry-After: a bound, a pending change or transfer, or stopping (`retryAfterMs`)
  | 'FLOTILLA_DISK_FULL' // 507: too few of the region's voters are on stores with disk room to commit it (`storeId`, `availableBytes`, `reserveBytes`)
  | 'FLOTILLA_TIMEOUT'; // 504: not done by the deadline; the change may still happen

export const API_ERROR_STATUS: Readonly<Record<ApiErrorCode, number>> = Object.freeze({
  FLOTILLA_MALFORMED_REQUEST: 400,
  FLOTILLA_UNAUTHENTICATED: 401,
  FLOTILLA_NOT_FOUND: 404,
  FLOTILLA_METHOD_NOT_ALLOWED: 405,
  FLOTILLA_REQUEST_TIMEOUT: 408,
  FLOTILLA_UNSUPPORTED_MEDIA_TYPE: 415,
  FLOTILLA_HEADERS_TOO_LARGE: 431,
  FLOTILLA_INTERNAL: 500,
  FLOTILLA_REGION_NOT_FOUND: 404,
  FLOTILLA_NOT_LEADER: 409,
  FLOTILLA_REGION_EXISTS: 409,
  FLOTILLA_EPOCH_NOT_MATCH: 409,
  FLOTILLA_CONFLICT: 409,
  FLOTILLA_REQUEST_TOO_LARGE: 413,
  FLOTILLA_SERVER_BUSY: 503,
  FLOTILLA_DISK_FULL: 507,
  FLOTILLA_TIMEOUT: 504,
});

export const API_ERROR_CODES: readonly ApiErrorCode[] = Object.freeze(Object.keys(API_ERROR_STATUS) as ApiErrorCode[]);

export interface ApiError {
  readonly code: ApiErrorCode;
  readonly message: string;
  /** The other fields of the error object, when it has any (`leader`, `currentRegions`, …). */
  readonly details?: Readonly<Record<string, unknown>>;
}

/** Messages are for people; they are cut so that an error body stays small. */
const MESSAGE_CHARS_MAX = 512;

/** The error body as a value; `details` are JSON values added to it (never replacing code or message). */
export function apiErrorBody(code: ApiErrorCode, message: string, details: Readonly<Record<string, unknown>> = {}): { readonly error: ApiError } {
  return { error: { ...details, code, message: message.slice(0, MESSAGE_CHARS_MAX) } };
}

export function encodeApiError(code: ApiErrorCode, message: string, details: Readonly<Record<string, unknown>> = {}): string {
  return JSON.stringify(apiErrorBody(code, message, details));
}

/** The error of a JSON error body, or null when the text is not one (for clients and tests). */
export function decodeApiError(text: string): ApiError | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null) return null;
  const error: unknown = (parsed as { error?: unknown }).error;
  if (typeof error !== 'object' || error === null) return null;
  const { code, message, ...details } = error as { code?: unknown; message?: unknown };
  if (typeof code !== 'string' || !(API_ERROR_CODES as readonly string[]).includes(code)) return null;
  if (typeof message !== 'string') return null;
  return Object.keys(details).length === 0 ? { code: code as ApiErrorCode, message } : { code: code as ApiErrorCode, message, details };
}
