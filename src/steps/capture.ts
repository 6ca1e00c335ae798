// Output helpers shared by step executors: keeping a bounded tail, teeing a sink, and
// capturing a command's stdout (bounded) for commands whose answer we need.
import type { StepContext } from './executor.js';
import { runProcess, type OutputSink, type RunResult, type StreamName } from './process.js';

/** Keeps the last `max` characters written to it. */
export class Tail implements OutputSink {
  private chunks: string[] = [];
  private size = 0;
  constructor(private readonly max = 4096) {}
  write(_stream: StreamName, text: string): void {
    this.chunks.push(text);
    this.size += text.length;
    while (this.size - (this.chunks[0]?.length ?? 0) >= this.max && this.chunks.length > 1) this.size -= this.chunks.shift()!.length;
  }
  text(): string {
    const all = this.chunks.join('');
    return all.length > this.max ? all.slice(all.length - this.max) : all;
  }
}

/** Collects one stream up to `cap` characters; says whether anything was cut. */
export class Collector implements OutputSink {
  private parts: string[] = [];
  private size = 0;
  truncated = false;
  constructor(
    private readonly stream: StreamName,
    private readonly cap: number,
  ) {}
  write(stream: StreamName, text: string): void {
    if (stream !== this.stream) return;
    const room = this.cap - this.size;
    if (room <= 0) {
      this.truncated = true;
      return;
    }
    const part = text.length > room ? text.slice(0, room) : text;
    if (part.length < text.length) this.truncated = true;
    this.parts.push(part);
    this.size += part.length;
  }
  text(): string {
    return this.parts.join('');
  }
}

export function tee(...sinks: OutputSink[]): OutputSink {
  return { write: (s, t) => sinks.forEach((k) => k.write(s, t)) };
}

/** Runs a short query command (not gated, no step output) and returns its stdout. */
export async function capture(ctx: StepContext, command: string, cap = 1024 * 1024): Promise<{ result: RunResult; stdout: string; stderr: string }> {
  const out = new Collector('stdout', cap);
  const err = new Collector('stderr', 64 * 1024);
  const result = await runProcess({
    command,
    cwd: ctx.cwd,
    env: ctx.env,
    signal: ctx.signal,
    timeoutMs: ctx.timeoutMs ?? 120_000,
    killGraceMs: ctx.config.kill_grace_ms,
    output: tee(out, err),
  });
  return { result, stdout: out.text(), stderr: err.text() };
}
