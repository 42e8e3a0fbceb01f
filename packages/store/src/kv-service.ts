import type { CommandResult, KvEngine } from '@flotilla/storage';
import { commandBytesBound, type DataCommand } from './command-codec.ts';
import { WireError, compareBytes, keyInRange, type KvError, type KvOp, type KvOpResult, type KvRequest, type KvResponse, type ReadConsistency } from '@flotilla/wire';
import { limits } from './constants.ts';
import type { MultiRaftHost } from './host.ts';
import { ENTRY_COMMAND_BYTES_MAX, type Peer } from './peer.ts';
import { storeMoment, type Moment } from './replica-reads.ts';

type ReadOp = Extract<KvOp, { op: 'get' | 'scan' }>;

/** When a request arrived (reads are measured from it) and when its answer is due. */
interface RequestTime {
  readonly arrival: Moment;
  readonly deadlineMs: number;
}

/**
 * Serves client requests on a store: every operation is checked against the region it names
 * (exists here, same epoch, key inside; a write also needs this replica to lead) and answered
 * with a typed error otherwise — never a silent wrong answer. The writes of one region in one
 * request become ONE proposed entry. Reads are served by any replica, from its applied state,
 * once it is fresh enough for the read's consistency (replica-reads.ts).
 */
export class KvService {
  private inFlight = 0;

  /**
   * `diskRefusal`: the error a write that adds data (put, cas) is answered with while the store's
   * disk is short of space (disk-guard.ts), else null.
   */
  constructor(
    private readonly host: MultiRaftHost,
    private readonly kv: KvEngine,
    private readonly diskRefusal: () => KvError | null = () => null,
  ) {}

  /**
   * Throws a WireError (as encodeKvRequest would) for a read consistency no peer would accept:
   * such a request never reaches here over the wire, whose decoder answers it with a 400.
   */
  async handle(request: KvRequest): Promise<KvResponse> {
    for (const op of request.ops) if (op.op === 'get' || op.op === 'scan') checkConsistency(op.consistency);
    if (this.inFlight >= limits.requestsInFlightMax) {
      return { requestId: request.requestId, error: { code: 'FLOTILLA_SERVER_BUSY', retryAfterMs: limits.serverBusyRetryAfterMs } };
    }
    this.inFlight++;
    try {
      const timeoutMs = Math.min(request.timeoutMs || limits.requestTimeoutMsDefault, limits.requestTimeoutMsMax);
      const arrival = storeMoment();
      const time = { arrival, deadlineMs: arrival.ms + timeoutMs };
      const results = await withTimeout(this.run(request.ops, time), timeoutMs, request.ops.length);
      return { requestId: request.requestId, results };
    } finally {
      this.inFlight--;
    }
  }

  private async run(ops: readonly KvOp[], time: RequestTime): Promise<KvOpResult[]> {
    const results: (KvOpResult | undefined)[] = new Array(ops.length);
    const writesByRegion = new Map<Peer, { at: number; command: DataCommand }[]>();
    const reads: Promise<void>[] = [];
    ops.forEach((op, at) => {
      const checked = this.check(op);
      if ('error' in checked) {
        results[at] = { op: 'error', error: checked.error };
        return;
      }
      const { peer } = checked;
      if (op.op === 'get' || op.op === 'scan') {
        reads.push(this.read(peer, op, time).then((r) => void (results[at] = r)));
        return;
      }
      const refused = this.refuseForDisk(peer, op.op);
      if (refused !== null) {
        results[at] = { op: 'error', error: refused };
        return;
      }
      const list = writesByRegion.get(peer) ?? [];
      list.push({ at, command: toCommand(op) });
      writesByRegion.set(peer, list);
    });
    const writes = [...writesByRegion].map(([peer, list]) => this.write(peer, list, results));
    await Promise.all([...reads, ...writes]);
    return results.map((r) => r ?? internalTimeout());
  }

