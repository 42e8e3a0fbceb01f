/**
 * Typed errors of the Raft core. Every error has a stable `code`; callers branch on the code,
 * never on the message. Brand check via `isRaftError` survives duplicate installs.
 */
export type RaftErrorCode =
  | 'FLOTILLA_RAFT_COMPACTED' // requested index is below the first available index
  | 'FLOTILLA_RAFT_UNAVAILABLE' // requested index is above the last index
  | 'FLOTILLA_RAFT_LOG_TEMPORARILY_UNAVAILABLE' // entries are being fetched from disk asynchronously; ask again later
  | 'FLOTILLA_RAFT_SNAPSHOT_OUT_OF_DATE'
  | 'FLOTILLA_RAFT_SNAPSHOT_TEMPORARILY_UNAVAILABLE'
  | 'FLOTILLA_RAFT_PROPOSAL_DROPPED' // no leader, leader transfer in progress, or too many uncommitted bytes
  | 'FLOTILLA_RAFT_CONF_CHANGE_REJECTED' // a change is pending, or it is invalid
  | 'FLOTILLA_RAFT_INVALID_CONFIG'
  | 'FLOTILLA_RAFT_STEP_LOCAL_MESSAGE' // a local-only message arrived from the network
  | 'FLOTILLA_RAFT_STEP_PEER_NOT_FOUND'
  | 'FLOTILLA_RAFT_CONTRACT_VIOLATION'; // the host broke the Ready/advance contract

const BRAND = Symbol.for('flotilla.raft.error');

export class RaftError extends Error {
  readonly code: RaftErrorCode;
  readonly [BRAND] = true;

  constructor(code: RaftErrorCode, message: string) {
    super(message);
    this.name = 'RaftError';
    this.code = code;
  }
}

export function isRaftError(err: unknown, code?: RaftErrorCode): err is RaftError {
  if (typeof err !== 'object' || err === null) return false;
  if ((err as { [BRAND]?: unknown })[BRAND] !== true) return false;
  return code === undefined || (err as RaftError).code === code;
}

/**
 * A broken invariant is a bug: it stops the process (TigerBeetle style), it is not handled. On
 * hot paths write `if (!cond) fail(\`...\`)` instead of assert(cond, \`...\`): a template
 * argument is built on every call, even when the condition holds (number-to-string conversions
 * and a string per call: the log's slices, advance and every message sent ran them).
 */
export function assert(condition: unknown, what: string): asserts condition {
  if (!condition) fail(what);
}

export function fail(what: string): never {
  throw new Error(`raft assertion failed: ${what}`);
}
