/**
 * What the docs tests (test/docs-*.test.ts) read out of a markdown file and run: fenced blocks
 * with their info string, the commands of a runnable block (```sh run), each run by bash with
 * `flotilla` and `pnpm flotilla` meaning this checkout's CLI, and the names a doc cites (pnpm
 * scripts, repository paths, file names, packages), to check they exist.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { REPO } from './process.ts';

/** The info string that marks a block the docs tests run. */
export const RUNNABLE_INFO = 'sh run';
/** A trailing comment `# prints: TEXT`: the command's stdout must contain TEXT. */
const PRINTS = /\s#\s*prints:\s*(.+?)\s*$/;
/** One command of a doc may take this long (a benchmark of a few seconds, node start-up). */
const COMMAND_DEADLINE_MS = 60_000;
/** Output kept per command for failure messages. */
const OUTPUT_CHARS_MAX = 64 * 1024;

export interface FencedBlock {
  /** What follows the opening fence (```sh run → `sh run`). */
  readonly info: string;
  /** The 1-based line of the block's first content line. */
  readonly line: number;
  readonly lines: readonly string[];
}

export interface DocCommand {
  /** The 1-based line of the doc it starts at. */
  readonly line: number;
  /** The command as bash runs it (continuation lines joined). */
  readonly text: string;
  /** Text stdout must contain (`# prints: …`), if any. */
  readonly prints: string | undefined;
}

export interface ShellResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Every fenced block (``` … ```) of a markdown text, in order (none inside HTML comments). */
export function fencedBlocks(markdown: string): FencedBlock[] {
  const blocks: FencedBlock[] = [];
  // A comment is blanked out line for line, so the blocks' line numbers stay right.
  const lines = markdown.replace(/<!--[\s\S]*?-->/g, (comment) => comment.replace(/[^\n]/g, '')).split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(.*)$/.exec(lines[i]!.trim());
    if (!open) continue;
    let end = i + 1;
    while (end < lines.length && lines[end]!.trim() !== '```') end++;
    blocks.push({ info: open[1]!.trim(), line: i + 2, lines: lines.slice(i + 1, end) });
    i = end;
  }
  return blocks;
}

/** The commands of a block: comment lines and blank lines skipped, `\` continuations joined. */
export function commandsOf(block: FencedBlock): DocCommand[] {
  const commands: DocCommand[] = [];
  let pending: { line: number; parts: string[] } | undefined;
  block.lines.forEach((raw, i) => {
    const text = raw.trim();
    if (pending === undefined && (text === '' || text.startsWith('#'))) return;
    pending ??= { line: block.line + i, parts: [] };
    if (text.endsWith('\\')) {
      pending.parts.push(text.slice(0, -1).trim());
      return;
    }
    pending.parts.push(text);
    const joined = pending.parts.join(' ');
    commands.push({ line: pending.line, text: joined, prints: PRINTS.exec(joined)?.[1] });
    pending = undefined;
  });
  if (pending !== undefined) throw new Error(`the command at line ${pending.line} ends with a continuation`);
  return commands;
}

/** bash functions that make a doc's `flotilla …` and `pnpm flotilla …` run this checkout's CLI. */
const SHIMS = `
flotilla() { node --import tsx "${path.join(REPO, 'packages/cli/src/main.ts')}" "$@"; }
pnpm() {
  if [ "$1" = --silent ]; then shift; fi
  if [ "$1" = flotilla ]; then shift; flotilla "$@"; return; fi
  echo "docs test: only 'pnpm flotilla …' runs in a runnable block, not 'pnpm $1'" >&2; return 127
}
set -o pipefail
`;

/** Runs one doc command with bash in the repository, to its end (SIGKILL past the deadline). */
export async function runDocCommand(command: string, env: NodeJS.ProcessEnv): Promise<ShellResult> {
  const child = spawn('bash', ['-c', `${SHIMS}\n${command}`], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const keep = (text: string, chunk: string): string => (text.length < OUTPUT_CHARS_MAX ? text + chunk : text);
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout = keep(stdout, chunk)));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr = keep(stderr, chunk)));
  const timer = setTimeout(() => child.kill('SIGKILL'), COMMAND_DEADLINE_MS);
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** The spans in `backticks` of a markdown text, fenced blocks and HTML comments left out. */
export function inlineCode(markdown: string): string[] {
  const prose = markdown.replace(/^```[\s\S]*?^```/gm, '').replace(/<!--[\s\S]*?-->/g, '');
  return [...prose.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!);
}

/** The script each `pnpm [run] [--silent] SCRIPT …` span names (pnpm's own commands left out). */
export function pnpmScriptsNamed(spans: readonly string[]): string[] {
  const builtins = new Set(['install', 'exec', 'dlx', 'add']);
  return spans.flatMap((span) => {
    const match = /^pnpm (?:run )?(?:--silent )?([\w:.-]+)/.exec(span);
    return match && !builtins.has(match[1]!) ? [match[1]!] : [];
  });
}

/**
 * Whether a path a doc names exists: from the repository root, else inside some package (`src/
 * index.ts`); a bare file name anywhere in the repository; `*` matches within one segment.
 */
export function repositoryPathExists(name: string): boolean {
  const clean = name.replace(/\/$/, '');
  if (!clean.includes('/')) return filesNamed(clean, REPO);
  if (expand(REPO, clean.split('/')).length > 0) return true;
  return readdirSync(path.join(REPO, 'packages')).some((pkg) => expand(path.join(REPO, 'packages', pkg), clean.split('/')).length > 0);
}

/** Spans that look like a repository path or a file name (not URLs, API paths or `../` outside it). */
export function looksLikePath(span: string): boolean {
  if (/\s/.test(span) || span.startsWith('/') || span.startsWith('../') || span.startsWith('@') || span.includes('://') || span.includes(':')) return false;
  return /^[\w.*-]+(\/[\w.*-]*)*$/.test(span) && (span.includes('/') || /\.(ts|md|txt|json)$/.test(span));
}

function expand(dir: string, segments: readonly string[]): string[] {
  if (segments.length === 0) return [dir];
  const [first, ...rest] = segments as [string, ...string[]];
  if (!first.includes('*')) return existsSync(path.join(dir, first)) ? expand(path.join(dir, first), rest) : [];
  const pattern = new RegExp(`^${first.split('*').map(escapeRegExp).join('[^/]*')}$`);
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries.filter((e) => pattern.test(e)).flatMap((e) => expand(path.join(dir, e), rest));
}

/** Directories never searched for a file name. */
const SKIPPED_DIRS = new Set(['node_modules', '.git']);

function filesNamed(name: string, dir: string): boolean {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === name) return true;
    if (entry.isDirectory() && !SKIPPED_DIRS.has(entry.name) && filesNamed(name, path.join(dir, entry.name))) return true;
  }
  return false;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
}
