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

  /**
   * Throws DEADLINE_EXCEEDED or ABORTED when the call is over; the deadline error names `cause`
   * (the last attempt's error) or `waitingFor`, as deadlineError does.
   */
  check(cause?: unknown, waitingFor?: string): void {
    if (this.signal?.aborted) throw this.abortedError();
    if (this.remainingMs() <= 0) throw this.deadlineError(cause, waitingFor);
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
   * error. When the call gives up first, the work may still finish; its result is then ignored.
   */
  race<T>(work: Promise<T>, waitingFor: string): Promise<T> {
    try {
      this.check(undefined, waitingFor);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<T>((resolve, reject) => void new Race(this, work, waitingFor, resolve, reject));
  }
}

/**
 * A call's race against its deadline and its signal: one timer, one abort listener, ended once
 * (by the work, or by giveUp). A class rather than closures kept in consts: tsx compiles with
 * esbuild's keepNames, which names each such closure with an Object.defineProperty call — per
 * operation here (benchmarks/RESULTS.md).
 */
export abstract class CallRace {
  private finished = false;
  private readonly timer: NodeJS.Timeout;
  private readonly abortListener: (() => void) | undefined;

  /** The caller has checked `ctx` (an aborted signal would never fire its listener). */
  constructor(protected readonly ctx: CallContext) {
    this.timer = setTimeout(() => this.giveUp(false), Math.max(0, ctx.remainingMs()));
    if (ctx.signal) {
      this.abortListener = () => this.giveUp(true);
      ctx.signal.addEventListener('abort', this.abortListener, { once: true });
    }
  }

  /** The deadline passed (`aborted` false) or the signal fired, maybe after the race ended. */
  protected abstract giveUp(aborted: boolean): void;

  /** Ends the race; false when it had ended already. */
  protected finish(): boolean {
    if (this.finished) return false;
    this.finished = true;
    clearTimeout(this.timer);
    if (this.abortListener) this.ctx.signal?.removeEventListener('abort', this.abortListener);
    return true;
  }
}

/** Some work of a call (a PD look-up), raced against the call's deadline and signal. */
class Race<T> extends CallRace {
  constructor(
    ctx: CallContext,
    work: Promise<T>,
    private readonly waitingFor: string,
    private readonly resolve: (value: T) => void,
    private readonly reject: (err: unknown) => void,
  ) {
    super(ctx);
    work.then(
      (value) => {
        if (this.finish()) this.resolve(value);
      },
      (err: unknown) => {
        if (this.finish()) this.reject(err);
      },
    );
  }

  protected giveUp(aborted: boolean): void {
    if (this.finish()) this.reject(aborted ? this.ctx.abortedError() : this.ctx.deadlineError(undefined, this.waitingFor));
  }
}
