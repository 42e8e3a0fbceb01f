/** @flotilla/cli — the public API: the `flotilla` command and its local cluster. */
export { runCli, TOP_HELP } from './cli.ts';
export { EXIT, CliError, isCliError } from './errors.ts';
export type { ExitCode } from './errors.ts';
export { LocalCluster, localClusterLimits, DEV_PD_ARGS, DEV_STORE_ARGS } from './dev/local-cluster.ts';
export type { LocalClusterOptions, LocalChild, LocalPd, LocalStore, ChildExit } from './dev/local-cluster.ts';
export { PdApi, pdApiLimits } from './pd-api.ts';
export type { PdRegionJson, PdStoreJson, PdPeerJson } from './pd-api.ts';
export { openDataClient } from './data-client.ts';
export type { DataClient, KvPairBytes, ScanRange, CasOutcome } from './data-client.ts';
