/**
 * Mutual TLS on the raft port (--raft-tls-ca/--raft-tls-cert/--raft-tls-key), real processes:
 * a 3-store region commits over TLS; a store started with another CA's credentials gets nothing
 * (its peers refuse it, it refuses them) and catches up once restarted with the cluster's; PD's
 * members form their group over TLS; a credential file that does not load stops the start.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { encodeHandshake } from '../packages/transport/src/index.ts';
import type { KvOp } from '@flotilla/wire';
import { ProcessCluster, waitFor } from './support/cluster.ts';
import { PdProcesses } from './support/pd.ts';
import { REPO, launchProcess } from './support/process.ts';
import { tlsFiles } from './support/tls.ts';

const EPOCH = { version: 1, confVer: 1 };
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const REGION = { id: 1, startKey: new Uint8Array(0), endKey: new Uint8Array(0), epoch: EPOCH, peers: [1, 2, 3].map((id) => ({ id, storeId: id, role: 'voter' as const })) };
const flags = (who: 'peer' | 'stranger'): string[] => {
  const f = tlsFiles(who);
  return ['--raft-tls-ca', f.ca, '--raft-tls-cert', f.cert, '--raft-tls-key', f.key];
};
/** test/support/tls's peer certificate expires 2126-11-01T10:43:10Z. */
const CERT_NOT_AFTER = Date.parse('2126-11-01T10:43:10Z') / 1000;
const put = (key: string): KvOp => ({ op: 'put', regionId: 1, regionEpoch: EPOCH, key: bytes(key), value: bytes('v') });

describe('stores with mutual TLS on the raft port', () => {
  const cluster = new ProcessCluster({ tickMs: 50 });
  after(() => cluster.close());
  let requestId = 1;
  const status = (storeId: number) => cluster.expectAdmin<{ applied: number; commit: number }>(storeId, 'GET', '/v1/admin/regions/1');

  test('commit over TLS; a store with a stranger CA gets nothing until it has the cluster credentials', async () => {
    await cluster.startStore(1, flags('peer'));
    await cluster.startStore(2, flags('peer'));
    await cluster.startStore(3, flags('stranger'));
    await cluster.bootstrap(REGION);
    await waitFor('a leader on store 1 or 2', async () => {
      const leader = await cluster.leaderOf(1);
      return leader !== undefined && leader.id !== 3;
    });
    const leader = (await cluster.leaderOf(1))!;
    for (let i = 0; i < 5; i++) {
      const { response } = await cluster.kv(leader.id, { requestId: requestId++, timeoutMs: 5_000, ops: [put(`k${i}`)] });
      assert.deepEqual('results' in response ? response.results : response, [{ op: 'put' }], 'committed by stores 1 and 2 over TLS');
    }
    const { commit } = await status(leader.id);
    const refused = (id: number): boolean => cluster.running(id).logs.some((l) => l.includes('FLOTILLA_TRANSPORT_TLS_REFUSED'));
    await waitFor('both sides logged the refusals', () => refused(leader.id) && refused(3));
    assert.ok((await status(3)).applied < commit, 'store 3 took nothing');

    await cluster.terminate(3);
    await cluster.startStore(3, flags('peer'));
    await waitFor('store 3 caught up over TLS', async () => (await status(3)).applied >= commit);
    assert.equal(await cluster.metric(3, 'flotilla_store_raft_tls_certificate_expiry_timestamp_seconds'), CERT_NOT_AFTER, 'the expiry alert has its series');
  });

  test('a credential file that does not load stops the start with INVALID_CONFIG naming it', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'flotilla-bad-tls-'));
    try {
      const f = tlsFiles('peer');
      // The stranger's key does not go with the cluster's certificate.
      const args = ['--store-id', '9', '--data-dir', dir, '--raft-listen', '127.0.0.1:0', '--api-listen', '127.0.0.1:0', '--raft-tls-ca', f.ca, '--raft-tls-cert', f.cert, '--raft-tls-key', tlsFiles('stranger').key];
      await assert.rejects(launchProcess('store with bad TLS files', path.join(REPO, 'packages/store/src/main.ts'), args, 'store started'), (err: unknown) => /FLOTILLA_STORE_INVALID_CONFIG/.test(String(err)) && /does not load/.test(String(err)));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('PD members with mutual TLS on the raft port', () => {
  const pd = new PdProcesses(['--schedule-interval-ms', '100', ...flags('peer')]);
  after(() => pd.close());

  test('three members form their group over TLS and elect again after a kill -9', async () => {
    await pd.startGroup(3);
    // Plain TCP to a member's raft port: refused (a member without TLS could not join either).
    const raft = pd.running(2).started.raftAddress as { host: string; port: number };
    const plain = net.connect(raft);
    plain.on('error', () => {});
    plain.write(encodeHandshake({ purpose: 'raft', role: 'hello', status: 'ok', clusterId: 1, fromStore: 9, toStore: 2 }));
    await waitFor('member 2 refused the plain connection', () => pd.running(2).logs.some((l) => l.includes('FLOTILLA_TRANSPORT_TLS_REFUSED')));
    plain.destroy();
    const page = (await pd.call<string>(2, 'GET', '/metrics')).body;
    assert.match(page, new RegExp(`^flotilla_pd_raft_tls_certificate_expiry_timestamp_seconds ${CERT_NOT_AFTER}$`, 'm'));
    const leader = (await pd.leader())!;
    await pd.kill9(leader);
    await waitFor('a new leader among the other two', async () => {
      const now = await pd.leader();
      return now !== undefined && now !== leader;
    });
  });
});