  /** The region exists here, the client's epoch is current, the key is inside. */
  private check(op: KvOp): { peer: Peer } | { error: KvError } {
    const peer = this.host.peer(op.regionId);
    if (!peer || peer.placeholder) return { error: { code: 'FLOTILLA_REGION_NOT_FOUND', regionId: op.regionId } };
    const epoch = peer.region.epoch;
    if (epoch.version !== op.regionEpoch.version || epoch.confVer !== op.regionEpoch.confVer) {
      return { error: { code: 'FLOTILLA_EPOCH_NOT_MATCH', regionId: op.regionId, currentRegions: [peer.region] } };
    }
    // Frozen for a merge: nothing is read or written here until the target took the range.
    if (peer.merging) return { error: { code: 'FLOTILLA_SERVER_BUSY', retryAfterMs: limits.mergingRetryAfterMs } };
    const key = op.op === 'deleteRange' || op.op === 'scan' ? op.start : op.key;
    const { startKey, endKey } = peer.region;
    if (!keyInRange(key, startKey, endKey)) {
      return { error: { code: 'FLOTILLA_KEY_NOT_IN_REGION', regionId: op.regionId, key, startKey, endKey } };
    }
    return { peer };
  }

  /**
   * A write of a region led here, refused for disk space, nothing proposed: a put or cas while
   * this store's disk is short of space, and any write while too few of the region's voters are
   * on stores that take entries (disk-quorum.ts). Led elsewhere, the proposal answers NotLeader
   * as always (the leader's view is what counts).
   */
  private refuseForDisk(peer: Peer, op: 'put' | 'delete' | 'cas' | 'deleteRange'): KvError | null {
    if (!peer.isLeader()) return null;
    const ownDisk = op === 'put' || op === 'cas' ? this.diskRefusal() : null;
    return ownDisk ?? this.host.peerDisks.quorumRefusal(peer);
  }

  private async write(peer: Peer, list: { at: number; command: DataCommand }[], results: (KvOpResult | undefined)[]): Promise<void> {
    for (const chunk of entryChunks(list, results)) {
      const proposedVersion = peer.region.epoch.version;
      const outcome = await peer.proposeWrites(chunk.writes.map((w) => w.command), chunk.bytes);
      chunk.writes.forEach(({ at, command }, i) => {
        results[at] = outcome.kind === 'failed' ? { op: 'error', error: outcome.error } : toResult(command, outcome.results[i], peer, proposedVersion);
      });
    }
  }

  /**
   * Any replica serves a read once its applied state is fresh enough (linearizable, or within
   * the staleness bound). The checks are made again right before reading: a split may have
   * applied while the read waited, and a key that moved is another group's to answer.
   */
  private async read(peer: Peer, op: ReadOp, time: RequestTime): Promise<KvOpResult> {
    const error = await peer.readyToRead(op.consistency, time.arrival, time.deadlineMs);
    if (error) return { op: 'error', error };
    const again = this.check(op);
    if ('error' in again) return { op: 'error', error: again.error };
    if (again.peer !== peer) return { op: 'error', error: { code: 'FLOTILLA_REGION_NOT_FOUND', regionId: op.regionId } };
    if (op.op === 'get') return { op: 'get', value: await this.kv.get(op.key) };
    // check() verified the start is inside the region; the end is clipped to it.
    const end = clipEnd(op.end, peer.region.endKey);
    const scanned = await this.kv.scan({ start: op.start, end, limit: op.limit, reverse: op.reverse });
    return { op: 'scan', pairs: scanned.pairs, more: scanned.more };
  }
}

/** The codec's own rule: a staleness bound is a safe integer in [0, staleReadBoundMsMax]. */
function checkConsistency(c: ReadConsistency): void {
  if (c.level === 'linearizable') return;
  if (c.level !== 'stale') throw new WireError('FLOTILLA_WIRE_INVALID_ARGUMENT', `unknown read consistency '${String((c as { level: unknown }).level)}'`);
  const ms = c.maxStalenessMs;
  if (!Number.isSafeInteger(ms) || ms < 0) throw new WireError('FLOTILLA_WIRE_INVALID_ARGUMENT', `maxStalenessMs: ${ms} is not a non-negative safe integer`);
  if (ms > limits.staleReadBoundMsMax) throw new WireError('FLOTILLA_WIRE_LIMIT_EXCEEDED', `maxStalenessMs: ${ms}, at most ${limits.staleReadBoundMsMax}`);
}

/**
 * A region's writes of one request, split into entries under both the command count and the
 * entry byte bound. A write that alone exceeds the byte bound is answered REQUEST_TOO_LARGE
 * here and never proposed: past the bound the log engine would refuse the whole log write.
 */
