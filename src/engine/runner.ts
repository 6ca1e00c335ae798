// Running one task: its steps in order, with the checkpoint protocol.
//
// Per attempt, the writes are:
//   1. before any side effect: the attempt number, and the pid/pgid/start time of the
//      step's process (the process is spawned gated and only let run after this write).
//      This one is atomic but not fsynced: it exists so that recovery after a crash of the
//      daemon can kill the leftover process tree, and a power cut leaves no process to kill
//      (the step then runs again from the last durable checkpoint). A wait or ci step's
//      deadline is written durably. Steps with neither write nothing here.
//   2. after it: the attempt's result, the step's new status, the next step and any status
//      change, in one checkpoint, while the log records of the attempt are fsynced
//      concurrently. The step counts as finished only once both are on disk.
// So a shell step costs one fsynced checkpoint plus one atomic rename, and a zero wait one
// fsynced checkpoint.
import path from 'node:path';
import type { Config } from '../config/config.js';
import { retryPolicy } from '../config/config.js';
import { isAtlasError, storageError } from '../errors.js';
import type { StepResult, StepState, TaskRecord, TaskStatus } from '../store/records.js';
import type { ArtifactStream, Store } from '../store/store.js';
import { Tail } from '../steps/capture.js';
import type { StepContext, StepOutcome } from '../steps/executor.js';
import type { StreamName } from '../steps/process.js';
import { sleep } from '../steps/process.js';
import { EXECUTORS } from '../steps/registry.js';
import { parseDuration, type StepSpec } from '../templates/schema.js';
import { inputEnvName, interpolate, lastRejectReason } from './interpolate.js';
import { transition } from './transitions.js';

/** cancel: the user's; shutdown: the daemon drains; lease_lost: another daemon took the task (write nothing). */
export type StopReason = 'cancel' | 'shutdown' | 'lease_lost';

export interface RunnerHooks {
  /** Called after every checkpoint with the task as written. */
  onCheckpoint(task: TaskRecord): void;
  /** Called for every log record written. */
  onLog(task: TaskRecord, record: Record<string, unknown>): void;
  /** True once the engine is draining: no new step may start. */
  draining(): boolean;
}

export interface RunContext {
  store: Store;
  config: Config;
  hooks: RunnerHooks;
  signal: AbortSignal;
  /** Why `signal` fired. */
  stopReason(): StopReason | undefined;
  /** The environment captured at `atlas start` (env.json); undefined: the daemon's own. */
  environment?: Record<string, string> | undefined;
}

/** What stopped the runner: the task settled (any status it leaves in), or the daemon is stopping. */
export type RunEnd = 'settled' | 'stopped';

export async function runTask(task: TaskRecord, rc: RunContext): Promise<RunEnd> {
  const { store } = rc;
  // logSync: the attempt's log records are made durable with the checkpoint (a step's end).
  // durable false: the pre-spawn record, which only has to outlive a crash of this process
  // (a power cut takes the step's processes with it; the step then simply runs again).
  const checkpoint = async (logSync = false, durable = true) => {
    if (logSync) await Promise.all([store.tasks.checkpoint(task), store.syncLog(task.workspace, task.id)]);
    else await store.tasks.checkpoint(task, { durable });
    rc.hooks.onCheckpoint(task);
  };
  const log = (record: Record<string, unknown> & { event: string }) => {
    store.appendLog(task.workspace, task.id, record);
    rc.hooks.onLog(task, record);
  };
  /** A status change, through the transition table, recorded in transitions[] and the log. */
  const move: Move = (to, reason) => {
    const from = task.status;
    transition(task, to, reason);
    log({ event: 'transition', from_status: from, to_status: to, reason });
  };

  if (task.status === 'pending') {
    move('running', 'picked up by the engine');
  }

  while (task.current_step < task.steps.length) {
    if (rc.signal.aborted) return stopped(rc, checkpoint, move);
    if (rc.hooks.draining()) return 'stopped';
    const index = task.current_step;
    const step = task.steps[index]!;
    if (step.status === 'completed' || step.status === 'skipped') {
      task.current_step++;
      continue;
    }
    if (step.status === 'running') {
      // The previous attempt was cut off by a crash or a stop: it re-runs as a new attempt.
      task.step_results.push(resultOf(step, index, outcomeInterrupted(), step.started_at ?? new Date().toISOString(), null));
      log({ event: 'step_interrupted', step: step.name, step_index: index, attempt: step.attempts });
    }
    const end = await runStep(task, index, step, rc, checkpoint, log, move);
    if (end !== 'next') return end === 'stopped' ? 'stopped' : 'settled';
  }
  if (task.status === 'running') {
    move('completed', 'all steps finished');
    await checkpoint(true);
  }
  return 'settled';
}

