/**
 * The one condition wait of every test and benchmark (no fixed sleeps): re-checks `condition`
 * until it holds, and fails with `what` once `deadlineMs` passed.
 */

/**
 * `intervalMs` 0 re-checks on every turn of the event loop (in-process conditions: a transport
 * flush, a worker's answer); a condition that costs a round trip or waits on a timer-driven
 * process (an election, PD over HTTP) polls every few milliseconds instead of spinning.
 */
export async function waitFor(what: string, condition: () => boolean | Promise<boolean>, deadlineMs = 10_000, intervalMs = 0): Promise<void> {
  const until = performance.now() + deadlineMs;
  while (!(await condition())) {
    if (performance.now() > until) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await (intervalMs > 0 ? new Promise((resolve) => setTimeout(resolve, intervalMs)) : new Promise((resolve) => setImmediate(resolve)));
  }
}
