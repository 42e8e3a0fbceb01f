/** @flotilla/store — the store server's multi-raft host and its client API. */
export { MultiRaftHost } from './host.ts';
export type { HostOptions, HostStats } from './host.ts';
export { KvService } from './kv-service.ts';
export { Peer } from './peer.ts';
export type { ProposalOutcome } from './peer.ts';
export { StoreError, isStoreError } from './errors.ts';
export type { StoreErrorCode } from './errors.ts';
export { limits } from './constants.ts';
export { encodeCommands, decodeCommands } from './command-codec.ts';
export type { EntryCommand, SplitCommand } from './command-codec.ts';
export { planSplit } from './split.ts';
export type { SplitPlan } from './split.ts';
export { toConfChange, regionAfterChange } from './membership.ts';
export type { MembershipChange } from './membership.ts';
