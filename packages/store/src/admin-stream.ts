/**
 * How the store's server sends a streamed admin answer (a region backup, admin-api.ts): a body of
 * unknown length (chunked), pulled from the stream only as fast as the connection takes it. The
 * request keeps its in-flight slot until the body ended, so draining waits for it. A failure
 * midway (the client left, the source broke) ends the body unfinished: the client sees a broken
 * body, never a short one that looks whole.
 */
import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { AdminStream } from './admin-api.ts';

/** Bytes a streamed answer reads ahead of the socket (one more chunk may be in hand). */
const STREAM_BYTES_AHEAD_MAX = 64 * 1024;

/**
 * Sends `stream` with `status` and `headers`; `beforeHead` runs just before the head is written
 * (the server marks a draining connection to close). Settles once the body ended, sent or not;
 * `stream.done()` runs either way.
 */
export async function sendStream(
  res: ServerResponse,
  status: number,
  stream: AdminStream,
  headers: Readonly<Record<string, string>>,
  beforeHead: () => void,
  log?: { error(fields: object, message: string): void },
): Promise<void> {
  try {
    if (res.headersSent) {
      res.destroy(); // never two answers to one request
      return;
    }
    beforeHead();
    res.writeHead(status, { ...headers, 'content-type': stream.contentType });
    // Pulls the next chunk only below the high-water mark: about one chunk ahead of the socket.
    await pipeline(Readable.from(stream.chunks, { objectMode: false, highWaterMark: STREAM_BYTES_AHEAD_MAX }), res);
  } catch (err) {
    res.destroy();
    if (!isClientGone(err)) log?.error({ err: err instanceof Error ? err.message : String(err) }, 'a streamed admin answer failed');
  } finally {
    stream.done();
  }
}

/** The client closed the connection before a streamed answer ended: nothing to report. */
function isClientGone(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET' || code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED';
}
