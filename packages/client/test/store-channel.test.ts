/**
 * One store's request channel (store-channel.ts) on its own: what it does with a request it
 * can't encode, and the bounds its options may take. The client validates every argument
 * before it reaches a channel, so these are the channel's own guards.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { limits as wire, type KvOp } from '@flotilla/wire';
import { clientLimits } from '../src/constants.ts';
import { isClientError } from '../src/errors.ts';
import { StoreChannel, type OpOutcome, type PendingOp } from '../src/store-channel.ts';
import { FakeStore } from './fake-store.ts';

function pending(op: KvOp): { op: PendingOp; outcome: Promise<OpOutcome> } {
  let settle!: (outcome: OpOutcome) => void;
  const outcome = new Promise<OpOutcome>((resolve) => (settle = resolve));
  return { op: { op, deadline: performance.now() + 5_000, sent: false, done: false, settle }, outcome };
}

describe('store channel', () => {
  const store = new FakeStore((request) => ({ requestId: request.requestId, results: request.ops.map(() => ({ op: 'put' as const })) }));
  after(() => store.close());

  it("fails a request it can't encode as an invalid argument: not sent, not a connection failure, certainly not applied", async () => {
    await store.listen();
    let connectionFailures = 0;
    const channel = new StoreChannel(1, store.address, {}, () => connectionFailures++);
    try {
      // A key over the wire's bound (the client refuses it before it gets this far).
      const bad = pending({ op: 'put', regionId: 1, regionEpoch: { version: 1, confVer: 1 }, key: new Uint8Array(wire.kvKeyBytesMax + 1), value: new Uint8Array(1) });
      channel.submit(bad.op);
      const outcome = await bad.outcome;
      if (outcome.kind !== 'failed') assert.fail(`the request was answered: ${JSON.stringify(outcome.result)}`);
      assert.ok(isClientError(outcome.error, 'FLOTILLA_INVALID_ARGUMENT'), `got ${outcome.error.code}`);
      assert.equal(outcome.maybeApplied, false);
      assert.equal(outcome.connection, false);
      assert.equal(connectionFailures, 0, 'the store is not blamed');
      assert.equal(store.requests.length, 0, 'nothing was sent');
      // The channel still works.
      const good = pending({ op: 'put', regionId: 1, regionEpoch: { version: 1, confVer: 1 }, key: new Uint8Array([1]), value: new Uint8Array(1) });
      channel.submit(good.op);
      assert.deepEqual(await good.outcome, { kind: 'result', result: { op: 'put' } });
    } finally {
      await channel.close();
    }
  });

  it('takes its bounds lowered, never raised past the defaults the wire was checked against', async () => {
    for (const [name, max] of [
      ['batchOpsMax', clientLimits.batchOpsMax],
      ['batchBytesMax', clientLimits.batchBytesMax],
      ['queuedOpsMax', clientLimits.queuedOpsPerStoreMax],
      ['attemptTimeoutMsMax', clientLimits.attemptTimeoutMsMax],
      ['readRequestsInFlightMax', clientLimits.readRequestsInFlightPerStoreMax],
      ['writeRequestsInFlightMax', clientLimits.writeRequestsInFlightPerStoreMax],
    ] as const) {
      for (const value of [0, max + 1, 1.5]) {
        assert.throws(() => new StoreChannel(1, store.address, { [name]: value }), (err: unknown) => isClientError(err, 'FLOTILLA_INVALID_ARGUMENT') && err.message.includes(name), `${name}: ${value}`);
      }
      await new StoreChannel(1, store.address, { [name]: 1 }).close();
    }
  });
});
