/**
 * `flotilla pd …` and `flotilla store …`: the production processes. They run the very code of
 * `pnpm run pd` / `pnpm run store` (`runPd` from @flotilla/pd, `runStore` from @flotilla/store): the same flags,
 * the same FLOTILLA_* environment variables, JSON logs on stdout, the same exit codes
 * (0 after SIGTERM/SIGINT, 1 failed, 2 invalid configuration). Loaded only when asked for, so
 * the data commands don't load RocksDB.
 */

const PD_PREAMBLE = `flotilla pd: one member of the placement driver (PD), the cluster's metadata and scheduler.
Every flag can also be set by the environment variable shown under it; flags win.
Exit codes: 0 after SIGTERM/SIGINT (leadership handed over first), 1 failed, 2 invalid configuration.

`;

const STORE_PREAMBLE = `flotilla store: one store, hosting replicas of many regions. With --pd, PD assigns its id and
places regions on it; with --initial-cluster, a static cluster without PD.
Every flag can also be set by the environment variable shown under it; flags win.
Exit codes: 0 after SIGTERM/SIGINT (leaderships handed over first), 1 failed, 2 invalid configuration.

`;

export async function pdCommand(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  if (argv.includes('--help')) process.stdout.write(PD_PREAMBLE);
  const { runPd } = await import('@flotilla/pd');
  await runPd(argv, env);
}

export async function storeCommand(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  if (argv.includes('--help')) process.stdout.write(STORE_PREAMBLE);
  const { runStore } = await import('@flotilla/store');
  await runStore(argv, env);
}
