/**
 * The `flotilla` command's answers to user mistakes, without a cluster: a bad flag, argument or
 * key encoding is one line on stderr and exit code 2; an unreachable PD is one line and exit
 * code 3 — never a stack trace (load and bench too). `flotilla pd|store|dev|load|bench --help` explain every option and its
 * environment variable; the installed bin runs the same code; `flotilla dev` on a port in use
 * fails with one line and leaves no process behind.
 */
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { after, describe, it } from 'node:test';
import { flotilla, killEverything, processesMentioning, type CommandResult } from '../packages/cli/test/cli-process.ts';

/** A URL where nothing listens. */
const NOWHERE = 'http://127.0.0.1:1';
/** Commands run at once (each is a Node process; the machine has 2 cores). */
const PARALLEL = 4;

interface Case {
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly bin?: boolean;
  readonly code: number;
  /** Matched against the whole stderr, which must be ONE line (unless `lines`). */
  readonly error?: RegExp;
  /** The pd and store processes add a second line: where the flags are listed. */
  readonly lines?: number;
  /** Matched against stdout. */
  readonly stdout?: RegExp;
}

const CASES: readonly Case[] = [
  { args: ['bogus'], code: 2, error: /^flotilla: error: unknown command "bogus" \(flotilla --help lists them\)$/ },
  { args: ['get'], code: 2, error: /^flotilla: error: get: missing arguments; usage: flotilla get KEY$/ },
  { args: ['get', 'k', '--bogus'], code: 2, error: /^flotilla: error: get: Unknown option '--bogus' \(flotilla get --help\)$/ },
  { args: ['get', 'k', 'extra'], code: 2, error: /unexpected argument "extra"/ },
  { args: ['get', 'k', '--timeout-ms', 'soon'], code: 2, error: /--timeout-ms must be an integer/ },
  { args: ['get', 'zz', '--encoding', 'hex'], code: 2, error: /^flotilla: error: key "zz" is not hex/ },
  { args: ['put', 'a*b', 'v', '--encoding', 'base64'], code: 2, error: /^flotilla: error: key "a\*b" is not base64$/ },
  { args: ['get', 'k', '--encoding', 'rot13'], code: 2, error: /--encoding must be one of utf8, hex, base64/ },
  { args: ['put', '', 'v'], code: 2, error: /the key is empty/ },
  { args: ['cas', 'k', 'v'], code: 2, error: /give exactly one of --expect OLD and --expect-absent/ },
  { args: ['scan', 'b', 'a'], code: 2, error: /END must be after START/ },
  { args: ['get', 'k', '--pd', 'ftp://pd:2379'], code: 2, error: /^flotilla: error: --pd: "ftp:\/\/pd:2379" must be http:\/\/host:port$/ },
  { args: ['get', 'k'], env: { FLOTILLA_PD: 'http://[bad' }, code: 2, error: /--pd: "http:\/\/\[bad" is not a URL/ },
  { args: ['ctl'], code: 2, stdout: /^usage: flotilla ctl COMMAND/ },
  { args: ['ctl', 'nope'], code: 2, error: /^flotilla: error: ctl: unknown command "nope"; one of stores, /m },
  { args: ['ctl', 'split'], code: 2, error: /ctl split: missing arguments/ },
  { args: ['ctl', 'transfer-leader', 'one', '2'], code: 2, error: /REGION must be a positive integer, got "one"/ },
  { args: ['dev', '--stores', '9'], code: 2, error: /dev: --stores must be an integer in 1\.\.7/ },
  { args: ['dev', '--pd-listen', 'localhost'], code: 2, error: /--pd-listen must be host:port/ },
  // load and bench: bad flags, before anything is sent.
  { args: ['load'], code: 2, error: /^flotilla: error: load: give exactly one of --count N and --file PATH \(flotilla load --help\)$/ },
  { args: ['load', '--count', '10', '--file', 'x.jsonl'], code: 2, error: /give exactly one of --count N and --file PATH/ },
  { args: ['load', '--count', 'many'], code: 2, error: /^flotilla: error: load: --count must be an integer in 1\.\.100000000, got "many"$/ },
  { args: ['load', '--count', '10', '--batch', '0'], code: 2, error: /load: --batch must be an integer in 1\.\.10000/ },
  { args: ['load', '--file', '/nonexistent/pairs.jsonl'], code: 2, error: /^flotilla: error: load: cannot read --file \/nonexistent\/pairs\.jsonl: ENOENT$/ },
  { args: ['bench', '--workload', 'scan'], code: 2, error: /^flotilla: error: bench: --workload must be one of write, read, mixed, got "scan"$/ },
  { args: ['bench', '--duration', 'forever'], code: 2, error: /^flotilla: error: bench: --duration must be a duration like 500ms, 10s or 2m/ },
  { args: ['bench', '--duration', '5s', '--ops', '10'], code: 2, error: /bench: give --duration or --ops, not both/ },
  { args: ['bench', '--concurrency', '0'], code: 2, error: /bench: --concurrency must be an integer in 1\.\.1024, got "0"/ },
  { args: ['bench', '--value-size', '-1'], code: 2, error: /^flotilla: error: bench: Option '--value-size' argument is ambiguous \(flotilla bench --help\)$/ },
  { args: ['bench', '--value-size=-1'], code: 2, error: /bench: --value-size must be an integer in 0\.\.8388608, got "-1"/ },
  // Unreachable PD: one line, exit code 3, within the command's deadline. The refused connection
  // or, on a machine too slow to see it within the deadline, what the call was waiting for.
  { args: ['get', 'k', '--pd', NOWHERE, '--timeout-ms', '1000'], code: 3, error: /^flotilla: error: get: .*\(PD: http:\/\/127\.0\.0\.1:1; set with --pd or FLOTILLA_PD\)$/ },
  { args: ['put', 'k', 'v', '--timeout-ms', '1000'], env: { FLOTILLA_PD: NOWHERE }, code: 3, error: /^flotilla: error: put: .*\(PD: http:\/\/127\.0\.0\.1:1; set with --pd or FLOTILLA_PD\)$/ },
  { args: ['ctl', 'stores', '--pd', NOWHERE, '--timeout-ms', '1000'], code: 3, error: /^flotilla: error: cannot reach the placement driver \(http:\/\/127\.0\.0\.1:1\) within 1000 ms: .*ECONNREFUSED.* \(check --pd or FLOTILLA_PD\)$/ },
  { args: ['load', '--count', '10', '--pd', NOWHERE, '--timeout-ms', '1000'], code: 3, error: /^flotilla: error: load: get: (?:.*ECONNREFUSED.*|deadline exceeded while waiting for the placement driver .*)\(PD: http:\/\/127\.0\.0\.1:1; set with --pd or FLOTILLA_PD\) \(0 keys were written before it\)$/ },
  { args: ['bench', '--ops', '10', '--timeout-ms', '1000'], env: { FLOTILLA_PD: NOWHERE }, code: 3, error: /^flotilla: error: get: (?:.*ECONNREFUSED.*|deadline exceeded while waiting for the placement driver .*)\(PD: http:\/\/127\.0\.0\.1:1; set with --pd or FLOTILLA_PD\)$/ },
  // Help: every option with its environment variable.
  { args: ['--help'], code: 0, stdout: /^usage: flotilla COMMAND[\s\S]*ctl stores/ },
  { args: ['dev', '--help'], code: 0, stdout: /--data-dir DIR[\s\S]*env FLOTILLA_DEV_DATA_DIR[\s\S]*--pd-listen/ },
  { args: ['get', '--help'], code: 0, stdout: /--pd URL\[,URL\][\s\S]*env FLOTILLA_PD/ },
  { args: ['load', '--help'], code: 0, stdout: /^usage: flotilla load [\s\S]*--count N[\s\S]*--file PATH[\s\S]*--concurrency N/ },
  { args: ['bench', '--help'], code: 0, stdout: /^usage: flotilla bench [\s\S]*--workload W[\s\S]*--duration D[\s\S]*--ops N[\s\S]*--json/ },
  { args: ['--help'], code: 0, stdout: /\n  load --count N[\s\S]*\n  bench / },
  { args: ['pd', '--help'], code: 0, stdout: /^flotilla pd: [\s\S]*--member-id[\s\S]*env FLOTILLA_MEMBER_ID[\s\S]*--schedule-interval-ms/ },
  { args: ['store', '--help'], code: 0, stdout: /^flotilla store: [\s\S]*--pd [\s\S]*env FLOTILLA_PD[\s\S]*--region-heartbeat-ms/ },
  // The production processes refuse a bad configuration with exit code 2.
  { args: ['pd', '--member-id', '1', '--bogus'], code: 2, lines: 2, error: /^Unknown option '--bogus'\n\(flotilla pd --help lists the flags\)$/ },
  { args: ['store', '--data-dir', '/nonexistent/x'], code: 2, lines: 2, error: /^--store-id \(or FLOTILLA_STORE_ID\) is required\n/ },
  // The installed bin runs the same code.
  { args: ['--version'], bin: true, code: 0, stdout: /^flotilla \d+\.\d+\.\d+\n$/ },
  { args: ['get', 'k', '--pd', NOWHERE, '--timeout-ms', '500'], bin: true, code: 3, error: /^flotilla: error: get: / },
];

