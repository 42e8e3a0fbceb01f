/**
 * `flotilla ctl backup` and `flotilla ctl restore` end to end: the spawned CLI against a real
 * `flotilla dev` cluster (write, back up every region, delete, refuse a damaged copy without
 * writing anything, restore, read every key back). Then, in process: the CLI's frame reader
 * against the storage package's writer (the format is written down twice), a NotLeader answer
 * followed to the leader's store, and the coverage check of a backup's ranges.
 */
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { DevCluster, flotilla } from '../packages/cli/test/cli-process.ts';
import { SnapshotReader, splitFrames, type Pair } from '../packages/cli/src/backup/frames.ts';
import { readManifest } from '../packages/cli/src/backup/manifest.ts';
import { RegionCopier } from '../packages/cli/src/backup/region-copy.ts';
import { uncovered } from '../packages/cli/src/commands/backup.ts';
import { PdApi, type PdRegionJson } from '../packages/cli/src/pd-api.ts';
import { createClient, type FlotillaClient } from '../packages/client/src/index.ts';
import { MemoryKvEngine, type RegionMeta } from '../packages/storage/src/index.ts';

const KEYS = 3_000;
const key = (i: number): string => `bk:${String(i).padStart(5, '0')}`;
const value = (i: number): string => `value ${i} `.repeat(1 + (i % 7));
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array | null): string | null => (b === null ? null : new TextDecoder().decode(b));

/** Every key of the test range, read through the SDK (absent ones as null). */
async function readAll(client: FlotillaClient): Promise<(string | null)[]> {
  const values = await client.getMany(Array.from({ length: KEYS }, (_, i) => enc(key(i))));
  return values.map(dec);
}

function noStackTrace(stderr: string): void {
  assert.doesNotMatch(stderr, /^\s+at /m, `a stack trace: ${stderr}`);
  assert.doesNotMatch(stderr, /internal error/, stderr);
}

