/**
 * The data commands: `flotilla get|put|del|scan|cas …` against any cluster (--pd, FLOTILLA_PD).
 * `get` prints the value alone; exit codes: 0 done, 1 absent key / cas condition false,
 * 2 usage, 3 the cluster could not do it.
 */
import {
  CLUSTER_OPTIONS,
  ENCODING_OPTION,
  HELP_OPTION,
  JSON_OPTION,
  clusterTarget,
  commandHelp,
  parseCommandArgs,
  parseEncoding,
  type OptionSpecs,
  type ParsedArgs,
} from '../args.ts';
import { openDataClient, type DataClient } from '../data-client.ts';
import { decodeArg, encodeOut, type KeyEncoding } from '../encoding.ts';
import { CliError, EXIT, usageError, type ExitCode } from '../errors.ts';

export const dataLimits = Object.freeze({
  scanLimitDefault: 100,
  scanLimitMax: 100_000,
  /** A value read from stdin (`put KEY -`). */
  stdinValueBytesMax: 8 * 1024 * 1024,
});

const COMMON: OptionSpecs = { ...CLUSTER_OPTIONS, ...ENCODING_OPTION, ...JSON_OPTION, ...HELP_OPTION };

interface DataCommand {
  readonly synopsis: string;
  readonly description: string;
  readonly options: OptionSpecs;
  readonly positionalsMin: number;
  readonly positionalsMax: number;
  run(client: DataClient, ctx: DataContext): Promise<ExitCode>;
}

interface DataContext {
  readonly args: ParsedArgs;
  readonly encoding: KeyEncoding;
  readonly json: boolean;
  /** Positional `i` decoded with --encoding. */
  bytes(i: number, what: string): Uint8Array;
  out(text: string | Uint8Array): void;
}

const COMMANDS: Readonly<Record<string, DataCommand>> = {
  get: {
    synopsis: 'flotilla get KEY',
    description: 'Prints the value of KEY alone (a linearizable read). Exit code 1 when the key is absent.',
    options: COMMON,
    positionalsMin: 1,
    positionalsMax: 1,
    async run(client, ctx) {
      const key = ctx.bytes(0, 'key');
      const value = await client.get(key);
      if (ctx.json) ctx.out(`${JSON.stringify({ key: encodeOut(key, ctx.encoding), value: value === null ? null : encodeOut(value, ctx.encoding) })}\n`);
      else if (value !== null) {
        ctx.out(ctx.encoding === 'utf8' ? value : encodeOut(value, ctx.encoding));
        ctx.out('\n');
      }
      if (value === null) {
        if (!ctx.json) process.stderr.write(`flotilla: key not found: ${ctx.args.positionals[0]}\n`);
        return EXIT.no;
      }
      return EXIT.ok;
    },
  },
  put: {
    synopsis: 'flotilla put KEY VALUE   (VALUE "-": read it from stdin)',
    description: 'Writes VALUE at KEY. Prints OK once the write is committed.',
    options: COMMON,
    positionalsMin: 2,
    positionalsMax: 2,
    async run(client, ctx) {
      const key = ctx.bytes(0, 'key');
      const value = ctx.args.positionals[1] === '-' ? await readStdin(dataLimits.stdinValueBytesMax) : ctx.bytes(1, 'value');
      await client.put(key, value);
      ctx.out(ctx.json ? `${JSON.stringify({ ok: true })}\n` : 'OK\n');
      return EXIT.ok;
    },
  },
  del: {
    synopsis: 'flotilla del KEY',
    description: 'Deletes KEY (deleting an absent key is not an error). Prints OK once committed.',
    options: COMMON,
    positionalsMin: 1,
    positionalsMax: 1,
    async run(client, ctx) {
      await client.delete(ctx.bytes(0, 'key'));
      ctx.out(ctx.json ? `${JSON.stringify({ ok: true })}\n` : 'OK\n');
      return EXIT.ok;
    },
  },
  scan: {
    synopsis: 'flotilla scan [START [END]] [--prefix P] [--limit N] [--reverse] [--keys-only]',
    description: 'Prints the rows of [START, END) in key order, one "key<TAB>value" per line (--json: one object per line).\nNo START: from the first key; no END: to the last.',
    options: {
      ...COMMON,
      prefix: { type: 'string', value: 'P', help: 'only keys starting with P (instead of START and END)' },
      limit: { type: 'string', value: 'N', fallback: String(dataLimits.scanLimitDefault), help: `at most N rows (1..${dataLimits.scanLimitMax})` },
      reverse: { type: 'boolean', help: 'from the last key down' },
      'keys-only': { type: 'boolean', help: 'print keys only' },
    },
    positionalsMin: 0,
    positionalsMax: 2,
    async run(client, ctx) {
      const limit = ctx.args.integer('limit', 1, dataLimits.scanLimitMax);
      const prefixText = ctx.args.string('prefix');
      let start: Uint8Array;
      let end: Uint8Array;
      if (prefixText !== undefined) {
        if (ctx.args.positionals.length > 0) throw usageError('scan: give --prefix or START/END, not both');
        start = decodeArg('prefix', prefixText, ctx.encoding);
        end = prefixEnd(start);
      } else {
        start = ctx.args.positionals[0] === undefined ? new Uint8Array(0) : ctx.bytes(0, 'start key');
        end = ctx.args.positionals[1] === undefined ? new Uint8Array(0) : ctx.bytes(1, 'end key');
        if (end.length > 0 && Buffer.compare(start, end) >= 0) throw usageError('scan: END must be after START');
      }
      const rows = await client.scan({ start, end, limit, reverse: ctx.args.flag('reverse') });
      const keysOnly = ctx.args.flag('keys-only');
      const lines = rows.map((row) => {
        const key = encodeOut(row.key, ctx.encoding);
        if (ctx.json) return JSON.stringify(keysOnly ? { key } : { key, value: encodeOut(row.value, ctx.encoding) });
        return keysOnly ? key : `${key}\t${encodeOut(row.value, ctx.encoding)}`;
      });
      if (lines.length > 0) ctx.out(`${lines.join('\n')}\n`);
      return EXIT.ok;
    },
  },
  cas: {
    synopsis: 'flotilla cas KEY NEW (--expect OLD | --expect-absent)   |   flotilla cas KEY --delete --expect OLD',
    description: 'Compare-and-swap: writes NEW (or deletes, --delete) only if the current value is OLD (or the key is absent).\nPrints OK, or the current value and exit code 1 when the condition was false.',
    options: {
      ...COMMON,
      expect: { type: 'string', value: 'OLD', help: 'the value KEY must have now' },
      'expect-absent': { type: 'boolean', help: 'KEY must be absent now' },
      delete: { type: 'boolean', help: 'delete KEY instead of writing NEW' },
    },
    positionalsMin: 1,
    positionalsMax: 2,
    async run(client, ctx) {
      const key = ctx.bytes(0, 'key');
      const expectText = ctx.args.string('expect');
      const expectAbsent = ctx.args.flag('expect-absent');
      if ((expectText === undefined) === !expectAbsent) throw usageError('cas: give exactly one of --expect OLD and --expect-absent');
      const remove = ctx.args.flag('delete');
      if (remove === (ctx.args.positionals.length === 2)) throw usageError('cas: give either NEW or --delete');
      const expected = expectText === undefined ? null : decodeArg('expected value', expectText, ctx.encoding);
      const value = remove ? null : ctx.bytes(1, 'new value');
      const outcome = await client.compareAndSwap(key, expected, value);
      const current = outcome.previous === null ? null : encodeOut(outcome.previous, ctx.encoding);
      if (ctx.json) ctx.out(`${JSON.stringify({ succeeded: outcome.succeeded, previous: current })}\n`);
      else if (outcome.succeeded) ctx.out('OK\n');
      else ctx.out(`FAILED: ${current === null ? 'the key is absent' : `the current value is ${current}`}\n`);
      return outcome.succeeded ? EXIT.ok : EXIT.no;
    },
  },
};

