// Repairing a task whose checkpoint cannot be read (DESIGN §6): task.json, else
// task.json.bak, else a rebuild from task.log, else the task directory is moved to
// $ATLAS_HOME/quarantine/ and reported, never deleted.
//
// The rebuild replays the log's lifecycle records over the task as it was created
// (`task_created` holds the whole initial record). It is conservative: a step counts as
// finished only where the log says it finished; a step that started without a recorded end
// is left running, so recovery runs it again. Every step change goes through the step state
// machine (step-states.ts), as the runner's did.
import fsp from 'node:fs/promises';
import path from 'node:path';
import { AtlasError, isAtlasError, storageError } from '../errors.js';
import { ensureDir, fsyncDir, writeFileDurable } from './atomic.js';
import type { HomePaths } from './paths.js';
import { TERMINAL_STATUSES, isTaskStatus, type StepResult, type TaskRecord } from './records.js';
import { decodeTask, encodeTask } from './task-codec.js';
import { readLog, type LogRecord } from './task-log.js';
import { stepEvent } from './step-states.js';

/** The log records changes that already happened: replayed without the table's check (a torn line may hide one). */
const REPLAY = { replay: true } as const;

export type RepairAction = 'none' | 'restored_backup' | 'rebuilt_from_log' | 'quarantined';

export interface RepairResult {
  id: string;
  workspace: string;
  action: RepairAction;
  problem: string | null;
  /** Where a quarantined task now lives. */
  quarantined_to?: string;
}

type Readable = { ok: true; task: TaskRecord } | { ok: false; error: AtlasError };

