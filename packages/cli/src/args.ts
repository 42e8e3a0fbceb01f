/**
 * Flags of every command: `node:util` parseArgs (strict), plus the options every cluster command
 * shares (`--pd`, `--timeout-ms`, `--tls-*`, `--encoding`, `--json`), each with its FLOTILLA_*
 * variable.
 */
import { parseArgs } from 'node:util';
import { loadClusterTls, type ClusterTls } from './cluster-tls.ts';
import { usageError } from './errors.ts';
import { KEY_ENCODINGS, type KeyEncoding } from './encoding.ts';

export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly help: string;
  /** The environment variable read when the flag is absent. */
  readonly env?: string;
  readonly fallback?: string;
  /** A value name for the help text (`--limit N`). */
  readonly value?: string;
  /** The flag may be given several times (read them with `all`). */
  readonly multiple?: boolean;
}

export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

/** Bounds of the shared options. */
export const argLimits = Object.freeze({
  pdUrlsMax: 16,
  timeoutMs: { min: 100, max: 600_000 },
});

export const DEFAULT_PD_URL = 'http://127.0.0.1:2379';

/** The options of every command that talks to a cluster. */
export const CLUSTER_OPTIONS: OptionSpecs = {
  pd: { type: 'string', value: 'URL[,URL]', env: 'FLOTILLA_PD', fallback: DEFAULT_PD_URL, help: 'placement driver member URLs' },
  'timeout-ms': { type: 'string', value: 'MS', env: 'FLOTILLA_TIMEOUT_MS', fallback: '10000', help: 'how long the command may take' },
  'tls-ca': { type: 'string', value: 'FILE', env: 'FLOTILLA_TLS_CA', help: "PEM file of the cluster's CA, for a cluster whose APIs run with --api-tls-* (the servers' certificates are checked against it; --pd then takes https:// URLs; all three --tls-* or none)" },
  'tls-cert': { type: 'string', value: 'FILE', env: 'FLOTILLA_TLS_CERT', help: "PEM file of this client's certificate, signed by the cluster's CA (with --tls-ca and --tls-key)" },
  'tls-key': { type: 'string', value: 'FILE', env: 'FLOTILLA_TLS_KEY', help: 'PEM file of the private key of --tls-cert' },
};

export const ENCODING_OPTION: OptionSpecs = {
  encoding: { type: 'string', value: 'ENC', env: 'FLOTILLA_ENCODING', fallback: 'utf8', help: `how keys and values are written on the command line and printed: ${KEY_ENCODINGS.join(', ')}` },
};

export const JSON_OPTION: OptionSpecs = {
  json: { type: 'boolean', help: 'print JSON (one object per line) for scripts' },
};

export const HELP_OPTION: OptionSpecs = {
  help: { type: 'boolean', help: 'this text' },
};

export interface ParsedArgs {
  readonly positionals: readonly string[];
  /** The flag, else its environment variable, else its default. */
  string(name: string): string | undefined;
  required(name: string): string;
  flag(name: string): boolean;
  integer(name: string, min: number, max: number): number;
  /** Every value of a `multiple` flag, in order (none: empty). */
  all(name: string): readonly string[];
}

/** Strict parsing: an unknown flag or a missing value is a usage error naming the command. */
export function parseCommandArgs(command: string, argv: readonly string[], specs: OptionSpecs, env: NodeJS.ProcessEnv, positionalsMax: number): ParsedArgs {
  const options = Object.fromEntries(Object.entries(specs).map(([name, spec]) => [name, { type: spec.type, multiple: spec.multiple === true }]));
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options, strict: true, allowPositionals: true });
  } catch (err) {
    throw usageError(`${command}: ${firstSentence((err as Error).message)} (flotilla ${command} --help)`);
  }
  if (parsed.positionals.length > positionalsMax) {
    throw usageError(`${command}: unexpected argument "${parsed.positionals[positionalsMax]}" (flotilla ${command} --help)`);
  }
  const values = parsed.values as Record<string, string | boolean | string[] | undefined>;
  const string = (name: string): string | undefined => {
    const given = values[name];
    if (typeof given === 'string') return given;
    if (Array.isArray(given) && given.length > 0) return given[given.length - 1];
    const spec = specs[name];
    const fromEnv = spec?.env === undefined ? undefined : env[spec.env];
    return fromEnv !== undefined && fromEnv !== '' ? fromEnv : spec?.fallback;
  };
  const required = (name: string): string => {
    const value = string(name);
    if (value === undefined || value === '') throw usageError(`${command}: --${name} is required (flotilla ${command} --help)`);
    return value;
  };
  return {
    positionals: parsed.positionals,
    string,
    required,
    flag: (name) => values[name] === true,
    all: (name) => {
      const given = values[name];
      return Array.isArray(given) ? given : typeof given === 'string' ? [given] : [];
    },
    integer: (name, min, max) => {
      const text = required(name);
      const n = /^\d+$/.test(text) ? Number(text) : NaN;
      if (!Number.isSafeInteger(n) || n < min || n > max) throw usageError(`${command}: --${name} must be an integer in ${min}..${max}, got "${text}"`);
      return n;
    },
  };
}

