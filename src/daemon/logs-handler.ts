// task.logs: a page of a task's log read from the file by offset (never the whole log at
// once, never synchronously), and with `follow` the rest of the history and then the live
// records, in file order, at the pace the client reads them. On a shared store the records
// are followed in the database (logs-follow.ts), wherever the task runs.
import { AtlasError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import type { LogsResult, NotificationMethod, NotificationParams, ParamsOf } from '../protocol/methods.js';
import { NOTIFY } from '../protocol/methods.js';
import { assertTaskId } from '../store/names.js';
import { summarize, type TaskRecord, type TaskStatus } from '../store/records.js';
import type { LogRecord } from '../store/task-log.js';
import { closest } from '../util/distance.js';
import { PgStore } from '../store/pg/pg-store.js';
import { followInDatabase } from './logs-follow.js';
import type { Connection } from './rpc-server.js';

const SETTLED = (s: TaskStatus) => s !== 'pending' && s !== 'running';

export async function taskLogs(engine: Engine, p: ParamsOf<'task.logs'>, conn: Connection): Promise<LogsResult> {
  const task = await engine.getTask(assertTaskId(p.id));
  if (p.step !== undefined && !task.steps.some((s) => s.name === p.step)) {
    const names = task.steps.map((s) => s.name);
    const hint = closest(p.step, names);
    throw new AtlasError('not_found', `task ${task.id} has no step ${p.step}${hint ? ` (did you mean ${hint}?)` : ''}; its steps: ${names.join(', ')}`, {
      details: { id: task.id, step: p.step, steps: names },
    });
  }
  const wanted = (r: LogRecord) => p.step === undefined || r['step'] === p.step || r['step_name'] === p.step;
  const page = (start: number, end?: number, tail?: number) =>
    engine.store.readLogPage(task.workspace, task.id, {
      start,
      filter: wanted,
      ...(end !== undefined ? { end } : {}),
      ...(p.limit !== undefined ? { limit: p.limit } : {}),
      ...(tail !== undefined ? { tail } : {}),
    });
  const reply = (records: LogRecord[], skipped: number, next: number, more: boolean): LogsResult => ({
    id: task.id,
    task: summarize(task),
    records,
    skipped_lines: skipped,
    follow: p.follow ?? false,
    next_offset: next,
    more,
  });
  if (!p.follow || engine.store instanceof PgStore) {
    const first = await page(p.offset ?? 0, undefined, p.tail);
    // A shared store: the task may run on another daemon; its records are followed in the database.
    if (p.follow && engine.store instanceof PgStore) followInDatabase(engine, engine.store, task, first.next, wanted, conn);
    return reply(first.records, first.skipped, first.next, first.more);
  }

  // Live notifications are held back until the history has been sent, so the client sees
  // the records in file order.
  const held: Array<() => void> = [];
  let flowing = false;
  const send = <N extends NotificationMethod>(method: N, params: NotificationParams[N]) => (flowing ? conn.notify(method, params) : held.push(() => conn.notify(method, params)));
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    unsubscribe();
    send(NOTIFY.END, { id: task.id });
  };
  const onLog = (id: string, record: LogRecord) => {
    if (id === task.id && wanted(record)) send(NOTIFY.LOG, { id, record });
  };
  const onTask = (t: TaskRecord) => {
    if (t.id !== task.id) return;
    send(NOTIFY.TASK, { task: summarize(t) });
    if (SETTLED(t.status)) end();
  };
  const unsubscribe = () => {
    engine.off('log', onLog);
    engine.off('task', onTask);
  };
  // Appends are synchronous, so subscribing and taking the log's end in one synchronous
  // stretch means every record is either in the history (before `logEnd`) or in the live
  // stream, never both or neither.
  engine.on('log', onLog);
  engine.on('task', onTask);
  const logEnd = engine.store.logEnd?.(task.workspace, task.id);
  conn.onClose(unsubscribe);
  try {
    const first = await page(p.offset ?? 0, logEnd, p.tail);
    // The task may have settled before the subscription.
    const now = await engine.getTask(task.id);
    if (SETTLED(now.status)) end();
    setImmediate(() => void pump(first.next, first.more));
    return reply(first.records, first.skipped, first.next, first.more);
  } catch (err) {
    unsubscribe();
    throw err;
  }

  // The rest of the history, a page at a time as the client reads it, then the live records.
  async function pump(next: number, more: boolean): Promise<void> {
    try {
      while (more && !conn.closed) {
        await conn.drained?.();
        const rest = await page(next, logEnd);
        for (const record of rest.records) conn.notify(NOTIFY.LOG, { id: task.id, record });
        next = rest.next;
        more = rest.more;
      }
    } catch {
      // The log became unreadable mid-stream: the live records still follow.
    }
    flowing = true;
    for (const fn of held.splice(0)) fn();
  }
}