async function readable(file: string): Promise<Readable> {
  try {
    return { ok: true, task: decodeTask(await fsp.readFile(file, 'utf8'), file) };
  } catch (err) {
    if (isAtlasError(err)) return { ok: false, error: err };
    return { ok: false, error: new AtlasError('corrupt', `${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { details: { file } }) };
  }
}

/** What is wrong with a task's checkpoint, without changing anything. */
export async function diagnoseTask(paths: HomePaths, ws: string, id: string): Promise<{ problem: string | null; fix: RepairAction }> {
  const primary = await readable(paths.taskFile(ws, id));
  if (primary.ok) return { problem: null, fix: 'none' };
  if (primary.error.code === 'unsupported_schema') return { problem: primary.error.message, fix: 'none' };
  const backup = await readable(paths.taskBackup(ws, id));
  const rebuilt = await rebuildFromLog(paths, ws, id);
  if (backup.ok && !(rebuilt && progress(rebuilt) > progress(backup.task))) return { problem: primary.error.message, fix: 'restored_backup' };
  return { problem: primary.error.message, fix: rebuilt ? 'rebuilt_from_log' : 'quarantined' };
}

/** How far a task has got: finished attempts, then status changes. */
function progress(t: TaskRecord): number {
  return t.step_results.length * 1_000_000 + t.transitions.length;
}

/** Makes task.json readable again, or quarantines the task. The caller must own the task. */
export async function repairTask(paths: HomePaths, ws: string, id: string): Promise<RepairResult> {
  const file = paths.taskFile(ws, id);
  const primary = await readable(file);
  if (primary.ok) return { id, workspace: ws, action: 'none', problem: null };
  const problem = primary.error.message;
  // A file from a newer atlas is not ours to touch.
  if (primary.error.code === 'unsupported_schema') return { id, workspace: ws, action: 'none', problem };
  const backup = await readable(paths.taskBackup(ws, id));
  const rebuilt = await rebuildFromLog(paths, ws, id);
  // The backup is one checkpoint behind; the log may know that a step finished since. Take
  // whichever is further along, so a step recorded as finished is never run again.
  if (backup.ok && !(rebuilt && progress(rebuilt) > progress(backup.task))) {
    await writeFileDurable(file, encodeTask(backup.task));
    return { id, workspace: ws, action: 'restored_backup', problem };
  }
  if (rebuilt) {
    await writeFileDurable(file, encodeTask(rebuilt));
    return { id, workspace: ws, action: 'rebuilt_from_log', problem };
  }
  const to = await quarantine(paths, ws, id);
  return { id, workspace: ws, action: 'quarantined', problem, quarantined_to: to };
}

export async function quarantine(paths: HomePaths, ws: string, id: string): Promise<string> {
  await ensureDir(paths.quarantineDir);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const to = path.join(paths.quarantineDir, `${ws}--${id}--${stamp}`);
  await fsp.rename(paths.taskDir(ws, id), to).catch((err: unknown) => {
    throw storageError('quarantine', paths.taskDir(ws, id), err);
  });
  // Both directory entries changed: the move survives a power cut only once both are synced.
  await fsyncDir(paths.tasksDir(ws));
  await fsyncDir(paths.quarantineDir);
  return to;
}

/** Rebuilds a task from its log, or undefined when the log does not hold its creation. */
export async function rebuildFromLog(paths: HomePaths, ws: string, id: string): Promise<TaskRecord | undefined> {
  const { records } = await readLog(paths.taskLog(ws, id), (r) => r.event !== 'output');
  return replay(records, ws, id);
}

export function replay(records: LogRecord[], ws: string, id: string): TaskRecord | undefined {
  const created = records.find((r) => r.event === 'task_created');
  const initial = created?.['task'] as TaskRecord | undefined;
  if (!initial || initial.id !== id || initial.workspace !== ws || !Array.isArray(initial.steps)) return undefined;
  const task: TaskRecord = structuredClone(initial);
  let events = 1;
  for (const r of records) {
    const at = typeof r.time === 'string' ? r.time : task.updated_at;
    const idx = typeof r['step_index'] === 'number' ? r['step_index'] : task.current_step;
    const step = task.steps[idx];
    switch (r.event) {
      case 'transition': {
        const to = r['to_status'];
        if (!isTaskStatus(to)) break;
        const from = task.status;
        if (to === 'pending' && from !== 'pending' && from !== 'awaiting_approval') {
          // resumed: the current step runs again
          const s = task.steps[task.current_step];
          if (s) stepEvent(s, { kind: 'reset' }, REPLAY);
        }
        task.transitions.push({ from_status: from, to_status: to, timestamp: at, reason: String(r['reason'] ?? '') });
        task.status = to;
        if (TERMINAL_STATUSES.has(to)) task.completed_at = at;
        if (to === 'awaiting_approval') {
          const s = task.steps[task.current_step];
          if (s) stepEvent(s, { kind: 'wait' }, REPLAY);
        }
        break;
      }
      case 'step_started':
        if (!step) break;
        stepEvent(step, { kind: 'start', attempt: Number(r['attempt'] ?? step.attempts + 1), at }, REPLAY);
        task.current_step = idx;
        break;
      case 'step_finished': {
        if (!step) break;
        const { event: _e, level: _l, time: _t, awaiting_approval: _w, ...result } = r;
        task.step_results.push(result as unknown as StepResult);
        if (r['status'] === 'completed' && step.type !== 'human') {
          stepEvent(step, { kind: 'complete', at }, REPLAY);
          task.current_step = idx + 1;
        } else if (r['status'] !== 'completed') {
          stepEvent(step, { kind: 'fail', error: typeof r['error'] === 'string' ? r['error'] : null, at }, REPLAY);
        }
        break;
      }
      case 'step_retry': {
        if (!step) break;
        const delay = typeof r['delay_ms'] === 'number' ? r['delay_ms'] : 0;
        const error = typeof r['error'] === 'string' ? r['error'] : null;
        stepEvent(step, { kind: 'retry', error, next_attempt_at: new Date(Date.parse(at) + delay).toISOString() }, REPLAY);
        break;
      }
      case 'step_failed_continuing':
        if (step) task.current_step = idx + 1;
        break;
      case 'approved': {
        const s = task.steps[task.current_step];
        if (s) {
          stepEvent(s, { kind: 'complete', at }, REPLAY);
          task.current_step++;
        }
        break;
      }
      case 'rejected': {
        const from = typeof r['retry_from'] === 'string' ? task.steps.findIndex((s) => s.name === r['retry_from']) : -1;
        if (from >= 0) {
          for (let i = from; i <= task.current_step && i < task.steps.length; i++) stepEvent(task.steps[i]!, { kind: 'reset' }, REPLAY);
          task.current_step = from;
        }
        break;
      }
      default:
        continue;
    }
    events++;
    task.updated_at = at;
  }
  task.revision = events;
  return task;
}
