// shell: `run:` one command, or `commands:` a list run in order until one fails, each with
// /bin/sh -c in the workspace. Inputs inside commands are shell-quoted.
import { processOutcome, runCommand, type StepContext, type StepExecutor, type StepOutcome } from './executor.js';
import type { StepSpec } from '../templates/schema.js';

type ShellSpec = Extract<StepSpec, { type: 'shell' }>;

export function commandList(spec: { run?: string | undefined; commands?: Array<string | { name?: string | undefined; run: string }> | undefined }): Array<{ name: string; run: string }> {
  if (spec.run !== undefined) return [{ name: spec.run, run: spec.run }];
  return (spec.commands ?? []).map((c) => (typeof c === 'string' ? { name: c, run: c } : { name: c.name ?? c.run, run: c.run }));
}

export const shellExecutor: StepExecutor = {
  async run(ctx: StepContext): Promise<StepOutcome> {
    const spec = ctx.spec as ShellSpec;
    let last: StepOutcome | undefined;
    for (const cmd of commandList(spec)) {
      const r = await runCommand(ctx, ctx.interpolate(cmd.run, 'shell'));
      last = processOutcome(r, `command '${cmd.name}'`);
      if (last.status !== 'completed') return last;
    }
    return last!;
  },
};
