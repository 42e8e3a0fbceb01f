/**
 * --raft-tls-* and --api-tls-* (process/tls-files.ts): all three of a family or none, files
 * read and checked at start with typed errors naming them, and re-read when they change.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { TransportTls } from '@flotilla/transport';
import { isStoreError } from '../src/index.ts';
import { parseStoreConfig } from '../src/process/config.ts';
import { createLogger } from '../src/process/logger.ts';
import { API_TLS, RAFT_TLS, type TlsFiles } from '../src/process/tls-files.ts';
import { tlsCredentials, tlsFiles } from '../../../test/support/tls.ts';

const base = ['--store-id', '1', '--data-dir', '/d'];

describe('TLS flags and files', () => {
  let dir: string;
  let files: TlsFiles;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'flotilla-raft-tls-'));
    const peer = tlsFiles('peer');
    files = { ca: path.join(dir, 'ca.pem'), cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') };
    await Promise.all([copyFile(peer.ca, files.ca), copyFile(peer.cert, files.cert), copyFile(peer.key, files.key)]);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('all three flags or none; from the environment too', () => {
    const none = parseStoreConfig(base, {});
    assert.ok(none !== 'help');
    assert.equal(none.raftTls, undefined);
    const all = parseStoreConfig([...base, '--raft-tls-ca', 'a.pem', '--raft-tls-cert', 'c.pem'], { FLOTILLA_RAFT_TLS_KEY: 'k.pem' });
    assert.ok(all !== 'help');
    assert.deepEqual(all.raftTls, { ca: 'a.pem', cert: 'c.pem', key: 'k.pem' });
    assert.throws(
      () => parseStoreConfig([...base, '--raft-tls-cert', 'c.pem'], {}),
      (err: unknown) => isStoreError(err, 'FLOTILLA_STORE_INVALID_CONFIG') && /missing --raft-tls-ca, --raft-tls-key/.test(err.message),
    );
  });

  test('the API family the same way, apart from the raft one; PD may be https://', () => {
    const api = parseStoreConfig(['--data-dir', '/d', '--api-tls-ca', 'a.pem', '--api-tls-cert', 'c.pem', '--api-tls-key', 'k.pem', '--pd', 'https://pd-0:2379,https://pd-1:2379'], {});
    assert.ok(api !== 'help');
    assert.deepEqual(api.apiTls, { ca: 'a.pem', cert: 'c.pem', key: 'k.pem' });
    assert.equal(api.raftTls, undefined);
    assert.deepEqual(api.pd, ['https://pd-0:2379', 'https://pd-1:2379']);
    assert.throws(
      () => parseStoreConfig([...base, '--api-tls-key', 'k.pem'], {}),
      (err: unknown) => isStoreError(err, 'FLOTILLA_STORE_INVALID_CONFIG') && /API TLS needs .*missing --api-tls-ca, --api-tls-cert/.test(err.message),
    );
  });

  test('loads the files; a missing or unloadable one is INVALID_CONFIG naming it', async () => {
    assert.deepEqual(await RAFT_TLS.load(files), tlsCredentials('peer'));
    await assert.rejects(RAFT_TLS.load({ ...files, key: path.join(dir, 'absent.pem') }), (err: unknown) => isStoreError(err, 'FLOTILLA_STORE_INVALID_CONFIG') && /--raft-tls-key .*absent\.pem/.test(err.message));
    await assert.rejects(API_TLS.load({ ...files, cert: path.join(dir, 'absent.pem') }), (err: unknown) => isStoreError(err, 'FLOTILLA_STORE_INVALID_CONFIG') && /--api-tls-cert .*absent\.pem/.test(err.message));
    await assert.rejects(RAFT_TLS.load({ ...files, key: tlsFiles('stranger').key }), (err: unknown) => isStoreError(err, 'FLOTILLA_STORE_INVALID_CONFIG') && /does not load/.test(err.message), "a key that is not the certificate's");
  });

  test('re-read when they change; files that do not load keep the credentials in use', async () => {
    const renewed: TransportTls[] = [];
    const lines: string[] = [];
    const logger = createLogger('info', {}, new Writable({ write: (chunk: Buffer, _encoding, done) => void (lines.push(chunk.toString()), done()) }));
    const watch = RAFT_TLS.watch(files, (creds) => renewed.push(creds), logger, 3_600_000);
    try {
      await watch.check();
      assert.equal(renewed.length, 0, 'unchanged files: nothing to renew');
      await writeFile(files.key, 'half written');
      await watch.check();
      assert.equal(renewed.length, 0, 'a key that does not load is not handed over');
      assert.ok(lines.some((l) => l.includes('do not load')), lines.join('\n'));
      const stranger = tlsCredentials('stranger');
      await Promise.all([writeFile(files.ca, stranger.ca), writeFile(files.cert, stranger.cert), writeFile(files.key, stranger.key)]);
      await watch.check();
      assert.deepEqual(renewed, [stranger]);
      assert.ok(lines.some((l) => l.includes('raft TLS credentials reloaded')));
    } finally {
      watch.stop();
    }
  });
});
