import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isStoreError } from '../src/index.ts';
import { envName, parseInitialCluster, parseStoreConfig, usage } from '../src/process/config.ts';
import { raiseEventLoopPriority } from '../src/process/event-loop-priority.ts';
import { setEventLoopSlice, sliceOf, type SliceSystem } from '../src/process/event-loop-slice.ts';
import { initialRegion } from '../src/process/store-process.ts';

const invalid = (fn: () => unknown, mentions: RegExp): void => {
  assert.throws(fn, (err: unknown) => isStoreError(err, 'FLOTILLA_STORE_INVALID_CONFIG') && mentions.test((err as Error).message));
};

describe('store process configuration', () => {
  test('with --pd: no store id (PD assigns it), PD URLs, labels and heartbeat intervals', () => {
    const config = parseStoreConfig(['--pd', 'http://pd-0:2379,http://pd-1:2379/', '--data-dir', '/d', '--labels', 'zone=z1, host=h7'], { FLOTILLA_STORE_HEARTBEAT_MS: '500' });
    assert.ok(config !== 'help');
    assert.equal(config.storeId, undefined);
    assert.deepEqual(config.pd, ['http://pd-0:2379', 'http://pd-1:2379']);
    assert.deepEqual(config.labels, { zone: 'z1', host: 'h7' });
    assert.equal(config.storeHeartbeatMs, 500);
    assert.equal(config.regionHeartbeatMs, 60_000);
    invalid(() => parseStoreConfig(['--pd', 'http://pd:1', '--store-id', '3', '--data-dir', '/d'], {}), /--store-id is not given with --pd/);
    invalid(() => parseStoreConfig(['--pd', 'http://pd:1', '--initial-cluster', '1=h:1', '--data-dir', '/d'], {}), /exclude each other/);
    invalid(() => parseStoreConfig(['--pd', 'ftp://pd:1', '--data-dir', '/d'], {}), /--pd/);
    invalid(() => parseStoreConfig(['--pd', 'http://pd:1', '--labels', 'zone', '--data-dir', '/d'], {}), /--labels/);
    invalid(() => parseStoreConfig(['--data-dir', '/d'], {}), /--store-id/);
  });

  test('--log-shards: absent, an existing log directory keeps its count (a new one gets the default); given, 1..max', () => {
    const absent = parseStoreConfig(['--store-id', '1', '--data-dir', '/d'], {});
    assert.ok(absent !== 'help');
    assert.equal(absent.logShards, undefined, 'no count of its own: a directory created with another default still opens');
    const given = parseStoreConfig(['--store-id', '1', '--data-dir', '/d'], { FLOTILLA_LOG_SHARDS: '4' });
    assert.ok(given !== 'help');
    assert.equal(given.logShards, 4);
    invalid(() => parseStoreConfig(['--store-id', '1', '--data-dir', '/d', '--log-shards', '0'], {}), /--log-shards/);
    invalid(() => parseStoreConfig(['--store-id', '1', '--data-dir', '/d', '--log-shards', '17'], {}), /--log-shards/);
  });

  test('flags win over environment variables, which win over defaults', () => {
    const config = parseStoreConfig(['--store-id', '3', '--api-listen', '0.0.0.0:8080'], { FLOTILLA_DATA_DIR: '/data', FLOTILLA_STORE_ID: '9', FLOTILLA_TICK_MS: '50' });
    assert.ok(config !== 'help');
    assert.equal(config.storeId, 3);
    assert.equal(config.dataDir, '/data');
    assert.equal(config.tickMs, 50);
    assert.equal(config.hibernateAfterTicks, 20);
    assert.equal(config.readLease, true);
    assert.deepEqual(config.apiListen, { host: '0.0.0.0', port: 8080 });
    assert.deepEqual(config.raftListen, { host: '127.0.0.1', port: 20160 });
    assert.equal(config.clusterId, 1);
    assert.equal(config.appender, 'worker');
    assert.equal(config.appenderNice, 0);
    assert.equal(config.eventLoopPriority, 0);
    assert.equal(config.initialCluster, undefined);
    assert.equal(config.raftAdvertiseHost, undefined);
    assert.equal(config.apiAdvertiseHost, undefined);
    const advertised = parseStoreConfig(['--store-id', '3', '--api-listen', '0.0.0.0:8080'], { FLOTILLA_DATA_DIR: '/data', FLOTILLA_API_ADVERTISE_HOST: 'store-0.peers' });
    assert.ok(advertised !== 'help');
    assert.equal(advertised.apiAdvertiseHost, 'store-0.peers');
    const noLease = parseStoreConfig(['--store-id', '3', '--read-lease', 'off'], { FLOTILLA_DATA_DIR: '/data' });
    assert.ok(noLease !== 'help');
    assert.equal(noLease.readLease, false);
  });

  test('--help, and every flag in the usage text with its environment variable', () => {
    assert.equal(parseStoreConfig(['--help'], {}), 'help');
    const text = usage();
    for (const flag of ['store-id', 'data-dir', 'raft-listen', 'api-listen', 'initial-cluster', 'shutdown-timeout-ms']) {
      assert.match(text, new RegExp(`--${flag}`));
      assert.match(text, new RegExp(envName(flag)));
    }
  });

  test('bad values get INVALID_CONFIG naming the flag', () => {
    invalid(() => parseStoreConfig(['--data-dir', '/d'], {}), /--store-id .* is required/);
    invalid(() => parseStoreConfig(['--store-id', '0', '--data-dir', '/d'], {}), /--store-id must be an integer in 1\.\./);
    invalid(() => parseStoreConfig(['--store-id', '1x', '--data-dir', '/d'], {}), /--store-id/);
    invalid(() => parseStoreConfig(['--store-id', '1', '--data-dir', '/d', '--raft-listen', 'nohost'], {}), /--raft-listen: "nohost" is not host:port/);
    invalid(() => parseStoreConfig(['--store-id', '1', '--data-dir', '/d', '--api-listen', 'h:70000'], {}), /--api-listen must be an integer in 0\.\.65535/);
    invalid(() => parseStoreConfig(['--store-id', '1', '--data-dir', '/d', '--log-level', 'loud'], {}), /--log-level must be one of/);
    invalid(() => parseStoreConfig(['--store-id', '1', '--data-dir', '/d', '--appender', 'fast'], {}), /--appender/);
    invalid(() => parseStoreConfig(['--store-id', '1', '--data-dir', '/d', '--appender-nice', '20'], {}), /--appender-nice must be an integer in 0\.\.19/);
    invalid(() => parseStoreConfig(['--store-id', '1', '--data-dir', '/d', '--event-loop-priority', '21'], {}), /--event-loop-priority must be an integer in 0\.\.20/);
    invalid(() => parseStoreConfig(['--store-id', '1', '--data-dir', '/d', '--event-loop-priority=-5'], {}), /--event-loop-priority must be an integer in 0\.\.20/);
    invalid(() => parseStoreConfig(['--store-id', '1', '--data-dir', '/d', '--tick-ms', '1'], {}), /--tick-ms/);
    invalid(() => parseStoreConfig(['--store-id', '1', '--data-dir', '/d', '--hibernate-after-ticks', '-1'], {}), /--hibernate-after-ticks/);
    invalid(() => parseStoreConfig(['--store-id', '1', '--data-dir', '/d', '--read-lease', 'yes'], {}), /--read-lease must be on or off/);
    invalid(() => parseStoreConfig(['--store-id', '1', '--data-dir', '/d', '--bogus', 'x'], {}), /bogus/);
  });

  test("--disk-reserve-bytes: 'auto' by default, a byte count, 0 (off), from the flag or FLOTILLA_DISK_RESERVE_BYTES", () => {
    const reserve = (argv: string[], env: NodeJS.ProcessEnv = {}): number | 'auto' => {
      const config = parseStoreConfig(['--store-id', '1', '--data-dir', '/d', ...argv], env);
      assert.ok(config !== 'help');
      return config.diskReserveBytes;
    };
    assert.equal(reserve([]), 'auto');
    assert.equal(reserve(['--disk-reserve-bytes', '0']), 0);
    assert.equal(reserve(['--disk-reserve-bytes', '1073741824']), 1024 ** 3);
    assert.equal(reserve([], { FLOTILLA_DISK_RESERVE_BYTES: '5000000' }), 5_000_000);
    invalid(() => reserve(['--disk-reserve-bytes', '1GB']), /--disk-reserve-bytes must be an integer/);
    invalid(() => reserve(['--disk-reserve-bytes=-1']), /--disk-reserve-bytes must be an integer/);
  });

  test('--event-loop-priority: from the flag or FLOTILLA_EVENT_LOOP_PRIORITY; raised as nice -N, or a typed error saying what is missing', () => {
    const fromEnv = parseStoreConfig(['--store-id', '1', '--data-dir', '/d'], { FLOTILLA_EVENT_LOOP_PRIORITY: '15' });
    assert.ok(fromEnv !== 'help');
    assert.equal(fromEnv.eventLoopPriority, 15);
    const calls: [number, number][] = [];
    const record = (pid: number, nice: number): void => void calls.push([pid, nice]);
    raiseEventLoopPriority(0, record);
    assert.deepEqual(calls, [], '0 leaves the thread alone');
    if (process.platform === 'linux') {
      raiseEventLoopPriority(15, record);
      assert.deepEqual(calls, [[0, -15]], 'the calling thread (pid 0) at nice -15');
      const denied = (): void => {
        throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
      };
      assert.throws(
        () => raiseEventLoopPriority(10, denied),
        (err: unknown) => isStoreError(err, 'FLOTILLA_STORE_INVALID_CONFIG') && /CAP_SYS_NICE/.test(err.message) && /RLIMIT_NICE of at least 30/.test(err.message),
      );
    }
  });

  test('--event-loop-slice-us and --serial-scavenges: parsed and bounded', () => {
    const parse = (argv: string[], env: NodeJS.ProcessEnv = {}) => {
      const config = parseStoreConfig(['--store-id', '1', '--data-dir', '/d', ...argv], env);
      assert.ok(config !== 'help');
      return config;
    };
    assert.equal(parse([]).eventLoopSliceUs, 0);
    assert.equal(parse([]).serialScavenges, false);
    assert.equal(parse(['--event-loop-slice-us', '100']).eventLoopSliceUs, 100);
    assert.equal(parse([], { FLOTILLA_EVENT_LOOP_SLICE_US: '250' }).eventLoopSliceUs, 250);
    assert.equal(parse(['--serial-scavenges', 'on']).serialScavenges, true);
    assert.equal(parse([], { FLOTILLA_SERIAL_SCAVENGES: 'on' }).serialScavenges, true);
    invalid(() => parse(['--event-loop-slice-us', '50']), /--event-loop-slice-us must be 0 or at least 100/);
    invalid(() => parse(['--event-loop-slice-us', '100001']), /--event-loop-slice-us must be an integer in 0\.\.100000/);
    invalid(() => parse(['--serial-scavenges', 'yes']), /--serial-scavenges must be on or off, got "yes"/);
    invalid(() => parse(['--read-lease', 'maybe']), /--read-lease must be on or off/);
  });

  test('setEventLoopSlice: one sched_setattr for the main thread keeping its nice, checked in /proc; a typed error for whatever is missing', () => {
    const scripts: string[] = [];
    const system = (over: Partial<SliceSystem> & { kept?: number } = {}): SliceSystem => ({
      platform: 'linux',
      arch: 'x64',
      runPerl: (script) => {
        scripts.push(script);
        return { status: 0, stdout: '0 ', stderr: '' };
      },
      readSched: () => `node (${process.pid}, #threads: 12)\nse.exec_start : 1.0\nse.slice : ${over.kept ?? 250000}\n`,
      nice: () => -15,
      ...over,
    });
    setEventLoopSlice(0, system());
    assert.deepEqual(scripts, [], '0 leaves the thread alone');
    setEventLoopSlice(250, system());
    assert.equal(scripts.length, 1);
    assert.match(scripts[0]!, new RegExp(`pack\\("LLQlLQQQ", 48, 0, 0, -15, 0, 250000, 0, 0\\); my \\$r = syscall\\(314, ${process.pid}, `), 'x64 sched_setattr for the main thread, its nice kept, the slice in ns');
    setEventLoopSlice(250, system({ arch: 'arm64' }));
    assert.match(scripts[1]!, /syscall\(274, /, 'arm64 has its own number');
    const typed = (sliceUs: number, sys: SliceSystem, message: RegExp): void => {
      assert.throws(() => setEventLoopSlice(sliceUs, sys), (err: unknown) => isStoreError(err, 'FLOTILLA_STORE_INVALID_CONFIG') && message.test(err.message));
    };
    typed(250, system({ platform: 'darwin' }), /needs Linux on x64 or arm64 \(this is darwin x64\)/);
    typed(250, system({ arch: 'ia32' }), /needs Linux on x64 or arm64/);
    typed(250, system({ runPerl: () => ({ status: null, stdout: '', stderr: '', error: new Error('spawnSync perl ENOENT') }) }), /could not run perl to set the slice \(spawnSync perl ENOENT\); install perl/);
    typed(250, system({ runPerl: () => ({ status: 0, stdout: '-1 Operation not permitted', stderr: '' }) }), /sched_setattr failed \(Operation not permitted\)/);
    typed(250, system({ kept: 2800000 }), /the kernel kept a slice of 2800 µs \(custom slices need Linux 6\.12 or later/);
    assert.equal(sliceOf('se.vruntime : 5\nse.slice                                     :              1400000\n'), 1400000);
    assert.equal(sliceOf('se.vruntime : 5\n'), undefined);
  });

  test('IPv6 listen addresses need brackets', () => {
    const config = parseStoreConfig(['--store-id', '1', '--data-dir', '/d', '--raft-listen', '[::1]:7000'], {});
    assert.ok(config !== 'help');
    assert.deepEqual(config.raftListen, { host: '::1', port: 7000 });
    invalid(() => parseStoreConfig(['--store-id', '1', '--data-dir', '/d', '--raft-listen', '::1:7000'], {}), /IPv6/);
  });

  test('a static cluster lists this store, distinct ids and real ports', () => {
    const cluster = parseInitialCluster('1=10.0.0.1:20160, 2=10.0.0.2:20160,3=[fd00::3]:20160', 2);
    assert.deepEqual([...cluster.keys()], [1, 2, 3]);
    assert.deepEqual(cluster.get(3), { host: 'fd00::3', port: 20160 });
    invalid(() => parseInitialCluster('1=a:1,2=b:2', 3), /does not list this store \(3\)/);
    invalid(() => parseInitialCluster('1=a:1,1=b:2', 1), /listed twice/);
    invalid(() => parseInitialCluster('1=a:0', 1), /real port/);
    invalid(() => parseInitialCluster('1', 1), /not id=host:port/);
    invalid(() => parseInitialCluster(Array.from({ length: 8 }, (_, i) => `${i + 1}=h:${i + 1}`).join(','), 1), /at most 7 stores/);
  });

  test('the initial region covers every key with one voter per store, peer id = store id', () => {
    const region = initialRegion(parseInitialCluster('3=c:3,1=a:1,2=b:2', 1));
    assert.equal(region.id, 1);
    assert.equal(region.startKey.byteLength + region.endKey.byteLength, 0);
    assert.deepEqual(region.peers, [1, 2, 3].map((id) => ({ id, storeId: id, role: 'voter' })));
  });
});
