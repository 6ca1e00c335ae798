// Crash recovery at start (DESIGN §6). For every task that is not finished:
//   pending  -> queued again, in its original order;
//   running with a step whose process still lives, or ended while no daemon ran and left its
//     exit status -> queued; the runner re-attaches to it (no re-run);
//   running with a step that started and did not finish otherwise -> the step's leftover process tree
//     is killed (pid checked against its start time, so a reused pid is never hit), then
//     the step re-runs as a new attempt, or with on_interrupt: pause the task becomes
//     interrupted;
//   running between steps -> queued again;
//   an unreadable checkpoint -> repaired from task.json.bak or task.log, else quarantined.
// Awaiting approval, failed and finished tasks are left as they are.
import type { Logger } from 'pino';
import { AtlasError, isAtlasError } from '../errors.js';
import type { StepState, TaskRecord } from '../store/records.js';
import type { RepairResult } from '../store/repair.js';
import type { Store, StoreIndex } from '../store/store.js';
import type { IndexScan } from '../store/task-index.js';
import { compareIds } from '../store/task-ids.js';
import { killLeftover, reattachable } from './reattach.js';
import { INTERRUPTED_ERROR, interruptedResult, stepEvent } from '../store/step-states.js';
import { transition } from './transitions.js';

export interface RecoveryReport {
  tasks_seen: number;
  requeued: string[];
  rerun: string[];
  paused: string[];
  /** Tasks whose running step is re-attached (its process lives, or its status was left). */
  reattached: string[];
  killed_groups: number;
  swept_temp_files: number;
  unreadable: Array<{ id: string; error: string }>;
  repaired: RepairResult[];
  duration_ms: number;
}

export interface RecoveryContext {
  store: Store;
  index: StoreIndex;
  killGraceMs: number;
  log: Logger | undefined;
  /** Called after recovery changed a task itself (paused it): `since` / `sinceResults` are the first new transition / step result. */
  settled(task: TaskRecord, since: number, sinceResults: number): void;
}

export interface RecoveryResult {
  report: RecoveryReport;
  /** Tasks to run again, in their original order. */
  toQueue: TaskRecord[];
  /** Ids recovery looked at. */
  candidates: Map<string, string>;
}

export async function recoverTasks(ctx: RecoveryContext, scan: IndexScan): Promise<RecoveryResult> {
  const started = performance.now();
  const report: RecoveryReport = { tasks_seen: scan.tasks, requeued: [], rerun: [], paused: [], reattached: [], killed_groups: 0, swept_temp_files: 0, unreadable: [], repaired: [], duration_ms: 0 };
  // Only unfinished tasks (and unreadable ones) need recovery; the index found them without reading the rest.
  const candidates = new Map<string, string>();
  for (const t of ctx.index.list({ status: ['pending', 'running'] })) candidates.set(t.id, t.workspace);
  for (const u of ctx.index.unreadableTasks()) candidates.set(u.id, u.workspace);
  const toQueue: TaskRecord[] = [];
  for (const [id, workspace] of candidates) {
    report.swept_temp_files += (await ctx.store.tasks.sweep(workspace, id)).length;
    let task: TaskRecord;
    try {
      task = await readOrRepair(ctx, workspace, id, report);
      ctx.index.put(task);
    } catch (err) {
      report.unreadable.push({ id, error: (err as Error).message });
      ctx.log?.warn({ task: id }, `recovery skipped task ${id}: ${(err as Error).message}`);
      continue;
    }
    if (task.status === 'pending') {
      toQueue.push(task);
      report.requeued.push(id);
      continue;
    }
    if (task.status !== 'running') continue;
    const step = task.steps[task.current_step];
    // A durable wait that let go of its slot was not cut off: it goes on with its deadline.
    if (step?.status !== 'running' || step.parked_until) {
      report.requeued.push(id);
      toQueue.push(task);
      continue;
    }
    if (step.process && reattachable(step, ctx.store.paths.taskDir(workspace, id))) {
      // Its process outlived the daemon, or ended while none ran and left its status: the
      // runner re-attaches to it (or records its result) instead of running it again.
      report.reattached.push(id);
      toQueue.push(task);
      continue;
    }
    if (step.process && (await killLeftover(step, ctx.killGraceMs))) report.killed_groups++;
    const policy = (step.definition as { on_interrupt?: string }).on_interrupt ?? 'rerun';
    if (policy === 'rerun') {
      report.rerun.push(id);
      toQueue.push(task);
      continue;
    }
    try {
      await pause(ctx, id);
      report.paused.push(id);
    } catch (err) {
      report.unreadable.push({ id, error: (err as Error).message });
    }
  }
  // Queue in the original order; the scheduler applies priority on top.
  toQueue.sort((a, b) => (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : compareIds(a.id, b.id)));
  report.duration_ms = Math.round(performance.now() - started);
  ctx.log?.info({ recovery: { ...report, requeued: report.requeued.length, rerun: report.rerun.length, reattached: report.reattached.length } }, 'recovery finished');
  return { report, toQueue, candidates };
}

/** on_interrupt: pause: the cut-off attempt is recorded and the task waits for `atlas resume`. */
async function pause(ctx: RecoveryContext, id: string): Promise<void> {
  let since = 0;
  let sinceResults = 0;
  const t = await ctx.store.tasks.updateTask(id, (t) => {
    since = t.transitions.length;
    sinceResults = t.step_results.length;
    const s = t.steps[t.current_step]!;
    t.step_results.push(interruptedResult(s, t.current_step, s.started_at ?? t.updated_at, new Date().toISOString(), `${INTERRUPTED_ERROR} (on_interrupt: pause)`));
    stepEvent(s, { kind: 'interrupt' });
    transition(t, 'interrupted', `step ${s.name} was interrupted and has on_interrupt: pause; resume it when it is safe`);
  });
  ctx.settled(t, since, sinceResults);
}

/** Reads a task for recovery; an unreadable checkpoint is restored from task.json.bak, rebuilt from task.log, or quarantined. */
async function readOrRepair(ctx: RecoveryContext, workspace: string, id: string, report: RecoveryReport): Promise<TaskRecord> {
  try {
    const r = await ctx.store.tasks.readTaskAt(workspace, id);
    if (r.source === 'primary') return r.task;
  } catch (err) {
    if (!isAtlasError(err, 'corrupt')) throw err;
  }
  const fixed: RepairResult = await ctx.store.repairTask(workspace, id);
  report.repaired.push(fixed);
  ctx.log?.warn({ task: id, repair: fixed }, `task ${id}: ${fixed.problem ?? 'unreadable'}; ${fixed.action.replace(/_/g, ' ')}`);
  if (fixed.action === 'quarantined') throw new AtlasError('corrupt', `task ${id} could not be recovered and was moved to ${fixed.quarantined_to}`);
  return (await ctx.store.tasks.readTaskAt(workspace, id)).task;
}
