/**
 * PD's replicated metadata: one raft group (region META_REGION_ID over PD's own keyspace),
 * hosted by an embedded MultiRaftHost on every PD member — the same raft core, log engine
 * and KV engine the stores run, the way TiKV's PD embeds etcd. The member whose replica
 * leads that group is the PD leader; it alone writes, and reads linearizably (ReadIndex).
 */
import type { KvService, MultiRaftHost } from '@flotilla/store';
import type { KvOp, KvOpResult, KvPair, RegionEpoch } from '@flotilla/wire';
import { PdError } from '../errors.ts';

/** The one region of PD's metadata group. */
export const META_REGION_ID = 1;

/** Rows one page of a metadata scan asks for; PD pages until the prefix is exhausted. */
export const metaScanPageRows = 4096;

/** How long a metadata read or write may take before it fails with a retryable error. */
export const metaRequestTimeoutMs = 5_000;

export type MetaWrite =
  | { readonly op: 'put'; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly op: 'delete'; readonly key: Uint8Array };

/** Who leads the metadata group, as this member's replica sees it. */
export interface MetaLeadership {
  /** This member's replica leads. */
  readonly leader: boolean;
  readonly term: number;
  /** Peer id of the leader (= its PD member id), 0 if unknown. */
  readonly leaderPeerId: number;
}

const NO_LEADERSHIP: MetaLeadership = { leader: false, term: 0, leaderPeerId: 0 };

export class MetaStore {
  private nextRequestId = 1;

  constructor(
    private readonly host: MultiRaftHost,
    private readonly service: KvService,
  ) {}

  leadership(): MetaLeadership {
    const status = this.host.regionStatus(META_REGION_ID);
    if (!status) return NO_LEADERSHIP;
    return { leader: status.raft.role === 'leader', term: status.raft.term, leaderPeerId: status.raft.leader };
  }

  async get(key: Uint8Array): Promise<Uint8Array | null> {
    const [result] = await this.run([{ op: 'get', key, consistency: { level: 'linearizable' } }]);
    return result?.op === 'get' ? result.value : null;
  }

  /** Every row whose key starts with `prefix`, in key order, read linearizably page by page. */
  async scanPrefix(prefix: Uint8Array): Promise<KvPair[]> {
    const end = prefixEnd(prefix);
    const rows: KvPair[] = [];
    let start = prefix;
    for (;;) {
      const [result] = await this.run([{ op: 'scan', start, end, limit: metaScanPageRows, reverse: false, consistency: { level: 'linearizable' } }]);
      if (result?.op !== 'scan') throw new PdError('FLOTILLA_PD_INTERNAL', 'a metadata scan returned no rows result');
      rows.push(...result.pairs);
      const last = result.pairs.at(-1);
      if (!result.more || !last) return rows;
      start = keyAfter(last.key);
    }
  }

  /** Writes every op in ONE raft entry (atomically), or throws FLOTILLA_PD_META_WRITE_FAILED. */
  async write(ops: readonly MetaWrite[]): Promise<void> {
    if (ops.length === 0) return;
    await this.run(ops);
  }

  private async run(ops: readonly (MetaWrite | DistributiveOmit<Extract<KvOp, { op: 'get' | 'scan' }>, 'regionId' | 'regionEpoch'>)[]): Promise<KvOpResult[]> {
    const epoch = this.epoch();
    const requestId = this.nextRequestId++;
    const response = await this.service.handle({
      requestId,
      timeoutMs: metaRequestTimeoutMs,
      ops: ops.map((op) => ({ ...op, regionId: META_REGION_ID, regionEpoch: epoch }) as KvOp),
    });
    if ('error' in response) throw metaFailure(response.error.code);
    for (const result of response.results) if (result.op === 'error') throw metaFailure(result.error.code);
    return [...response.results];
  }

  private epoch(): RegionEpoch {
    const status = this.host.regionStatus(META_REGION_ID);
    if (!status) throw new PdError('FLOTILLA_PD_NO_LEADER', 'this PD member holds no replica of the metadata group yet');
    return status.region.epoch;
  }
}

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

function metaFailure(code: string): PdError {
  if (code === 'FLOTILLA_NOT_LEADER') return new PdError('FLOTILLA_PD_NOT_LEADER', 'this PD member lost the lead of the metadata group');
  return new PdError('FLOTILLA_PD_META_WRITE_FAILED', `PD metadata request failed with ${code}; retry`);
}

/** The first key after every key starting with `prefix` (prefix must not be all 0xff). */
export function prefixEnd(prefix: Uint8Array): Uint8Array {
  const end = Uint8Array.from(prefix);
  for (let at = end.length - 1; at >= 0; at--) {
    if (end[at]! < 0xff) {
      end[at]!++;
      return end.subarray(0, at + 1);
    }
  }
  throw new PdError('FLOTILLA_PD_INTERNAL', 'a metadata prefix of only 0xff bytes has no end');
}

/** The smallest key greater than `key`. */
function keyAfter(key: Uint8Array): Uint8Array {
  const next = new Uint8Array(key.length + 1);
  next.set(key);
  return next;
}