function entryChunks<W extends { at: number; command: DataCommand }>(list: readonly W[], results: (KvOpResult | undefined)[]): { writes: W[]; bytes: number }[] {
  const chunks: { writes: W[]; bytes: number }[] = [];
  let chunk: W[] = [];
  let bytes = 0;
  for (const write of list) {
    const size = commandBytesBound(write.command);
    if (size > ENTRY_COMMAND_BYTES_MAX) {
      results[write.at] = { op: 'error', error: { code: 'FLOTILLA_REQUEST_TOO_LARGE', requestBytesMax: ENTRY_COMMAND_BYTES_MAX, opsMax: limits.commandsPerEntryMax } };
      continue;
    }
    if (chunk.length === limits.commandsPerEntryMax || bytes + size > ENTRY_COMMAND_BYTES_MAX) {
      chunks.push({ writes: chunk, bytes });
      chunk = [];
      bytes = 0;
    }
    chunk.push(write);
    bytes += size;
  }
  if (chunk.length > 0) chunks.push({ writes: chunk, bytes });
  return chunks;
}

function toCommand(op: Extract<KvOp, { op: 'put' | 'delete' | 'cas' | 'deleteRange' }>): DataCommand {
  switch (op.op) {
    case 'put':
      return { op: 'put', key: op.key, value: op.value };
    case 'delete':
      return { op: 'delete', key: op.key };
    case 'cas':
      return { op: 'cas', key: op.key, expected: op.expected, value: op.value };
    case 'deleteRange':
      return { op: 'deleteRange', start: op.start, end: op.end };
  }
}

/** A command's result as the client sees it; deterministic apply-time failures become errors. */
function toResult(command: DataCommand, result: CommandResult | undefined, peer: Peer, proposedVersion: number): KvOpResult {
  // A delete-range applies clipped to the region as it is then: if a split or merge came in
  // between, the keys that moved to another region were not deleted. The client is told to
  // go again with fresh regions (deleting again is harmless), never that it is done.
  const regionMoved = command.op === 'deleteRange' && peer.region.epoch.version !== proposedVersion;
  if (result?.error === 'keyNotInRegion' || result?.error === 'epochNotMatch' || regionMoved) {
    // The region changed (split) between proposing and applying.
    return { op: 'error', error: { code: 'FLOTILLA_EPOCH_NOT_MATCH', regionId: peer.regionId, currentRegions: [peer.region] } };
  }
  if (result?.op === 'noop') {
    // Refused at apply by every replica (the region froze for a merge first): not written.
    return { op: 'error', error: { code: 'FLOTILLA_SERVER_BUSY', retryAfterMs: limits.mergingRetryAfterMs } };
  }
  if (result?.error === 'limitExceeded') {
    return { op: 'error', error: { code: 'FLOTILLA_REQUEST_TOO_LARGE', requestBytesMax: 0, opsMax: 0 } };
  }
  switch (command.op) {
    case 'put':
      return { op: 'put' };
    case 'delete':
      return { op: 'delete' };
    case 'cas':
      return result?.op === 'cas' ? { op: 'cas', succeeded: result.succeeded, previous: result.previous } : internalTimeout();
    case 'deleteRange':
      return result?.op === 'deleteRange' ? { op: 'deleteRange', deleted: result.deleted } : internalTimeout();
  }
}

/** The scan's end clipped to the region's end (an empty end means unbounded). */
function clipEnd(requested: Uint8Array, regionEnd: Uint8Array): Uint8Array {
  if (regionEnd.byteLength === 0) return requested;
  if (requested.byteLength === 0) return regionEnd;
  return compareBytes(requested, regionEnd) < 0 ? requested : regionEnd;
}

function internalTimeout(): KvOpResult {
  return { op: 'error', error: { code: 'FLOTILLA_TIMEOUT' } };
}

/** Operations not finished in time answer FLOTILLA_TIMEOUT: a write's outcome is unknown. */
async function withTimeout(work: Promise<KvOpResult[]>, timeoutMs: number, ops: number): Promise<KvOpResult[]> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<KvOpResult[]>((resolve) => {
    timer = setTimeout(() => resolve(Array.from({ length: ops }, internalTimeout)), timeoutMs);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
