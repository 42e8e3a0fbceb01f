/**
 * The PD worker's store heartbeats when the store's state changes (its data disk starts or
 * stops refusing writes): sent at once, and once more after a heartbeat that was already out
 * and may have read the old state. A fake PD client holds each heartbeat until the test lets it go.
 */
import assert from 'node:assert/strict';
import os from 'node:os';
import { describe, it } from 'node:test';
import type { KvEngine } from '@flotilla/storage';
import type { StoreHeartbeat, StoreHeartbeatResponse } from '@flotilla/wire';
import { SILENT_EVENTS } from '../src/host-types.ts';
import type { MultiRaftHost } from '../src/host.ts';
import type { PdClient } from '../src/pd/pd-client.ts';
import { PdWorker } from '../src/pd/pd-worker.ts';
import type { RegionFlow } from '../src/pd/region-flow.ts';
import { waitFor } from './harness.ts';

const NO_TRAFFIC = { writeBytes: 0, writeKeys: 0, readBytes: 0, readKeys: 0 };
const ANSWER: StoreHeartbeatResponse = { operatorRegionIds: [], stores: [] };

/** A PD client whose store heartbeats wait until `answer()` lets the oldest one go. */
function heldClient(): { client: PdClient; sent: StoreHeartbeat[]; answer(): void; close(): void } {
  const sent: StoreHeartbeat[] = [];
  const waiting: (() => void)[] = [];
  const client = {
    storeHeartbeat: (beat: StoreHeartbeat) => {
      sent.push(beat);
      return new Promise<StoreHeartbeatResponse>((resolve) => waiting.push(() => resolve(ANSWER)));
    },
    watchOperators: () => new Promise<never>(() => {}),
    close: async () => {},
  };
  return {
    client: client as unknown as PdClient,
    sent,
    answer: () => waiting.shift()?.(),
    close: () => {
      for (const go of waiting.splice(0)) go();
    },
  };
}

function worker(client: PdClient, refusingWrites: () => boolean): PdWorker {
  const host = { stats: () => ({ peers: 0 }), regionIds: () => [], peer: () => undefined };
  return new PdWorker({
    storeId: 7,
    dataDir: os.tmpdir(),
    client,
    host: host as unknown as MultiRaftHost,
    kv: {} as KvEngine,
    transport: { setPeer: () => {} },
    flow: { takeStore: () => NO_TRAFFIC } as unknown as RegionFlow,
    events: SILENT_EVENTS,
    storeHeartbeatMs: 3_600_000,
    regionHeartbeatMs: 3_600_000,
    refusingWrites,
  });
}

describe('PdWorker store heartbeats on a change of the store', () => {
  it('tells PD at once, and again after a heartbeat that was out when the state changed', async () => {
    const pd = heldClient();
    let refusing = false;
    const w = worker(pd.client, () => refusing);
    try {
      w.storeChanged();
      await waitFor('the first heartbeat', () => pd.sent.length === 1);
      assert.equal(pd.sent[0]!.refusingWrites, false);

      // The disk runs short while that heartbeat is out (it may have read the old state).
      refusing = true;
      w.storeChanged();
      w.storeChanged();
      pd.answer();
      await waitFor('one more heartbeat with the new state', () => pd.sent.length === 2);
      assert.equal(pd.sent[1]!.refusingWrites, true);
      pd.answer();
      await w.storeHeartbeat();
      assert.equal(pd.sent.length, 2, 'two changes while one heartbeat was out make one more heartbeat, not two');

      // Nothing out: a change goes at once.
      refusing = false;
      w.storeChanged();
      await waitFor('the heartbeat saying the disk has room again', () => pd.sent.length === 3);
      assert.equal(pd.sent[2]!.refusingWrites, false);
      pd.answer();
    } finally {
      pd.close();
      await w.stop();
    }
    w.storeChanged();
    assert.equal(pd.sent.length, 3, 'a stopped worker sends nothing');
  });
});
