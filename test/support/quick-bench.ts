/**
 * Running a benchmark script in its quick mode as a harness check (test/bench-*.test.ts), and
 * reading the markdown tables it prints. Checks that harnesses work, never speed.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { REPO, deadline } from './process.ts';
import { waitFor } from './wait.ts';

export interface Finished {
  /** The benchmark's pid, also its process group's id (everything it started is in the group). */
  readonly pid: number;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Starts `node --import tsx <script> --quick …` from the repository root, in a process group of
 * its own (detached): the processes it starts (stores, PD) are in that group too. The child is
 * added to `children`; killAll() in the test's after() ends the groups still running.
 */
export function runQuick(script: string, children: ChildProcess[], deadlineMs: number, args: readonly string[] = []): Promise<Finished> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO, script), '--quick', ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  children.push(child);
  const pid = child.pid!;
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Finished>((resolve) => child.once('close', (code, signal) => resolve({ pid, code, signal, stdout, stderr })));
  return deadline(done, deadlineMs, `${script} --quick`);
}

/** Kills the process groups of the children a test started, whatever is still running in them. */
export function killAll(children: readonly ChildProcess[]): void {
  for (const child of children) {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // ESRCH: the benchmark and everything it started are gone already.
    }
  }
}

/**
 * A bound on the benchmark's process group emptying after it exited: tsx's esbuild service (a
 * child of every `node --import tsx` that had to transform a file, as in a fresh clone) exits
 * only once it sees its parent gone. Stores or PD left running never leave the group.
 */
const GROUP_EXIT_DEADLINE_MS = 10_000;

/** Exit 0, and nothing the benchmark started still runs (its process group empties). */
export async function assertFinished(run: Finished, what: string): Promise<void> {
  assert.equal(run.code, 0, `${what} exits 0 (signal ${run.signal}); stderr:\n${run.stderr}\nstdout:\n${run.stdout}`);
  await waitFor(`${what} to have stopped every process it started (process group ${run.pid})`, () => !groupAlive(run.pid), GROUP_EXIT_DEADLINE_MS, 20);
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The cells after the label of every markdown table row whose first cell `matches`. */
function tableRows(output: string, matches: (firstCell: string) => boolean): string[][] {
  return output
    .split('\n')
    .filter((line) => line.startsWith('|') && matches(line.split('|')[1]?.trim() ?? ''))
    .map((line) => line.split('|').slice(2, -1).map((c) => c.trim()));
}

/** The cells after the label of every table row whose first cell is exactly `label`. */
export function rowsCells(output: string, label: string): string[][] {
  return tableRows(output, (first) => first === label);
}

/** The cells after the label of the first table row whose first cell is exactly `label`. */
export function rowCells(output: string, label: string): string[] {
  const row = rowsCells(output, label)[0];
  assert.ok(row, `a table row for ${label}`);
  return row;
}

/**
 * The figure in column `column` (0-based, after the row's label) of the first table row whose
 * first cell starts with `label` (labels may carry more after it, or be right-aligned).
 */
export function cell(output: string, label: string, column: number): number {
  const row = tableRows(output, (first) => first.startsWith(label))[0];
  assert.ok(row, `a table row for ${label}`);
  assert.ok(row[column] !== undefined, `column ${column} of row ${label}: ${row.join(' | ')}`);
  return figure(row[column]);
}

/** A cell as a number: thousands separators, '%' and bold marks dropped. */
export function figure(text: string | undefined): number {
  assert.ok(text !== undefined, 'a cell');
  return Number(text.replace(/[,%*]/g, ''));
}
