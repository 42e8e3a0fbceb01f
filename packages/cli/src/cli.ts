/**
 * `flotilla COMMAND …`: dispatch, the top-level help, and the one rule for failures — an
 * expected one (CliError) is one line on stderr and its exit code; anything else is a bug,
 * reported in one line too (FLOTILLA_DEBUG=1 adds the stack).
 */
import { readFileSync } from 'node:fs';
import { EXIT, isCliError, usageError, type ExitCode } from './errors.ts';

const DATA_COMMAND_NAMES: readonly string[] = ['get', 'put', 'del', 'scan', 'cas'];

export const TOP_HELP = `usage: flotilla COMMAND [ARGS] [options]

A distributed, strongly consistent key-value store.

Run a cluster:
  dev                      a local cluster (1 PD + 3 stores) until Ctrl-C; prints "pd: URL", then "ready"
  pd                       run one PD member (production; flotilla pd --help)
  store                    run one store (production; flotilla store --help)

Data (--pd URL[,URL] or FLOTILLA_PD; default http://127.0.0.1:2379):
  get KEY                  print the value of KEY
  put KEY VALUE            write VALUE ("-": from stdin)
  del KEY                  delete KEY
  scan [START [END]]       rows in key order (--prefix, --limit, --reverse, --keys-only)
  cas KEY NEW --expect OLD compare-and-swap (--expect-absent, --delete)

Load and measure (a progress line on stderr; --json for scripts):
  load --count N | --file PATH|-   bulk load generated keys, or JSON lines {"key","value"}
  bench [--workload write|read|mixed] [--duration D | --ops N]   ops/s and latency percentiles

Operate (tables; --json for scripts):
  ctl stores|store-state|regions|region|operators|schedulers|pause|resume|members|history|split|transfer-leader
  ctl backup (--all | --region ID[,ID…]) --out DIR    copy regions, each at one point in time
  ctl restore --in DIR [--check]                       check a backup, then write its pairs back

Every command takes --help. Keys and values are utf8 unless --encoding hex|base64.
A cluster whose APIs run HTTPS (--api-tls-*): --pd https://…, --tls-ca, --tls-cert, --tls-key FILE.
Exit codes: 0 done, 1 key absent / cas condition false, 2 usage mistake, 3 the cluster could not do it.
`;

/**
 * Runs one command. Resolves with the exit code, or with 'serving' when the command (pd,
 * store) now owns the process and will exit it itself.
 */
export async function runCli(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<ExitCode | 'serving'> {
  try {
    return await dispatch(argv, env);
  } catch (err) {
    if (isCliError(err)) {
      process.stderr.write(`flotilla: error: ${err.message}\n`);
      return err.exitCode;
    }
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`flotilla: internal error: ${message}${env['FLOTILLA_DEBUG'] ? `\n${err instanceof Error ? err.stack : ''}` : ' (FLOTILLA_DEBUG=1 shows where)'}\n`);
    return EXIT.internal;
  }
}

async function dispatch(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<ExitCode | 'serving'> {
  const [name, ...rest] = argv;
  switch (name) {
    case undefined:
      process.stderr.write(TOP_HELP);
      return EXIT.usage;
    case 'help':
    case '--help':
    case '-h':
      if (rest[0] !== undefined) return dispatch([rest[0], '--help'], env);
      process.stdout.write(TOP_HELP);
      return EXIT.ok;
    case 'version':
    case '--version':
      process.stdout.write(`${version()}\n`);
      return EXIT.ok;
    // Each command loads only what it needs (start-up time is most of a one-shot command's).
    case 'dev':
      return (await import('./commands/dev.ts')).devCommand(rest, env);
    case 'pd':
      await (await import('./commands/servers.ts')).pdCommand(rest, env);
      return 'serving';
    case 'store':
      await (await import('./commands/servers.ts')).storeCommand(rest, env);
      return 'serving';
    case 'load':
      return (await import('./commands/load.ts')).loadCommand(rest, env);
    case 'bench':
      return (await import('./commands/bench.ts')).benchCommand(rest, env);
    case 'ctl':
      return (await import('./commands/ctl.ts')).ctlCommand(rest, env);
    default:
      if (DATA_COMMAND_NAMES.includes(name)) return (await import('./commands/data.ts')).dataCommand(name, rest, env);
      throw usageError(`unknown command "${name}" (flotilla --help lists them)`);
  }
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
  return `flotilla ${pkg.version ?? 'unknown'}`;
}

