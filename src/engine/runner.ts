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
import { errnoCode, isAtlasError, storageError } from '../errors.js';
import type { StepProcess, StepResult, StepState, TaskRecord, TaskStatus } from '../store/records.js';
import type { Store } from '../store/store.js';
import type { LogRecord } from '../store/task-log.js';
import { attemptFiles, ensureRunDir, filesAt, removeAttemptFiles } from '../steps/attempt-files.js';
import type { AttemptRun, StepContext, StepOutcome } from '../steps/executor.js';
import { sleep } from '../steps/process.js';
import { AttemptOutput, resumePoint, type OutputResume } from './attempt-output.js';
import { killLeftover, reattachable } from './reattach.js';
import { resolveStepCwd } from '../steps/step-cwd.js';
import { EXECUTORS } from '../steps/registry.js';
import { parseDuration, type StepSpec } from '../templates/schema.js';
import { inputEnvName, interpolate, lastRejectReason } from './interpolate.js';
import { transition } from './transitions.js';
import { interruptedResult, stepEvent } from '../store/step-states.js';

/** cancel: the user's; shutdown: the daemon drains; lease_lost: another daemon took the task (write nothing);
 *  detach: the daemon restarts and leaves running steps running, for the next one to re-attach;
 *  park: a long durable wait let go of the task (shared store) until its deadline. */
export type StopReason = 'cancel' | 'shutdown' | 'lease_lost' | 'detach' | 'park';

