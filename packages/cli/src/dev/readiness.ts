/**
 * When a development cluster serves: PD has a serving leader, the stores are up, the first
 * region has its voters and a leader, and a write then a read through a store succeed (the SDK).
 */
import { isCliError } from '../errors.ts';
import type { DataClient } from '../data-client.ts';
import type { PdApi, PdRegionJson, PdStoreJson } from '../pd-api.ts';

/** Pause between two looks at the cluster. */
const POLL_MS = 200;
/** The key written and deleted to prove the data path (outside any sensible user keyspace). */
export const READY_PROBE_KEY = new Uint8Array(Buffer.from('\u0000flotilla-dev-ready', 'utf8'));

export interface ReadinessStep {
  readonly label: string;
  readonly done: number;
  readonly total: number;
}

/** Resolves when the cluster serves; throws the last problem seen at the deadline. */
export async function waitUntilServing(pd: PdApi, client: DataClient, stores: number, deadlineMs: number, onStep: (step: ReadinessStep) => void): Promise<void> {
  const deadline = performance.now() + deadlineMs;
  const voters = Math.min(3, stores);
  const total = 4;
  let problem = 'not checked yet';
  for (;;) {
    try {
      const step = await check(pd, client, stores, voters);
      if (step === undefined) {
        onStep({ label: 'serving', done: total, total });
        return;
      }
      problem = step.label;
      onStep(step);
    } catch (err) {
      if (!isCliError(err)) throw err;
      problem = err.message;
      onStep({ label: `waiting: ${err.message}`, done: 0, total });
    }
    if (performance.now() + POLL_MS > deadline) throw new Error(`the cluster did not become ready within ${deadlineMs} ms: ${problem}`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** The first step not done yet, or undefined when all are. */
async function check(pd: PdApi, client: DataClient, stores: number, voters: number): Promise<ReadinessStep | undefined> {
  const ready = await pd.get<{ ready?: boolean; leader?: number }>('/ready');
  if (ready.ready !== true) return { label: 'waiting for a PD leader', done: 0, total: 4 };
  const up = (await pd.get<{ stores: PdStoreJson[] }>('/pd/api/v1/stores')).stores.filter((s) => s.state === 'up').length;
  if (up < stores) return { label: `waiting for stores: ${up} of ${stores} up`, done: 1, total: 4 };
  const first = (await pd.get<{ regions: PdRegionJson[] }>('/pd/api/v1/regions?limit=1')).regions[0];
  const voting = first?.peers.filter((p) => p.role === 'voter').length ?? 0;
  if (!first || voting < voters || first.leader === null) {
    return { label: `waiting for the first region: ${voting} of ${voters} voters${first?.leader ? '' : ', no leader yet'}`, done: 2, total: 4 };
  }
  const value = new Uint8Array(Buffer.from(String(Date.now())));
  await client.put(READY_PROBE_KEY, value);
  const read = await client.get(READY_PROBE_KEY);
  if (read === null || Buffer.compare(read, value) !== 0) return { label: 'waiting for a write to read back', done: 3, total: 4 };
  await client.delete(READY_PROBE_KEY);
  return undefined;
}
