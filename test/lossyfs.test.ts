/**
 * lossyfs (test/chaos/lossyfs): a FUSE filesystem that keeps written data in memory until fsync
 * and drops it on a simulated power loss. Skips with the reason where it cannot run (not Linux,
 * not root, no /dev/fuse, no way to build it).
 *
 * Proves: fsynced data survives a power loss; unsynced data does not (files back to their synced
 * content), while metadata operations stay; reads see unsynced writes before the loss; a renamed
 * file keeps its buffered data; the buffered-bytes bound writes back the oldest files; and a real
 * RocksDB KV engine, killed mid-write, recovers consistently after a power loss under it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, open, readFile, readdir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { RocksKvEngine } from '../packages/storage/src/index.ts';
import { slotKey, sumKey } from '../packages/storage/test/fixtures/crash-shared.ts';
import { LossyMount, ensureLossyFs } from './chaos/lossyfs/lossyfs.ts';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'chaos', 'lossyfs', 'rocks-child.ts');
/** Deadline of the RocksDB child reaching its last unsynced write (tsx + RocksDB start included). */
const CHILD_DEADLINE_MS = 45_000;

const built = await ensureLossyFs();
const skip = 'unavailable' in built ? built.unavailable : false;

describe('lossyfs', { skip }, () => {
  let tmp = '';
  let backing = '';
  let mnt = '';
  let m: LossyMount | null = null;
  const extra: LossyMount[] = [];

  before(async () => {
    assert.ok('binary' in built);
    tmp = await mkdtemp(path.join(os.tmpdir(), 'flotilla-lossyfs-'));
    backing = path.join(tmp, 'backing');
    mnt = path.join(tmp, 'mnt');
    await mkdir(backing);
    await mkdir(mnt);
    m = await LossyMount.mount(built.binary, backing, mnt);
  });

  after(async () => {
    for (const x of extra) await x.unmount().catch(() => {});
    if (m !== null) await m.unmount();
    if (tmp !== '') await rm(tmp, { recursive: true, force: true });
  });

  const lossy = (): LossyMount => {
    assert.ok(m !== null);
    return m;
  };

  it('keeps fsynced data over a power loss', async () => {
    const f = path.join(mnt, 'synced.txt');
    const fh = await open(f, 'w');
    await fh.write('durable bytes');
    await fh.sync();
    await fh.close();
    const fd = await open(f, 'r+');
    await fd.write('AB', 0);
    await fd.datasync();
    await fd.close();
    await lossy().powerLoss();
    assert.equal(await readFile(f, 'utf8'), 'ABrable bytes');
  });

  it('drops unsynced data on a power loss, keeping creates and renames', async () => {
    const a = path.join(mnt, 'a');
    const fh = await open(a, 'w');
    await fh.write('synced');
    await fh.sync();
    await fh.write(' and more', 6); // never synced
    await fh.close(); // close writes nothing
    // A new file, renamed, with unsynced content; an O_APPEND file; an O_TRUNC reopen.
    await writeFile(path.join(mnt, 'b'), 'lost');
    await rename(path.join(mnt, 'b'), path.join(mnt, 'c'));
    await mkdir(path.join(mnt, 'dir'));
    await writeFile(path.join(mnt, 'dir', 'appended'), 'x', { flag: 'a' });
    await writeFile(path.join(mnt, 'dir', 'appended'), 'y', { flag: 'a' });
    assert.equal(await readFile(path.join(mnt, 'dir', 'appended'), 'utf8'), 'xy');
    assert.equal((await stat(a)).size, 15);
    assert.equal(await readFile(path.join(backing, 'a'), 'utf8'), 'synced', 'the backing file has only the synced bytes');

    const dropped = await lossy().powerLoss();
    assert.deepEqual(dropped, { bytes: 9 + 4 + 2, files: 3 });
    assert.equal(await readFile(a, 'utf8'), 'synced');
    assert.equal((await stat(a)).size, 6);
    assert.deepEqual((await readdir(mnt)).sort(), ['a', 'c', 'dir', 'synced.txt']);
    assert.equal((await stat(path.join(mnt, 'c'))).size, 0);
    assert.equal((await stat(path.join(mnt, 'dir', 'appended'))).size, 0);
    // Nothing left to drop.
    assert.deepEqual(await lossy().powerLoss(), { bytes: 0, files: 0 });
  });

  it('reads see unsynced overwrites and writes past the end before the loss', async () => {
    const f = path.join(mnt, 'overlay');
    const fh = await open(f, 'w+');
    await fh.write('0123456789');
    await fh.sync();
    await fh.write('XY', 4);
    await fh.write('tail', 12); // a 2-byte hole at 10..11
    const want = Buffer.concat([Buffer.from('0123XY6789'), Buffer.alloc(2), Buffer.from('tail')]);
    const got = Buffer.alloc(32);
    const { bytesRead } = await fh.read(got, 0, 32, 0);
    assert.deepEqual(got.subarray(0, bytesRead), want);
    assert.equal((await fh.stat()).size, 16);
    // A partial read in the middle, across the overwrite and the hole.
    const mid = Buffer.alloc(6);
    await fh.read(mid, 0, 6, 8);
    assert.deepEqual(mid, Buffer.concat([Buffer.from('89'), Buffer.alloc(2), Buffer.from('ta')]));
    await fh.close();
    assert.deepEqual(await readFile(f), want, 'another open sees the buffered data');
    await lossy().powerLoss();
    assert.equal(await readFile(f, 'utf8'), '0123456789');
  });

  it('a renamed file keeps its buffered data; an unlinked one drops it', async () => {
    await writeFile(path.join(mnt, 'r1'), 'renamed then synced');
    await rename(path.join(mnt, 'r1'), path.join(mnt, 'r2'));
    // Over an existing file with buffered data of its own: that data goes with it.
    await writeFile(path.join(mnt, 'victim'), 'replaced');
    await rename(path.join(mnt, 'r2'), path.join(mnt, 'victim'));
    await writeFile(path.join(mnt, 'gone'), 'unlinked');
    await unlink(path.join(mnt, 'gone'));
    const fh = await open(path.join(mnt, 'victim'), 'r');
    await fh.sync(); // fsync through a read-only handle of the new name
    await fh.close();
    // A truncate is a durability point: the buffered bytes are written, then cut.
    await writeFile(path.join(mnt, 'cut'), 'abcdef');
    const t = await open(path.join(mnt, 'cut'), 'r+');
    await t.truncate(3);
    await t.close();
    assert.deepEqual(await lossy().powerLoss(), { bytes: 0, files: 0 });
    assert.equal(await readFile(path.join(mnt, 'victim'), 'utf8'), 'renamed then synced');
    assert.equal(await readFile(path.join(mnt, 'cut'), 'utf8'), 'abc');
    await assert.rejects(stat(path.join(mnt, 'gone')), { code: 'ENOENT' });
  });

  it('writes back the files dirtied longest ago past max_buffered', async () => {
    assert.ok('binary' in built);
    const b2 = path.join(tmp, 'backing2');
    const m2dir = path.join(tmp, 'mnt2');
    await mkdir(b2);
    await mkdir(m2dir);
    const m2 = await LossyMount.mount(built.binary, b2, m2dir, { maxBufferedBytes: 100_000 });
    extra.push(m2);
    const chunk = Buffer.alloc(40_000, 7);
    for (const name of ['f1', 'f2', 'f3']) await writeFile(path.join(m2dir, name), chunk);
    // 120 000 bytes > 100 000: f1 (dirtied first) was written back, f2 and f3 were not.
    assert.equal((await stat(path.join(b2, 'f1'))).size, 40_000);
    assert.equal((await stat(path.join(b2, 'f2'))).size, 0);
    assert.deepEqual(await m2.powerLoss(), { bytes: 80_000, files: 2 });
    assert.equal((await stat(path.join(m2dir, 'f1'))).size, 40_000);
    assert.equal((await stat(path.join(m2dir, 'f3'))).size, 0);
    await m2.unmount();
    await m2.unmount(); // idempotent
  });

  it('RocksDB killed mid-write recovers consistently after a power loss', { timeout: 60_000 }, async (t) => {
    const dir = path.join(mnt, 'rocks');
    const SYNCED = 200;
    const UNSYNCED = 300;
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir, String(SYNCED), String(UNSYNCED)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let out = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`child did not finish its writes in ${CHILD_DEADLINE_MS} ms; stdout: ${out}; stderr: ${stderr}`)), CHILD_DEADLINE_MS);
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (/^APPLIED \d+ \d+$/m.test(out)) {
            clearTimeout(timer);
            resolve();
          }
        });
        child.on('exit', (code, signal) => {
          clearTimeout(timer);
          reject(new Error(`child exited by itself (code ${code}, signal ${signal}); stdout: ${out}; stderr: ${stderr}`));
        });
      });
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    t.diagnostic(`child: ${out.trim().replace(/\n/g, '; ')} (phase, last index, ms)`);
    const dropped = await lossy().powerLoss();
    t.diagnostic(`power loss dropped ${dropped.bytes} bytes of ${dropped.files} files`);
    assert.ok(dropped.bytes > 0, 'the unsynced WAL tail was buffered');

    const kv = await RocksKvEngine.open({ dir });
    try {
      const applied = kv.region(1)?.appliedIndex ?? 0;
      t.diagnostic(`applied index after recovery: ${applied} (synced ${SYNCED}, written ${SYNCED + UNSYNCED})`);
      assert.ok(applied >= SYNCED, `applied ${applied} below the synced ${SYNCED}`);
      assert.ok(applied <= SYNCED + UNSYNCED, `applied ${applied} beyond what was written`);
      // Data and applied index agree: exactly entries 1..applied, once each.
      const dec = new TextDecoder();
      const sum = await kv.get(sumKey(1));
      assert.equal(sum === null ? 0 : Number(dec.decode(sum)), (applied * (applied + 1)) / 2, 'sum of applied indexes');
      for (let slot = 0; slot < 10; slot++) {
        const want = applied - ((applied - slot + 10) % 10);
        const got = await kv.get(slotKey(1, slot));
        assert.equal(got === null ? 0 : Number(dec.decode(got)), want >= 1 ? want : 0, `slot ${slot}`);
      }
      // The engine works on: a synced write after recovery survives another power loss.
      await kv.apply([{ regionId: 1, appliedIndex: applied + 1, appliedTerm: 1, commands: [{ op: 'put', key: sumKey(1), value: new TextEncoder().encode('after') }] }]);
      await kv.sync();
    } finally {
      await kv.close();
    }
    await lossy().powerLoss();
    const again = await RocksKvEngine.open({ dir });
    try {
      const v = await again.get(sumKey(1));
      assert.equal(v === null ? null : new TextDecoder().decode(v), 'after');
    } finally {
      await again.close();
    }
  });
});