type Checkpoint = (logSync?: boolean, durable?: boolean) => Promise<void>;
type Log = (record: Record<string, unknown> & { event: string }) => void;
type Move = (to: TaskStatus, reason: string) => void;

async function stopped(rc: RunContext, checkpoint: Checkpoint, move: Move): Promise<RunEnd> {
  if (rc.stopReason() !== 'cancel') return 'stopped';
  move('abandoned', 'canceled by the user');
  await checkpoint(true);
  return 'settled';
}

async function runStep(task: TaskRecord, index: number, step: StepState, rc: RunContext, checkpoint: Checkpoint, log: Log, move: Move): Promise<'next' | 'settled' | 'stopped'> {
  const spec = step.definition as unknown as StepSpec;
  const policy = retryPolicy(spec.retries, rc.config.retries);
  for (;;) {
    const attempt = step.attempts + 1;
    const startedAt = new Date().toISOString();
    step.status = 'running';
    step.attempts = attempt;
    step.started_at = startedAt;
    step.completed_at = null;
    step.error = null;
    step.process = null;
    step.next_attempt_at = null;
    log({ event: 'step_started', step: step.name, step_index: index, attempt, type: step.type });

    const output = new AttemptOutput(task, step, index, attempt, rc, log);
    let outcome: StepOutcome;
    try {
      outcome = await EXECUTORS[spec.type as keyof typeof EXECUTORS].run(makeContext(task, index, step, spec, attempt, rc, checkpoint, output));
    } catch (err) {
      if (isAtlasError(err, 'conflict') || isAtlasError(err, 'storage')) {
        output.close();
        throw err;
      }
      outcome = { status: 'failed', exit_code: null, signal: null, error: `internal error: ${(err as Error).message}`, artifacts: [], files_changed: [] };
    }
    const artifacts = [...outcome.artifacts];
    const outName = await output.finish();
    if (outName) artifacts.push(outName);
    outcome = { ...outcome, artifacts };

    if (outcome.status === 'canceled' && (rc.stopReason() === 'shutdown' || rc.stopReason() === 'lease_lost')) return 'stopped';
    const completedAt = new Date().toISOString();
    const result = resultOf(step, index, outcome, startedAt, completedAt, output);
    task.step_results.push(result);
    log({ event: 'step_finished', ...result });

    if (outcome.status === 'awaiting_approval') {
      step.status = 'waiting';
      move('awaiting_approval', `step ${step.name} waits for approval`);
      await checkpoint(true);
      return 'settled';
    }
    if (outcome.status === 'completed') {
      step.status = 'completed';
      step.completed_at = completedAt;
      task.current_step = index + 1;
      if (task.current_step >= task.steps.length) {
        move('completed', 'all steps finished');
      }
      await checkpoint(true);
      return task.current_step >= task.steps.length ? 'settled' : 'next';
    }
    if (outcome.status === 'canceled') {
      step.status = 'failed';
      step.error = outcome.error;
      step.completed_at = completedAt;
      move('abandoned', 'canceled by the user');
      await checkpoint(true);
      return 'settled';
    }
    // failed or timed out
    step.error = outcome.error;
    if (attempt <= policy.max) {
      const delay = backoff(policy.backoff_ms, policy.max_backoff_ms, attempt);
      step.status = 'pending';
      step.deadline = null; // a retry is a fresh start, with a fresh deadline
      step.next_attempt_at = new Date(Date.now() + delay).toISOString();
      log({ event: 'step_retry', step: step.name, attempt, next_attempt: attempt + 1, delay_ms: delay, error: outcome.error });
      await checkpoint(true);
      await sleep(delay, rc.signal);
      if (rc.signal.aborted) return (await stopped(rc, checkpoint, move)) === 'stopped' ? 'stopped' : 'settled';
      continue;
    }
    step.status = 'failed';
    step.completed_at = completedAt;
    if (spec.continue_on_error) {
      log({ event: 'step_failed_continuing', step: step.name, error: outcome.error });
      task.current_step = index + 1;
      if (task.current_step >= task.steps.length) {
        move('completed', `all steps finished (${step.name} failed, continue_on_error)`);
      }
      await checkpoint(true);
      return task.current_step >= task.steps.length ? 'settled' : 'next';
    }
    const to = outcome.fail_status ?? 'failed';
    const reason = `step ${step.name} failed: ${outcome.error ?? 'unknown error'}`;
    task.error = reason;
    move(to, reason);
    await checkpoint(true);
    return 'settled';
  }
}

