// Deleting: a settled task, a workspace (with --purge its tasks too), and any purge counted
// against the destruction guard (more than 20 deletions a minute refused without force).
import { AtlasError } from '../errors.js';
import { assertName } from '../store/names.js';
import { TERMINAL_STATUSES, type TaskRecord } from '../store/records.js';
import type { EngineCore } from './engine-core.js';
import { RESUMABLE_FROM } from './transitions.js';
import { removeWorkspace as removeWorkspaceFiles, type RemoveResult } from './workspaces.js';

/** Deletes a settled task; counted by the destruction guard (refused past the limit without `force`) and logged. */
export async function deleteTask(engine: EngineCore, id: string, options: { force?: boolean } = {}): Promise<void> {
  const task = await engine.getTask(id);
  const giveBack = engine.guard.admit(`task ${id}`, options.force ?? false);
  try {
    await deleteSettled(engine, task);
  } catch (err) {
    giveBack();
    throw err;
  }
  engine.log?.info({ deleted: 'task', task: id, workspace: task.workspace, force: options.force ?? false }, `deleted task ${id} (workspace ${task.workspace})`);
}

/** Deletes a settled task its caller already counted against the guard (a prune --delete is one purge); logged. */
export async function deleteAdmitted(engine: EngineCore, id: string, by: string): Promise<void> {
  const task = await engine.getTask(id);
  await deleteSettled(engine, task);
  engine.log?.info({ deleted: 'task', task: id, workspace: task.workspace, by }, `deleted task ${id} (workspace ${task.workspace}) by ${by}`);
}

/** Counts a purge (a workspace's history, the quarantine) against the destruction guard; runs it and logs it. */
export async function destroy<T>(engine: EngineCore, what: string, force: boolean, run: () => Promise<T>): Promise<T> {
  const giveBack = engine.guard.admit(what, force);
  try {
    const r = await run();
    engine.log?.info({ deleted: what, force }, `deleted ${what}`);
    return r;
  } catch (err) {
    giveBack();
    throw err;
  }
}

async function deleteSettled(engine: EngineCore, task: TaskRecord): Promise<void> {
  const id = task.id;
  if (!TERMINAL_STATUSES.has(task.status) && !RESUMABLE_FROM.has(task.status) && task.status !== 'awaiting_approval') {
    throw new AtlasError('not_allowed', `task ${id} is ${task.status}; cancel it before deleting it`, { details: { id, status: task.status } });
  }
  // A runner that just settled the task may still be letting go of it.
  const active = engine.active.get(id);
  if (active) await active.done;
  if (engine.active.has(id)) throw new AtlasError('not_allowed', `task ${id} is running; cancel it first`);
  engine.store.closeLog(task.workspace, id);
  await engine.store.tasks.deleteTask(id);
  engine.events.deleted(task);
  engine.index.remove(id, task.workspace);
  engine.emit('deleted', id);
  engine.dependencies.settled(id);
}

/** Removes a workspace; with `purge` its tasks go too, from the index and from followers' view. */
export async function removeWorkspace(engine: EngineCore, name: string, purge: boolean): Promise<RemoveResult> {
  const gone = purge ? engine.index.list({ workspace: assertName('workspace', name) }).map((t) => t.id) : [];
  const result = await removeWorkspaceFiles(engine.store, name, purge);
  for (const id of gone) {
    engine.scheduler.remove(id);
    engine.clearRetry(id);
    engine.store.closeLog(name, id);
    engine.index.remove(id, name);
    engine.emit('deleted', id);
  }
  return result;
}
