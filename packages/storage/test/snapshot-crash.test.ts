/**
 * A region snapshot apply killed half-way (SIGKILL from a failpoint inside the ingest, in a
 * child process) is detected on the next open and redone from the staged file: the range then
 * holds exactly the snapshot, the stale data is gone, the applied index is the snapshot's.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { MemoryKvEngine, RocksKvEngine, type KvCommand, type RegionMeta } from '../src/index.ts';
import { putRegion, tempDir } from './helpers.ts';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'snapshot-child.ts');
const enc = new TextEncoder();
const dec = new TextDecoder();
const region: RegionMeta = { id: 9, startKey: enc.encode('k'), endKey: enc.encode('l'), epoch: { version: 3, confVer: 2 }, peers: [{ id: 91, storeId: 1, role: 'voter' }] };

function runChild(args: string[], failpoints: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FLOTILLA_FAILPOINTS: failpoints } });
    let stdout = '';
    let stderr = '';
    const deadline = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code, signal) => {
      clearTimeout(deadline);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

describe('region snapshot apply: crash safety', () => {
  for (const killAt of [0, 2]) {
    it(`redoes a snapshot apply killed at ingest step ${killAt}`, { timeout: 60_000 }, async () => {
      const tmp = await tempDir('snap-crash');
      try {
        // The source: 4,000 keys of 1 KiB (several chunks), applied index 40.
        const source = new MemoryKvEngine();
        const keys = Array.from({ length: 4000 }, (_, i) => `k${String(i).padStart(5, '0')}`);
        await source.apply([{ regionId: 9, appliedIndex: 40, appliedTerm: 4, commands: [putRegion(region), ...keys.map((k): KvCommand => ({ op: 'put', key: enc.encode(k), value: new Uint8Array(1024).fill(k.charCodeAt(5)) }))] }]);
        const parts: Uint8Array[] = [];
        for await (const f of source.snapshot(9).frames()) parts.push(f);
        assert.ok(parts.length > 4, 'several data frames');
        const framesFile = path.join(tmp.dir, 'frames.bin');
        await writeFile(framesFile, Buffer.concat(parts));
        // The target: an older replica of the region, with data the snapshot must remove.
        const kvDir = path.join(tmp.dir, 'kv');
        let kv = await RocksKvEngine.open({ dir: kvDir });
        await kv.apply([{ regionId: 9, appliedIndex: 7, appliedTerm: 1, commands: [putRegion({ ...region, epoch: { version: 1, confVer: 1 } }), { op: 'put', key: enc.encode('k-stale'), value: enc.encode('old') }] },
          { regionId: 10, appliedIndex: 3, appliedTerm: 1, commands: [putRegion({ ...region, id: 10, startKey: enc.encode('m'), endKey: enc.encode('n') }), { op: 'put', key: enc.encode('m-other'), value: enc.encode('keep') }] }]);
        await kv.close();

        const run = await runChild([kvDir, framesFile, '9'], `kv.snapshot.ingest=${killAt}`);
        assert.equal(run.signal, 'SIGKILL', `the child died at the failpoint: ${run.stderr}`);
        assert.equal(run.stdout, '');

        kv = await RocksKvEngine.open({ dir: kvDir });
        try {
          assert.deepEqual(kv.recovery.snapshotsRedone, [9]);
          const state = kv.region(9)!;
          assert.equal(state.status, 'normal');
          assert.equal(state.appliedIndex, 40);
          assert.equal(state.appliedTerm, 4);
          assert.deepEqual(state.region.epoch, { version: 3, confVer: 2 });
          const scan = await kv.scan({ start: enc.encode('k'), end: enc.encode('l'), limit: 5000 });
          assert.deepEqual(scan.pairs.map((p) => dec.decode(p.key)), keys);
          assert.equal(await kv.get(enc.encode('k-stale')), null);
          assert.equal(dec.decode((await kv.get(enc.encode('m-other')))!), 'keep', 'data outside the range is untouched');
        } finally {
          await kv.close();
        }
        // Once redone, the marker is gone.
        kv = await RocksKvEngine.open({ dir: kvDir });
        assert.deepEqual(kv.recovery.snapshotsRedone, []);
        await kv.close();
      } finally {
        await tmp.remove();
      }
    });
  }
});
