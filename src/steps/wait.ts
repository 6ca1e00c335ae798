// wait: a durable timer. The deadline (`until:`, or now + `duration:` at the first attempt)
// is checkpointed before waiting, so a restart resumes the same deadline instead of
// starting the wait over.
import { sleep } from './process.js';
import { outcome, type StepContext, type StepExecutor, type StepOutcome } from './executor.js';
import { parseDuration, type StepSpec } from '../templates/schema.js';

type WaitSpec = Extract<StepSpec, { type: 'wait' }>;

/** Waits at least this long let go of their task (shared store). */
const PARK_AFTER_MS = 2000;

export const waitExecutor: StepExecutor = {
  async run(ctx: StepContext): Promise<StepOutcome> {
    const spec = ctx.spec as WaitSpec;
    const wanted = spec.until !== undefined ? new Date(spec.until) : new Date(Date.now() + (parseDuration(spec.duration ?? 0) ?? 0));
    // A zero wait has nothing worth persisting: re-running it after a crash is harmless.
    const deadline = wanted.getTime() <= Date.now() ? wanted : await ctx.recordDeadline(wanted);
    // With a shared store, a wait longer than a few claim polls holds no lease: the task is let
    // go until the deadline, when whichever daemon is free resumes it (same attempt, same deadline).
    if (ctx.park && deadline.getTime() - Date.now() > PARK_AFTER_MS && (await ctx.park(deadline))) {
      return outcome('canceled', { error: `parked until ${deadline.toISOString()}` });
    }
    // Sleep in slices so a long wait tolerates timer limits and wall-clock corrections.
    while (!ctx.signal.aborted) {
      const left = deadline.getTime() - Date.now();
      if (left <= 0) break;
      await sleep(Math.min(left, 60_000), ctx.signal);
    }
    if (ctx.signal.aborted) return outcome('canceled', { error: 'the wait was canceled' });
    return outcome('completed');
  },
};
