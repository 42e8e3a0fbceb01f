/**
 * docs/ARCHITECTURE.md names things that must exist: every `pnpm SCRIPT` is a script of the
 * root package.json, every repository path and file name in backticks is in the repository,
 * every `@flotilla/NAME` is a workspace package, and its diagram is there. Its runnable blocks
 * (```sh run) run in the repository, without a cluster, and must exit 0.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { cleanEnv } from '../packages/cli/test/cli-process.ts';
import { RUNNABLE_INFO, commandsOf, fencedBlocks, inlineCode, looksLikePath, pnpmScriptsNamed, repositoryPathExists, runDocCommand } from './support/docs.ts';
import { REPO } from './support/process.ts';

const DOC = readFileSync(path.join(REPO, 'docs/ARCHITECTURE.md'), 'utf8');
const spans = inlineCode(DOC);

describe('docs/ARCHITECTURE.md', () => {
  it('names only pnpm scripts that exist', () => {
    const scripts = Object.keys((JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts);
    const named = pnpmScriptsNamed(spans);
    assert.ok(named.length >= 2, `found ${named.join(', ')}`);
    assert.deepEqual(named.filter((s) => !scripts.includes(s)), [], 'scripts named in the doc but missing from package.json');
  });

  it('names only repository paths and files that exist', () => {
    const paths = [...new Set(spans.filter(looksLikePath))];
    assert.ok(paths.length >= 20, `found ${paths.length}: ${paths.join(', ')}`);
    assert.deepEqual(paths.filter((p) => !repositoryPathExists(p)), [], 'paths named in the doc that the repository does not have');
    // The check has teeth: a made-up name is not found.
    assert.equal(repositoryPathExists('packages/raft/src/no-such-file.ts'), false);
    assert.equal(repositoryPathExists('no-such-file.test.ts'), false);
  });

  it('names only workspace packages', () => {
    const packages = readdirSync(path.join(REPO, 'packages')).map((dir) => {
      try {
        return (JSON.parse(readFileSync(path.join(REPO, 'packages', dir, 'package.json'), 'utf8')) as { name: string }).name;
      } catch {
        return undefined;
      }
    });
    const named = [...new Set(spans.filter((s) => /^@flotilla\/[\w-]+$/.test(s)))];
    assert.ok(named.length >= 5, named.join(', '));
    assert.deepEqual(named.filter((n) => !packages.includes(n)), []);
  });

  it('opens with the diagram of the system', () => {
    const diagram = fencedBlocks(DOC).find((b) => b.info === 'text' && b.lines.some((l) => l.includes('MultiRaftHost')));
    assert.ok(diagram, 'a ```text block drawing the system');
    const text = diagram.lines.join('\n');
    for (const part of ['PD', 'HTTP', 'MultiRaftHost', 'transport', 'piscina', 'RocksDB', 'heartbeat']) assert.match(text, new RegExp(part), part);
  });

  it('every runnable block runs', async () => {
    const blocks = fencedBlocks(DOC).filter((b) => b.info === RUNNABLE_INFO);
    for (const command of blocks.flatMap(commandsOf)) {
      const result = await runDocCommand(command.text, cleanEnv());
      const what = `docs/ARCHITECTURE.md line ${command.line}: ${command.text}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`;
      assert.equal(result.code, 0, what);
      if (command.prints !== undefined) assert.ok(result.stdout.includes(command.prints), what);
    }
  });
});
