/**
 * `flotilla load` and `flotilla bench` end to end, spawned as a user runs them against a
 * `flotilla dev` cluster: generated keys and JSON lines (a file, stdin, base64) load and read
 * back with `get` and `scan`; a bad line stops a load after the pairs before it; `bench` prints
 * its result line, and its `--json` parses with consistent fields for every workload.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { DevCluster, flotilla, type CommandResult } from '../packages/cli/test/cli-process.ts';

interface LoadJson {
  readonly keys: number;
  readonly bytes: number;
  readonly seconds: number;
  readonly keysPerSecond: number;
}

interface BenchJson {
  readonly workload: string;
  readonly concurrency: number;
  readonly seconds: number;
  readonly ops: number;
  readonly opsPerSecond: number;
  readonly reads: number;
  readonly writes: number;
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly p999: number; readonly max: number; readonly mean: number };
  readonly errorCount: number;
  readonly errors: Readonly<Record<string, number>>;
}

/** The command's stdout parsed as one JSON object, after checking it succeeded. */
function json<T>(r: CommandResult, what: string): T {
  assert.equal(r.code, 0, `${what}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  assert.equal(r.stdout.trim().split('\n').length, 1, `${what}: one JSON line\n${r.stdout}`);
  return JSON.parse(r.stdout) as T;
}

function assertSaneBench(b: BenchJson, workload: string): void {
  assert.equal(b.workload, workload);
  assert.equal(b.errorCount, 0, JSON.stringify(b.errors));
  assert.deepEqual(b.errors, {});
  assert.equal(b.reads + b.writes, b.ops);
  assert.ok(b.ops > 0 && b.opsPerSecond > 0 && b.seconds > 0, JSON.stringify(b));
  const l = b.latencyMs;
  assert.ok(0 < l.p50 && l.p50 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max, JSON.stringify(l));
  assert.ok(l.mean > 0 && l.mean <= l.max, JSON.stringify(l));
}

describe('flotilla load and bench against a dev cluster', () => {
  const cluster = new DevCluster();
  const files = mkdtempSync(path.join(os.tmpdir(), 'flotilla-load-'));
  after(async () => {
    await cluster.stop();
    rmSync(files, { recursive: true, force: true });
  });

  it('loads generated keys and JSON lines that read back, and benchmarks every workload', async () => {
    await cluster.start();
    const env = { FLOTILLA_PD: cluster.pd };

    // Generated keys: load:0000 … load:2999, 64-byte values repeating the key.
    const generated = await flotilla(['load', '--count', '3000', '--value-size', '64', '--batch', '250', '--json'], { env });
    const loaded = json<LoadJson>(generated, 'load --count');
    assert.equal(loaded.keys, 3000);
    assert.equal(loaded.bytes, 3000 * ('load:0000'.length + 64));
    assert.ok(loaded.seconds > 0 && loaded.keysPerSecond > 0, generated.stdout);
    assert.match(generated.stderr, /^loading$/m, 'the progress line (off a terminal: its label once)');

    // JSON lines from a file (base64) and from stdin (utf8); the summary line in words.
    const b64 = (text: string): string => Buffer.from(text).toString('base64');
    const jsonLines = path.join(files, 'pairs.jsonl');
    writeFileSync(jsonLines, `${JSON.stringify({ key: b64('file:a'), value: b64('alpha') })}\n\n${JSON.stringify({ key: b64('file:b'), value: b64('beta') })}\n`);
    const [fromFile, fromStdin, keys, value] = await Promise.all([
      flotilla(['load', '--file', jsonLines, '--encoding', 'base64'], { env }),
      flotilla(['load', '--file', '-'], { env, stdin: ['one', 'two', 'three'].map((v, i) => JSON.stringify({ key: `stdin:${i}`, value: v })).join('\n') }),
      flotilla(['scan', '--prefix', 'load:', '--keys-only', '--limit', '100000'], { env }),
      flotilla(['get', 'load:0042'], { env }),
    ]);
    assert.equal(fromFile.code, 0, fromFile.stderr);
    assert.match(fromFile.stdout, /^loaded 2 keys \(\d+ B\) in [\d.]+ s: \d+ keys\/s\n$/);
    assert.equal(fromStdin.code, 0, fromStdin.stderr);
    assert.match(fromStdin.stdout, /^loaded 3 keys /);
    const scanned = keys.stdout.trim().split('\n');
    assert.equal(scanned.length, 3000);
    assert.deepEqual([scanned[0], scanned[1234], scanned[2999]], ['load:0000', 'load:1234', 'load:2999']);
    assert.equal(value.stdout, `${'load:0042|'.repeat(6)}load\n`, '64 bytes repeating the key');
    const [fileRows, stdinRows] = await Promise.all([flotilla(['scan', '--prefix', 'file:'], { env }), flotilla(['scan', '--prefix', 'stdin:'], { env })]);
    assert.equal(fileRows.stdout, 'file:a\talpha\nfile:b\tbeta\n');
    assert.equal(stdinRows.stdout, 'stdin:0\tone\nstdin:1\ttwo\nstdin:2\tthree\n');

    // A bad line stops the load: exit 2, one line naming it; the pairs before it are written.
    const bad = await flotilla(['load', '--file', '-', '--batch', '1', '--concurrency', '1'], { env, stdin: `${JSON.stringify({ key: 'bad:1', value: 'x' })}\n{"key": 7}\n${JSON.stringify({ key: 'bad:3', value: 'z' })}\n` });
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /^flotilla: error: load: line 2: expected \{"key": "…", "value": "…"\} with string key and value \(1 key was written before it\)$/m);
    assert.doesNotMatch(bad.stderr, /^\s+at /m);
    const afterBad = await flotilla(['scan', '--prefix', 'bad:', '--keys-only'], { env });
    assert.equal(afterBad.stdout, 'bad:1\n');

    // bench: the result line in words; --json with sane fields for each workload.
    const words = await flotilla(['bench', '--workload', 'write', '--ops', '300', '--concurrency', '4'], { env });
    assert.equal(words.code, 0, words.stderr);
    assert.match(words.stdout, /^bench write: 300 ops in [\d.]+ s = \d+ ops\/s; latency ms p50 [\d.]+ p99 [\d.]+ p99\.9 [\d.]+ max [\d.]+; errors 0\n\(4 workers, 10000 keys, values of 100 B, 0 reads, 300 writes\)\n$/);
    const write = json<BenchJson>(await flotilla(['bench', '--workload', 'write', '--ops', '200', '--value-size', '10', '--json'], { env }), 'bench write');
    assertSaneBench(write, 'write');
    assert.deepEqual([write.ops, write.writes, write.concurrency], [200, 200, 16]);

    const read = json<BenchJson>(await flotilla(['bench', '--workload', 'read', '--duration', '1s', '--key-count', '200', '--prefix', 'r:', '--concurrency', '2', '--json'], { env }), 'bench read');
    assertSaneBench(read, 'read');
    assert.equal(read.writes, 0);
    assert.ok(read.seconds >= 1, `ran for its duration: ${read.seconds} s`);
    // Before reading, bench wrote the keys it reads.
    const prepared = await flotilla(['scan', '--prefix', 'r:', '--keys-only', '--limit', '1000'], { env });
    assert.equal(prepared.stdout.trim().split('\n').length, 200);

    // Mixed over the keys `load` wrote (same key names), without preparing.
    const mixed = json<BenchJson>(await flotilla(['bench', '--workload', 'mixed', '--ops', '200', '--no-prepare', '--prefix', 'load:', '--key-count', '3000', '--json'], { env }), 'bench mixed');
    assertSaneBench(mixed, 'mixed');
    assert.equal(mixed.ops, 200);
    assert.ok(mixed.reads > 0 && mixed.writes > 0, JSON.stringify(mixed));
    const unprepared = await flotilla(['get', 'load:3000'], { env });
    assert.equal(unprepared.code, 1, 'keys past --key-count were never written');
  });
});
