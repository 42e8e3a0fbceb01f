import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runDirective } from './commands.ts';
import { isPinned, parseDataFile, renderDataFile, type Block } from './datadriven.ts';
import { lineDiff } from './diff.ts';
import { InteractionEnv } from './env.ts';

/**
 * Runs interaction scripts (testdata/*.txt). Usage as a CLI:
 *
 *     node --import tsx packages/raft/test/interaction/runner.ts [--rewrite] [file.txt ...]
 *
 * With --rewrite (or FLOTILLA_REWRITE=1) every block's expected output is replaced by what
 * the directives print now. Review the rewritten files: they are the specification.
 */

export const TESTDATA_DIR = join(fileURLToPath(new URL('.', import.meta.url)), 'testdata');
/** Mismatching blocks shown in one failure report. */
const FAILURES_SHOWN_MAX = 5;

export interface BlockFailure {
  readonly line: number;
  readonly directives: readonly string[];
  readonly diff: string;
  /** The block documents a known core bug: rewriting keeps its hand-written expected output. */
  readonly pinned: boolean;
}

export interface FileResult {
  readonly path: string;
  readonly failures: readonly BlockFailure[];
  /** A directive threw something other than a RaftError: a usage error or a core bug. */
  readonly crash: string | null;
  readonly rewritten: boolean;
}

export function rewriteRequested(argv: readonly string[] = process.argv): boolean {
  return process.env['FLOTILLA_REWRITE'] === '1' || argv.includes('--rewrite');
}

export function testdataFiles(): string[] {
  return readdirSync(TESTDATA_DIR)
    .filter((f) => f.endsWith('.txt'))
    .sort()
    .map((f) => join(TESTDATA_DIR, f));
}

function sameLines(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((line, i) => line === b[i]);
}

/** Runs one block's directives; returns the printed lines (`ok` when nothing was printed). */
function runBlock(env: InteractionEnv, block: Block): string[] {
  for (const directive of block.directives) runDirective(env, directive);
  const printed = env.out.take();
  return printed.length === 0 ? ['ok'] : printed;
}

function describeCrash(path: string, block: Block, err: unknown): string {
  const what = err instanceof Error ? (err.stack ?? err.message) : String(err);
  return `${basename(path)}:${block.line}: ${block.directives.join(' / ')}\n${what}`;
}

export function runFile(path: string, rewrite: boolean): FileResult {
  const file = parseDataFile(readFileSync(path, 'utf8'), path);
  const env = new InteractionEnv();
  const outputs = new Map<number, string[]>();
  const failures: BlockFailure[] = [];
  let crash: string | null = null;
  for (const [index, block] of file.blocks.entries()) {
    let actual: string[];
    try {
      actual = runBlock(env, block);
    } catch (err) {
      crash = describeCrash(path, block, err);
      break;
    }
    if (!isPinned(block)) outputs.set(index, actual);
    if (!sameLines(block.expected, actual)) {
      failures.push({ line: block.line, directives: block.directives, diff: lineDiff(block.expected, actual), pinned: isPinned(block) });
    }
  }
  const rewritten = rewrite && failures.some((f) => !f.pinned);
  if (rewritten) writeFileSync(path, renderDataFile(file, outputs));
  return { path, failures: rewrite ? failures.filter((f) => f.pinned) : failures, crash, rewritten };
}

/** A readable report: each mismatching block with its location and a diff. */
export function describeFailures(result: FileResult): string {
  const parts: string[] = [];
  if (result.crash !== null) parts.push(`crashed at ${result.crash}`);
  for (const f of result.failures.slice(0, FAILURES_SHOWN_MAX)) {
    const pinned = f.pinned ? ' [KNOWN CORE BUG: expected output is the correct behaviour]' : '';
    parts.push(`${basename(result.path)}:${f.line}: ${f.directives.join(' / ')}${pinned}\n${f.diff}`);
  }
  const hidden = result.failures.length - FAILURES_SHOWN_MAX;
  if (hidden > 0) parts.push(`... and ${hidden} more mismatching blocks`);
  if (result.failures.length > 0) parts.push('(FLOTILLA_REWRITE=1 regenerates expected output; review the diff before committing it)');
  return parts.join('\n\n');
}

function main(argv: readonly string[]): void {
  const rewrite = rewriteRequested(argv);
  const named = argv.filter((a) => a.endsWith('.txt'));
  const files = named.length > 0 ? named : testdataFiles();
  let failed = false;
  for (const path of files) {
    const result = runFile(path, rewrite);
    const ok = result.crash === null && result.failures.length === 0;
    failed ||= !ok;
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${basename(path)}${result.rewritten ? ' (rewritten)' : ''}`);
    if (!ok) console.log(describeFailures(result));
  }
  process.exitCode = failed ? 1 : 0;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) main(process.argv.slice(2));