describe('flotilla ctl backup / restore against a flotilla dev cluster', () => {
  const cluster = new DevCluster();
  let client: FlotillaClient | undefined;
  let work: string | undefined;
  after(async () => {
    await client?.close();
    await cluster.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('backs up every region, refuses a damaged copy without writing, restores every key', async () => {
    await cluster.start();
    work = await mkdtemp(path.join(os.tmpdir(), 'flotilla-backup-test-'));
    const env = { FLOTILLA_PD: cluster.pd };
    client = createClient({ pd: [cluster.pd] });
    const expected = Array.from({ length: KEYS }, (_, i) => value(i));
    await client.putMany(expected.map((v, i) => ({ key: enc(key(i)), value: enc(v) })));
    // Several regions, so the backup has several files and the restore crosses regions.
    for (const at of [1_000, 2_000]) {
      const split = await flotilla(['ctl', 'split', key(at)], { env });
      assert.equal(split.code, 0, split.stderr);
    }

    const dir = path.join(work, 'full');
    const backup = await flotilla(['ctl', 'backup', '--all', '--out', dir, '--json'], { env });
    assert.equal(backup.code, 0, backup.stderr);
    noStackTrace(backup.stderr);
    const summary = JSON.parse(backup.stdout) as { regions: number; pairs: number };
    assert.ok(summary.regions >= 3, backup.stdout);
    assert.ok(summary.pairs >= KEYS, backup.stdout);
    const manifest = await readManifest(dir);
    assert.equal(manifest.scope, 'all');
    assert.deepEqual(uncovered(manifest.regions), [], 'the copies cover every key');
    const files = (await readdir(dir)).filter((f) => f.endsWith('.snap')).sort();
    assert.deepEqual(files, manifest.regions.map((r) => r.file).sort());
    for (const r of manifest.regions) assert.match(r.file, new RegExp(`^region-${r.id}-${r.appliedIndex}\\.snap$`));

    // The data goes away (a range delete through the SDK).
    await client.deleteRange(enc('bk:'), enc('bk;'));
    assert.ok((await readAll(client)).every((v) => v === null), 'every key deleted');

    // One flipped byte in the middle of one file: refused, naming the file; nothing written.
    const damaged = path.join(work, 'damaged');
    await cp(dir, damaged, { recursive: true });
    const victim = manifest.regions.reduce((a, b) => (b.fileBytes > a.fileBytes ? b : a));
    const content = await readFile(path.join(damaged, victim.file));
    const at = Math.floor(content.byteLength / 2);
    content[at] = content[at]! ^ 0x01;
    await writeFile(path.join(damaged, victim.file), content);
    const refused = await flotilla(['ctl', 'restore', '--in', damaged], { env });
    assert.equal(refused.code, 2, refused.stderr);
    noStackTrace(refused.stderr);
    assert.match(refused.stderr, new RegExp(`is damaged: ${victim.file.replace('.', '\\.')}: frame \\d+: checksum mismatch; nothing was written`));
    assert.equal(refused.stderr.trim().split('\n').filter((l) => l.startsWith('flotilla:')).length, 1, 'one error line');
    assert.ok((await readAll(client)).every((v) => v === null), 'the refused restore wrote nothing');
    const checked = await flotilla(['ctl', 'restore', '--in', damaged, '--check'], { env });
    assert.equal(checked.code, 2, checked.stderr);

    const intact = await flotilla(['ctl', 'restore', '--in', dir, '--check'], { env });
    assert.equal(intact.code, 0, intact.stderr);
    assert.match(intact.stdout, /is intact/);

    const restore = await flotilla(['ctl', 'restore', '--in', dir], { env });
    assert.equal(restore.code, 0, restore.stderr);
    noStackTrace(restore.stderr);
    assert.match(restore.stdout, new RegExp(`^restored ${manifest.regions.length} regions, ${summary.pairs} pairs`));
    assert.deepEqual(await readAll(client), expected);
  });

  it('explains its mistakes in one line', async () => {
    const env = { FLOTILLA_PD: cluster.pd };
    const help = await flotilla(['ctl', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /backup \(--all \| --region ID\[,ID…\]\) --out DIR/);
    assert.match(help.stdout, /restore --in DIR \[--check\]/);
    const cases: [string[], RegExp][] = [
      [['ctl', 'backup', '--out', path.join(work!, 'x')], /give exactly one of --all and --region/],
      [['ctl', 'backup', '--all'], /--out DIR is required/],
      [['ctl', 'backup', '--region', '1,x', '--out', path.join(work!, 'x')], /"x" is not one/],
      [['ctl', 'backup', '--region', '1', '--region', '0', '--out', path.join(work!, 'x')], /"0" is not one/],
      [['ctl', 'backup', '--region', '1', '--all', '--out', path.join(work!, 'x')], /give exactly one of --all and --region/],
      [['ctl', 'backup', '--all', '--out', path.join(work!, 'full')], /holds a backup already/],
      [['ctl', 'restore', '--in', path.join(work!, 'nowhere')], /manifest\.json does not exist/],
    ];
    for (const [args, message] of cases) {
      const result = await flotilla(args, { env });
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message);
      noStackTrace(result.stderr);
    }
    const unknown = await flotilla(['ctl', 'backup', '--region', '987654', '--out', path.join(work!, 'y')], { env });
    assert.equal(unknown.code, 3, unknown.stderr);
    assert.match(unknown.stderr, /no region 987654/);
    noStackTrace(unknown.stderr);
  });
});

// ------------------------------------------------------------ in process

const CONF = { voters: [1], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };

/** A region in a storage MemoryKvEngine with `pairs`, and its snapshot frames as the engine writes them. */
async function storageFrames(region: RegionMeta, pairs: readonly Pair[]): Promise<Uint8Array[]> {
  const kv = new MemoryKvEngine();
  await kv.apply([{ regionId: region.id, appliedIndex: 5, appliedTerm: 5, commands: [{ op: 'putRegion', region, confState: CONF }] }]);
  await kv.apply([{ regionId: region.id, appliedIndex: 6, appliedTerm: 5, commands: pairs.map((p) => ({ op: 'put' as const, key: p.key, value: p.value })) }]);
  const frames: Uint8Array[] = [];
  for await (const frame of kv.snapshot(region.id).frames()) frames.push(frame);
  return frames;
}

async function* chunked(bytes: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.byteLength; at += size) yield bytes.subarray(at, at + size);
}

const REGION_7: RegionMeta = { id: 7, startKey: enc('a'), endKey: enc('z'), epoch: { version: 3, confVer: 2 }, peers: [{ id: 1, storeId: 1, role: 'voter' }] };

describe('the CLI reads what the storage package writes', () => {
  it('header, every pair in order across several data frames, and the trailer', async () => {
    // More pairs than one data frame holds (16 Ki), binary keys, an empty value.
    const pairs: Pair[] = Array.from({ length: 40_000 }, (_, i) => ({ key: enc(`b${String(i).padStart(6, '0')}\u00ff`), value: i === 3 ? new Uint8Array(0) : enc(value(i)) }));
    const stream = Buffer.concat(await storageFrames(REGION_7, pairs));
    const reader = new SnapshotReader();
    const read: Pair[] = [];
    // Odd chunk sizes: frames cross chunk boundaries, and a length prefix is split too.
    for await (const frame of splitFrames(chunked(stream, 7_777))) {
      const decoded = reader.accept(frame);
      if (decoded.kind === 'data') read.push(...decoded.pairs);
    }
    const { header, totals } = reader.finish();
    assert.deepEqual({ ...header, startKey: dec(header.startKey), endKey: dec(header.endKey) }, { regionId: 7, startKey: 'a', endKey: 'z', epoch: { version: 3, confVer: 2 }, appliedIndex: 6, appliedTerm: 5 });
    assert.ok(totals.dataFrames >= 3, `${totals.dataFrames} data frames`);
    assert.equal(totals.pairs, pairs.length);
    assert.deepEqual(read.map((p) => [dec(p.key), dec(p.value)]), pairs.map((p) => [dec(p.key), dec(p.value)]));

    // A flipped bit anywhere is caught; a stream cut short is too.
    for (const at of [9, 40, Math.floor(stream.byteLength / 2), stream.byteLength - 2]) {
      const broken = Buffer.from(stream);
      broken[at] = broken[at]! ^ 0x10;
      await assert.rejects(consume(broken), /checksum mismatch|frame of \d+ bytes|length/, `byte ${at}`);
    }
    await assert.rejects(consume(stream.subarray(0, stream.byteLength - 36)), /before its trailer/);
  });
});

async function consume(bytes: Buffer): Promise<void> {
  const reader = new SnapshotReader();
  for await (const frame of splitFrames(chunked(bytes, 65_536))) reader.accept(frame);
  reader.finish();
}

/** A fake PD and two fake stores: store 1 says store 2 leads; store 2 serves the backup. */
describe('a backup follows NotLeader to the leader', () => {
  const servers: Server[] = [];
  let work: string | undefined;
  after(async () => {
    for (const s of servers) s.closeAllConnections();
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    if (work) await rm(work, { recursive: true, force: true });
  });

  async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
    const server = createServer(handler);
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  it('asks the store PD names, then the one the NotLeader answer names', async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'flotilla-backup-fake-'));
    const frames = await storageFrames(REGION_7, [{ key: enc('k'), value: enc('v') }]);
    const asked: string[] = [];
    const follower = await listen((req, res) => {
      asked.push(`follower ${req.url}`);
      res.writeHead(409, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'FLOTILLA_NOT_LEADER', message: 'region 7: this replica does not lead', details: { regionId: 7, leader: { peerId: 2, storeId: 2 } } } }));
    });
    const leader = await listen((req, res) => {
      asked.push(`leader ${req.url}`);
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      for (const f of frames) res.write(f);
      res.end();
    });
    const pd = await listen((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ stores: [1, 2].map((id) => ({ id, apiAddress: id === 1 ? follower : leader, state: 'up' })) }));
    });
    const api = new PdApi([`http://${pd}`], 5_000);
    const copier = new RegionCopier(api, work, 5_000);
    const listed: PdRegionJson = { id: 7, startKey: '61', endKey: '7a', epoch: { version: 3, confVer: 2 }, peers: [{ id: 1, storeId: 1, role: 'voter' }, { id: 2, storeId: 2, role: 'voter' }], leader: { peerId: 1, storeId: 1 } };
    try {
      const entry = await copier.copy(listed);
      assert.notEqual(entry, 'gone');
      assert.deepEqual(asked, ['follower /v1/admin/regions/7/backup', 'leader /v1/admin/regions/7/backup']);
      if (entry === 'gone') return;
      assert.equal(entry.storeId, 2);
      assert.equal(entry.pairs, 1);
      assert.equal(entry.file, 'region-7-6.snap');
      assert.deepEqual(await readFile(path.join(work, entry.file)), Buffer.concat(frames));
    } finally {
      await copier.close();
      await api.close();
    }
  });

  it('finds the ranges no copy covers', () => {
    const r = (startKey: string, endKey: string): { startKey: string; endKey: string } => ({ startKey, endKey });
    assert.deepEqual(uncovered([r('', '61'), r('61', '')]), []);
    assert.deepEqual(uncovered([r('61', '62'), r('63', '')]), [{ start: '', end: '61' }, { start: '62', end: '63' }]);
    assert.deepEqual(uncovered([r('', '6200'), r('61', '62'), r('6200', '70')]), [{ start: '70', end: '' }]);
    assert.deepEqual(uncovered([]), [{ start: '', end: '' }]);
  });
});
