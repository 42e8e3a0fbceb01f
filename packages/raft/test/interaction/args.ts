import type { NodeId } from '@flotilla/raft';

/**
 * Directive arguments in the datadriven style: `name pos1 (1,2) key=val key=(1,2,3) "quoted text"`.
 * A value is always a list of strings: `key=val` is one element, `key=(a,b)` several, `()` none.
 */
export interface Arg {
  /** null for a positional argument. */
  readonly key: string | null;
  readonly values: readonly string[];
}

export class UsageError extends Error {
  constructor(what: string) {
    super(what);
    this.name = 'UsageError';
  }
}

/** Splits on whitespace outside double quotes and parentheses. */
export function tokenize(line: string): string[] {
  const tokens: string[] = [];
  let current = '';
  let depth = 0;
  let quoted = false;
  for (const ch of line) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && ch === '(') depth++;
    else if (!quoted && ch === ')') depth--;
    if (!quoted && depth === 0 && /\s/.test(ch)) {
      if (current !== '') tokens.push(current);
      current = '';
      continue;
    }
    current += ch;
  }
  if (quoted || depth !== 0) throw new UsageError(`unbalanced quotes or parentheses in: ${line}`);
  if (current !== '') tokens.push(current);
  return tokens;
}

function parseValue(raw: string): string[] {
  if (raw.startsWith('(') && raw.endsWith(')')) {
    const inner = raw.slice(1, -1).trim();
    return inner === '' ? [] : inner.split(/[,\s]+/).filter((v) => v !== '');
  }
  if (raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"')) return [raw.slice(1, -1)];
  return [raw];
}

function parseArg(token: string): Arg {
  const eq = token.indexOf('=');
  const opensValue = token.startsWith('(') || token.startsWith('"');
  if (eq <= 0 || opensValue) return { key: null, values: parseValue(token) };
  return { key: token.slice(0, eq), values: parseValue(token.slice(eq + 1)) };
}

function toInt(raw: string, what: string): number {
  if (!/^-?\d+$/.test(raw)) throw new UsageError(`${what}: expected an integer, got ${JSON.stringify(raw)}`);
  return Number(raw);
}

/** Typed access to one directive's arguments; unknown keys are an error (typos fail loudly). */
export class Args {
  readonly name: string;
  private readonly all: readonly Arg[];
  private readonly used = new Set<string>();

  constructor(line: string) {
    const [name, ...rest] = tokenize(line);
    if (name === undefined) throw new UsageError('empty directive');
    this.name = name;
    this.all = rest.map(parseArg);
  }

  /** Positional arguments, each flattened: `1 (2,3)` gives ['1', '2', '3']. */
  positionals(): string[] {
    return this.all.filter((a) => a.key === null).flatMap((a) => [...a.values]);
  }

  ids(): NodeId[] {
    return this.positionals().map((v) => toInt(v, `${this.name} node id`));
  }

  /** Positional groups as written, for `partition (1,2) (3)`. */
  groups(): string[][] {
    return this.all.filter((a) => a.key === null).map((a) => [...a.values]);
  }

  has(key: string): boolean {
    this.used.add(key);
    return this.all.some((a) => a.key === key);
  }

  list(key: string): string[] | undefined {
    this.used.add(key);
    const arg = this.all.find((a) => a.key === key);
    return arg ? [...arg.values] : undefined;
  }

  str(key: string): string | undefined {
    const values = this.list(key);
    if (values === undefined) return undefined;
    if (values.length !== 1) throw new UsageError(`${this.name}: ${key} takes one value`);
    return values[0];
  }

  int(key: string): number | undefined {
    const raw = this.str(key);
    return raw === undefined ? undefined : toInt(raw, `${this.name} ${key}`);
  }

  intRequired(key: string): number {
    const value = this.int(key);
    if (value === undefined) throw new UsageError(`${this.name}: ${key}=N is required`);
    return value;
  }

  bool(key: string): boolean | undefined {
    const raw = this.str(key);
    if (raw === undefined) return undefined;
    if (raw !== 'true' && raw !== 'false') throw new UsageError(`${this.name} ${key}: expected true or false`);
    return raw === 'true';
  }

  intList(key: string): NodeId[] | undefined {
    return this.list(key)?.map((v) => toInt(v, `${this.name} ${key}`));
  }

  /** Throws when an argument's key was never asked for: catches typos like `prevot=true`. */
  checkAllUsed(): void {
    for (const arg of this.all) {
      if (arg.key !== null && !this.used.has(arg.key)) throw new UsageError(`${this.name}: unknown argument ${arg.key}`);
    }
  }
}
