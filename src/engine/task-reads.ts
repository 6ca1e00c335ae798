// Reading tasks: one task for `show` (an unreadable task.json repaired as a restart would),
// lists and queries from the index, and waiting until a task settles.
import { AtlasError } from '../errors.js';
import { assertName, assertTaskId } from '../store/names.js';
import type { TaskRecord, TaskSummary } from '../store/records.js';
import type { TaskFilter } from '../store/store.js';
import { runQuery, type QueryPage, type TaskQuery } from '../store/task-query.js';
import { idSortKey } from '../store/task-ids.js';
import { blockedReason } from './blocked.js';
import { MOVING, type EngineCore } from './engine-core.js';

/**
 * The task for `show`. An unreadable task.json is never served from task.json.bak in
 * silence: the task is repaired as a restart would (the backup or the log, whichever is
 * further along), and the answer carries a warning saying so.
 */
export async function showTask(engine: EngineCore, id: string): Promise<TaskRecord & { warnings?: string[]; blocked_reason?: string }> {
  const { task, source } = await engine.store.tasks.readTask(assertTaskId(id));
  if (source === 'primary') {
    const blocked = await blockedReason(engine, task);
    return blocked ? { ...task, blocked_reason: blocked } : task;
  }
  if (engine.active.has(id) || engine.state !== 'running') {
    return { ...task, warnings: [`task.json of ${id} is unreadable; this is its previous checkpoint (task.json.bak), which may be behind`] };
  }
  const fixed = await engine.store.repairTask(task.workspace, id);
  const action = fixed.action === 'rebuilt_from_log' ? 'rebuilt it from task.log' : fixed.action === 'restored_backup' ? 'restored task.json.bak' : fixed.action.replace(/_/g, ' ');
  const warning = `task.json of ${id} was unreadable (${fixed.problem ?? 'unknown problem'}); atlas ${action}`;
  engine.log?.warn({ task: id, repair: fixed }, warning);
  if (fixed.action === 'quarantined') throw new AtlasError('corrupt', `${warning}; the task was moved to ${fixed.quarantined_to}`, { details: { id } });
  const now = await engine.getTask(id);
  engine.emitTask(now);
  if (MOVING.has(now.status)) engine.enqueue(now);
  return { ...now, warnings: [warning] };
}

/** Summaries newest first, from the index (which picks up changes made behind its back). */
export async function listTasks(engine: EngineCore, filter: TaskFilter = {}): Promise<TaskSummary[]> {
  if (filter.workspace !== undefined) assertName('workspace', filter.workspace);
  if (engine.state === 'created') await engine.index.load();
  else await engine.index.catchUp?.();
  return engine.index.list(filter);
}

/** One page of tasks matching a query, newest first, with the total (DESIGN §13). */
export async function queryTasks(engine: EngineCore, q: TaskQuery): Promise<QueryPage> {
  if (q.workspace !== undefined) assertName('workspace', q.workspace);
  if (engine.state === 'created') await engine.index.load();
  if (engine.index.query) return engine.index.query(q);
  await engine.index.catchUp?.();
  const all = engine.index.list({});
  return runQuery(all.map((summary) => ({ summary, key: idSortKey(summary.id) })), q);
}

/** Resolves with the task once it no longer moves by itself (terminal, failed, awaiting approval...). */
export function waitForSettled(engine: EngineCore, id: string, signal?: AbortSignal): Promise<TaskRecord> {
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (fn: () => void) => {
      if (done) return;
      done = true;
      engine.off('task', onTask);
      signal?.removeEventListener('abort', onAbort);
      fn();
    };
    // Settled means its events are durable too: `atlas events` after `start --wait` shows the end.
    const settled = (t: TaskRecord) => finish(() => void eventsDurable(engine).then(() => resolve(t)));
    const onTask = (t: TaskRecord) => {
      if (t.id === id && !MOVING.has(t.status)) settled(t);
    };
    const onAbort = () => finish(() => reject(new AtlasError('internal', 'stopped waiting')));
    engine.on('task', onTask);
    signal?.addEventListener('abort', onAbort, { once: true });
    engine.getTask(id).then(
      (t) => {
        if (!MOVING.has(t.status)) settled(t);
      },
      (err: unknown) => finish(() => reject(err)),
    );
  });
}

/** Waits until every event recorded so far is durable; gives up after 5 s (a disk that cannot sync). */
function eventsDurable(engine: EngineCore): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, 5_000).unref()));
  return Promise.race([engine.events.store.flush().catch(() => undefined), timeout]).finally(() => clearTimeout(timer));
}
