import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { test } from 'node:test';
import { describeFailures, rewriteRequested, runFile, testdataFiles } from './interaction/runner.ts';

/**
 * Data-driven interaction tests (etcd-raft's testdata style): every script in
 * interaction/testdata is one test. FLOTILLA_REWRITE=1 regenerates the expected output.
 */
const rewrite = rewriteRequested();

for (const path of testdataFiles()) {
  test(basename(path, '.txt'), () => {
    const result = runFile(path, rewrite);
    if (result.crash !== null || result.failures.length > 0) assert.fail(`\n${describeFailures(result)}`);
  });
}
