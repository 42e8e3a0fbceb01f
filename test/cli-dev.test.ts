/**
 * The `flotilla` command end to end, as a user runs it: `flotilla dev` starts a local cluster
 * (PD + 3 stores as child processes) and prints `pd: <url>` then `ready`; the data commands
 * (get, put, del, scan, cas) and the ctl commands (tables and --json, split, transfer-leader)
 * work against it; SIGINT stops every child process and deletes the temporary data.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { DevProcess, flotilla, killEverything, processesMentioning } from '../packages/cli/test/cli-process.ts';

const READY_DEADLINE_MS = 45_000;
const STOP_DEADLINE_MS = 20_000;

interface RegionJson {
  readonly id: number;
  readonly startKey: string;
  readonly peers: readonly { readonly storeId: number; readonly role: string }[];
  readonly leader: { readonly storeId: number } | null;
}

describe('flotilla dev, data and ctl commands', () => {
  let dataDir: string | undefined;
  let dev: DevProcess | undefined;
  after(() => killEverything(dataDir));

  it('starts a cluster, serves data and ctl commands, and stops every process on SIGINT', async () => {
    dev = DevProcess.start(['--pd-listen', '127.0.0.1:0']);
    dataDir = (await dev.line(/^data: (.+)$/, READY_DEADLINE_MS))[1]!;
    const pd = (await dev.line(/^pd: (http:\/\/\S+)$/, READY_DEADLINE_MS))[1]!;
    await dev.line(/^ready$/, READY_DEADLINE_MS);
    const storeLines = dev.lines.filter((l) => /^store \d+: http:/.test(l));
    assert.equal(storeLines.length, 3, dev.lines.join('\n'));
    const pdIndex = dev.lines.findIndex((l) => l.startsWith('pd: '));
    assert.ok(pdIndex < dev.lines.indexOf('ready'), '"pd:" comes before "ready"');
    const env = { FLOTILLA_PD: pd };

    // Independent commands run side by side: each is a Node process that takes a second to start.
    // Writes: --pd and FLOTILLA_PD both work; a value from stdin.
    const writes = await Promise.all([
      flotilla(['put', 'greeting', 'hello world', '--pd', pd]),
      ...['a', 'b', 'c'].map((k) => flotilla(['put', `user:${k}`, `v-${k}`], { env })),
      flotilla(['put', 'user:d', '-'], { env, stdin: 'v-d' }),
      flotilla(['cas', 'fresh', '1', '--expect-absent', '--json'], { env }),
    ]);
    for (const w of writes.slice(0, 5)) assert.deepEqual([w.code, w.stdout, w.stderr], [0, 'OK\n', '']);
    assert.deepEqual(JSON.parse(writes[5]!.stdout), { succeeded: true, previous: null });

    // Reads (get prints the value alone) and ctl tables / --json.
    const [get, scan, reverse, hex, stores, storesJson, schedulers, operators] = await Promise.all([
      flotilla(['get', 'greeting'], { env }),
      flotilla(['scan', '--prefix', 'user:'], { env }),
      flotilla(['scan', 'user:a', 'user:d', '--reverse', '--limit', '2', '--json'], { env }),
      flotilla(['get', Buffer.from('user:a').toString('hex'), '--encoding', 'hex'], { env }),
      flotilla(['ctl', 'stores'], { env }),
      flotilla(['ctl', 'stores', '--json'], { env }),
      flotilla(['ctl', 'schedulers'], { env }),
      flotilla(['ctl', 'operators', '--json'], { env }),
    ]);
    assert.deepEqual([get.code, get.stdout, get.stderr], [0, 'hello world\n', '']);
    assert.equal(scan.stdout, 'user:a\tv-a\nuser:b\tv-b\nuser:c\tv-c\nuser:d\tv-d\n');
    assert.deepEqual(reverse.stdout.trim().split('\n').map((l) => JSON.parse(l) as unknown), [{ key: 'user:c', value: 'v-c' }, { key: 'user:b', value: 'v-b' }]);
    assert.equal(hex.stdout, `${Buffer.from('v-a').toString('hex')}\n`);
    assert.equal(stores.code, 0, stores.stderr);
    const [header, ...rows] = stores.stdout.trim().split('\n');
    assert.match(header!, /^ID\s+STATE\s+API\s+RAFT\s+REGIONS\s+LEADERS/);
    assert.equal(rows.filter((r) => /^\d+\s+up\s/.test(r)).length, 3, stores.stdout);
    assert.equal((JSON.parse(storesJson.stdout) as { stores: { state: string }[] }).stores.filter((s) => s.state === 'up').length, 3);
    assert.match(schedulers.stdout, /^NAME\s+KIND\s+RUNNING/);
    assert.match(schedulers.stdout, /replicaChecker\s+checker\s+yes/);
    assert.ok(Array.isArray((JSON.parse(operators.stdout) as { operators: unknown }).operators));

    // Compare-and-swap, then one whose condition is false (exit 1), delete, an absent key (exit 1);
    // meanwhile a split.
    const swapped = await flotilla(['cas', 'greeting', 'bye', '--expect', 'hello world'], { env });
    assert.deepEqual([swapped.code, swapped.stdout], [0, 'OK\n']);
    const [refused, split] = await Promise.all([flotilla(['cas', 'greeting', 'again', '--expect', 'hello world'], { env }), flotilla(['ctl', 'split', 'user:c'], { env })]);
    assert.deepEqual([refused.code, refused.stdout], [1, 'FAILED: the current value is bye\n']);
    assert.equal(split.code, 0, split.stderr);
    assert.match(split.stdout, /^region \d+ split at user:c\n$/);
    assert.equal((await flotilla(['del', 'greeting'], { env })).code, 0);

    const [absent, regions, regionJson, keys] = await Promise.all([
      flotilla(['get', 'greeting'], { env }),
      flotilla(['ctl', 'regions'], { env }),
      flotilla(['ctl', 'region', 'user:d', '--json'], { env }),
      flotilla(['scan', '--keys-only', '--prefix', 'user:'], { env }),
    ]);
    assert.deepEqual([absent.code, absent.stdout, absent.stderr], [1, '', 'flotilla: key not found: greeting\n']);
    assert.match(regions.stdout, /^ID\s+START\s+END\s+LEADER\s+VOTERS/);
    assert.match(regions.stdout, /\(start\)\s+user:c\s/);
    assert.match(regions.stdout, /user:c\s+\(end\)\s/);
    const region = JSON.parse(regionJson.stdout) as RegionJson;
    assert.equal(region.startKey, Buffer.from('user:c').toString('hex'));
    assert.equal(region.peers.filter((p) => p.role === 'voter').length, 3);
    // Rows on both sides of the split still read back, in order.
    assert.equal(keys.stdout, 'user:a\nuser:b\nuser:c\nuser:d\n');

    // transfer-leader waits until PD sees the new leader; a PD refusal is one line, exit code 3.
    const target = region.peers.find((p) => p.storeId !== region.leader?.storeId)!.storeId;
    const [moved, bad] = await Promise.all([
      flotilla(['ctl', 'transfer-leader', String(region.id), String(target)], { env }),
      flotilla(['ctl', 'transfer-leader', String(region.id), '999999'], { env }),
    ]);
    assert.deepEqual([moved.code, moved.stdout], [0, `region ${region.id} is led from store ${target}\n`], moved.stderr);
    assert.equal(bad.code, 3);
    assert.match(bad.stderr, /^flotilla: error: PD: store 999999 holds no voter of region \d+ \(FLOTILLA_PD_INVALID_ARGUMENT\)\n$/);

    // Ctrl-C: every child stops, the temporary data is deleted, exit 0.
    const children = processesMentioning(dataDir);
    assert.equal(children.length, 4, `PD and 3 stores run with data in ${dataDir}`);
    dev.child.kill('SIGINT');
    const exit = await Promise.race([dev.exited, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('flotilla dev did not stop after SIGINT')), STOP_DEADLINE_MS).unref())]);
    assert.deepEqual(exit, { code: 0, signal: null }, dev.stderr.join('\n'));
    assert.deepEqual(processesMentioning(dataDir), [], 'no process of the cluster is left');
    for (const pid of children) assert.throws(() => process.kill(pid, 0), /ESRCH/);
    assert.equal(existsSync(dataDir), false, 'the temporary data directory is deleted');
  });
});
