// The daemon's method table: each JSON-RPC method (params already checked against the
// shared schemas) mapped onto the engine. Streams (task.logs with follow, events.subscribe)
// push notifications on the caller's connection until it closes or the task settles.
import { clusterStatus } from './cluster-status.js';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { AtlasError, isAtlasError } from '../errors.js';
import { parseBatch, startBatch } from '../engine/batch.js';
import type { Engine } from '../engine/engine.js';
import { createWorkspace } from '../engine/workspaces.js';
import type { RecoveryReport } from '../engine/recovery.js';
import type { LoginResult } from './http-control.js';
import { NOTIFY } from '../protocol/methods.js';
import { assertName, assertTaskId } from '../store/names.js';
import { TASK_STATUSES, TERMINAL_STATUSES, summarize, type TaskRecord, type TaskStatus } from '../store/records.js';
import type { LogRecord } from '../store/task-log.js';
import { formatProblem, parseTemplate, TemplateError } from '../templates/loader.js';
import { parseWhen } from '../util/when.js';
import { VERSION } from '../version.js';
import { closest } from '../util/distance.js';
import { assertInputSizes } from '../engine/input-limits.js';
import { taskLogs } from './logs-handler.js';
import type { Handlers } from './rpc-server.js';
import { runningTasks } from './running-tasks.js';
import { clearQuarantine } from '../engine/quarantine.js';
import { listEvents, subscribeEvents } from './event-stream.js';
import { History, historyHandlers, withArchive } from './history-handlers.js';
import type { Schedules } from '../engine/schedules.js';
import { scheduleHandlers } from './schedule-handlers.js';
import { memoryHandlers } from './memory-handlers.js';

export interface DaemonInfo {
  home: string;
  socket: string;
  startedAt: number;
  /** Schedules (DESIGN §13): their operations, and the runner that fires them. */
  schedules: Schedules;
  /** What recovery did when this daemon started. */
  recovery?: RecoveryReport;
  stop(timeoutMs: number | undefined, detach?: boolean): void;
  /** A one-time dashboard login URL; turns the HTTP listener on if it is off. */
  httpLogin(listen: string | undefined): Promise<LoginResult>;
}

/** The service manager that started this daemon: systemd sets INVOCATION_ID for a unit's
 *  processes, launchd sets XPC_SERVICE_NAME to the agent's label. */
function supervisor(): 'systemd' | 'launchd' | null {
  if (process.env['INVOCATION_ID']) return 'systemd';
  const xpc = process.env['XPC_SERVICE_NAME'];
  if (xpc && xpc !== '0' && xpc.includes('atlas')) return 'launchd';
  return null;
}

