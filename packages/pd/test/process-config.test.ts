import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isPdError } from '../src/errors.ts';
import { parsePdConfig } from '../src/process/config.ts';

const base = ['--member-id', '2', '--data-dir', '/tmp/pd'];
const invalid = (argv: string[], pattern: RegExp, env: NodeJS.ProcessEnv = {}): void => {
  assert.throws(() => parsePdConfig(argv, env), (err) => isPdError(err, 'FLOTILLA_PD_INVALID_CONFIG') && pattern.test(err.message), argv.join(' '));
};

describe('PD process flags', () => {
  it('reads a static founding set, a join URL, defaults and environment variables', () => {
    const config = parsePdConfig([...base, '--initial-members', '1=10.0.0.1:2380@http://10.0.0.1:2379,2=10.0.0.2:2380@http://10.0.0.2:2379/'], {});
    assert.ok(config !== 'help');
    assert.equal(config.memberId, 2);
    assert.deepEqual([...config.initialMembers!.entries()], [
      [1, { raftAddress: { host: '10.0.0.1', port: 2380 }, clientUrl: 'http://10.0.0.1:2379' }],
      [2, { raftAddress: { host: '10.0.0.2', port: 2380 }, clientUrl: 'http://10.0.0.2:2379' }],
    ]);
    assert.equal(config.scheduleIntervalMs, 1_000);
    const joining = parsePdConfig([...base, '--join', 'http://pd-0:2379'], { FLOTILLA_SCHEDULE_INTERVAL_MS: '250', FLOTILLA_CLUSTER_ID: '9' });
    assert.ok(joining !== 'help');
    assert.equal(joining.join, 'http://pd-0:2379');
    assert.equal(joining.scheduleIntervalMs, 250);
    assert.equal(joining.clusterId, 9);
    assert.equal(parsePdConfig(['--help'], {}), 'help');
  });

  it('refuses what cannot work, naming the flag', () => {
    invalid(['--data-dir', '/tmp/x'], /--member-id/);
    invalid([...base, '--initial-members', '1=h:2380@http://h:2379', '--join', 'http://x:1'], /exclude each other/);
    invalid([...base, '--initial-members', '1=h:2380@http://h:2379'], /does not list this member/);
    invalid([...base, '--initial-members', '1=h:0@http://h:1,2=h:2381@http://h:2'], /real port/);
    invalid([...base, '--initial-members', '2=h:2380'], /id=host:port@http/);
    invalid([...base, '--initial-members', '2=h:1@http://a:1,2=h:2@http://b:1'], /listed twice/);
    invalid([...base, '--join', 'https://pd:2379'], /must be http/);
    invalid([...base, '--join', 'http://pd:2379/path'], /must be http/);
    invalid([...base, '--schedule-interval-ms', '5'], /10\.\.600000/);
    invalid([...base, '--log-level', 'loud'], /--log-level/);
    invalid([...base, '--bogus', '1'], /bogus/);
    invalid([...base, '--raft-tls-ca', 'ca.pem', '--raft-tls-key', 'k.pem'], /missing --raft-tls-cert/);
  });

  it('takes the raft TLS files, all three, as a store does', () => {
    const config = parsePdConfig([...base, '--raft-tls-ca', 'ca.pem', '--raft-tls-cert', 'c.pem', '--raft-tls-key', 'k.pem'], {});
    assert.ok(config !== 'help');
    assert.deepEqual(config.raftTls, { ca: 'ca.pem', cert: 'c.pem', key: 'k.pem' });
    assert.equal(config.apiTls, undefined);
  });

  it('takes the API TLS files, all three; every client URL is then https://', () => {
    const tls = ['--api-tls-ca', 'ca.pem', '--api-tls-cert', 'c.pem', '--api-tls-key', 'k.pem'];
    const config = parsePdConfig([...base, ...tls, '--initial-members', '2=h:2380@https://h:2379', '--advertise-client-url', 'https://pd-2:2379'], {});
    assert.ok(config !== 'help');
    assert.deepEqual(config.apiTls, { ca: 'ca.pem', cert: 'c.pem', key: 'k.pem' });
    assert.equal(config.initialMembers?.get(2)?.clientUrl, 'https://h:2379');
    assert.equal(config.advertiseClientUrl, 'https://pd-2:2379');
    invalid([...base, ...tls, '--join', 'http://pd:2379'], /--join: "http:\/\/pd:2379" must be https:\/\/host:port \(the API is HTTPS/);
    invalid([...base, ...tls, '--initial-members', '2=h:2380@http://h:2379'], /--initial-members: .* must be https:/);
    invalid([...base, '--api-tls-cert', 'c.pem'], /API TLS needs .*missing --api-tls-ca, --api-tls-key/);
  });

  it('lets a member founding PD alone listen on any port', () => {
    const config = parsePdConfig([...base, '--initial-members', '2=127.0.0.1:0@http://127.0.0.1:0'], {});
    assert.ok(config !== 'help');
    assert.equal(config.initialMembers?.get(2)?.raftAddress.port, 0);
  });
});