describe('flotilla: usage mistakes and unreachable clusters', () => {
  let busy: Server | undefined;
  let devDataDir: string | undefined;
  after(() => {
    busy?.close();
    killEverything(devDataDir);
    if (devDataDir) rmSync(devDataDir, { recursive: true, force: true });
  });

  it('answers every mistake with one line and the documented exit code', async () => {
    const results = await inParallel(CASES, PARALLEL, (c) => flotilla(c.args, { ...(c.env ? { env: c.env } : {}), ...(c.bin ? { bin: true } : {}) }));
    CASES.forEach((c, i) => {
      const r = results[i]!;
      const what = `flotilla ${c.args.join(' ')}${c.bin ? ' (bin)' : ''}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
      assert.equal(r.code, c.code, what);
      assert.doesNotMatch(r.stderr, /^\s+at /m, `no stack trace: ${what}`);
      if (c.error) {
        assert.equal(r.stderr.trimEnd().split('\n').length, c.lines ?? 1, `one line: ${what}`);
        assert.match(r.stderr.trimEnd(), c.error, what);
      }
      if (c.stdout) assert.match(r.stdout, c.stdout, what);
    });
  });

  it('flotilla dev on a port in use fails with one line, exit code 3, and no process left', async () => {
    busy = createServer();
    await new Promise<void>((resolve) => busy!.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as AddressInfo).port;
    const r = await flotilla(['dev', '--pd-listen', `127.0.0.1:${port}`]);
    devDataDir = /^data: (.+)$/m.exec(r.stdout)?.[1];
    assert.ok(devDataDir, r.stdout);
    assert.equal(r.code, 3, r.stderr);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('flotilla: error: '));
    assert.equal(errors.length, 1, r.stderr);
    assert.match(errors[0]!, /EADDRINUSE.*choose another --pd-listen/);
    assert.doesNotMatch(r.stderr, /^\s+at /m);
    assert.deepEqual(processesMentioning(devDataDir), []);
    // A failed run keeps its folder: the logs say why.
    assert.ok(existsSync(`${devDataDir}/logs/pd.log`));
  });
});

async function inParallel<T>(items: readonly T[], width: number, run: (item: T) => Promise<CommandResult>): Promise<CommandResult[]> {
  const results: CommandResult[] = new Array<CommandResult>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await run(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: width }, worker));
  return results;
}
