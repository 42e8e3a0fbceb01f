/**
 * Progress of a long operation on stderr. On a terminal one line is redrawn in place (a bar when
 * the total is known); otherwise (pipes, CI logs) a line is printed only when the label
 * changes, so logs stay short.
 */
const BAR_WIDTH = 24;
/** Redraws at most this often on a terminal. */
const REDRAW_MS = 100;

export class Progress {
  private lastLabel = '';
  private lastDrawMs = 0;
  private drawn = false;
  private readonly startedMs = performance.now();

  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    /** A terminal: the line is redrawn in place, so a label may carry live numbers. */
    readonly interactive: boolean = stream.isTTY === true,
  ) {}

  /**
   * Shows `label`, with a bar when `total` is given (a count alone when only `done` is). Off a
   * terminal only `label` is printed, once per change: keep counts out of it.
   */
  update(label: string, done?: number, total?: number): void {
    if (!this.interactive) {
      if (label !== this.lastLabel) this.stream.write(`${label}\n`);
      this.lastLabel = label;
      return;
    }
    const now = performance.now();
    if (label === this.lastLabel && now - this.lastDrawMs < REDRAW_MS && done !== total) return;
    this.lastLabel = label;
    this.lastDrawMs = now;
    const elapsed = `${((now - this.startedMs) / 1000).toFixed(1)}s`;
    let text = `${label} (${elapsed})`;
    if (done !== undefined && total !== undefined && total > 0) {
      const filled = Math.round((Math.min(done, total) / total) * BAR_WIDTH);
      text = `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${done}/${total} ${text}`;
    } else if (done !== undefined) {
      text = `${done} ${text}`;
    }
    // A pseudo-terminal may report 0 columns: then assume a usual width.
    const width = this.stream.columns || 100;
    this.stream.write(`\r\x1b[2K${text.slice(0, Math.max(10, width - 1))}`);
    this.drawn = true;
  }

  /** Ends the progress line; prints `message` (if any) on its own line. */
  done(message?: string): void {
    if (this.interactive && this.drawn) this.stream.write('\r\x1b[2K');
    this.drawn = false;
    if (message !== undefined) this.stream.write(`${message}\n`);
  }
}
