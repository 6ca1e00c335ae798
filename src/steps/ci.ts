// ci: polls `command:` every `interval:` (default 30s; may be "{{ inputs.x }}") until it exits 0 (CI passed). Exit 1
// means CI failed (ci_failed); any other exit code means "still running" (for example the
// GitHub CLI's `gh pr checks` exits 8 while checks are pending). The overall deadline
// (`timeout:`, default 30m) is checkpointed, so a restart keeps it; passing it is ci_timeout.
import { sleep } from './process.js';
import { outcome, processOutcome, runCommand, type StepContext, type StepExecutor, type StepOutcome } from './executor.js';
import { parseDuration, type StepSpec } from '../templates/schema.js';

type CiSpec = Extract<StepSpec, { type: 'ci' }>;
const DEFAULT_TIMEOUT_MS = 30 * 60_000;

export const ciExecutor: StepExecutor = {
  async run(ctx: StepContext): Promise<StepOutcome> {
    const spec = ctx.spec as CiSpec;
    const interval = parseDuration(ctx.interpolate(String(spec.interval ?? '30s'), 'text')) ?? 30_000;
    const deadline = await ctx.recordDeadline(new Date(Date.now() + (ctx.timeoutMs ?? DEFAULT_TIMEOUT_MS)));
    const command = ctx.interpolate(spec.command, 'shell');
    for (let poll = 1; ; poll++) {
      const left = deadline.getTime() - Date.now();
      if (left <= 0) return outcome('failed', { error: `CI did not pass before the deadline ${deadline.toISOString()} (${poll - 1} polls)`, fail_status: 'ci_timeout' });
      const r = await runCommand(ctx, command, { timeoutMs: left });
      if (r.timedOut) return outcome('failed', { error: `CI did not pass before the deadline ${deadline.toISOString()}`, fail_status: 'ci_timeout' });
      const o = processOutcome(r, 'the CI status command');
      if (o.status === 'completed' || o.status === 'canceled') return o;
      if (r.exitCode === 1 || r.signal || r.spawnError) return { ...o, error: `CI failed: ${o.error ?? ''}`, fail_status: 'ci_failed' };
      ctx.output.write('stderr', `[atlas] CI still running (exit ${r.exitCode}); polling again in ${Math.round(interval / 1000)}s\n`);
      await sleep(Math.min(interval, Math.max(0, deadline.getTime() - Date.now())), ctx.signal);
      if (ctx.signal.aborted) return outcome('canceled', { error: 'the CI wait was canceled' });
    }
  },
};
