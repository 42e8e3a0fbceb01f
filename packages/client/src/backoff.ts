/**
 * A call's time: its deadline and AbortSignal, and the capped, jittered backoff between its
 * attempts. Waits never outlive the deadline and end at once when the signal fires.
 */
import { performance } from 'node:perf_hooks';
import { clientLimits } from './constants.ts';
import { ClientError } from './errors.ts';

/** Exponential backoff with full jitter: uniform in [0, min(max, base·2^attempt)]. */
export function backoffMs(attempt: number, random: () => number = Math.random, baseMs: number = clientLimits.backoffMsBase, maxMs: number = clientLimits.backoffMsMax): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/** One call's deadline and signal. */
export class CallContext {
  /** performance.now() past which the call fails. */
  readonly deadline: number;
  /** Writes of this call sent to a store and not answered yet. */
  writesInFlight = 0;
  /** Writes of this call that applied, or whose outcome is unknown. */
  writesMaybeApplied = 0;

  constructor(
    timeoutMs: number,
    readonly signal: AbortSignal | undefined,
    readonly what: string,
  ) {
    this.deadline = performance.now() + timeoutMs;
  }

  /** Whether a write of this call may have taken effect. */
  get unknownOutcome(): boolean {
    return this.writesInFlight > 0 || this.writesMaybeApplied > 0;
  }

  remainingMs(): number {
    return this.deadline - performance.now();
  }

  /** Throws DEADLINE_EXCEEDED or ABORTED when the call is over. */
  check(): void {
    if (this.signal?.aborted) throw this.abortedError();
    if (this.remainingMs() <= 0) throw this.deadlineError();
  }

  /**
   * `cause`: the last attempt's error. `waitingFor`: what the call still waited on when time ran
   * out, for a deadline that came before any attempt ended (a slow first connection).
   */
  deadlineError(cause?: unknown, waitingFor?: string): ClientError {
    const why = cause instanceof Error ? ` (last error: ${cause.message})` : waitingFor ? ` while waiting for ${waitingFor}` : '';
    return new ClientError('FLOTILLA_DEADLINE_EXCEEDED', `${this.what}: deadline exceeded${why}`, {
      cause,
      unknownOutcome: this.unknownOutcome,
    });
  }

  abortedError(): ClientError {
    return new ClientError('FLOTILLA_ABORTED', `${this.what}: aborted`, { cause: this.signal?.reason, unknownOutcome: this.unknownOutcome });
  }

  /**
   * Waits `ms`, at most until the deadline (then throws DEADLINE_EXCEEDED with `cause`), and
   * throws ABORTED at once when the signal fires.
   */
  async sleep(ms: number, cause?: unknown): Promise<void> {
    if (this.signal?.aborted) throw this.abortedError();
    if (this.remainingMs() <= 0) throw this.deadlineError(cause);
    const remaining = this.remainingMs();
    const wait = Math.max(0, Math.min(ms, remaining));
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(this.abortedError());
      };
      const timer = setTimeout(() => {
        this.signal?.removeEventListener('abort', onAbort);
        resolve();
      }, wait);
      this.signal?.addEventListener('abort', onAbort, { once: true });
    });
    if (ms >= remaining) throw this.deadlineError(cause);
  }

  /**
   * Races `work` with the deadline and the signal. `waitingFor` names the work in the deadline
   * error. `onGiveUp` runs when the call gives up first (the work may still finish; its result
   * is then ignored).
   */
  race<T>(work: Promise<T>, waitingFor: string, onGiveUp?: () => void): Promise<T> {
    try {
      this.check();
    } catch (err) {
      onGiveUp?.();
      return Promise.reject(err);
    }
    return new Promise<T>((resolve, reject) => void new Race(this, work, waitingFor, resolve, reject, onGiveUp));
  }
}

/**
 * One race of a call's work against its deadline and signal. A class rather than closures kept
 * in consts: tsx compiles with esbuild's keepNames, which names each such closure with an
 * Object.defineProperty call — per operation here (benchmarks/RESULTS.md).
 */
class Race<T> {
  private done = false;
  private readonly timer: NodeJS.Timeout;
  private readonly abortListener: (() => void) | undefined;

  constructor(
    private readonly ctx: CallContext,
    work: Promise<T>,
    waitingFor: string,
    private readonly resolve: (value: T) => void,
    private readonly reject: (err: unknown) => void,
    private readonly onGiveUp: (() => void) | undefined,
  ) {
    this.timer = setTimeout(() => this.giveUp(ctx.deadlineError(undefined, waitingFor)), Math.max(0, ctx.remainingMs()));
    if (ctx.signal) {
      this.abortListener = () => this.giveUp(ctx.abortedError());
      ctx.signal.addEventListener('abort', this.abortListener, { once: true });
    }
    work.then(
      (value) => {
        if (this.finish()) this.resolve(value);
      },
      (err: unknown) => {
        if (this.finish()) this.reject(err);
      },
    );
  }

  /** Ends the race; false when it had ended already. */
  private finish(): boolean {
    if (this.done) return false;
    this.done = true;
    clearTimeout(this.timer);
    if (this.abortListener) this.ctx.signal?.removeEventListener('abort', this.abortListener);
    return true;
  }

  private giveUp(error: unknown): void {
    if (!this.finish()) return;
    this.onGiveUp?.();
    this.reject(error);
  }
}
