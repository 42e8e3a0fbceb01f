/**
 * The file format of cockroachdb/datadriven as etcd-raft uses it:
 *
 *     # comment
 *     command arg1 key=val key=(1,2,3)
 *     another-command          <- more directive lines: run in order, outputs joined
 *     ----
 *     expected output
 *     (ends at the first blank line)
 *
 * Output that contains blank lines is written between doubled separators:
 *
 *     command
 *     ----
 *     ----
 *     output with
 *
 *     a blank line
 *     ----
 *     ----
 *
 * Parsing keeps every comment and blank line verbatim so a rewrite changes only outputs.
 */

export const SEPARATOR = '----';
/**
 * A block whose leading comment contains this marker documents a known bug in the core: its
 * expected output is the correct behaviour, written by hand. Rewriting never replaces it (the
 * test keeps failing until the core is fixed).
 */
export const PINNED_MARKER = 'KNOWN CORE BUG';

export function isPinned(block: Block): boolean {
  return block.leading.some((line) => line.startsWith('#') && line.includes(PINNED_MARKER));
}

export interface Block {
  /** Comment and blank lines before the directives, verbatim. */
  readonly leading: readonly string[];
  /** 1-based line number of the first directive. */
  readonly line: number;
  readonly directives: readonly string[];
  readonly expected: readonly string[];
}

export interface DataFile {
  readonly blocks: readonly Block[];
  /** Comment and blank lines after the last block. */
  readonly trailing: readonly string[];
}

export class FormatError extends Error {
  constructor(path: string, line: number, what: string) {
    super(`${path}:${line}: ${what}`);
    this.name = 'FormatError';
  }
}

function isSkippable(line: string): boolean {
  return line.trim() === '' || line.startsWith('#');
}

/** Reads output that ends at the doubled separator; returns the lines and the next position. */
function readDoubledOutput(lines: readonly string[], start: number, path: string): [string[], number] {
  const output: string[] = [];
  for (let i = start; i < lines.length; i++) {
    if (lines[i] === SEPARATOR && lines[i + 1] === SEPARATOR) return [output, i + 2];
    output.push(lines[i]!);
  }
  throw new FormatError(path, start, 'output opened with a doubled separator is never closed');
}

function readPlainOutput(lines: readonly string[], start: number): [string[], number] {
  const output: string[] = [];
  let i = start;
  while (i < lines.length && lines[i]!.trim() !== '') output.push(lines[i++]!);
  return [output, i];
}

export function parseDataFile(text: string, path: string): DataFile {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const blocks: Block[] = [];
  let leading: string[] = [];
  let i = 0;
  while (i < lines.length) {
    if (isSkippable(lines[i]!)) {
      leading.push(lines[i++]!);
      continue;
    }
    const line = i + 1;
    const directives: string[] = [];
    while (i < lines.length && lines[i] !== SEPARATOR) {
      if (lines[i]!.trim() === '') throw new FormatError(path, i + 1, `blank line before ${SEPARATOR}`);
      directives.push(lines[i++]!);
    }
    if (i >= lines.length) throw new FormatError(path, line, `directive without ${SEPARATOR}`);
    i++;
    let expected: string[];
    if (lines[i] === SEPARATOR) [expected, i] = readDoubledOutput(lines, i + 1, path);
    else [expected, i] = readPlainOutput(lines, i);
    blocks.push({ leading, line, directives, expected });
    leading = [];
  }
  return { blocks, trailing: leading };
}

function renderOutput(output: readonly string[]): string[] {
  const needsDoubled = output.some((l) => l.trim() === '');
  if (!needsDoubled) return [SEPARATOR, ...output];
  return [SEPARATOR, SEPARATOR, ...output, SEPARATOR, SEPARATOR];
}

/** Renders a file back, with `outputs[i]` (when given) replacing block i's expected output. */
export function renderDataFile(file: DataFile, outputs: ReadonlyMap<number, readonly string[]>): string {
  const lines: string[] = [];
  file.blocks.forEach((block, index) => {
    lines.push(...block.leading, ...block.directives);
    lines.push(...renderOutput(outputs.get(index) ?? block.expected));
  });
  lines.push(...file.trailing);
  return `${lines.join('\n')}\n`;
}
