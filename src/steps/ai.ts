// ai: pipes the step's prompt (inputs interpolated as text) to the configured agent command
// (`ai.command` in config.yaml, or the step's own `command:`) on standard input, in the
// workspace, and saves the agent's answer (its stdout) as a versioned artifact
// <step>.answer.<n>.md. The agent edits files in the workspace as it sees fit. After a
// rejection the newest reason is added to the prompt unless it already uses {{ review.reason }}.
import fs from 'node:fs';
import { outcome, processOutcome, runCommand, type StepContext, type StepExecutor, type StepOutcome } from './executor.js';
import type { StepSpec } from '../templates/schema.js';

type AiSpec = Extract<StepSpec, { type: 'ai' }>;

export const aiExecutor: StepExecutor = {
  async run(ctx: StepContext): Promise<StepOutcome> {
    const spec = ctx.spec as AiSpec;
    const command = spec.command ?? ctx.config.ai_command;
    if (!command) {
      return outcome('failed', { error: "no agent command is configured: set 'ai.command' in config.yaml (for example ai: { command: \"claude -p\" })" });
    }
    let prompt = ctx.interpolate(spec.prompt, 'text');
    // A re-run after `atlas reject --retry-from` hears why, also when the prompt does not ask
    // for {{ review.reason }} itself.
    const rejection = ctx.task.rejections?.at(-1);
    if (rejection && !/\{\{\s*review\.reason\s*\}\}/.test(spec.prompt)) {
      prompt += `\n\nA reviewer rejected the previous attempt at step ${rejection.step}: ${rejection.reason}\n`;
    }
    const r = await runCommand(ctx, command, { stdin: prompt });
    const o = processOutcome(r, 'the agent command');
    // The answer is the agent's stdout, read from the attempt's file: it is whole even when the
    // daemon restarted while the agent ran.
    const answer = readHead(ctx.run.files.out, ctx.config.output_cap);
    const name = await ctx.artifacts.saveVersioned(`${spec.name}.answer`, '.md', answer.text + (answer.truncated ? '\n[atlas: answer truncated at the output cap]\n' : ''));
    return { ...o, artifacts: [name] };
  },
};

/** The first `cap` bytes of a file (empty when it is missing). */
function readHead(file: string, cap: number): { text: string; truncated: boolean } {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return { text: '', truncated: false };
  }
  try {
    const buf = Buffer.alloc(cap + 1);
    const n = fs.readSync(fd, buf, 0, cap + 1, 0);
    return { text: buf.subarray(0, Math.min(n, cap)).toString('utf8'), truncated: n > cap };
  } finally {
    fs.closeSync(fd);
  }
}
