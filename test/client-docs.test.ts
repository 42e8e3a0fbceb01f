/**
 * docs/CLIENT.md's code samples run against a real cluster: every ```ts block is written to a
 * temporary module (importing the SDK from this repository, pointed at this cluster's PD) and
 * imported. A sample that throws fails the test.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { REPO } from './support/process.ts';
import { SdkCluster } from './support/sdk-cluster.ts';

const DOC = path.join(REPO, 'docs/CLIENT.md');
const SDK = pathToFileURL(path.join(REPO, 'packages/client/src/index.ts')).href;
const DOC_PD_URL = 'http://127.0.0.1:2379';

/** The ```ts blocks of a markdown text, with the line each starts at. */
function samplesOf(markdown: string): { line: number; code: string }[] {
  const samples: { line: number; code: string }[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== '```ts') continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && lines[end]!.trim() !== '```') end++;
    samples.push({ line: start + 1, code: lines.slice(start, end).join('\n') });
    i = end;
  }
  return samples;
}

describe('docs/CLIENT.md', () => {
  const sdk = new SdkCluster();
  let dir = '';
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'flotilla-client-docs-'));
    await sdk.start(3);
  });
  after(async () => {
    await sdk.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('every code sample runs', async () => {
    const samples = samplesOf(await readFile(DOC, 'utf8'));
    assert.ok(samples.length >= 4, `${samples.length} samples`);
    const pdUrl = sdk.urls()[0]!;
    for (const [n, sample] of samples.entries()) {
      assert.ok(sample.code.includes("from '@flotilla/client'"), `the sample at line ${sample.line} imports the SDK by its name`);
      const code = sample.code.replaceAll("from '@flotilla/client'", `from '${SDK}'`).replaceAll(DOC_PD_URL, pdUrl);
      const file = path.join(dir, `sample-${n}.mts`);
      await writeFile(file, `${code}\nexport {};\n`);
      try {
        await import(pathToFileURL(file).href);
      } catch (err) {
        assert.fail(`docs/CLIENT.md sample at line ${sample.line}: ${err instanceof Error ? err.stack : String(err)}`);
      }
    }
  });
});
