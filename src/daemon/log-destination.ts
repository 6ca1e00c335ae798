// The daemon's own log (daemon.log): a pino destination that can never throw. A full disk
// (ENOSPC), a vanished file or a closed descriptor must not turn a log call inside an error
// path into a second, uncaught error: that once left a task `running` forever, because the
// line that reported a failed checkpoint threw before the retry was scheduled. Lines that
// cannot be written are counted; the first line written once space is back says how many
// were lost.
import fs from 'node:fs';

export class SafeLogDestination {
  protected fd: number | undefined;
  private dropped = 0;
  private firstError: string | undefined;

  constructor(
    protected readonly file: string,
    private readonly mode = 0o600,
  ) {
    this.open();
  }

  /** Lines lost since the last successful write. */
  get droppedLines(): number {
    return this.dropped;
  }

  write(line: string): void {
    if (this.fd === undefined && !this.open()) {
      this.drop(undefined);
      return;
    }
    if (this.dropped > 0) {
      const note = JSON.stringify({ level: 40, time: new Date().toISOString(), pid: process.pid, dropped_lines: this.dropped, msg: `${this.dropped} daemon log line(s) could not be written (${this.firstError ?? 'unknown error'})` }) + '\n';
      if (!this.writeAll(note)) {
        this.dropped++;
        return;
      }
      this.dropped = 0;
      this.firstError = undefined;
    }
    if (!this.writeAll(line)) this.dropped++;
  }

  /** Called with the bytes of each line written (rotation counts them). */
  protected written(_bytes: number): void {}

  private writeAll(text: string): boolean {
    const buf = Buffer.from(text, 'utf8');
    try {
      for (let off = 0; off < buf.length; ) off += fs.writeSync(this.fd!, buf, off, buf.length - off);
      this.written(buf.length);
      return true;
    } catch (err) {
      this.firstError ??= (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      // A short write may have left half a line: the next record starts on a line of its own.
      try {
        fs.writeSync(this.fd!, '\n');
      } catch {
        // still full
      }
      if ((err as NodeJS.ErrnoException).code === 'EBADF') this.fd = undefined;
      return false;
    }
  }

  private drop(err: unknown): void {
    this.dropped++;
    if (err !== undefined) this.firstError ??= (err as NodeJS.ErrnoException).code ?? String(err);
  }

  protected open(): boolean {
    try {
      this.fd = fs.openSync(this.file, 'a', this.mode);
      return true;
    } catch (err) {
      this.firstError ??= (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      this.fd = undefined;
      return false;
    }
  }

  /** pino calls flushSync on exit; writes are synchronous already. */
  flushSync(): void {}

  close(): void {
    if (this.fd === undefined) return;
    try {
      fs.closeSync(this.fd);
    } catch {
      // already closed
    }
    this.fd = undefined;
  }
}
