/**
 * Transport-level errors of the client API server: the HTTP exchange itself was wrong (a body
 * that is not a KvRequest, a wrong path, method or media type), so there is no KvRequest to
 * answer with a KvResponse. They travel as a small JSON body with a stable code:
 *
 *   { "error": { "code": "FLOTILLA_MALFORMED_REQUEST", "message": "..." } }   application/json
 *
 * Everything about the request's operations (including RequestTooLarge and ServerBusy) is a
 * KvResponse error in msgpack instead, so a client tells the two apart by the content type.
 */
export type ApiErrorCode =
  | 'FLOTILLA_MALFORMED_REQUEST' // 400: not a KvRequest (bad msgpack, wrong shape, bad HTTP)
  | 'FLOTILLA_NOT_FOUND' // 404: no such endpoint
  | 'FLOTILLA_METHOD_NOT_ALLOWED' // 405: the endpoint exists; see the Allow header
  | 'FLOTILLA_REQUEST_TIMEOUT' // 408: the request was not received in time
  | 'FLOTILLA_UNSUPPORTED_MEDIA_TYPE' // 415: a KvRequest body must be application/x-msgpack
  | 'FLOTILLA_HEADERS_TOO_LARGE' // 431
  | 'FLOTILLA_INTERNAL'; // 500: a bug in the store; the outcome of the request's writes is unknown

export const API_ERROR_STATUS: Readonly<Record<ApiErrorCode, number>> = Object.freeze({
  FLOTILLA_MALFORMED_REQUEST: 400,
  FLOTILLA_NOT_FOUND: 404,
  FLOTILLA_METHOD_NOT_ALLOWED: 405,
  FLOTILLA_REQUEST_TIMEOUT: 408,
  FLOTILLA_UNSUPPORTED_MEDIA_TYPE: 415,
  FLOTILLA_HEADERS_TOO_LARGE: 431,
  FLOTILLA_INTERNAL: 500,
});

export const API_ERROR_CODES: readonly ApiErrorCode[] = Object.freeze(Object.keys(API_ERROR_STATUS) as ApiErrorCode[]);

export interface ApiError {
  readonly code: ApiErrorCode;
  readonly message: string;
}

/** Messages are for people; they are cut so that an error body stays small. */
const MESSAGE_CHARS_MAX = 512;

export function encodeApiError(code: ApiErrorCode, message: string): string {
  return JSON.stringify({ error: { code, message: message.slice(0, MESSAGE_CHARS_MAX) } });
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
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (typeof code !== 'string' || !(API_ERROR_CODES as readonly string[]).includes(code)) return null;
  if (typeof message !== 'string') return null;
  return { code: code as ApiErrorCode, message };
}
