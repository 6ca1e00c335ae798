// The guard against mass destruction (DESIGN §14): more than `limit` deletions or purges
// within `windowMs`, counted across every client of the daemon, are refused unless the
// caller passes force. A slot is taken before the deletion runs (so concurrent callers
// cannot all slip under the limit) and given back if the deletion fails.
import { AtlasError } from '../errors.js';

export const DESTRUCTION_LIMIT = 20;
export const DESTRUCTION_WINDOW_MS = 60_000;

export class DestructionGuard {
  private readonly times: number[] = [];

  constructor(
    private readonly limit = DESTRUCTION_LIMIT,
    private readonly windowMs = DESTRUCTION_WINDOW_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes a slot for one deletion of `what`, or refuses; returns a function that gives the slot back. */
  admit(what: string, force: boolean): () => void {
    const t = this.now();
    while (this.times.length && this.times[0]! <= t - this.windowMs) this.times.shift();
    if (!force && this.times.length >= this.limit) {
      throw new AtlasError(
        'not_allowed',
        `refused to delete ${what}: ${this.times.length} deletions or purges in the last ${Math.round(this.windowMs / 1000)}s already (the limit is ${this.limit} a minute, against mistakes in scripts); wait a minute, or pass --force`,
        { details: { limit: this.limit, window_ms: this.windowMs, recent: this.times.length } },
      );
    }
    this.times.push(t);
    return () => {
      const i = this.times.lastIndexOf(t);
      if (i >= 0) this.times.splice(i, 1);
    };
  }
}
