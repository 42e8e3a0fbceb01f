/**
 * One interface over both systems' clients, so the load generator is the same code for both:
 * Flotilla through its SDK (`@flotilla/client`, one shared client that coalesces concurrent
 * calls per store), etcd through the `etcd3` npm client (gRPC, all members as hosts). Reads are
 * linearizable on both (the default of both clients).
 */
import { Etcd3, Range } from 'etcd3';
import { createClient, type FlotillaClient } from '../../packages/client/src/index.ts';
import type { Operation } from './workloads.ts';

export type SystemName = 'flotilla' | 'etcd';

export interface KvAdapter {
  readonly system: SystemName;
  /** Runs one operation; resolves with the rows it found (reads: 0 or 1, scans: up to the limit). */
  run(op: Operation, value: Buffer): Promise<number>;
  /** Writes every key with `value` (the preload), in batches. */
  load(keys: readonly string[], value: Buffer): Promise<void>;
  close(): Promise<void>;
}

/** A call's deadline on both systems. */
export const CALL_TIMEOUT_MS = 10_000;
const LOAD_BATCH_FLOTILLA = 512;
/** etcd's default --max-txn-ops is 128. */
const LOAD_BATCH_ETCD = 128;
const LOAD_BATCHES_IN_FLIGHT = 8;

async function inBatches(keys: readonly string[], size: number, write: (batch: readonly string[]) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < keys.length) {
      const batch = keys.slice(next, next + size);
      next += size;
      await write(batch);
    }
  };
  await Promise.all(Array.from({ length: LOAD_BATCHES_IN_FLIGHT }, worker));
}

export class FlotillaAdapter implements KvAdapter {
  readonly system = 'flotilla';
  private readonly client: FlotillaClient;

  constructor(pdUrls: readonly string[]) {
    this.client = createClient({ pd: pdUrls, timeoutMs: CALL_TIMEOUT_MS });
  }

  async run(op: Operation, value: Buffer): Promise<number> {
    switch (op.kind) {
      case 'read':
        return (await this.client.get(op.key)) === null ? 0 : 1;
      case 'update':
      case 'insert':
        await this.client.put(op.key, value);
        return 0;
      case 'scan':
        return (await this.client.scan({ start: op.key, limit: op.limit, pageSize: op.limit })).length;
    }
  }

  load(keys: readonly string[], value: Buffer): Promise<void> {
    return inBatches(keys, LOAD_BATCH_FLOTILLA, (batch) => this.client.putMany(batch.map((k) => [k, value] as const)));
  }

  /** Requests sent and operations in them (how much the SDK coalesced). */
  stats(): { requests: number; ops: number } {
    const { requests, ops } = this.client.stats();
    return { requests, ops };
  }

  close(): Promise<void> {
    return this.client.close();
  }
}

export class EtcdAdapter implements KvAdapter {
  readonly system = 'etcd';
  private readonly client: Etcd3;

  constructor(clientUrls: readonly string[]) {
    this.client = new Etcd3({
      hosts: [...clientUrls],
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + CALL_TIMEOUT_MS }),
    });
  }

  async run(op: Operation, value: Buffer): Promise<number> {
    switch (op.kind) {
      case 'read':
        return (await this.client.get(op.key).buffer()) === null ? 0 : 1;
      case 'update':
      case 'insert':
        await this.client.put(op.key).value(value);
        return 0;
      case 'scan': {
        // [key, end of the key space): etcd's range end "\0" means "every key >= key".
        const rows = await this.client.getAll().inRange(new Range(op.key, Buffer.from([0]))).limit(op.limit).exec();
        return rows.kvs.length;
      }
    }
  }

  load(keys: readonly string[], value: Buffer): Promise<void> {
    return inBatches(keys, LOAD_BATCH_ETCD, async (batch) => {
      await this.client
        // A transaction whose condition always holds: the way to write many keys in one request.
        .if(batch[0]!, 'Version', '>', -1)
        .then(...batch.map((k) => this.client.put(k).value(value)))
        .commit();
    });
  }

  close(): Promise<void> {
    this.client.close();
    return Promise.resolve();
  }
}
