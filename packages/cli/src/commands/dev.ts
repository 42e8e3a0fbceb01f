/**
 * `flotilla dev`: a local cluster (1 PD member + 3 stores as child processes) until Ctrl-C.
 *
 * stdout, for people and for tools that start it:
 *   data: <dir>
 *   pd: <url>
 *   store <id>: <api url> (raft <host:port>, pid <pid>)   one per store
 *   ready                                                  once the cluster serves
 * Progress and messages go to stderr. SIGINT/SIGTERM stop every child (stores, then PD) and
 * exit 0; a second Ctrl-C kills them at once. A child that dies stops the rest (exit 3).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { HELP_OPTION, commandHelp, parseCommandArgs, type OptionSpecs } from '../args.ts';
import { LocalCluster, lastProblem, localClusterLimits } from '../dev/local-cluster.ts';
import { waitUntilServing } from '../dev/readiness.ts';
import { EXIT, clusterError, isCliError, usageError, type ExitCode } from '../errors.ts';
import { openDataClient, type DataClient } from '../data-client.ts';
import { PdApi } from '../pd-api.ts';
import { Progress } from '../progress.ts';

const OPTIONS: OptionSpecs = {
  'data-dir': { type: 'string', value: 'DIR', env: 'FLOTILLA_DEV_DATA_DIR', help: 'keep the cluster here and reuse it next time (default: a new temporary folder, deleted after a clean stop)' },
  'pd-listen': { type: 'string', value: 'HOST:PORT', env: 'FLOTILLA_DEV_PD_LISTEN', fallback: '127.0.0.1:2379', help: 'where PD serves its API (port 0: any free port)' },
  stores: { type: 'string', value: 'N', env: 'FLOTILLA_DEV_STORES', fallback: '3', help: `number of stores, ${localClusterLimits.storesMin}..${localClusterLimits.storesMax}` },
  'ready-timeout-ms': { type: 'string', value: 'MS', env: 'FLOTILLA_DEV_READY_TIMEOUT_MS', fallback: '120000', help: 'how long the cluster may take to serve' },
  keep: { type: 'boolean', help: 'keep the temporary folder at exit' },
  ...HELP_OPTION,
};

const DESCRIPTION = `Starts a local cluster: one PD member and 3 stores, each a child process, data and logs in one
folder. Prints "pd: <url>" and the stores, then "ready" once the cluster serves (PD leads, the
stores are up, the first region has 3 voters and a leader, a write reads back). Runs until
Ctrl-C, then stops every process. Other commands reach it with --pd <url> (the default URL is
the default --pd-listen).`;

export function devHelp(): string {
  return commandHelp('flotilla dev [--data-dir DIR] [--pd-listen HOST:PORT]', DESCRIPTION, OPTIONS);
}

export async function devCommand(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<ExitCode> {
  const args = parseCommandArgs('dev', argv, OPTIONS, env, 0);
  if (args.flag('help')) {
    process.stdout.write(devHelp());
    return EXIT.ok;
  }
  const pdListen = args.required('pd-listen');
  if (!/^[^:\s]+:\d{1,5}$/.test(pdListen) || Number(pdListen.split(':')[1]) > 65_535) throw usageError(`dev: --pd-listen must be host:port, got "${pdListen}"`);
  const stores = args.integer('stores', localClusterLimits.storesMin, localClusterLimits.storesMax);
  const readyTimeoutMs = args.integer('ready-timeout-ms', 1_000, 3_600_000);
  const given = args.string('data-dir');
  const dataDir = given ? path.resolve(given) : await mkdtemp(path.join(os.tmpdir(), 'flotilla-dev-'));
  const temporary = !given && !args.flag('keep');

  // Signals first: a Ctrl-C while starting stops what started.
  let signalled: (signal: string) => void = () => undefined;
  const stopRequested = new Promise<string>((resolve) => (signalled = resolve));
  let failed: (message: string) => void = () => undefined;
  const childFailed = new Promise<string>((resolve) => (failed = resolve));
  const cluster = new LocalCluster({
    dataDir,
    pdListen,
    stores,
    onUnexpectedExit: (name, code, signal, tail) => failed(`${name} exited on its own (${code ?? signal}): ${lastProblem(tail)} (log: ${path.join(dataDir, 'logs', `${name}.log`)})`),
  });
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals === 1) {
      signalled(signal);
      return;
    }
    process.stderr.write('second signal: killing every process\n');
    cluster.kill();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let client: DataClient | undefined;
  let exitCode: ExitCode = EXIT.ok;
  const progress = new Progress();
  try {
    process.stdout.write(`data: ${dataDir}\n`);
    process.stderr.write(`starting 1 PD member and ${stores} stores (logs in ${cluster.logDir})\n`);
    const outcome = await Promise.race([cluster.start().then(() => 'started' as const), stopRequested, childFailed.then((m) => Promise.reject(clusterError(m)))]);
    if (outcome !== 'started') return EXIT.ok;
    const pdUrl = cluster.pd!.url;
    process.stdout.write(`pd: ${pdUrl}\n`);
    for (const s of cluster.stores) process.stdout.write(`store ${s.storeId}: ${s.apiUrl} (raft ${s.raftAddress}, pid ${s.pid})\n`);
    const api = new PdApi([pdUrl], 2_000);
    client = openDataClient([pdUrl], 5_000);
    const serving = waitUntilServing(api, client, stores, readyTimeoutMs, (step) => progress.update(step.label, step.done, step.total)).then(() => 'ready' as const);
    const state = await Promise.race([serving, stopRequested, childFailed.then((m) => Promise.reject(clusterError(m)))]);
    progress.done();
    await api.close();
    if (state !== 'ready') return EXIT.ok;
    process.stdout.write('ready\n');
    process.stderr.write(`try: flotilla put hello world --pd ${pdUrl} && flotilla get hello --pd ${pdUrl}; flotilla ctl regions --pd ${pdUrl}\nCtrl-C stops the cluster.\n`);
    const end = await Promise.race([stopRequested.then(() => undefined), childFailed]);
    if (end !== undefined) {
      process.stderr.write(`flotilla: error: ${end}\n`);
      exitCode = EXIT.cluster;
    }
    return exitCode;
  } catch (err) {
    exitCode = EXIT.cluster;
    progress.done();
    const message = isCliError(err) || err instanceof Error ? err.message : String(err);
    const hint = /EADDRINUSE/.test(message) ? ` (is another cluster running? choose another --pd-listen, or 127.0.0.1:0 for any free port)` : '';
    throw clusterError(`${message}${hint}`);
  } finally {
    process.stderr.write('stopping…\n');
    await cluster.stop();
    await client?.close();
    // A failed run keeps its folder: the logs say why.
    const remove = temporary && exitCode === EXIT.ok;
    if (remove) await rm(dataDir, { recursive: true, force: true });
    process.stderr.write(remove ? 'stopped; data deleted\n' : `stopped; data and logs kept in ${dataDir}\n`);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
