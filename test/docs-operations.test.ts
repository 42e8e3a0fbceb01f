/**
 * docs/OPERATIONS.md's runnable commands run against a real cluster: the test starts `flotilla
 * dev`, then runs every command of the doc's ```sh run blocks in document order (bash, with
 * `flotilla` / `pnpm flotilla` meaning this checkout's CLI and the doc's PD URL replaced by the
 * cluster's). Each must exit 0, and print what its `# prints: …` comment says. The convention
 * is written at the top of the doc.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { DevCluster, cleanEnv } from '../packages/cli/test/cli-process.ts';
import { RUNNABLE_INFO, commandsOf, fencedBlocks, runDocCommand } from './support/docs.ts';
import { REPO } from './support/process.ts';

const DOC = readFileSync(path.join(REPO, 'docs/OPERATIONS.md'), 'utf8');
const DOC_PD_URL = 'http://127.0.0.1:2379';

describe('docs/OPERATIONS.md', () => {
  const cluster = new DevCluster();
  after(() => cluster.stop());

  it('states the convention, and its runnable blocks hold the commands a newcomer tries first', () => {
    assert.match(DOC, /^<!--[\s\S]*```sh run[\s\S]*-->/, 'the convention is written at the top');
    const commands = fencedBlocks(DOC).filter((b) => b.info === RUNNABLE_INFO).flatMap(commandsOf);
    for (const sub of ['put', 'get', 'scan', 'load', 'bench', 'ctl stores', 'ctl regions', 'ctl split']) {
      assert.ok(commands.some((c) => c.text.includes(`flotilla ${sub} `)), `a runnable "flotilla ${sub}"`);
    }
    // Unmarked blocks are the ones that cannot run here; no block has another info string.
    for (const block of fencedBlocks(DOC)) assert.ok(['sh', 'sh run', ''].includes(block.info), `line ${block.line}: fence "${block.info}"`);
  });

  it('every command of its runnable blocks works against a flotilla dev cluster', async () => {
    await cluster.start();
    const pd = cluster.pd;
    const env = cleanEnv({ FLOTILLA_PD: pd });

    const commands = fencedBlocks(DOC).filter((b) => b.info === RUNNABLE_INFO).flatMap(commandsOf);
    for (const command of commands) {
      const result = await runDocCommand(command.text.replaceAll(DOC_PD_URL, pd), env);
      const what = `docs/OPERATIONS.md line ${command.line}: ${command.text}\nexit ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`;
      assert.equal(result.code, 0, what);
      assert.doesNotMatch(result.stderr, /flotilla: (error|internal error)/, what);
      if (command.prints !== undefined) assert.ok(result.stdout.includes(command.prints), `stdout lacks "${command.prints}": ${what}`);
    }
  });
});
