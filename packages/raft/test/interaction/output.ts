/** The text a directive produces; indentation nests under `> 1 handling Ready` headers. */
export class Output {
  private lines: string[] = [];
  private depth = 0;
  /** `log-level none`: print nothing (set-up blocks then just say "ok"). */
  quiet = false;

  line(text: string): void {
    if (!this.quiet) this.lines.push(`${'  '.repeat(this.depth)}${text}`);
  }

  indented(body: () => void): void {
    this.depth++;
    try {
      body();
    } finally {
      this.depth--;
    }
  }

  take(): string[] {
    const taken = this.lines;
    this.lines = [];
    this.depth = 0;
    return taken;
  }
}