export interface RunnerHooks {
  /** Called after every checkpoint with the task as written. */
  onCheckpoint(task: TaskRecord): void;
  /** Called for every log record written. */
  onLog(task: TaskRecord, record: LogRecord): void;
  /** True once the engine is draining: no new step may start. */
  draining(): boolean;
  /** A shared store: lets go of the task while a durable wait waits (no lease held; any
   *  daemon picks it up at the deadline). True when the runner is to stop now. */
  park?(task: TaskRecord): boolean;
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
  const taskDir = store.paths.taskDir(task.workspace, task.id);
  // An attempt's run files (output, exit status) go once its result is durable.
  const finished: string[] = [];
  const checkpoint = async (logSync = false, durable = true) => {
    if (logSync) await Promise.all([store.tasks.checkpoint(task), store.syncLog(task.workspace, task.id)]);
    else await store.tasks.checkpoint(task, { durable });
    rc.hooks.onCheckpoint(task);
    if (logSync) for (const base of finished.splice(0)) removeAttemptFiles(taskDir, base);
  };
  const attemptDone = (proc: StepProcess | null) => {
    if (proc?.run) finished.push(proc.run);
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
    if (step.status === 'completed') {
      task.current_step++;
      continue;
    }
    let attach: StepProcess | undefined;
    if (step.status === 'running' && step.parked_until) {
      // A durable wait that let go of the task while it waited goes on: same attempt, same deadline.
      delete step.parked_until;
      step.status = 'pending';
      step.attempts -= 1;
    }
    if (step.status === 'running') {
      if (step.process && reattachable(step, taskDir)) {
        // Its process outlived the daemon (or ended while none ran and left its status): re-attach.
        attach = step.process;
        log({ event: 'step_reattached', step: step.name, step_index: index, attempt: step.attempts, pid: attach.pid });
      } else {
        // The previous attempt was cut off by a crash or a stop: it re-runs as a new attempt.
        const end = await interrupted(task, index, step, rc, checkpoint, log, move, attemptDone);
        if (end !== 'next') return end === 'stopped' ? 'stopped' : 'settled';
      }
    }
    if (!attach && step.status === 'pending' && step.next_attempt_at) {
      // A retry's backoff holds across a restart: the attempt waits for its recorded time.
      await sleep(Date.parse(step.next_attempt_at) - Date.now(), rc.signal);
      if (rc.signal.aborted) return stopped(rc, checkpoint, move);
    }
    const end = await runStep(task, index, step, rc, checkpoint, log, move, attemptDone, attach);
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

/**
 * A running step whose process cannot be re-attached (the daemon stopped it, the machine
 * rebooted, or it ended without a status): its leftover tree is killed and the attempt is
 * recorded as interrupted; then it re-runs as a new attempt, or with on_interrupt: pause the
 * task stops as interrupted.
 */
async function interrupted(task: TaskRecord, index: number, step: StepState, rc: RunContext, checkpoint: Checkpoint, log: Log, move: Move, attemptDone: AttemptDone): Promise<'next' | 'settled' | 'stopped'> {
  if (step.process) await killLeftover(step, rc.config.kill_grace_ms);
  attemptDone(step.process);
  const at = new Date().toISOString();
  task.step_results.push(interruptedResult(step, index, step.started_at ?? at, at));
  log({ event: 'step_interrupted', step: step.name, step_index: index, attempt: step.attempts });
  if (((step.definition as { on_interrupt?: string }).on_interrupt ?? 'rerun') !== 'pause') return 'next';
  stepEvent(step, { kind: 'interrupt' });
  move('interrupted', `step ${step.name} was interrupted and has on_interrupt: pause; resume it when it is safe`);
  await checkpoint(true);
  return 'settled';
}

type AttemptDone = (proc: StepProcess | null) => void;

async function runStep(
  task: TaskRecord,
  index: number,
  step: StepState,
  rc: RunContext,
  checkpoint: Checkpoint,
  log: Log,
  move: Move,
  attemptDone: AttemptDone,
  attachTo?: StepProcess,
): Promise<'next' | 'settled' | 'stopped'> {
  const spec = step.definition as unknown as StepSpec;
  const policy = retryPolicy(spec.retries, rc.config.retries);
  const taskDir = rc.store.paths.taskDir(task.workspace, task.id);
  let attach = attachTo;
  for (;;) {
    let resume: OutputResume | undefined;
    if (attach) {
      resume = resumePoint(rc.store.paths.taskLog(task.workspace, task.id), index, step.attempts);
    } else {
      stepEvent(step, { kind: 'start' });
      log({ event: 'step_started', step: step.name, step_index: index, attempt: step.attempts, type: step.type });
    }
    const attempt = step.attempts;
    const startedAt = step.started_at ?? new Date().toISOString();
    const files = attach?.run ? filesAt(taskDir, attach.run) : attemptFiles(taskDir, index, attempt);
    const output = new AttemptOutput(step, index, attempt, rc.config.output_cap, rc.store.artifacts(task.workspace, task.id), log, resume);
    let outcome: StepOutcome;
    const run: AttemptRun = { files, home: rc.store.paths.root, next: 0, attach, offsets: resume?.offsets, detaching: () => rc.stopReason() === 'detach', cpuMs: null };
    try {
      if (!attach) ensureRunDir(taskDir);
      outcome = await EXECUTORS[spec.type as keyof typeof EXECUTORS].run(makeContext(task, index, step, spec, attempt, rc, checkpoint, output, run));
    } catch (err) {
      // Out of descriptors or disk space: the engine retries the task once there is room
      // (the attempt is re-attached or re-run then); the step did not fail.
      const transient = ['EMFILE', 'ENFILE', 'ENOSPC'].includes(errnoCode(err) ?? '');
      if (isAtlasError(err, 'conflict') || isAtlasError(err, 'storage') || transient) {
        output.close();
        throw transient ? storageError(`run step ${step.name} of`, task.id, err) : err;
      }
      const error = isAtlasError(err, 'invalid_input') ? err.message : `internal error: ${(err as Error).message}`;
      outcome = { status: 'failed', exit_code: null, signal: null, error, artifacts: [], files_changed: [] };
    }
    attach = undefined;
    const stopReason = rc.stopReason();
    if (outcome.status === 'canceled' && (stopReason === 'shutdown' || stopReason === 'detach' || stopReason === 'lease_lost' || stopReason === 'park')) {
      // Stopped with the daemon: left for the next start, which re-attaches (detach) or re-runs it.
      output.close();
      if (stopReason === 'shutdown' && step.process?.run) removeAttemptFiles(taskDir, step.process.run);
      return 'stopped';
    }
    if (outcome.interrupted) {
      // Ended while no daemon ran, and left no status: as if it had been cut off.
      output.close();
      const end = await interrupted(task, index, step, rc, checkpoint, log, move, attemptDone);
      if (end !== 'next') return end;
      continue;
    }
    const artifacts = [...outcome.artifacts];
    const outName = await output.finish();
    if (outName) artifacts.push(outName);
    outcome = { ...outcome, artifacts };
    attemptDone(step.process);

    const completedAt = new Date().toISOString();
    const result = resultOf(step, index, outcome, startedAt, completedAt, output);
    if (run.cpuMs !== null) result.cpu_ms = run.cpuMs;
    if (typeof run.peakRssKb === 'number') result.peak_rss_kb = run.peakRssKb;
    task.step_results.push(result);
    // A human step's attempt ends by asking: the record says it waits, so no reader shows it as done.
    log({ event: 'step_finished', ...result, ...(outcome.status === 'awaiting_approval' ? { awaiting_approval: true } : {}) });

    if (outcome.status === 'awaiting_approval') {
      stepEvent(step, { kind: 'wait' });
      move('awaiting_approval', `step ${step.name} waits for approval`);
      await checkpoint(true);
      return 'settled';
    }
    if (outcome.status === 'completed') {
      stepEvent(step, { kind: 'complete', at: completedAt });
      task.current_step = index + 1;
      if (task.current_step >= task.steps.length) {
        move('completed', 'all steps finished');
      }
      await checkpoint(true);
      return task.current_step >= task.steps.length ? 'settled' : 'next';
    }
    if (outcome.status === 'canceled') {
      stepEvent(step, { kind: 'fail', error: outcome.error, at: completedAt });
      move('abandoned', 'canceled by the user');
      await checkpoint(true);
      return 'settled';
    }
    // failed or timed out
    if (attempt <= policy.max) {
      const delay = backoff(policy.backoff_ms, policy.max_backoff_ms, attempt);
      stepEvent(step, { kind: 'retry', error: outcome.error, next_attempt_at: new Date(Date.now() + delay).toISOString() });
      log({ event: 'step_retry', step: step.name, attempt, next_attempt: attempt + 1, delay_ms: delay, error: outcome.error });
      await checkpoint(true);
      await sleep(delay, rc.signal);
      if (rc.signal.aborted) return (await stopped(rc, checkpoint, move)) === 'stopped' ? 'stopped' : 'settled';
      continue;
    }
    stepEvent(step, { kind: 'fail', error: outcome.error, at: completedAt });
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

function resultOf(step: StepState, index: number, o: StepOutcome, startedAt: string, completedAt: string | null, output?: AttemptOutput): StepResult {
  const end = completedAt ?? new Date().toISOString();
  const status: StepResult['status'] = o.status === 'awaiting_approval' ? 'completed' : o.status;
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
  run: AttemptRun,
): StepContext {
  const timeoutMs = spec.timeout !== undefined ? (parseDuration(spec.timeout) ?? null) : rc.config.step_timeout_ms;
  const startedAt = performance.now();
  const cwd = resolveStepCwd(task.workdir, spec.cwd);
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
    memory: { list: () => rc.store.memory.list(task.workspace), add: (e) => rc.store.memory.add(task.workspace, e) },
    output,
    async recordProcess(proc) {
      step.process = proc;
      await checkpoint(false, false);
    },
    park: rc.hooks.park
      ? async (until) => {
          step.parked_until = until.toISOString();
          await checkpoint(true);
          return rc.hooks.park!(task);
        }
      : undefined,
    async recordDeadline(deadline) {
      if (step.deadline) return new Date(step.deadline);
      step.deadline = deadline.toISOString();
      await checkpoint();
      return deadline;
    },
    interpolate: (text, mode) => interpolate(text, task, mode),
    outputTail: () => output.tail.text(),
    run,
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
