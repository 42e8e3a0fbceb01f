import type { CommandResult, KvEngine } from '@flotilla/storage';
import type { EntryCommand } from './command-codec.ts';
import type { KvError, KvOp, KvOpResult, KvRequest, KvResponse } from '@flotilla/wire';
import { limits } from './constants.ts';
import type { MultiRaftHost } from './host.ts';
import type { Peer } from './peer.ts';

/**
 * Serves client requests on a store: every operation is checked against the region it names
 * (exists here, same epoch, key inside, this replica leads) and answered with a typed error
 * otherwise — never a silent wrong answer. The writes of one region in one request become
 * ONE proposed entry; reads wait for a ReadIndex confirmation, then read the applied state.
 */
export class KvService {
  private inFlight = 0;

  constructor(
    private readonly host: MultiRaftHost,
    private readonly kv: KvEngine,
  ) {}

  async handle(request: KvRequest): Promise<KvResponse> {
    if (this.inFlight >= limits.requestsInFlightMax) {
      return { requestId: request.requestId, error: { code: 'FLOTILLA_SERVER_BUSY', retryAfterMs: limits.serverBusyRetryAfterMs } };
    }
    this.inFlight++;
    try {
      const timeoutMs = Math.min(request.timeoutMs || limits.requestTimeoutMsDefault, limits.requestTimeoutMsMax);
      const results = await withTimeout(this.run(request.ops), timeoutMs, request.ops.length);
      return { requestId: request.requestId, results };
    } finally {
      this.inFlight--;
    }
  }

  private async run(ops: readonly KvOp[]): Promise<KvOpResult[]> {
    const results: (KvOpResult | undefined)[] = new Array(ops.length);
    const writesByRegion = new Map<Peer, { at: number; command: EntryCommand }[]>();
    const reads: Promise<void>[] = [];
    ops.forEach((op, at) => {
      const checked = this.check(op);
      if ('error' in checked) {
        results[at] = { op: 'error', error: checked.error };
        return;
      }
      const { peer } = checked;
      if (op.op === 'get' || op.op === 'scan') {
        reads.push(this.read(peer, op).then((r) => void (results[at] = r)));
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
    const key = op.op === 'deleteRange' || op.op === 'scan' ? op.start : op.key;
    const { startKey, endKey } = peer.region;
    if (!inRange(key, startKey, endKey)) {
      return { error: { code: 'FLOTILLA_KEY_NOT_IN_REGION', regionId: op.regionId, key, startKey, endKey } };
    }
    return { peer };
  }

  private async write(peer: Peer, list: { at: number; command: EntryCommand }[], results: (KvOpResult | undefined)[]): Promise<void> {
    for (let from = 0; from < list.length; from += limits.commandsPerEntryMax) {
      const chunk = list.slice(from, from + limits.commandsPerEntryMax);
      const outcome = await peer.propose(chunk.map((w) => w.command));
      chunk.forEach(({ at, command }, i) => {
        results[at] = outcome.kind === 'failed' ? { op: 'error', error: outcome.error } : toResult(command, outcome.results[i], peer);
      });
    }
  }

  private async read(peer: Peer, op: Extract<KvOp, { op: 'get' | 'scan' }>): Promise<KvOpResult> {
    // Stale reads are served as linearizable ones for now: a stronger answer, never a wrong one.
    const error = await peer.readyToRead();
    if (error) return { op: 'error', error };
    if (op.op === 'get') return { op: 'get', value: await this.kv.get(op.key) };
    // check() verified the start is inside the region; the end is clipped to it.
    const end = clipEnd(op.end, peer.region.endKey);
    const scanned = await this.kv.scan({ start: op.start, end, limit: op.limit, reverse: op.reverse });
    return { op: 'scan', pairs: scanned.pairs, more: scanned.more };
  }
}

function toCommand(op: Extract<KvOp, { op: 'put' | 'delete' | 'cas' | 'deleteRange' }>): EntryCommand {
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
function toResult(command: EntryCommand, result: CommandResult | undefined, peer: Peer): KvOpResult {
  if (result?.error === 'keyNotInRegion' || result?.error === 'epochNotMatch') {
    // The region changed (split) between proposing and applying.
    return { op: 'error', error: { code: 'FLOTILLA_EPOCH_NOT_MATCH', regionId: peer.regionId, currentRegions: [peer.region] } };
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
    default:
      return internalTimeout();
  }
}

/** Whether key is in [start, end) with an empty end meaning unbounded. */
function inRange(key: Uint8Array, start: Uint8Array, end: Uint8Array): boolean {
  return Buffer.compare(key, start) >= 0 && (end.byteLength === 0 || Buffer.compare(key, end) < 0);
}

/** The scan's end clipped to the region's end (an empty end means unbounded). */
function clipEnd(requested: Uint8Array, regionEnd: Uint8Array): Uint8Array {
  if (regionEnd.byteLength === 0) return requested;
  if (requested.byteLength === 0) return regionEnd;
  return Buffer.compare(requested, regionEnd) < 0 ? requested : regionEnd;
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
