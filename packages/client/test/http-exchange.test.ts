/**
 * The SDK's HTTP exchange with stores and PD (`exchange`, http-exchange.ts, undici's dispatch
 * API): the whole body in one buffer however it arrives, the status and media type of the
 * final answer after an informational one, a bounded body, and undici's own errors passed
 * through.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'undici';
import { ClientError } from '../src/errors.ts';
import { exchange } from '../src/http-exchange.ts';

const MSGPACK = 'application/x-msgpack';
/** A body sent in pieces, each written in its own turn so it arrives in several chunks. */
const PIECES = 8;
const PIECE_BYTES = 16 * 1024;
/** A bound no answer here reaches. */
const BYTES_MAX = 1024 * 1024;
const tooLarge = (): Error => new ClientError('FLOTILLA_STORE_PROTOCOL', 'too large');

describe('exchange (the SDK HTTP exchange)', () => {
  let server: http.Server;
  let pool: Pool;

  before(async () => {
    server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (req.url === '/pieces') {
          res.writeHead(200, { 'content-type': MSGPACK });
          let i = 0;
          const next = (): void => {
            if (i === PIECES) return void res.end();
            res.write(Buffer.alloc(PIECE_BYTES, i++));
            setImmediate(next);
          };
          next();
        } else if (req.url === '/hints') {
          res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
          res.writeHead(503, { 'content-type': 'application/json' });
          res.end('{"error":"busy"}');
        } else {
          res.writeHead(404, { 'content-type': 'text/plain' });
          res.end('no');
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    pool = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { connections: 1 });
  });

  after(async () => {
    await pool.close();
    await new Promise((resolve) => server.close(resolve));
  });

  it('gathers a body that arrives in many chunks into one buffer, in order', async () => {
    const answer = await exchange(pool, { method: 'POST', path: '/pieces', body: Buffer.from('x') }, BYTES_MAX, tooLarge);
    assert.equal(answer.status, 200);
    assert.equal(answer.contentType, MSGPACK);
    assert.equal(answer.payload.byteLength, PIECES * PIECE_BYTES);
    for (let i = 0; i < PIECES; i++) assert.equal(answer.payload[i * PIECE_BYTES + PIECE_BYTES - 1], i, `piece ${i} in its place`);
  });

  it('answers with the final status and media type after an informational answer', async () => {
    const answer = await exchange(pool, { method: 'POST', path: '/hints', body: Buffer.from('x') }, BYTES_MAX, tooLarge);
    assert.equal(answer.status, 503);
    assert.equal(answer.contentType, 'application/json');
    assert.equal(answer.payload.toString(), '{"error":"busy"}');
  });

  it('refuses a body past its bound with the caller\'s error, and the pool serves the next request', async () => {
    await assert.rejects(exchange(pool, { method: 'POST', path: '/pieces', body: Buffer.from('x') }, PIECE_BYTES * 2, tooLarge), (err: unknown) => {
      assert.ok(err instanceof ClientError, `a ClientError: ${String(err)}`);
      assert.equal(err.code, 'FLOTILLA_STORE_PROTOCOL');
      return true;
    });
    const answer = await exchange(pool, { method: 'POST', path: '/pieces', body: Buffer.from('x') }, BYTES_MAX, tooLarge);
    assert.equal(answer.payload.byteLength, PIECES * PIECE_BYTES);
  });

  it("passes undici's error through when the store cannot be reached", async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const nowhere = new Pool(`http://127.0.0.1:${port}`);
    try {
      await assert.rejects(exchange(nowhere, { method: 'POST', path: '/v1/kv', body: Buffer.from('x') }, BYTES_MAX, tooLarge), (err: unknown) => {
        assert.equal((err as { code?: unknown }).code, 'ECONNREFUSED');
        return true;
      });
    } finally {
      await nowhere.close();
    }
  });
});
