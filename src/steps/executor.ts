// The one small interface every step type implements. The engine owns state, checkpoints
// and retries; an executor only does its step's work and says how it went.
import type { Config } from '../config/config.js';
import type { StepMemory } from '../engine/memory.js';
import type { StoreArtifacts } from '../store/store.js';
import type { StepProcess, TaskRecord, TaskStatus } from '../store/records.js';
import type { StepSpec } from '../templates/schema.js';
import type { AttemptFiles } from './attempt-files.js';
import { runDetached } from './detached.js';
import type { OutputSink, RunResult, StreamName } from './process.js';

/** How this attempt's commands run: their files, and what to re-attach to. */
export interface AttemptRun {
  files: AttemptFiles;
  /** The next command's number within the step (shared by copies of the context). */
  next: number;
  /** A process an earlier daemon started for this attempt: the command with its number re-attaches to it. */
  attach?: StepProcess | undefined;
  /** How far the output files were already read (re-attach). */
  offsets?: Record<StreamName, number> | undefined;
  /** True when an abort means "leave it running" (a daemon restart). */
  detaching(): boolean;
  /** The home (for the attempt's cgroup). */
  home: string;
  /** CPU time of the attempt's commands so far (ms), where the OS reports it. */
  cpuMs: number | null;
  /** Peak resident memory (KB) of the attempt's commands so far, where it could be sampled. */
  peakRssKb?: number | null;
}

export interface StepContext {
  task: TaskRecord;
  index: number;
  attempt: number;
  spec: StepSpec;
  /** The directory the step runs in (the workspace, or `cwd:` inside it). */
  cwd: string;
  /** Full environment for child processes: the daemon's, the template's, ATLAS_* variables. */
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
  /** The step's timeout in ms (from the step, else the config default), or null. */
  timeoutMs: number | null;
  /** What is left of the step's timeout (monotonic), or null when it has none. */
  remainingMs(): number | null;
  config: Config;
  artifacts: StoreArtifacts;
  /** The task's workspace memory (given to ai steps). */
  memory: StepMemory;
  output: OutputSink;
  /** Persists a spawned process (attempt, pid, pgid, start time) before it is let run. */
  recordProcess(proc: StepProcess): Promise<void>;
  /** Persists an absolute deadline (wait and ci steps), returning the one in force: a deadline
   *  already recorded for this step is kept, so a restart never resets it. */
  recordDeadline(deadline: Date): Promise<Date>;
  /** A shared store: records that the step waits until `until` and lets go of the task; true
   *  when the step is then to return at once (any daemon resumes it at `until`). */
  park?(until: Date): Promise<boolean>;
  /** Replaces {{ inputs.x }}; with shell: true each value is single-quoted for /bin/sh. */
  interpolate(text: string, mode: 'text' | 'shell'): string;
  /** The last few KiB of output of the current attempt. */
  outputTail(): string;
  run: AttemptRun;
}

export type OutcomeStatus = 'completed' | 'failed' | 'timed_out' | 'canceled' | 'awaiting_approval';

export interface StepOutcome {
  status: OutcomeStatus;
  exit_code: number | null;
  signal: string | null;
  error: string | null;
  artifacts: string[];
  files_changed: string[];
  commit?: string | null;
  /** The task status a failure leads to when it is final (default 'failed'). */
  fail_status?: TaskStatus;
  /** The attempt was cut off, not finished: its process ended while no daemon ran and left no
   *  exit status. The runner records it as interrupted and runs it again (or pauses the task). */
  interrupted?: boolean;
}

export interface StepExecutor {
  run(ctx: StepContext): Promise<StepOutcome>;
}

export function outcome(status: OutcomeStatus, fields: Partial<StepOutcome> = {}): StepOutcome {
  return { status, exit_code: null, signal: null, error: null, artifacts: [], files_changed: [], ...fields };
}

/** Runs one command of a step with the context's cancellation, timeout, output and checkpointing. */
export async function runCommand(ctx: StepContext, command: string, extra: { stdin?: string; timeoutMs?: number | null } = {}): Promise<RunResult> {
  const run = ctx.run;
  const n = run.next++;
  const attach = run.attach;
  const attachIndex = attach?.command_index ?? 0;
  if (attach && n < attachIndex) {
    // Ran to success before the daemon restarted (a step stops at its first failure).
    return { exitCode: 0, signal: null, timedOut: false, canceled: false, durationMs: 0 };
  }
  const attaching = attach !== undefined && n === attachIndex;
  if (attaching) run.attach = undefined;
  const offsets = attaching ? run.offsets : undefined;
  const r = await runDetached({
    command,
    cwd: ctx.cwd,
    env: attaching ? {} : ctx.env,
    signal: ctx.signal,
    timeoutMs: attaching ? ctx.timeoutMs : extra.timeoutMs !== undefined ? extra.timeoutMs : ctx.remainingMs(),
    killGraceMs: ctx.config.kill_grace_ms,
    stdin: extra.stdin,
    onSpawn: (p) => ctx.recordProcess(p),
    output: ctx.output,
    files: run.files,
    home: run.home,
    commandIndex: n,
    attach: attaching ? attach : undefined,
    offsets,
    detaching: run.detaching,
  });
  if (typeof r.cpuMs === 'number') run.cpuMs = (run.cpuMs ?? 0) + r.cpuMs;
  if (typeof r.peakRssKb === 'number') run.peakRssKb = Math.max(run.peakRssKb ?? 0, r.peakRssKb);
  return r;
}

/** Maps a finished process to an outcome: a signal or a timeout is never a success. */
export function processOutcome(r: RunResult, what: string, fields: Partial<StepOutcome> = {}): StepOutcome {
  const base = { exit_code: r.exitCode, signal: r.signal, ...fields };
  if (r.lost) return outcome('failed', { ...base, interrupted: true, error: `interrupted: ${what} ended while no daemon ran and left no exit status` });
  if (r.spawnError) return outcome('failed', { ...base, error: `${what} could not start: ${r.spawnError}` });
  if (r.canceled) return outcome('canceled', { ...base, error: `${what} was canceled` });
  if (r.timedOut) return outcome('timed_out', { ...base, error: `${what} timed out` });
  if (r.signal) return outcome('failed', { ...base, error: `${what} was killed by ${r.signal}` });
  if (r.exitCode !== 0) return outcome('failed', { ...base, error: `${what} exited with code ${r.exitCode}` });
  return outcome('completed', base);
}
