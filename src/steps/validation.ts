// validation: runs every command in order and records, in a versioned artifact
// (validation.<n>.json), each command's exit code, duration and output tail. The step fails
// (validation_failed) if any command failed; all commands run so the report is complete,
// unless the step is canceled or times out.
import { Tail, tee } from './capture.js';
import { outcome, processOutcome, runCommand, type StepContext, type StepExecutor, type StepOutcome } from './executor.js';
import { commandList } from './shell.js';
import type { StepSpec } from '../templates/schema.js';

type ValidationSpec = Extract<StepSpec, { type: 'validation' }>;

export interface ValidationReport {
  task_id: string;
  step: string;
  attempt: number;
  passed: boolean;
  started_at: string;
  completed_at: string;
  commands: Array<{ name: string; command: string; exit_code: number | null; signal: string | null; status: string; duration_ms: number; output_tail: string }>;
}

export const validationExecutor: StepExecutor = {
  async run(ctx: StepContext): Promise<StepOutcome> {
    const spec = ctx.spec as ValidationSpec;
    const report: ValidationReport = {
      task_id: ctx.task.id,
      step: spec.name,
      attempt: ctx.attempt,
      passed: true,
      started_at: new Date().toISOString(),
      completed_at: '',
      commands: [],
    };
    let stop: StepOutcome | undefined;
    for (const cmd of commandList(spec)) {
      const tail = new Tail(4096);
      const command = ctx.interpolate(cmd.run, 'shell');
      const r = await runCommand({ ...ctx, output: tee(ctx.output, tail) }, command);
      const o = processOutcome(r, `check '${cmd.name}'`);
      report.commands.push({ name: cmd.name, command, exit_code: r.exitCode, signal: r.signal, status: o.status, duration_ms: Math.round(r.durationMs), output_tail: tail.text() });
      if (o.status !== 'completed') report.passed = false;
      if (o.status === 'canceled' || o.status === 'timed_out') {
        stop = o;
        break;
      }
    }
    report.completed_at = new Date().toISOString();
    const artifact = await ctx.artifacts.saveVersioned('validation', '.json', JSON.stringify(report, null, 2) + '\n');
    if (stop) return { ...stop, artifacts: [artifact], fail_status: 'validation_failed' };
    if (report.passed) return outcome('completed', { artifacts: [artifact], exit_code: 0 });
    const failed = report.commands.filter((c) => c.status !== 'completed').map((c) => c.name);
    return outcome('failed', {
      artifacts: [artifact],
      exit_code: report.commands.find((c) => c.status !== 'completed')?.exit_code ?? null,
      error: `validation failed: ${failed.join(', ')} (see ${artifact})`,
      fail_status: 'validation_failed',
    });
  },
};
