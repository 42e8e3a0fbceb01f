/**
 * A small line diff (longest common subsequence) for readable test failures: `-` expected,
 * `+` actual, with a few lines of context around each change.
 */

/** Lines beyond which the diff gives up on LCS (quadratic) and prints both sides whole. */
export const DIFF_LINES_MAX = 4000;
const CONTEXT_LINES = 3;

type Op = { readonly kind: ' ' | '-' | '+'; readonly text: string };

function lcsTable(a: readonly string[], b: readonly string[]): number[][] {
  const table = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      table[i]![j] = a[i] === b[j] ? table[i + 1]![j + 1]! + 1 : Math.max(table[i + 1]![j]!, table[i]![j + 1]!);
    }
  }
  return table;
}

function diffOps(a: readonly string[], b: readonly string[]): Op[] {
  const table = lcsTable(a, b);
  const ops: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) {
      ops.push({ kind: ' ', text: a[i++]! });
      j++;
    } else if (table[i + 1]![j]! >= table[i]![j + 1]!) {
      ops.push({ kind: '-', text: a[i++]! });
    } else {
      ops.push({ kind: '+', text: b[j++]! });
    }
  }
  while (i < a.length) ops.push({ kind: '-', text: a[i++]! });
  while (j < b.length) ops.push({ kind: '+', text: b[j++]! });
  return ops;
}

/** Unified-style diff of expected vs actual lines, context trimmed to CONTEXT_LINES. */
export function lineDiff(expected: readonly string[], actual: readonly string[]): string {
  if (expected.length + actual.length > DIFF_LINES_MAX) {
    return ['--- expected', ...expected, '+++ actual', ...actual].join('\n');
  }
  const ops = diffOps(expected, actual);
  const near = ops.map((_, k) => ops.slice(Math.max(0, k - CONTEXT_LINES), k + CONTEXT_LINES + 1).some((op) => op.kind !== ' '));
  const lines = ['--- expected', '+++ actual'];
  let skipped = false;
  ops.forEach((op, k) => {
    if (!near[k]) {
      if (!skipped) lines.push('  ...');
      skipped = true;
      return;
    }
    skipped = false;
    lines.push(`${op.kind} ${op.text}`);
  });
  return lines.join('\n');
}
