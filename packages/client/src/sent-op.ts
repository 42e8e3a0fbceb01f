/**
 * One operation handed to a store's channel and raced against its call's deadline and signal.
 * It is the channel's PendingOp itself: the channel's answer settles the call's promise
 * directly, one promise per operation and no intermediate `then` (a point call used to go
 * through an answer promise, a race promise and their callbacks: two promises and two
 * microtask hops more per operation, at 40,000 operations a second).
 */
import type { KvOp } from '@flotilla/wire';
import { CallRace, type CallContext } from './backoff.ts';
import type { OpOutcome, PendingOp, StoreChannel } from './store-channel.ts';

export class SentOp extends CallRace implements PendingOp {
  sent = false;
  done = false;
  readonly deadline: number;

  /** Submits `op` to `channel`; `resolve` gets the channel's outcome, `reject` the call's deadline or abort error. */
  constructor(
    readonly op: KvOp,
    ctx: CallContext,
    private readonly channel: StoreChannel,
    private readonly write: boolean,
    private readonly resolve: (outcome: OpOutcome) => void,
    private readonly reject: (err: unknown) => void,
  ) {
    super(ctx);
    this.deadline = ctx.deadline;
    if (write) ctx.writesInFlight++;
    channel.submit(this);
  }

  /** The channel's answer (called once, by the channel). */
  settle(outcome: OpOutcome): void {
    if (!this.finish()) return;
    if (this.write) {
      this.ctx.writesInFlight--;
      const applied = outcome.kind === 'result' ? outcome.result.op !== 'error' || outcome.result.error.code === 'FLOTILLA_TIMEOUT' : outcome.maybeApplied;
      if (applied) this.ctx.writesMaybeApplied++;
    }
    this.resolve(outcome);
  }

  /**
   * The call's deadline passed or its signal fired first. The error is made after the op left
   * the channel: a write that was still queued was never sent, and the call must not report it
   * as maybe applied (it did, when the error was made first).
   */
  protected giveUp(aborted: boolean): void {
    if (!this.finish()) return;
    // Never sent: certainly not applied. Sent: its outcome is unknown (it stays in flight).
    if (this.channel.cancel(this) && this.write) this.ctx.writesInFlight--;
    this.reject(aborted ? this.ctx.abortedError() : this.ctx.deadlineError(undefined, this.channel.label));
  }
}