export function dataHelp(name: string): string {
  const command = COMMANDS[name]!;
  return commandHelp(command.synopsis, command.description, command.options);
}

export async function dataCommand(name: string, argv: readonly string[], env: NodeJS.ProcessEnv): Promise<ExitCode> {
  const command = COMMANDS[name];
  if (!command) throw new Error(`no data command ${name}`);
  const args = parseCommandArgs(name, argv, command.options, env, command.positionalsMax);
  if (args.flag('help')) {
    process.stdout.write(dataHelp(name));
    return EXIT.ok;
  }
  if (args.positionals.length < command.positionalsMin) throw usageError(`${name}: missing arguments; usage: ${command.synopsis}`);
  const encoding = parseEncoding(args);
  const { pdUrls: urls, timeoutMs, tls } = clusterTarget(args);
  const ctx: DataContext = {
    args,
    encoding,
    json: args.flag('json'),
    bytes(i, what) {
      const text = args.positionals[i];
      if (text === undefined) throw usageError(`${name}: missing ${what}`);
      const bytes = decodeArg(what, text, encoding);
      if (bytes.length === 0 && what !== 'value' && what !== 'new value') throw usageError(`${name}: the ${what} is empty`);
      return bytes;
    },
    out(text) {
      process.stdout.write(text);
    },
  };
  const client = openDataClient(urls, timeoutMs, tls);
  try {
    return await command.run(client, ctx);
  } finally {
    await client.close();
  }
}

/** The first key after every key starting with `prefix` (empty: no end). */
function prefixEnd(prefix: Uint8Array): Uint8Array {
  const end = Uint8Array.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.slice(0, i + 1);
    }
  }
  return new Uint8Array(0);
}

async function readStdin(bytesMax: number): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of process.stdin) {
    const buffer = chunk as Buffer;
    total += buffer.length;
    if (total > bytesMax) throw new CliError(EXIT.usage, `put: the value on stdin is over ${bytesMax} bytes`);
    chunks.push(buffer);
  }
  return new Uint8Array(Buffer.concat(chunks));
}
