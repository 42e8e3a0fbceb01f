/**
 * createClient's `tls` (client-tls.ts) against fake HTTPS stores: stores are dialed at https://
 * with the server checked against the CA; a store whose certificate does not verify and a
 * store answering 401 fail the call at once with FLOTILLA_UNAUTHENTICATED (not retried until
 * the deadline); bad credentials and plain-HTTP PD URLs are refused up front.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { KvRequest, KvResponse, RegionMeta } from '@flotilla/wire';
import { createClient, isClientError, isRetryable, type FlotillaClient } from '../src/index.ts';
import { FakePd, FakeStore } from './fake-store.ts';
import { tlsCredentials } from '../../../test/support/tls.ts';

const REGION: RegionMeta = { id: 1, startKey: new Uint8Array(0), endKey: new Uint8Array(0), epoch: { version: 1, confVer: 1 }, peers: [{ id: 11, storeId: 1, role: 'voter' }] };
const answerGets = (request: KvRequest): KvResponse => ({ requestId: request.requestId, results: request.ops.map(() => ({ op: 'get', value: Buffer.from('v') })) });

describe('the client over HTTPS', () => {
  const peer = tlsCredentials('peer');
  // Serves with the cluster's certificate (signed by the cluster CA, for 127.0.0.1).
  const store = new FakeStore(answerGets, { cert: peer.cert, key: peer.key });
  const clients: FlotillaClient[] = [];
  const clientOf = (tls: { ca: string; cert: string; key: string }): FlotillaClient => {
    const client = createClient({ pd: [], regionSource: new FakePd([{ meta: REGION, leader: { peerId: 11, storeId: 1 } }], new Map([[1, store.address]])), tls, timeoutMs: 10_000 });
    clients.push(client);
    return client;
  };
  before(() => store.listen());
  after(async () => {
    for (const client of clients) await client.close();
    await store.close();
  });

  it('dials stores at https:// and checks them against the CA', async () => {
    store.requests.length = 0;
    assert.deepEqual(await clientOf(peer).get('k'), Buffer.from('v'));
    assert.equal(store.requests.length, 1);
  });

  it('a store whose certificate does not verify: FLOTILLA_UNAUTHENTICATED at once, nothing sent', async () => {
    store.requests.length = 0;
    const stranger = tlsCredentials('stranger');
    // Retried until the deadline, the call would end FLOTILLA_DEADLINE_EXCEEDED instead.
    await assert.rejects(clientOf({ ...peer, ca: stranger.ca }).get('k'), (err: unknown) => isClientError(err, 'FLOTILLA_UNAUTHENTICATED') && !isRetryable(err) && /not trusted/.test(err.message));
    assert.equal(store.requests.length, 0);
  });

  it('a store answering 401: FLOTILLA_UNAUTHENTICATED at once, asked once', async () => {
    store.requests.length = 0;
    store.handler = () => 'unauthorized';
    try {
      await assert.rejects(clientOf(peer).put('k', 'v'), (err: unknown) => isClientError(err, 'FLOTILLA_UNAUTHENTICATED') && !err.unknownOutcome && /refused this client's TLS certificate/.test(err.message));
      assert.equal(store.requests.length, 1);
    } finally {
      store.handler = answerGets;
    }
  });

  it('refuses credentials that do not load, and PD URLs that are not https://', () => {
    const invalid = (err: unknown): boolean => isClientError(err, 'FLOTILLA_INVALID_ARGUMENT');
    assert.throws(() => createClient({ pd: ['https://pd:2379'], tls: { ...peer, key: tlsCredentials('stranger').key } }), (err: unknown) => invalid(err) && /does not load/.test((err as Error).message));
    assert.throws(() => createClient({ pd: ['https://pd:2379'], tls: { ...peer, cert: '' } }), (err: unknown) => invalid(err) && /tls\.cert/.test((err as Error).message));
    assert.throws(() => createClient({ pd: ['http://pd:2379'], tls: peer }), (err: unknown) => invalid(err) && /https:\/\//.test((err as Error).message));
  });
});
