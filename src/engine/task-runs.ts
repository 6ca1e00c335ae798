// Running a queued task: the scheduler hands an entry to runEntry, which takes the task's
// lease and drives it through the runner, turning its checkpoints into events. A run that
// stops on an error outside its steps (a full disk, a busy lock, a conflict) is tried again
// with a growing delay; anything else is reported and left for doctor or a restart.
import { isAtlasError } from '../errors.js';
import type { TaskRecord } from '../store/records.js';
import type { LogRecord } from '../store/task-log.js';
import { cursorOf, type StepStart } from '../events/event.js';
import { MOVING, errorData, type Active, type EngineCore } from './engine-core.js';
import { runTask } from './runner.js';
import type { QueueEntry } from './scheduler.js';

/** Runs a queued task; resolves to the time (ms) it parked until, when a long durable wait let go of its slot. */
export async function runEntry(engine: EngineCore, entry: QueueEntry): Promise<number | undefined> {
  if (engine.state !== 'running' || engine.active.has(entry.id) || engine.canceling.has(entry.id)) return undefined;
  const controller = new AbortController();
  let finish!: () => void;
  const active: Active = { controller, reason: undefined, done: new Promise<void>((r) => (finish = r)) };
  engine.active.set(entry.id, active);
  let failure: unknown;
  let ran = false;
  let parkedUntil: number | undefined;
  try {
    await engine.store.tasks.acquireLease(entry.id, { waitMs: 15_000 });
    const task = await engine.store.tasks.getTask(entry.id);
    if (!MOVING.has(task.status) || (task.status === 'pending' && task.waiting_on?.length)) return undefined;
    ran = true;
    const environment = await taskEnvironment(engine, task);
    let cursor = cursorOf(task);
    let started: StepStart[] = [];
    await runTask(task, {
      store: engine.store,
      config: engine.config,
      environment,
      signal: controller.signal,
      stopReason: () => active.reason,
      hooks: {
        onCheckpoint: (t) => {
          cursor = engine.events.record(t, cursor, started);
          started = [];
          engine.emitTask(t);
        },
        onLog: (t, record) => {
          if (record['event'] === 'step_started') started.push({ step_index: record['step_index'] as number, attempt: record['attempt'] as number, at: new Date().toISOString() });
          engine.emit('log', t.id, record);
        },
        draining: () => engine.state !== 'running',
        // A long durable wait holds no slot (and, with a shared store, no lease: it is let go
        // below). Here the scheduler keeps its workspace and runs it again at the deadline;
        // a shared store's daemons claim it again then.
        park: (t) => {
          if (active.reason !== undefined) return false;
          active.reason = 'park';
          const until = Date.parse(t.steps[t.current_step]?.parked_until ?? '');
          if (!engine.cluster && Number.isFinite(until)) parkedUntil = until;
          return true;
        },
      },
    });
  } catch (err) {
    failure = err;
  } finally {
    engine.active.delete(entry.id);
    await engine.store.tasks.releaseLease(entry.id).catch(() => undefined);
    finish();
    engine.cluster?.nudge();
  }
  // Nothing below may throw: this is the path that keeps a failed run from being a stuck one.
  if (failure === undefined) {
    if (ran) engine.retries.delete(entry.id);
    return active.reason === 'park' ? parkedUntil : undefined;
  }
  if (isAtlasError(failure, 'not_found')) return undefined;
  reportRunFailure(engine, entry, failure);
  return undefined;
}

/**
 * A run that stopped on an error outside its steps. A full disk (or out of descriptors), a
 * busy lock, or a conflict with another writer leaves the task at its last good checkpoint:
 * it is tried again, with a delay that grows to 10 s, for as long as it takes. Anything else
 * (a corrupt task.json, a defect) is reported and left for `doctor --repair` or a restart.
 */
function reportRunFailure(engine: EngineCore, entry: QueueEntry, err: unknown): void {
  const previous = engine.retries.get(entry.id);
  const failures = (previous?.failures ?? 0) + 1;
  const delay = Math.min(10_000, 1000 * 2 ** Math.min(failures - 1, 4));
  const message = err instanceof Error ? err.message : String(err);
  const retry = isAtlasError(err, 'storage') || isAtlasError(err, 'locked') || isAtlasError(err, 'conflict');
  const next = retry ? `atlas tries again in ${Math.round(delay / 1000)}s` : `'atlas doctor' may tell why`;
  try {
    engine.log?.error({ task: entry.id, err: errorData(err), retry_in_ms: delay }, `task ${entry.id} stopped: ${message}`);
    engine.emit('task_error', entry.id, err);
    // Followers learn why nothing moves (it cannot go in task.log: the disk may be full).
    const diskFull = isAtlasError(err, 'storage') && /ENOSPC|EDQUOT/.test(String(err.details?.['errno'] ?? ''));
    engine.emit('log', entry.id, {
      event: 'engine_error',
      transient: true,
      code: isAtlasError(err) ? err.code : 'internal',
      disk_full: diskFull,
      message: diskFull ? `the disk is full (${message}); ${next} and carries on once there is space` : `${message}; ${next}`,
      retry_in_ms: retry ? delay : null,
    } satisfies LogRecord);
  } catch {
    // reporting must never stop the retry
  }
  if (!retry || engine.state !== 'running') return;
  if (previous?.timer) clearTimeout(previous.timer);
  const timer = setTimeout(() => {
    const r = engine.retries.get(entry.id);
    if (r?.timer === timer) r.timer = undefined;
    engine.scheduler.enqueue(entry);
  }, delay);
  engine.retries.set(entry.id, { timer, failures });
}

/** The captured environment of a task; a corrupt file is reported in the task's log and the daemon's environment used. */
async function taskEnvironment(engine: EngineCore, task: TaskRecord): Promise<Record<string, string> | undefined> {
  try {
    return await engine.store.tasks.readEnvironment(task.id);
  } catch (err) {
    if (!isAtlasError(err, 'corrupt')) throw err;
    engine.logCommitted(task.workspace, task.id, { event: 'env_unreadable', message: `${err.message}; steps get the daemon's environment` });
    return undefined;
  }
}

/** Another daemon holds the task now: its step's tree is killed and nothing more is written. */
export function stopLost(engine: EngineCore, id: string): void {
  const a = engine.active.get(id);
  if (!a) return;
  a.reason = 'lease_lost';
  a.controller.abort();
}