/** `http://a:1,https://b:2,c:3` → origins (no scheme: http://); a usage error names the bad one. */
export function parsePdUrls(text: string): string[] {
  const urls = text.split(',').map((item) => item.trim()).filter((item) => item !== '');
  if (urls.length === 0) throw usageError('--pd: give at least one URL, e.g. http://127.0.0.1:2379');
  if (urls.length > argLimits.pdUrlsMax) throw usageError(`--pd: at most ${argLimits.pdUrlsMax} URLs`);
  return urls.map((item) => {
    let url: URL;
    try {
      url = new URL(item.includes('://') ? item : `http://${item}`);
    } catch {
      throw usageError(`--pd: "${item}" is not a URL (expected http://host:port)`);
    }
    const scheme = url.protocol === 'https:' ? 'https' : 'http';
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || (url.pathname !== '/' && url.pathname !== '') || url.search !== '') {
      throw usageError(`--pd: "${item}" must be ${scheme}://host:port`);
    }
    return url.origin;
  });
}

const TLS_FLAGS = [
  { field: 'ca', name: 'tls-ca', env: 'FLOTILLA_TLS_CA' },
  { field: 'cert', name: 'tls-cert', env: 'FLOTILLA_TLS_CERT' },
  { field: 'key', name: 'tls-key', env: 'FLOTILLA_TLS_KEY' },
] as const;

/**
 * `--tls-ca`, `--tls-cert`, `--tls-key` (or their variables): all three or none. The files are
 * read and checked here: a missing one, or credentials that do not load, are a usage error.
 */
export function parseClusterTls(args: ParsedArgs): ClusterTls | undefined {
  const given = TLS_FLAGS.map((f) => ({ ...f, path: args.string(f.name) ?? '' }));
  if (given.every((f) => f.path === '')) return undefined;
  const missing = given.filter((f) => f.path === '');
  if (missing.length > 0) {
    throw usageError(`--tls-ca, --tls-cert and --tls-key go together: missing ${missing.map((f) => `--${f.name} (${f.env})`).join(', ')}`);
  }
  const [ca, cert, key] = given.map((f) => f.path) as [string, string, string];
  return loadClusterTls({ ca, cert, key });
}

/** What a cluster command needs to reach the cluster. */
export interface ClusterTarget {
  readonly pdUrls: string[];
  readonly timeoutMs: number;
  /** The credentials of `--tls-*` (PEM text): the cluster's APIs are HTTPS. */
  readonly tls: ClusterTls | undefined;
}

/** Where a cluster command goes, how long it may take and with which credentials: `--pd`, `--timeout-ms`, `--tls-*`. */
export function clusterTarget(args: ParsedArgs): ClusterTarget {
  const pdUrls = parsePdUrls(args.required('pd'));
  const timeoutMs = args.integer('timeout-ms', argLimits.timeoutMs.min, argLimits.timeoutMs.max);
  const tls = parseClusterTls(args);
  if (tls !== undefined) {
    const plain = pdUrls.find((url) => !url.startsWith('https://'));
    if (plain !== undefined) throw usageError(`--pd: "${plain}" must be https://host:port with --tls-ca/--tls-cert/--tls-key (the cluster's APIs are HTTPS)`);
  }
  return { pdUrls, timeoutMs, tls };
}

export function parseEncoding(args: ParsedArgs): KeyEncoding {
  const text = args.required('encoding');
  if (!(KEY_ENCODINGS as readonly string[]).includes(text)) throw usageError(`--encoding must be one of ${KEY_ENCODINGS.join(', ')}, got "${text}"`);
  return text as KeyEncoding;
}

/** The help text of one command: synopsis, description, options with their variables. */
export function commandHelp(synopsis: string, description: string, specs: OptionSpecs): string {
  const rows = Object.entries(specs).map(([name, spec]) => {
    const left = `--${name}${spec.value ? ` ${spec.value}` : ''}`;
    const extras = [spec.fallback !== undefined ? `default ${spec.fallback}` : '', spec.env ? `env ${spec.env}` : ''].filter((s) => s !== '').join(', ');
    return `  ${left.padEnd(26)} ${spec.help}${extras ? ` (${extras})` : ''}`;
  });
  return `usage: ${synopsis}\n\n${description}\n\noptions:\n${rows.join('\n')}\n`;
}

/** parseArgs' messages run over several lines and sentences; an error is one line. */
function firstSentence(message: string): string {
  const cut = message.search(/\.\s/);
  return cut > 0 ? message.slice(0, cut) : message;
}
