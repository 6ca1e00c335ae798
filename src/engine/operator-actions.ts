// Operator actions on one task: resume, approve, reject (optionally retrying from a step) and
// cancel. Each changes a task no runner holds (or stops the runner first, for cancel).
import { AtlasError, isAtlasError } from '../errors.js';
import { assertTaskId } from '../store/names.js';
import { RESUMABLE_STATUSES, TERMINAL_STATUSES, type TaskRecord } from '../store/records.js';
import type { EngineCore } from './engine-core.js';
import { killLeftover } from './reattach.js';
import { stepEvent } from '../store/step-states.js';
import { RESUMABLE_FROM, transition } from './transitions.js';

/** Re-runs the failed (or interrupted) step as a new attempt. */
export async function resume(engine: EngineCore, id: string): Promise<TaskRecord> {
  const task = await engine.updateIdle(id, (t) => {
    if (!RESUMABLE_FROM.has(t.status)) {
      throw new AtlasError('not_allowed', `task ${id} is ${t.status}; only ${RESUMABLE_STATUSES.slice(0, -1).join(', ')} or ${RESUMABLE_STATUSES.at(-1)} tasks can be resumed`, {
        details: { id, status: t.status },
      });
    }
    const step = t.steps[t.current_step];
    if (step) stepEvent(step, { kind: 'reset' });
    t.error = null;
    transition(t, 'pending', 'resumed by the user');
  });
  engine.enqueue(task);
  return task;
}

export async function approve(engine: EngineCore, id: string): Promise<TaskRecord> {
  const task = await engine.updateIdle(id, (t) => {
    engine.requireStatus(t, 'awaiting_approval', 'approved');
    const step = t.steps[t.current_step]!;
    stepEvent(step, { kind: 'complete' });
    t.current_step++;
    transition(t, 'pending', `step ${step.name} approved`);
  });
  engine.logCommitted(task.workspace, task.id, { event: 'approved', step: task.steps[task.current_step - 1]?.name });
  engine.enqueue(task);
  return task;
}

/** Ends the task as rejected, or with `retryFrom` runs it again from that step. */
export async function reject(engine: EngineCore, id: string, reason: string, retryFrom?: string): Promise<TaskRecord> {
  if (typeof reason !== 'string' || reason.trim() === '') throw new AtlasError('invalid_input', 'a rejection needs a reason (--reason "...")');
  const task = await engine.updateIdle(id, (t) => {
    engine.requireStatus(t, 'awaiting_approval', 'rejected');
    const step = t.steps[t.current_step]!;
    const last = t.step_results.at(-1);
    if (last && last.step_index === t.current_step) {
      last.status = 'rejected';
      last.error = reason;
    }
    (t.rejections ??= []).push({ step: step.name, reason, retry_from: retryFrom ?? null, at: new Date().toISOString() });
    if (retryFrom === undefined) {
      stepEvent(step, { kind: 'fail', error: `rejected: ${reason}` });
      transition(t, 'rejected', `rejected: ${reason}`);
      return;
    }
    const from = t.steps.findIndex((s) => s.name === retryFrom);
    if (from < 0) {
      throw new AtlasError('invalid_input', `no step ${retryFrom} in task ${id}; its steps are ${t.steps.map((s) => s.name).join(', ')}`);
    }
    if (from > t.current_step) throw new AtlasError('invalid_input', `--retry-from must name step ${step.name} or an earlier one`);
    for (let i = from; i <= t.current_step; i++) stepEvent(t.steps[i]!, { kind: 'reset' });
    t.current_step = from;
    transition(t, 'pending', `rejected (${reason}); running again from step ${retryFrom}`);
  });
  engine.logCommitted(task.workspace, task.id, { event: 'rejected', reason, retry_from: retryFrom ?? null });
  if (task.status === 'pending') engine.enqueue(task);
  return task;
}

/**
 * Stops the task for good: kills a running step's process tree first, then records the end.
 * While it runs no runner may pick the task up (a queued entry or a retry timer included).
 */
export async function cancel(engine: EngineCore, id: string): Promise<TaskRecord> {
  assertTaskId(id);
  engine.canceling.add(id);
  try {
    for (let tries = 0; ; tries++) {
      engine.scheduler.remove(id);
      engine.clearRetry(id);
      const active = engine.active.get(id);
      if (active) {
        active.reason = 'cancel';
        active.controller.abort();
        await active.done;
        const t = await engine.getTask(id);
        if (TERMINAL_STATUSES.has(t.status)) return t;
        continue;
      }
      const current = await engine.getTask(id);
      if (TERMINAL_STATUSES.has(current.status)) {
        throw new AtlasError('not_allowed', `task ${id} is already ${current.status}`, { details: { id, status: current.status } });
      }
      // Not ours (recovery has not reached it, or it is between runs): its tree dies before
      // the end is recorded, as for a task we run.
      const step = current.steps[current.current_step];
      if (current.status === 'running' && step?.status === 'running' && step.process) await killLeftover(step, engine.config.kill_grace_ms);
      try {
        return await engine.updateAndLog(id, (t) => {
          if (TERMINAL_STATUSES.has(t.status)) {
            throw new AtlasError('not_allowed', `task ${id} is already ${t.status}`, { details: { id, status: t.status } });
          }
          if (t.revision !== current.revision) throw new AtlasError('conflict', `task ${id} changed while it was being canceled`, { retryable: true });
          transition(t, 'abandoned', 'canceled by the user');
        });
      } catch (err) {
        if (isAtlasError(err, 'conflict') && tries < 5) continue;
        throw err;
      }
    }
  } finally {
    engine.canceling.delete(id);
  }
}
