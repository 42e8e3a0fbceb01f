/**
 * TcpTransport with mutual TLS (tcp-tls.ts): the whole shared suite over TLS, then what TLS is
 * for — a process without the cluster's credentials reaches no store and no store reaches it,
 * a listener whose certificate does not name the host dialed is refused, plain TCP is refused,
 * credentials rotate for new connections, and bad credentials are refused up front.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { TcpTransport, encodeHandshake, isTransportError, type PeerTransport, type TransportTls } from '../src/index.ts';
import { tlsCredentials } from '../../../test/support/tls.ts';
import { Recorder, seqMessage, tcpFixture, waitFor, type TransportFixture } from './helpers.ts';
import { describeTransport } from './suite.ts';

const PEER = tlsCredentials('peer');
const STRANGER = tlsCredentials('stranger');
const WRONG_HOST = tlsCredentials('wrong-host');

describeTransport('TcpTransport over mutual TLS', () => tcpFixture(PEER));

describe('TcpTransport over mutual TLS: who may connect', () => {
  let fx: TransportFixture;
  beforeEach(() => {
    fx = tcpFixture(PEER);
  });
  afterEach(() => fx.dispose());

  async function started(store: number, tls?: TransportTls): Promise<{ t: PeerTransport; rec: Recorder }> {
    const rec = new Recorder();
    const t = fx.create(store, tls === undefined ? {} : { tls });
    await t.start(rec);
    return { t, rec };
  }
  const refusals = (): string[] => fx.errors.filter((e) => e.code === 'FLOTILLA_TRANSPORT_TLS_REFUSED').map((e) => e.message);

  it("a stranger's certificate (another CA) is refused both ways; the cluster's peers talk on", async () => {
    const a = await started(1);
    const b = await started(2);
    const stranger = await started(3, STRANGER);
    a.t.setPeer(2, b.t.address());
    a.t.setPeer(3, stranger.t.address());
    stranger.t.setPeer(1, a.t.address());
    await waitFor('store 1 reaches store 2', () => a.t.stats().get(2)?.state === 'up');
    await waitFor('refusals on both sides, each way', () => refusals().some((m) => m.includes('connection from')) && refusals().some((m) => m.includes('store 3')) && refusals().some((m) => m.includes('store 1')));
    assert.notEqual(a.t.stats().get(3)?.state, 'up');
    assert.notEqual(stranger.t.stats().get(1)?.state, 'up');
    assert.equal(stranger.t.send(1, seqMessage(1, 1)), null, 'queued');
    assert.equal(a.t.send(2, seqMessage(1, 2)), null);
    await waitFor('store 2 got store 1 message', () => b.rec.messagesFrom(1).length === 1);
    assert.equal(a.rec.messagesFrom(3).length, 0, 'nothing of the stranger reached store 1');
  });

  it("a listener whose certificate does not name the dialed host is refused by the dialer (but may dial)", async () => {
    const a = await started(1);
    const elsewhere = await started(2, WRONG_HOST);
    a.t.setPeer(2, elsewhere.t.address());
    elsewhere.t.setPeer(1, a.t.address());
    await waitFor('store 2 reaches store 1 (its client certificate is the cluster CA\'s)', () => elsewhere.t.stats().get(1)?.state === 'up');
    await waitFor('store 1 refused store 2 as a listener', () => refusals().some((m) => m.includes('store 2') && /altnames|does not match/i.test(m)));
    assert.notEqual(a.t.stats().get(2)?.state, 'up');
  });

  it('plain TCP is refused by a TLS listener, and a plain listener by a TLS dialer', async () => {
    const a = await started(1);
    const plain = new TcpTransport({ localStore: 2, clusterId: 7, tuning: { reconnectBackoffBaseMs: 2, reconnectBackoffMaxMs: 20, connectTimeoutMs: 2_000 } });
    try {
      await plain.start(new Recorder());
      plain.setPeer(1, a.t.address());
      a.t.setPeer(2, plain.address());
      await waitFor('store 1 refused the plain connection and the plain listener', () => refusals().some((m) => m.includes('connection from')) && refusals().some((m) => m.includes('store 2')));
      assert.notEqual(plain.stats().get(1)?.state, 'up');
      assert.notEqual(a.t.stats().get(2)?.state, 'up');
    } finally {
      await plain.close();
    }
  });

  it('new credentials (setTls) serve new connections; established ones stay', async () => {
    const a = await started(1);
    const b = await started(2);
    b.t.setPeer(1, a.t.address());
    await waitFor('store 2 reaches store 1', () => b.t.stats().get(1)?.state === 'up');
    (a.t as TcpTransport).setTls(STRANGER);
    const c = await started(3);
    c.t.setPeer(1, a.t.address());
    await waitFor('store 3 refused: store 1 now shows a certificate of another CA', () => refusals().some((m) => m.includes('store 1')));
    assert.equal(b.t.send(1, seqMessage(2, 1)), null);
    await waitFor('the established connection still carries messages', () => a.rec.messagesFrom(2).length === 1);
    assert.equal((a.t as TcpTransport).tlsCertificateExpiry(), Date.parse(new X509Certificate(STRANGER.cert).validTo) / 1000, 'the expiry is the certificate in use');
    (a.t as TcpTransport).setTls(PEER);
    assert.equal((a.t as TcpTransport).tlsCertificateExpiry(), Date.parse('2126-11-01T10:43:10Z') / 1000);
    await waitFor('store 3 reaches store 1 with the cluster credentials back', () => c.t.stats().get(1)?.state === 'up');
  });

  it('closes at once with a connection stuck before its TLS handshake', async () => {
    const t = fx.create(1, { tuning: { connectTimeoutMs: 10 * 60_000 } });
    await t.start(new Recorder());
    const raw = net.connect(t.address());
    raw.on('error', () => {});
    await new Promise((resolve) => raw.once('connect', resolve));
    let closed = false;
    void t.close().then(() => (closed = true));
    try {
      await waitFor('close() resolved (it did not wait for the handshake timeout)', () => closed, 10_000);
    } finally {
      raw.destroy();
    }
  });

  it('a dialer without a certificate is refused before our handshake, even one that trusts the CA', async () => {
    const a = await started(1);
    const { host, port } = a.t.address();
    const socket = tls.connect({ host, port, ca: PEER.ca });
    let received = 0;
    let closed = false;
    socket.on('data', (chunk: Buffer) => (received += chunk.length));
    socket.on('error', () => {});
    socket.on('close', () => (closed = true));
    // Our raft hello, as a store would send it once TLS is up.
    socket.write(encodeHandshake({ purpose: 'raft', role: 'hello', status: 'ok', clusterId: 7, fromStore: 9, toStore: 1 }));
    await waitFor('the listener closed the connection', () => closed);
    assert.equal(received, 0, 'no handshake reply: the store never read the hello');
    await waitFor('the listener reported it', () => refusals().some((m) => m.includes('connection from') && /certificate/i.test(m)));
  });

  it('refuses credentials that do not load, and setTls on a plain transport', () => {
    const bad = (tls: TransportTls): void => void new TcpTransport({ localStore: 1, clusterId: 7, tls });
    assert.throws(() => bad({ ...PEER, key: 'not a key' }), (err: unknown) => isTransportError(err, 'FLOTILLA_TRANSPORT_INVALID_ARGUMENT') && /does not load/.test(err.message));
    assert.throws(() => bad({ ...PEER, key: STRANGER.key }), (err: unknown) => isTransportError(err, 'FLOTILLA_TRANSPORT_INVALID_ARGUMENT'), 'a key that is not the certificate\'s');
    assert.throws(() => bad({ ...PEER, ca: '' }), (err: unknown) => isTransportError(err, 'FLOTILLA_TRANSPORT_INVALID_ARGUMENT'));
    const plain = new TcpTransport({ localStore: 1, clusterId: 7 });
    assert.throws(() => plain.setTls(PEER), (err: unknown) => isTransportError(err, 'FLOTILLA_TRANSPORT_INVALID_ARGUMENT'));
    assert.equal(plain.tlsCertificateExpiry(), null);
  });
});
