/**
 * The SDK's PD client reads a store's record: its API address and its location labels, which
 * stale reads near the client match (stale-replicas.ts). A record in the wrong shape is PD's
 * error, typed, not a crash later. Over HTTPS, a member that refuses the client's certificate
 * is passed over, and only when none answers is the call FLOTILLA_UNAUTHENTICATED.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { CallContext } from '../src/backoff.ts';
import { isClientError } from '../src/index.ts';
import { PdRouting } from '../src/pd-client.ts';
import { tlsCredentials } from '../../../test/support/tls.ts';

describe('PdRouting.store', () => {
  /** Store id -> the JSON body PD answers for it. */
  const records = new Map<number, unknown>();
  const server = http.createServer((req, res) => {
    const id = Number(/\/pd\/api\/v1\/stores\/(\d+)$/.exec(req.url ?? '')?.[1]);
    const body = records.get(id);
    res.writeHead(body === undefined ? 404 : 200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body ?? { error: { code: 'FLOTILLA_PD_STORE_NOT_FOUND', message: 'no such store' } }));
  });
  let pd: PdRouting;
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    pd = new PdRouting([`http://127.0.0.1:${(server.address() as AddressInfo).port}`]);
  });
  after(async () => {
    await pd.close();
    await new Promise((resolve) => server.close(resolve));
  });
  const ctx = (): CallContext => new CallContext(5_000, undefined, 'test');
  const record = (id: number, labels?: unknown): unknown => ({ id, apiAddress: `10.0.0.${id}:20180`, state: 'up', ...(labels === undefined ? {} : { labels }) });

  it('gives the address and the labels; a record without labels has none', async () => {
    records.set(1, record(1, { zone: 'z1', host: 'h7' }));
    records.set(2, record(2));
    assert.deepEqual(await pd.store(1, ctx()), { id: 1, apiAddress: '10.0.0.1:20180', state: 'up', labels: { zone: 'z1', host: 'h7' } });
    assert.deepEqual((await pd.store(2, ctx())).labels, {});
  });

  it('labels in the wrong shape are FLOTILLA_PD_ERROR', async () => {
    const tooMany = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`l${i}`, 'v']));
    for (const [i, labels] of [[1, 2], { zone: 5 }, 'zone=z1', null, tooMany, { zone: 'z'.repeat(65) }].entries()) {
      records.set(10 + i, record(10 + i, labels));
      await assert.rejects(pd.store(10 + i, ctx()), (err: unknown) => isClientError(err, 'FLOTILLA_PD_ERROR'), JSON.stringify(labels));
    }
  });
});

describe('PdRouting over HTTPS', () => {
  const peer = tlsCredentials('peer');
  /** A PD member over HTTPS answering store 1's record, or 401 to everyone (`refusing`). */
  const member = (refusing: boolean): https.Server =>
    https.createServer({ cert: peer.cert, key: peer.key }, (req, res) => {
      res.writeHead(refusing ? 401 : 200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(refusing ? { error: { code: 'FLOTILLA_PD_UNAUTHENTICATED', message: 'none was presented' } } : { id: 1, apiAddress: '10.0.0.1:20180', state: 'up' }));
    });
  const refusing = member(true);
  const serving = member(false);
  const urls: string[] = [];
  const routings: PdRouting[] = [];
  before(async () => {
    for (const server of [refusing, serving]) {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      urls.push(`https://127.0.0.1:${(server.address() as AddressInfo).port}`);
    }
  });
  after(async () => {
    for (const routing of routings) await routing.close();
    for (const server of [refusing, serving]) await new Promise((resolve) => server.close(resolve));
  });
  const routing = (endpoints: string[], ca = peer.ca): PdRouting => {
    const made = new PdRouting(endpoints, { ...peer, ca });
    routings.push(made);
    return made;
  };
  const ctx = (): CallContext => new CallContext(5_000, undefined, 'test');

  it('a member that refuses the certificate is passed over for one that answers', async () => {
    assert.equal((await routing([urls[0]!, urls[1]!]).store(1, ctx())).apiAddress, '10.0.0.1:20180');
  });

  it('when no member takes the certificate, or none is trusted: FLOTILLA_UNAUTHENTICATED, not PD_UNAVAILABLE', async () => {
    await assert.rejects(routing([urls[0]!]).store(1, ctx()), (err: unknown) => isClientError(err, 'FLOTILLA_UNAUTHENTICATED') && /refused this client's TLS certificate/.test(err.message));
    await assert.rejects(routing([urls[1]!], tlsCredentials('stranger').ca).store(1, ctx()), (err: unknown) => isClientError(err, 'FLOTILLA_UNAUTHENTICATED') && /not trusted/.test(err.message));
  });
});
