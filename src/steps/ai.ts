// ai: pipes the step's prompt (inputs interpolated as text) to the configured agent command
// (`ai.command` in config.yaml, or the step's own `command:`) on standard input, in the
// workspace, and saves the agent's answer (its stdout) as a versioned artifact
// <step>.answer.<n>.md. The agent edits files in the workspace as it sees fit. After a
// rejection the newest reason is added to the prompt unless it already uses {{ review.reason }}.
// The workspace's memory (src/engine/memory.ts) is given as {{ memory }} and as the file named
// by ATLAS_MEMORY_FILE; the entries the agent writes to $ATLAS_MEMORY_OUT are stored once the
// step has succeeded.
import fs from 'node:fs';
import { readMemoryOut, renderMemory, storeMemoryOut } from '../engine/memory.js';
import { outcome, processOutcome, runCommand, type StepContext, type StepExecutor, type StepOutcome } from './executor.js';
import type { StepSpec } from '../templates/schema.js';

const MEMORY_REF = /\{\{\s*memory\s*\}\}/;

type AiSpec = Extract<StepSpec, { type: 'ai' }>;

export const aiExecutor: StepExecutor = {
  async run(ctx: StepContext): Promise<StepOutcome> {
    const spec = ctx.spec as AiSpec;
    const command = spec.command ?? ctx.config.ai_command;
    if (!command) {
      return outcome('failed', { error: "no agent command is configured: set 'ai.command' in config.yaml (for example ai: { command: \"claude -p\" })" });
    }
    const files = ctx.run.files;
    const attaching = ctx.run.attach !== undefined;
    let memory = '';
    if (!attaching) {
      // A re-attached agent already has its memory file; a new attempt gets the memory as it is now.
      memory = renderMemory(await ctx.memory.list(), ctx.config.memory.max_bytes).text;
      fs.writeFileSync(files.memory, memory, { mode: 0o600 });
      fs.writeFileSync(files.memoryOut, '', { mode: 0o600 });
    }
    // {{ memory }} is put in after the inputs, so nothing in an entry is read as a reference.
    let prompt = spec.prompt
      .split(MEMORY_REF)
      .map((part) => ctx.interpolate(part, 'text'))
      .join(memory);
    // A re-run after `atlas reject --retry-from` hears why, also when the prompt does not ask
    // for {{ review.reason }} itself.
    const rejection = ctx.task.rejections?.at(-1);
    if (rejection && !/\{\{\s*review\.reason\s*\}\}/.test(spec.prompt)) {
      prompt += `\n\nA reviewer rejected the previous attempt at step ${rejection.step}: ${rejection.reason}\n`;
    }
    const env = { ...ctx.env, ATLAS_MEMORY_FILE: files.memory, ATLAS_MEMORY_OUT: files.memoryOut };
    const r = await runCommand({ ...ctx, env }, command, { stdin: prompt });
    const o = processOutcome(r, 'the agent command');
    // The answer is the agent's stdout, read from the attempt's file: it is whole even when the
    // daemon restarted while the agent ran.
    const answer = readHead(ctx.run.files.out, ctx.config.output_cap);
    const name = await ctx.artifacts.saveVersioned(`${spec.name}.answer`, '.md', answer.text + (answer.truncated ? '\n[atlas: answer truncated at the output cap]\n' : ''));
    if (o.status === 'completed') await keepMemory(ctx, spec.name);
    return { ...o, artifacts: [name] };
  },
};

/** Stores the entries the agent wrote to ATLAS_MEMORY_OUT; a bad line is reported and skipped. */
async function keepMemory(ctx: StepContext, step: string): Promise<void> {
  const lines = readMemoryOut(ctx.run.files.memoryOut);
  for (const l of lines) {
    if (l.problem) ctx.output.write('stderr', `[atlas] memory: line ${l.line} of $ATLAS_MEMORY_OUT skipped: ${l.problem}\n`);
  }
  const added = await storeMemoryOut(ctx.memory, lines, ctx.task.id, `${ctx.task.id}:${step}:${ctx.attempt}`);
  if (added.length) ctx.output.write('stderr', `[atlas] memory: added ${added.map((e) => `#${e.id}`).join(', ')} to workspace ${ctx.task.workspace}\n`);
}

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
