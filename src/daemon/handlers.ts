// The daemon's method table: each JSON-RPC method (params already checked against the
// shared schemas) mapped onto the engine. Streams (task.logs with follow, events.subscribe)
// push notifications on the caller's connection until it closes or the task settles.
import fsp from 'node:fs/promises';
import path from 'node:path';
import { AtlasError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import { createWorkspace, removeWorkspace } from '../engine/workspaces.js';
import { NOTIFY, type ParamsOf } from '../protocol/protocol.js';
import { assertName, assertTaskId } from '../store/names.js';
import { TASK_STATUSES, TERMINAL_STATUSES, summarize, type TaskRecord, type TaskStatus } from '../store/records.js';
import type { LogRecord } from '../store/task-log.js';
import { formatProblem, parseTemplate, TemplateError } from '../templates/loader.js';
import { VERSION } from '../version.js';
import type { Connection, Handlers } from './rpc-server.js';
import { runningTasks } from './running-tasks.js';
import { clearQuarantine } from '../engine/quarantine.js';
import { listEvents, subscribeEvents } from './event-stream.js';

export interface DaemonInfo {
  home: string;
  socket: string;
  startedAt: number;
  /** What recovery did when this daemon started. */
  recovery?: unknown;
  stop(timeoutMs: number | undefined): void;
  /** A one-time dashboard login URL; turns the HTTP listener on if it is off. */
  httpLogin(listen: string | undefined): Promise<unknown>;
}

/** The service manager that started this daemon: systemd sets INVOCATION_ID for a unit's
 *  processes, launchd sets XPC_SERVICE_NAME to the agent's label. */
function supervisor(): 'systemd' | 'launchd' | null {
  if (process.env['INVOCATION_ID']) return 'systemd';
  const xpc = process.env['XPC_SERVICE_NAME'];
  if (xpc && xpc !== '0' && xpc.includes('atlas')) return 'launchd';
  return null;
}

const SETTLED = (s: TaskStatus) => s !== 'pending' && s !== 'running';

export function makeHandlers(engine: Engine, info: DaemonInfo): Handlers {
  const locate = async (id: string) => {
    const t = await engine.getTask(assertTaskId(id));
    return t;
  };
  return {
    'daemon.ping': async () => ({ version: VERSION, pid: process.pid }),
    'daemon.status': async () => {
      const counts = Object.fromEntries(TASK_STATUSES.map((s) => [s, 0])) as Record<TaskStatus, number>;
      for (const [k, n] of Object.entries(engine.taskCounts())) counts[k as TaskStatus] = n;
      const total = Object.values(counts).reduce((a, b) => a + b, 0);
      const mem = process.memoryUsage();
      return {
        pid: process.pid,
        version: VERSION,
        home: info.home,
        socket: info.socket,
        uptime_ms: Date.now() - info.startedAt,
        state: engine.lifecycle,
        tasks_total: total,
        tasks_by_status: counts,
        running_tasks: engine.runningCount,
        queue_depth: engine.queueDepth,
        max_concurrent_tasks: engine.config.max_concurrent_tasks,
        memory: { rss_bytes: mem.rss, heap_used_bytes: mem.heapUsed },
        supervisor: supervisor(),
        running: await runningTasks(engine),
      };
    },
    'daemon.stop': async (p) => {
      const { timeout_ms } = p as ParamsOf<'daemon.stop'>;
      setImmediate(() => info.stop(timeout_ms));
      return { stopping: true, pid: process.pid };
    },
    'task.start': async (p) => engine.startTask(p as ParamsOf<'task.start'> & { template: string }),
    'task.get': async (p) => locate((p as ParamsOf<'task.get'>).id),
    'task.list': async (p) => engine.listTasks(p as ParamsOf<'task.list'>),
    'task.resume': async (p) => engine.resume((p as ParamsOf<'task.resume'>).id),
    'task.cancel': async (p) => engine.cancel((p as ParamsOf<'task.cancel'>).id),
    'task.approve': async (p) => engine.approve((p as ParamsOf<'task.approve'>).id),
    'task.reject': async (p) => {
      const { id, reason, retry_from } = p as ParamsOf<'task.reject'>;
      return engine.reject(id, reason, retry_from);
    },
    'task.delete': async (p) => {
      const { id } = p as ParamsOf<'task.delete'>;
      await engine.deleteTask(id);
      return { deleted: id };
    },
    'task.wait': async (p, conn) => {
      const { id } = p as ParamsOf<'task.wait'>;
      const ac = new AbortController();
      conn.onClose(() => ac.abort());
      return engine.waitForSettled(assertTaskId(id), ac.signal);
    },
    'task.logs': async (p, conn) => logs(engine, p as ParamsOf<'task.logs'>, conn),
    'task.artifacts': async (p) => {
      const t = await locate((p as ParamsOf<'task.artifacts'>).id);
      return engine.store.artifacts(t.workspace, t.id).list();
    },
    'task.artifact': async (p) => {
      const { id, name } = p as ParamsOf<'task.artifact'>;
      const t = await locate(id);
      const data = await engine.store.artifacts(t.workspace, t.id).get(assertName('artifact', name));
      const text = data.toString('utf8');
      const isText = Buffer.from(text, 'utf8').equals(data);
      return { name, size: data.length, encoding: isText ? 'utf8' : 'base64', content: isText ? text : data.toString('base64') };
    },
    'workspace.create': async (p) => createWorkspace(engine.store, p as ParamsOf<'workspace.create'>),
    'workspace.list': async () => engine.store.workspaces.list(),
    'workspace.get': async (p) => {
      const { name } = p as ParamsOf<'workspace.get'>;
      const ws = await engine.store.workspaces.get(assertName('workspace', name));
      const tasks = await engine.listTasks({ workspace: name });
      return { ...ws, tasks_total: tasks.length, tasks_open: tasks.filter((t) => !TERMINAL_STATUSES.has(t.status)).length, recent_tasks: tasks.slice(0, 10) };
    },
    'workspace.remove': async (p) => {
      const { name, purge } = p as ParamsOf<'workspace.remove'>;
      return removeWorkspace(engine.store, name, purge ?? false);
    },
    'template.list': async () => engine.templates.list(),
    'template.get': async (p) => {
      const t = await engine.templates.get((p as ParamsOf<'template.get'>).name);
      let text: string | null = null;
      const file = t.builtin ? path.join(engine.templates.builtinDirectory, `${t.name}.yaml`) : t.source;
      text = await fsp.readFile(file, 'utf8').catch(() => null);
      return { ...t, text };
    },
    'template.validate': async (p) => {
      const { file, text, name } = p as ParamsOf<'template.validate'>;
      if (file === undefined && text === undefined) throw new AtlasError('invalid_input', 'give a template file or its text');
      const source = file ?? name ?? '<text>';
      let body = text;
      if (body === undefined) {
        try {
          body = await fsp.readFile(file!, 'utf8');
        } catch (err) {
          throw new AtlasError('not_found', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        }
      }
      try {
        const t = parseTemplate(body, source);
        return { valid: true, name: t.name, steps: t.steps.map((s) => ({ name: s.name, type: s.type })), problems: [] };
      } catch (err) {
        if (err instanceof TemplateError) return { valid: false, problems: err.problems, message: err.problems.map(formatProblem).join('\n') };
        throw err;
      }
    },
    'http.login': async (p) => info.httpLogin((p as ParamsOf<'http.login'>).listen),
    'doctor.run': async (p) => {
      const { repair, clear_quarantine } = p as ParamsOf<'doctor.run'>;
      const cleared = clear_quarantine ? await clearQuarantine(engine.store.paths.quarantineDir) : undefined;
      return { ...(await engine.doctor(repair ?? false)), recovery_at_start: info.recovery ?? null, ...(cleared ? { quarantine_cleared: cleared } : {}) };
    },
    'events.subscribe': async (p, conn) => {
      const q = p as ParamsOf<'events.subscribe'>;
      if (q.task_id !== undefined) assertTaskId(q.task_id);
      return { subscribed: true, ...subscribeEvents(engine.events, q, conn) };
    },
    'events.list': async (p) => {
      const q = p as ParamsOf<'events.list'>;
      if (q.task_id !== undefined) assertTaskId(q.task_id);
      return listEvents(engine.events, q);
    },
  };
}

async function logs(engine: Engine, p: ParamsOf<'task.logs'>, conn: Connection): Promise<unknown> {
  const task = await engine.getTask(assertTaskId(p.id));
  const wanted = (r: LogRecord) => p.step === undefined || r['step'] === p.step || r['step_name'] === p.step;
  // Live notifications are held back until the response (with the history) has been written,
  // so the client sees the records in file order.
  const held: Array<[string, unknown]> = [];
  let flowing = false;
  const send = (method: string, params: unknown) => (flowing ? conn.notify(method, params) : held.push([method, params]));
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    engine.off('log', onLog);
    engine.off('task', onTask);
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
  // Appends are synchronous, so subscribing and reading the file in one synchronous stretch
  // means every record is either in the history or in the live stream, never both or neither.
  const { records, skipped } = engine.store.readLogSync?.(task.workspace, task.id, wanted) ?? (await engine.store.readLog(task.workspace, task.id, wanted));
  if (p.follow) {
    engine.on('log', onLog);
    engine.on('task', onTask);
    conn.onClose(() => {
      engine.off('log', onLog);
      engine.off('task', onTask);
    });
    // The task may have settled between the first read and the subscription.
    const now = await engine.getTask(task.id);
    if (SETTLED(now.status)) end();
    setImmediate(() => {
      flowing = true;
      for (const [m, params] of held.splice(0)) conn.notify(m, params);
    });
  }
  const history = p.tail !== undefined ? records.slice(-p.tail) : records;
  return { id: task.id, task: summarize(task), records: history, skipped_lines: skipped.length, follow: p.follow ?? false };
}