/** Exponential backoff with full jitter in the upper half: base * 2^(attempt-1), capped. */
export function backoff(baseMs: number, maxMs: number, attempt: number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

function outcomeInterrupted(): StepOutcome {
  return { status: 'failed', exit_code: null, signal: null, error: 'interrupted: the daemon stopped while this attempt ran', artifacts: [], files_changed: [] };
}

function resultOf(step: StepState, index: number, o: StepOutcome, startedAt: string, completedAt: string | null, output?: AttemptOutput): StepResult {
  const end = completedAt ?? new Date().toISOString();
  const status: StepResult['status'] =
    o.error?.startsWith('interrupted:') && o.status === 'failed'
      ? 'interrupted'
      : o.status === 'awaiting_approval'
        ? 'completed'
        : o.status === 'timed_out'
          ? 'timed_out'
          : o.status === 'canceled'
            ? 'canceled'
            : o.status;
  const r: StepResult = {
    step_index: index,
    step_name: step.name,
    attempt: step.attempts,
    status,
    started_at: startedAt,
    completed_at: end,
    duration_ms: Math.max(0, Date.parse(end) - Date.parse(startedAt)),
    exit_code: o.exit_code,
    signal: o.signal,
    error: o.error,
    artifacts: o.artifacts,
    files_changed: o.files_changed,
    output_bytes: output?.bytes ?? 0,
    output_truncated: output?.truncated ?? false,
  };
  if (o.commit !== undefined) r.commit = o.commit;
  return r;
}

function makeContext(
  task: TaskRecord,
  index: number,
  step: StepState,
  spec: StepSpec,
  attempt: number,
  rc: RunContext,
  checkpoint: Checkpoint,
  output: AttemptOutput,
): StepContext {
  const timeoutMs = spec.timeout !== undefined ? (parseDuration(spec.timeout) ?? null) : rc.config.step_timeout_ms;
  const startedAt = performance.now();
  const cwd = spec.cwd ? path.resolve(task.workdir, spec.cwd) : task.workdir;
  // Built on first use: steps that run no process (wait, human) never pay for it.
  let env: NodeJS.ProcessEnv | undefined;
  const buildEnv = (): NodeJS.ProcessEnv => {
    // The rule (README "Step environment"): the caller's environment captured at start (or
    // the daemon's, for a task started without one), then the template's env, then the
    // step's, then atlas's own variables.
    const e: NodeJS.ProcessEnv = { ...(rc.environment ?? daemonEnv()), ...task.env, ...(spec.env ?? {}) };
    for (const [k, v] of Object.entries(task.inputs)) e[inputEnvName(k)] = v;
    e['ATLAS_TASK_ID'] = task.id;
    e['ATLAS_WORKSPACE'] = task.workspace;
    e['ATLAS_STEP'] = step.name;
    e['ATLAS_ATTEMPT'] = String(attempt);
    e['ATLAS_HOME'] = rc.store.paths.root;
    if (task.rejections?.length) e['ATLAS_REJECT_REASON'] = lastRejectReason(task);
    else delete e['ATLAS_REJECT_REASON'];
    return e;
  };
  return {
    task,
    index,
    attempt,
    spec,
    cwd,
    get env() {
      return (env ??= buildEnv());
    },
    signal: rc.signal,
    timeoutMs,
    remainingMs: () => (timeoutMs === null ? null : Math.max(0, timeoutMs - (performance.now() - startedAt))),
    config: rc.config,
    artifacts: rc.store.artifacts(task.workspace, task.id),
    output,
    async recordProcess(proc) {
      step.process = proc;
      await checkpoint(false, false);
    },
    async recordDeadline(deadline) {
      if (step.deadline) return new Date(step.deadline);
      step.deadline = deadline.toISOString();
      await checkpoint();
      return deadline;
    },
    interpolate: (text, mode) => interpolate(text, task, mode),
    outputTail: () => output.tail.text(),
  };
}

let baseEnv: NodeJS.ProcessEnv | undefined;

/** The daemon's environment, read once (process.env is slow to copy), without inherited
 *  ATLAS_INPUT_* variables: {{ inputs.x }} in a command expands $ATLAS_INPUT_X, so one
 *  inherited from the daemon's environment must not stand in for an input not given. */
function daemonEnv(): NodeJS.ProcessEnv {
  if (!baseEnv) {
    baseEnv = { ...process.env };
    for (const k of Object.keys(baseEnv)) if (k.startsWith('ATLAS_INPUT_')) delete baseEnv[k];
  }
  return baseEnv;
}

/**
 * One attempt's output: streamed into task.log as `output` records and into a versioned
 * artifact <step>.output.<n>.log (created on the first byte), both capped at
 * `output_cap` bytes; a cap that cuts anything says so in the log and the result.
 */
class AttemptOutput {
  bytes = 0;
  truncated = false;
  readonly tail = new Tail(4096);
  private readonly stream: ArtifactStream;
  /** A log write that failed (a full disk): output arrives in stream callbacks, so the error is kept and thrown by finish(). */
  private failure: unknown;

  constructor(
    private readonly task: TaskRecord,
    private readonly step: StepState,
    private readonly index: number,
    private readonly attempt: number,
    private readonly rc: RunContext,
    private readonly log: Log,
  ) {
    this.stream = rc.store.artifacts(task.workspace, task.id).openStream(`${step.name}.output`, '.log', attempt);
  }

  write(stream: StreamName, text: string): void {
    this.tail.write(stream, text);
    const cap = this.rc.config.output_cap;
    const len = Buffer.byteLength(text);
    if (this.truncated) {
      this.bytes += len;
      return;
    }
    let chunk = text;
    // The first byte past the cap cuts, also when the output before it filled the cap exactly.
    if (this.bytes + len > cap) {
      chunk = Buffer.from(text).subarray(0, cap - this.bytes).toString('utf8');
      this.truncated = true;
    }
    this.bytes += len;
    try {
      if (chunk) this.log({ event: 'output', step: this.step.name, step_index: this.index, attempt: this.attempt, stream, text: chunk });
      if (this.truncated) {
        this.log({ event: 'output_truncated', step: this.step.name, attempt: this.attempt, cap_bytes: cap, message: `output past ${cap} bytes was cut; the step goes on` });
      }
    } catch (err) {
      this.failure ??= err;
    }
    if (chunk) this.toArtifact(chunk);
    if (this.truncated) this.toArtifact(`\n[atlas: output truncated at ${cap} bytes]\n`);
  }

  private toArtifact(text: string): void {
    if (this.failure !== undefined) return;
    try {
      this.stream.write(text);
    } catch (err) {
      // The log still has the output; a failing artifact must not fail the step.
      this.failure ??= err;
    }
  }

  /** Makes the artifact durable and closes it; returns its name, if any output was written. */
  async finish(): Promise<string | undefined> {
    if (this.failure !== undefined) {
      this.close();
      throw storageError('record the output of step', this.step.name, this.failure);
    }
    if (this.bytes > this.rc.config.output_cap) this.truncated = true;
    return this.stream.finish();
  }

  close(): void {
    this.stream.close();
  }
}
