// What runs now (`atlas ps`, `daemon status`): each task a runner holds, with its current
// step, how long that step has run and its process id.
import type { Engine } from '../engine/engine.js';

export interface RunningTask {
  id: string;
  workspace: string;
  template: string;
  status: string;
  step: string | null;
  step_index: number;
  steps_total: number;
  step_type: string | null;
  attempt: number;
  /** When the current step's attempt started (ISO), or null between steps. */
  step_started_at: string | null;
  /** The step's process (its process group leader), or null for a step without one. */
  pid: number | null;
}

export async function runningTasks(engine: Engine): Promise<RunningTask[]> {
  const out: RunningTask[] = [];
  for (const id of engine.activeTaskIds) {
    const t = await engine.getTask(id).catch(() => undefined);
    if (!t) continue;
    const step = t.steps[t.current_step];
    out.push({
      id: t.id,
      workspace: t.workspace,
      template: t.template,
      status: t.status,
      step: step?.name ?? null,
      step_index: t.current_step,
      steps_total: t.steps.length,
      step_type: step?.type ?? null,
      attempt: step?.attempts ?? 0,
      step_started_at: step?.status === 'running' ? step.started_at : null,
      pid: step?.status === 'running' ? (step.process?.pid ?? null) : null,
    });
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : 1));
}