export function makeHandlers(engine: Engine, info: DaemonInfo): Handlers {
  const locate = async (id: string) => {
    const t = await engine.getTask(assertTaskId(id));
    return t;
  };
  const history = new History(engine);
  return withArchive(history, {
    'daemon.ping': async () => ({ version: VERSION, pid: process.pid }),
    'daemon.status': async () => {
      const byStatus = engine.taskCounts();
      const counts = Object.fromEntries(TASK_STATUSES.map((s) => [s, byStatus[s] ?? 0])) as Record<TaskStatus, number>;
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
        ...(await clusterStatus(engine)),
      };
    },
    'daemon.reload': async () => engine.reload(),
    'daemon.stop': async ({ timeout_ms, detach }) => {
      setImmediate(() => info.stop(timeout_ms, detach === true));
      return { stopping: true, pid: process.pid };
    },
    'task.start': async ({ template, template_file, ...rest }) => {
      assertInputSizes(rest.inputs ?? {});
      return engine.startTask({ ...rest, template: template ?? '', ...(template_file !== undefined ? { template_file } : {}) });
    },
    'task.get': async ({ id }) => engine.showTask(id),
    'task.batch': async ({ file, text, name }) => {
      const source = file ?? name ?? '<batch>';
      let body = text;
      if (body === undefined) {
        try {
          body = await fsp.readFile(file!, 'utf8');
        } catch (err) {
          throw new AtlasError('not_found', `cannot read the batch file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        }
      }
      return startBatch(engine, parseBatch(body, source), source);
    },
    'task.list': async (p) => (await engine.queryTasks(withTimes(p))).tasks,
    'task.query': async (p) => engine.queryTasks(withTimes(p)),
    'task.resume': async ({ id }) => engine.resume(id),
    'task.cancel': async ({ id }) => engine.cancel(id),
    'task.approve': async ({ id }) => engine.approve(id),
    'task.reject': async ({ id, reason, retry_from }) => engine.reject(id, reason, retry_from),
    'task.delete': async ({ id, force }) => {
      await engine.deleteTask(id, { force: force ?? false });
      return { deleted: id };
    },
    'task.wait': async ({ id }, conn) => {
      const ac = new AbortController();
      conn.onClose(() => ac.abort());
      return engine.waitForSettled(assertTaskId(id), ac.signal);
    },
    'task.logs': async (p, conn) => taskLogs(engine, p, conn),
    'task.artifacts': async ({ id }) => {
      const t = await locate(id);
      return engine.store.artifacts(t.workspace, t.id).list();
    },
    'task.artifact': async ({ id, name }) => {
      const t = await locate(id);
      const artifacts = engine.store.artifacts(t.workspace, t.id);
      const data = await artifacts.get(assertName('artifact', name)).catch(async (err: unknown) => {
        if (!isAtlasError(err, 'not_found')) throw err;
        // A typo in a name like review.output.2.log: name the close ones, not the task id.
        const names = (await artifacts.list()).map((a) => a.name);
        const hint = closest(name, names);
        throw new AtlasError('not_found', `task ${t.id} has no artifact ${name}${hint ? ` (did you mean ${hint}?)` : ''}; 'atlas artifacts ${t.id}' lists them`, { details: { id: t.id, name } });
      });
      const text = data.toString('utf8');
      const isText = Buffer.from(text, 'utf8').equals(data);
      return { name, size: data.length, encoding: isText ? 'utf8' : 'base64', content: isText ? text : data.toString('base64') };
    },
    'workspace.create': async (p) => createWorkspace(engine.store, p),
    'workspace.list': async () => engine.store.workspaces.list(),
    'workspace.get': async ({ name }) => {
      const ws = await engine.store.workspaces.get(assertName('workspace', name));
      const tasks = await engine.listTasks({ workspace: name });
      return { ...ws, tasks_total: tasks.length, tasks_open: tasks.filter((t) => !TERMINAL_STATUSES.has(t.status)).length, recent_tasks: tasks.slice(0, 10) };
    },
    'workspace.remove': async ({ name, purge, force }) =>
      purge ? engine.destroy(`the task history of workspace ${name}`, force ?? false, () => engine.removeWorkspace(name, true)) : engine.removeWorkspace(name, false),
    'template.list': async () => engine.templates.list(),
    'template.get': async ({ name }) => {
      const t = await engine.templates.get(name);
      let text: string | null = null;
      const file = t.builtin ? path.join(engine.templates.builtinDirectory, `${t.name}.yaml`) : t.source;
      text = await fsp.readFile(file, 'utf8').catch(() => null);
      return { ...t, text };
    },
    'template.validate': async ({ file, text, name }) => {
      const source = file ?? name ?? '<text>';
      let body = text;
      if (body === undefined) {
        if (file === undefined) throw new AtlasError('invalid_input', 'give a template file or its text');
        try {
          body = await fsp.readFile(file, 'utf8');
        } catch (err) {
          throw new AtlasError('not_found', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        }
      }
      try {
        const t = parseTemplate(body, source);
        return { valid: true, name: t.name, steps: t.steps.map((s) => ({ name: s.name, type: s.type })), problems: [], ...(t.warnings ? { warnings: t.warnings } : {}) };
      } catch (err) {
        if (err instanceof TemplateError) return { valid: false, problems: err.problems, message: err.problems.map(formatProblem).join('\n') };
        throw err;
      }
    },
    'http.login': async ({ listen }) => info.httpLogin(listen),
    'doctor.run': async ({ repair, clear_quarantine }) => {
      const cleared = clear_quarantine ? await clearQuarantine(engine.store.paths.quarantineDir) : undefined;
      return { ...(await engine.doctor(repair ?? false)), recovery_at_start: info.recovery ?? null, ...(cleared ? { quarantine_cleared: cleared } : {}) };
    },
    'events.subscribe': async (q, conn) => {
      if (q.task_id !== undefined) assertTaskId(q.task_id);
      const first_seq = await engine.events.store.oldestSeq();
      return { subscribed: true, first_seq, ...subscribeEvents(engine.events, q, conn) };
    },
    'webhook.list': async () => engine.webhooks.list(),
    'webhook.test': async (q) => engine.webhooks.test(q.name),
    'webhook.deliveries': async (q) => engine.webhooks.deliveries(q.name, q.failed ?? false),
    'events.list': async (q) => {
      if (q.task_id !== undefined) assertTaskId(q.task_id);
      return listEvents(engine.events, q);
    },
    ...historyHandlers(engine, history),
    ...scheduleHandlers(info.schedules),
    ...memoryHandlers(engine),
  });
}

/** A query with --since/--until read as instants (ISO 8601 UTC), durations counted back from now. */
function withTimes<Q extends { since?: string | undefined; until?: string | undefined }>(q: Q): Q {
  const now = new Date();
  return {
    ...q,
    ...(q.since !== undefined ? { since: parseWhen('--since', q.since, now) } : {}),
    ...(q.until !== undefined ? { until: parseWhen('--until', q.until, now) } : {}),
  };
}
