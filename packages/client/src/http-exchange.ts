/**
 * One HTTP exchange of the SDK (with a store or with PD) through undici's dispatch API: the
 * answer's body gathered into one buffer as it arrives, under a bound. `pool.request()` wraps
 * every answer in a Readable stream and an event emitter, which cost the client ~40% more CPU
 * per request (benchmarks/RESULTS.md, "The SDK's HTTP exchange").
 */
import type { Dispatcher } from 'undici';

/** What a server answered: the final status, its media type and the whole body. */
export interface Answer {
  readonly status: number;
  readonly contentType: string;
  readonly payload: Buffer;
}

/**
 * Rejects with undici's error when the exchange fails, or with `tooLarge()` once the body
 * passes `bodyBytesMax` bytes (the exchange is aborted there, nothing more is read).
 */
export function exchange(pool: Dispatcher, options: Dispatcher.DispatchOptions, bodyBytesMax: number, tooLarge: () => Error): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    let status = 0;
    let contentType = '';
    let chunks: Buffer[] = [];
    let bytes = 0;
    pool.dispatch(options, {
      onRequestStart() {},
      onResponseStart(_controller, statusCode, headers) {
        // A 1xx informational answer comes first, then the real one: keep only the last.
        status = statusCode;
        const type = headers['content-type'];
        contentType = Array.isArray(type) ? (type[0] ?? '') : (type ?? '');
        chunks = [];
        bytes = 0;
      },
      onResponseData(controller, chunk) {
        bytes += chunk.byteLength;
        if (bytes > bodyBytesMax) {
          controller.abort(tooLarge());
          return;
        }
        chunks.push(chunk);
      },
      onResponseEnd() {
        resolve({ status, contentType, payload: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, bytes) });
      },
      onResponseError(_controller, error) {
        reject(error);
      },
    });
  });
}
