/** Shared test harness (not a test file): stores on the in-memory twins, and small helpers. */
import { MemoryKvDisk, MemoryKvEngine, MemoryLogDisk, MemoryLogEngine, type RegionMeta } from '@flotilla/storage';
import { MemoryTransport, type MemoryNetwork } from '@flotilla/transport';
import type { RegionEpoch } from '@flotilla/wire';
import { KvService, MultiRaftHost, type HostOptions } from '../src/index.ts';

export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
export const text = (b: Uint8Array | null): string | null => (b === null ? null : new TextDecoder().decode(b));

/** Polls a condition until it holds or the deadline passes (no fixed sleeps). */
export async function waitFor(what: string, condition: () => boolean | Promise<boolean>, deadlineMs = 10_000): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (!(await condition())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export const EPOCH: RegionEpoch = { version: 1, confVer: 1 };

/** Region 1 = [a, n) on stores 1, 2, 3 (peers 11, 12, 13). Test keys must sort inside it. */
export const REGION: RegionMeta = {
  id: 1,
  startKey: bytes('a'),
  endKey: bytes('n'),
  epoch: EPOCH,
  peers: [
    { id: 11, storeId: 1, role: 'voter' },
    { id: 12, storeId: 2, role: 'voter' },
    { id: 13, storeId: 3, role: 'voter' },
  ],
};

export interface MemoryStore {
  readonly id: number;
  readonly host: MultiRaftHost;
  readonly service: KvService;
  readonly kv: MemoryKvEngine;
  readonly transport: MemoryTransport;
  readonly logDisk: MemoryLogDisk;
  readonly kvDisk: MemoryKvDisk;
}

export type MemoryStoreOptions = Partial<Omit<HostOptions, 'storeId' | 'log' | 'kv' | 'transport'>>;

/** One store on the in-memory twins (not started). Pass disks to restart a stopped store. */
export function memoryStore(network: MemoryNetwork, id: number, options: MemoryStoreOptions = {}, disks?: { logDisk: MemoryLogDisk; kvDisk: MemoryKvDisk }): MemoryStore {
  const logDisk = disks?.logDisk ?? new MemoryLogDisk();
  const kvDisk = disks?.kvDisk ?? new MemoryKvDisk();
  const kv = new MemoryKvEngine(kvDisk);
  const transport = new MemoryTransport(network, { localStore: id });
  const host = new MultiRaftHost({ tickMs: 5, hibernateAfterTicks: 0, seed: id, ...options, storeId: id, log: new MemoryLogEngine(logDisk), kv, transport });
  return { id, host, service: new KvService(host, kv), kv, transport, logDisk, kvDisk };
}

/** Tells every started store where every other one listens. */
export function connectAll(stores: Iterable<{ readonly id: number; readonly transport: MemoryTransport }>): void {
  const all = [...stores];
  for (const a of all) for (const b of all) if (a !== b) a.transport.setPeer(b.id, b.transport.address());
}

export function leaderOf<S extends { readonly host: MultiRaftHost }>(stores: Iterable<S>, regionId: number): S | undefined {
  return [...stores].find((s) => s.host.peer(regionId)?.isLeader() === true);
}
