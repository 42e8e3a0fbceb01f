/**
 * A fake store for unit tests: a node:http server (node:https with `tls`) that decodes each
 * KvRequest and answers with whatever the test's handler returns, recording every request.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { decodeKvRequest, encodeKvResponse, type KvRequest, type KvResponse } from '@flotilla/wire';
import type { CallContext } from '../src/backoff.ts';
import type { RegionSource, RoutedRegion, StoreRecord } from '../src/pd-client.ts';
import { waitFor } from '../../../test/support/wait.ts';

export { waitFor };

/** 'unauthorized': the 401 JSON ApiError a store with --api-tls-* answers a client without the cluster's certificate. */
export type Handler = (request: KvRequest) => KvResponse | Promise<KvResponse> | 'hang' | 'destroy' | 'unauthorized';

export class FakeStore {
  readonly requests: KvRequest[] = [];
  private readonly server: http.Server | https.Server;
  private readonly sockets = new Set<import('node:net').Socket>();
  address = '';

  /** `tls`: serve HTTPS with this certificate and key. */
  constructor(
    public handler: Handler,
    tls?: { readonly cert: string; readonly key: string },
  ) {
    const serve = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const request = decodeKvRequest(Buffer.concat(chunks));
        this.requests.push(request);
        void Promise.resolve(this.handler(request)).then((answer) => {
          if (answer === 'hang') return;
          if (answer === 'destroy') return void req.socket.destroy();
          if (answer === 'unauthorized') {
            res.writeHead(401, { 'content-type': 'application/json' });
            return void res.end(JSON.stringify({ error: { code: 'FLOTILLA_UNAUTHENTICATED', message: 'this API needs a client certificate' } }));
          }
          const body = encodeKvResponse(answer);
          res.writeHead('error' in answer && answer.error.code === 'FLOTILLA_SERVER_BUSY' ? 503 : 200, { 'content-type': 'application/x-msgpack', 'content-length': body.byteLength });
          res.end(body);
        });
      });
    };
    this.server = tls === undefined ? http.createServer(serve) : https.createServer({ cert: tls.cert, key: tls.key }, serve);
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.address = `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A RegionSource from tables the test may change. */
export class FakePd implements RegionSource {
  /** Region loads asked. */
  loads = 0;
  constructor(
    public table: RoutedRegion[],
    public stores: Map<number, string>,
    /** Each store's location labels (none when absent). */
    public labels: Map<number, Record<string, string>> = new Map(),
  ) {}

  async regions(start: Uint8Array, end: Uint8Array, limit: number, _ctx: CallContext): Promise<{ regions: RoutedRegion[]; more: boolean }> {
    this.loads++;
    const overlapping = this.table
      .filter((r) => (r.meta.endKey.byteLength === 0 || Buffer.compare(r.meta.endKey, start) > 0) && (end.byteLength === 0 || Buffer.compare(r.meta.startKey, end) < 0))
      .sort((a, b) => Buffer.compare(a.meta.startKey, b.meta.startKey));
    return { regions: overlapping.slice(0, limit), more: overlapping.length > limit };
  }

  async store(storeId: number, _ctx: CallContext): Promise<StoreRecord> {
    const address = this.stores.get(storeId);
    if (!address) throw new Error(`no store ${storeId}`);
    return { id: storeId, apiAddress: address, state: 'up', labels: this.labels.get(storeId) ?? {} };
  }

  async close(): Promise<void> {}
}

