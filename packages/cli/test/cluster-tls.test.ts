/**
 * The CLI against a cluster whose APIs run HTTPS with client certificates (--api-tls-*):
 * `--tls-ca/--tls-cert/--tls-key` (all or none, read and checked before anything is sent,
 * https:// PD URLs required), and PdApi, the backup copier and the data client against a
 * stand-in HTTPS server (node:https on port 0, the test cluster's peer certificate, asking for
 * client certificates and answering 401 without one the CA signed, as the real APIs do): the
 * right credentials get answers; a refused certificate and an untrusted server fail at once
 * with a message naming the flags, long before the deadline. Last, the `flotilla` command itself
 * (ctl, get): the flags and variables reach every call.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { after, describe, it } from 'node:test';
import { tlsCredentials, tlsFiles } from '../../../test/support/tls.ts';
import { CLUSTER_OPTIONS, clusterTarget, parseCommandArgs } from '../src/args.ts';
import { flotilla } from './cli-process.ts';
import { RegionCopier } from '../src/backup/region-copy.ts';
import { openDataClient } from '../src/data-client.ts';
import { EXIT, isCliError } from '../src/errors.ts';
import { PdApi, type PdRegionJson } from '../src/pd-api.ts';

const usage = (pattern: RegExp) => (err: unknown): boolean => isCliError(err) && err.exitCode === EXIT.usage && pattern.test(err.message);

const target = (argv: readonly string[], env: NodeJS.ProcessEnv = {}) => clusterTarget(parseCommandArgs('ctl stores', argv, CLUSTER_OPTIONS, env, 0));

const peer = tlsFiles('peer');
const tlsArgs = (files: { ca: string; cert: string; key: string }): string[] => ['--tls-ca', files.ca, '--tls-cert', files.cert, '--tls-key', files.key];

describe('--tls-ca, --tls-cert, --tls-key', () => {
  const dirs: string[] = [];
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('none: plain HTTP as before; all three: the PEM text of the files, with https:// PD URLs', () => {
    assert.equal(target(['--pd', 'http://a:2379']).tls, undefined);
    const given = target(['--pd', 'https://127.0.0.1:2379,https://localhost:2380', ...tlsArgs(peer)]);
    assert.deepEqual(given.pdUrls, ['https://127.0.0.1:2379', 'https://localhost:2380']);
    assert.deepEqual(given.tls, tlsCredentials('peer'));
    // The same from the environment.
    const env = { FLOTILLA_PD: 'https://127.0.0.1:2379', FLOTILLA_TLS_CA: peer.ca, FLOTILLA_TLS_CERT: peer.cert, FLOTILLA_TLS_KEY: peer.key };
    assert.deepEqual(target([], env).tls, tlsCredentials('peer'));
  });

  it('all three or none: a usage error names the missing ones', () => {
    assert.throws(() => target(['--pd', 'https://a:1', '--tls-ca', peer.ca]), usage(/missing --tls-cert \(FLOTILLA_TLS_CERT\), --tls-key \(FLOTILLA_TLS_KEY\)$/));
    assert.throws(() => target(['--pd', 'https://a:1', '--tls-ca', peer.ca, '--tls-cert', peer.cert]), usage(/missing --tls-key/));
    assert.throws(() => target(['--pd', 'https://a:1'], { FLOTILLA_TLS_KEY: peer.key }), usage(/missing --tls-ca \(FLOTILLA_TLS_CA\), --tls-cert/));
  });

  it('with them every PD URL must be https:// (a bare host:port is http://)', () => {
    assert.throws(() => target(['--pd', 'https://a:1,http://b:2', ...tlsArgs(peer)]), usage(/--pd: "http:\/\/b:2" must be https:\/\/host:port with --tls-ca/));
    assert.throws(() => target(['--pd', 'a:1', ...tlsArgs(peer)]), usage(/must be https:\/\//));
    assert.throws(() => target(tlsArgs(peer)), usage(/"http:\/\/127\.0\.0\.1:2379" must be https/)); // the default --pd
  });

  it('a missing file, a CA file without a certificate, a file that is not PEM, a key of another certificate: usage errors naming them', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'flotilla-cli-tls-'));
    dirs.push(dir);
    const garbage = path.join(dir, 'garbage.pem');
    writeFileSync(garbage, 'not PEM at all\n');
    const missing = path.join(dir, 'missing.pem');
    const https = ['--pd', 'https://a:1'];
    assert.throws(() => target([...https, ...tlsArgs({ ...peer, ca: missing })]), usage(new RegExp(`^--tls-ca ${missing}: no such file$`)));
    assert.throws(() => target([...https, ...tlsArgs({ ...peer, key: missing })]), usage(/^--tls-key .*missing\.pem: no such file$/));
    assert.throws(() => target([...https, ...tlsArgs({ ...peer, ca: garbage })]), usage(/^--tls-ca .*garbage\.pem: no PEM certificate in it/));
    assert.throws(() => target([...https, ...tlsArgs({ ...peer, ca: peer.key })]), usage(/^--tls-ca .*peer-key\.pem: no PEM certificate/));
    assert.throws(() => target([...https, ...tlsArgs({ ...peer, cert: garbage })]), usage(/^--tls-cert .*garbage\.pem: does not load/));
    assert.throws(() => target([...https, ...tlsArgs({ ...peer, key: garbage })]), usage(/^--tls-key .*garbage\.pem: does not load/));
    assert.throws(() => target([...https, ...tlsArgs({ ...peer, key: tlsFiles('stranger').key })]), usage(/^--tls-cert .*peer\.pem with --tls-key .*stranger-key\.pem: does not load \(.*key values mismatch/));
    assert.throws(() => target([...https, ...tlsArgs({ ...peer, cert: dir })]), usage(/^--tls-cert /)); // a folder
  });
});

/** A stand-in for a PD or store API with --api-tls-*: a certificate of the cluster's CA (`who`), 401 without a client certificate the CA signed. */
async function httpsStandIn(answer: (path: string) => { status: number; body: unknown }, who: 'peer' | 'wrong-host' = 'peer'): Promise<{ url: string; address: string; server: Server; requests: () => number }> {
  const creds = tlsCredentials(who);
  let requests = 0;
  const server = createServer({ ca: creds.ca, cert: creds.cert, key: creds.key, requestCert: true, rejectUnauthorized: false }, (req, res) => {
    requests++;
    const authorized = (req.socket as TLSSocket).authorized;
    const { status, body } = authorized
      ? answer(req.url ?? '/')
      : { status: 401, body: { error: { code: 'FLOTILLA_PD_UNAUTHENTICATED', message: "this API needs a client certificate signed by the cluster's CA (--api-tls-ca): none was presented" } } };
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url: `https://${address}`, address, server, requests: () => requests };
}

/** A certificate of another CA, presented to a server we trust. */
const strangerCert = (): { ca: string; cert: string; key: string } => ({ ...tlsCredentials('stranger'), ca: tlsCredentials('peer').ca });

/** Far longer than any of these calls may take: a call retried until then fails with another message ("cannot reach …"). */
const DEADLINE_MS = 8_000;

/** Fails with the refusal's own message: a call retried until its deadline would say it could not reach the cluster instead. */
async function failsAtOnce(call: () => Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(call(), (err: unknown) => {
    assert.ok(isCliError(err), `a CliError, not ${String(err)}`);
    assert.equal(err.exitCode, EXIT.cluster);
    assert.match(err.message, message);
    return true;
  });
}

describe('over HTTPS with client certificates', () => {
  const servers: Server[] = [];
  const closers: (() => Promise<void>)[] = [];
  after(async () => {
    for (const close of closers) await close();
    for (const server of servers) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
  const open = <T extends { close(): Promise<void> }>(thing: T): T => {
    closers.push(() => thing.close());
    return thing;
  };

  it('PdApi: the cluster CA and a client certificate it signed get the answer', async () => {
    const pd = await httpsStandIn(() => ({ status: 200, body: { stores: [1, 2, 3] } }));
    servers.push(pd.server);
    const api = open(new PdApi([pd.url], DEADLINE_MS, tlsCredentials('peer')));
    assert.deepEqual(await api.get('/pd/api/v1/stores'), { stores: [1, 2, 3] });
  });

  it('PdApi: a certificate the cluster refuses (401) fails at once, naming --tls-cert', async () => {
    const pd = await httpsStandIn(() => ({ status: 200, body: {} }));
    servers.push(pd.server);
    const api = open(new PdApi([pd.url], DEADLINE_MS, strangerCert()));
    await failsAtOnce(() => api.get('/pd/api/v1/stores'), /^PD member https:\/\/127\.0\.0\.1:\d+ refused this client's TLS certificate: .*none was presented \(FLOTILLA_PD_UNAUTHENTICATED\); check --tls-cert and --tls-key .* and --tls-ca$/);
    assert.equal(pd.requests(), 1);
  });

  it('PdApi: a server whose certificate does not verify (another CA trusted) fails at once, naming --tls-ca', async () => {
    const pd = await httpsStandIn(() => ({ status: 200, body: {} }));
    servers.push(pd.server);
    const api = open(new PdApi([pd.url], DEADLINE_MS, tlsCredentials('stranger')));
    await failsAtOnce(() => api.get('/pd/api/v1/stores'), /^PD member https:\/\/127\.0\.0\.1:\d+: its TLS certificate is not trusted: .* \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)\); check --tls-ca/);
    assert.equal(pd.requests(), 0);
  });

  it('PdApi: a server certificate for another host fails at once', async () => {
    const pd = await httpsStandIn(() => ({ status: 200, body: {} }), 'wrong-host'); // the cluster's CA signed it, for another host
    servers.push(pd.server);
    const api = open(new PdApi([pd.url], DEADLINE_MS, tlsCredentials('peer')));
    await failsAtOnce(() => api.get('/pd/api/v1/stores'), /its TLS certificate is not trusted: .*\(ERR_TLS_CERT_ALTNAME_INVALID\)/);
  });

  it('backup: the copier dials the store at https:// with the client certificate; a refused one stops it at once', async () => {
    const store = await httpsStandIn((p) => ({ status: 500, body: { error: { code: 'FLOTILLA_TEST_REACHED', message: `reached ${p} over TLS` } } }));
    servers.push(store.server);
    const region: PdRegionJson = { id: 7, startKey: '', endKey: '', epoch: { version: 1, confVer: 1 }, peers: [{ id: 1, storeId: 1, role: 'voter' }], leader: { peerId: 1, storeId: 1 } };
    // PD as the copier asks it: where store 1 listens, where region 7 is.
    const pd = { get: async (p: string) => (p.endsWith('/stores') ? { stores: [{ id: 1, apiAddress: store.address }] } : { regions: [region] }) } as unknown as PdApi;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'flotilla-cli-tls-'));
    closers.push(async () => rmSync(dir, { recursive: true, force: true }));

    const copier = open(new RegionCopier(pd, dir, DEADLINE_MS, tlsCredentials('peer')));
    await failsAtOnce(() => copier.copy(region), /store 1: reached \/v1\/admin\/regions\/7\/backup over TLS \(FLOTILLA_TEST_REACHED\)/);

    const refused = open(new RegionCopier(pd, dir, DEADLINE_MS, strangerCert()));
    await failsAtOnce(() => refused.copy(region), /^backup of region 7: store 1 \(127\.0\.0\.1:\d+\) refused this client's TLS certificate: .*check --tls-cert/);

    const untrusting = open(new RegionCopier(pd, dir, DEADLINE_MS, tlsCredentials('stranger')));
    await failsAtOnce(() => untrusting.copy(region), /^backup of region 7: store 1 \(127\.0\.0\.1:\d+\): its TLS certificate is not trusted: .*check --tls-ca/);
  });

  it('the data client presents the certificate: a refused one is FLOTILLA_UNAUTHENTICATED at once, naming the flags', async () => {
    const pd = await httpsStandIn(() => ({ status: 503, body: { error: { code: 'FLOTILLA_PD_NO_LEADER', message: 'not here' } } }));
    servers.push(pd.server);
    const client = open(openDataClient([pd.url], DEADLINE_MS, strangerCert()));
    await failsAtOnce(() => client.get(new Uint8Array([0x6b])), /refused this client's TLS certificate.*\(FLOTILLA_UNAUTHENTICATED\) \(check --tls-ca, --tls-cert and --tls-key/);
  });
});

describe('the flotilla command with --tls-*', () => {
  const servers: Server[] = [];
  const dirs: string[] = [];
  after(async () => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    for (const server of servers) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('ctl (backup too), get, load and bench read the credentials from the flags or FLOTILLA_TLS_*; a refused certificate is one line, exit 3; a mistake exit 2', async () => {
    const members = { leader: 1, term: 2, voters: [1], learners: [], members: [{ id: 1, raftAddress: '127.0.0.1:2380', clientUrl: 'https://127.0.0.1:2379' }] };
    const region: PdRegionJson = { id: 7, startKey: '', endKey: '', epoch: { version: 1, confVer: 1 }, peers: [{ id: 1, storeId: 1, role: 'voter' }], leader: { peerId: 1, storeId: 1 } };
    // PD and store 1 in one: PD's answers, and the store's backup endpoint saying it was reached.
    let storeAddress = '';
    const pd = await httpsStandIn((p) => {
      if (p === '/pd/api/v1/members') return { status: 200, body: members };
      if (p === '/pd/api/v1/stores') return { status: 200, body: { stores: [{ id: 1, apiAddress: storeAddress }] } };
      if (p.startsWith('/pd/api/v1/regions?')) return { status: 200, body: { regions: [region], more: false } };
      if (p === '/v1/admin/regions/7/backup') return { status: 500, body: { error: { code: 'FLOTILLA_TEST_REACHED', message: 'reached over TLS' } } };
      return { status: 404, body: { error: { code: 'FLOTILLA_PD_NOT_FOUND', message: p } } };
    });
    storeAddress = pd.address;
    servers.push(pd.server);
    const out = mkdtempSync(path.join(os.tmpdir(), 'flotilla-cli-tls-'));
    dirs.push(out);
    const stranger = tlsFiles('stranger');
    const refusedArgs = ['--pd', pd.url, '--timeout-ms', String(DEADLINE_MS), ...tlsArgs({ ca: peer.ca, cert: stranger.cert, key: stranger.key })];
    const [byFlags, byEnv, refused, get, load, bench, backup, mistake] = await Promise.all([
      flotilla(['ctl', 'members', '--json', '--pd', pd.url, ...tlsArgs(peer)]),
      flotilla(['ctl', 'members'], { env: { FLOTILLA_PD: pd.url, FLOTILLA_TLS_CA: peer.ca, FLOTILLA_TLS_CERT: peer.cert, FLOTILLA_TLS_KEY: peer.key } }),
      flotilla(['ctl', 'members', ...refusedArgs]),
      flotilla(['get', 'k', ...refusedArgs]),
      flotilla(['load', '--count', '1', ...refusedArgs]),
      flotilla(['bench', '--ops', '1', '--no-prepare', ...refusedArgs]),
      flotilla(['ctl', 'backup', '--all', '--out', out, '--pd', pd.url, ...tlsArgs(peer)]),
      flotilla(['ctl', 'members', '--pd', pd.url, '--tls-ca', peer.ca]),
    ]);
    assert.equal(byFlags.code, EXIT.ok, byFlags.stderr);
    assert.deepEqual(JSON.parse(byFlags.stdout), members);
    assert.equal(byEnv.code, EXIT.ok, byEnv.stderr);
    assert.match(byEnv.stdout, /^1 +voter +leader +https:\/\/127\.0\.0\.1:2379/m);
    assert.equal(refused.code, EXIT.cluster);
    assert.match(refused.stderr, /^flotilla: error: PD member https:\/\/127\.0\.0\.1:\d+ refused this client's TLS certificate: .*check --tls-cert and --tls-key .*\n$/);
    assert.equal(get.code, EXIT.cluster);
    assert.match(get.stderr, /^flotilla: error: .*refused this client's TLS certificate.*\(FLOTILLA_UNAUTHENTICATED\) \(check --tls-ca, --tls-cert and --tls-key.*\n$/);
    for (const result of [load, bench]) {
      assert.equal(result.code, EXIT.cluster, result.stderr);
      assert.match(result.stderr, /^flotilla: error: .*refused this client's TLS certificate.*\(FLOTILLA_UNAUTHENTICATED\) \(check --tls-ca, --tls-cert and --tls-key.*\n$/);
    }
    assert.equal(backup.code, EXIT.cluster, backup.stderr);
    assert.match(backup.stderr, /^flotilla: error: ctl backup: backup of region 7: store 1: reached over TLS \(FLOTILLA_TEST_REACHED\)/m); // after the progress line
    assert.equal(mistake.code, EXIT.usage);
    assert.equal(mistake.stderr, 'flotilla: error: --tls-ca, --tls-cert and --tls-key go together: missing --tls-cert (FLOTILLA_TLS_CERT), --tls-key (FLOTILLA_TLS_KEY)\n');
  });
});
