// The live line under `start --follow` and `logs -f` on a terminal: while a step prints
// nothing, a spinner with the step (i/N) and how long it has run, redrawn in place on
// stderr; it is wiped before anything else is printed, so output and the log stay clean.
// Off when stderr is not a terminal (pipes, files, CI logs) and with --json.

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
/** A step that has printed nothing for this long gets the spinner. */
export const QUIET_MS = 1000;

export interface ProgressStream {
  isTTY?: boolean;
  write(s: string): boolean;
}

export class ProgressLine {
  private label: string | undefined;
  private startedAt = 0;
  private lastOutput = 0;
  private frame = 0;
  private shown = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly stream: ProgressStream,
    private readonly enabled = Boolean(stream.isTTY),
    private readonly now: () => number = Date.now,
  ) {}

  /** A step began (`label`: "step 2/5 build"); `startedAt` from its log record. */
  stepStarted(label: string, startedAt: number = this.now()): void {
    this.clear();
    this.label = label;
    this.startedAt = startedAt;
    this.lastOutput = this.now();
    if (this.enabled && !this.timer) {
      this.timer = setInterval(() => this.tick(), 100);
      this.timer.unref();
    }
  }

  /** Called before anything else is printed: wipes the line. */
  beforePrint(): void {
    this.clear();
  }

  /** The step printed something. */
  output(): void {
    this.clear();
    this.lastOutput = this.now();
  }

  stepEnded(): void {
    this.clear();
    this.label = undefined;
  }

  stop(): void {
    this.clear();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.label = undefined;
  }

  /** Draws the line if the step has been quiet long enough; returns what it drew. */
  tick(): string | undefined {
    if (!this.enabled || this.label === undefined) return undefined;
    const t = this.now();
    if (t - this.lastOutput < QUIET_MS) return undefined;
    const secs = Math.max(0, Math.floor((t - this.startedAt) / 1000));
    const elapsed = secs < 60 ? `${secs}s` : `${Math.floor(secs / 60)}m${String(secs % 60).padStart(2, '0')}s`;
    const line = `${FRAMES[this.frame++ % FRAMES.length]} ${this.label} ${elapsed}`;
    this.stream.write(`\r\x1b[2K${line}`);
    this.shown = true;
    return line;
  }

  private clear(): void {
    if (!this.shown) return;
    this.stream.write('\r\x1b[2K');
    this.shown = false;
  }
}
