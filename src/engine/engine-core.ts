// The engine's shared state and the few operations every part of it uses: updating a task
// outside a runner (and logging and announcing the change), queueing it, announcing it. The
// public API is Engine (engine.ts); its operations live one concern per file beside it
// (task-intake, task-reads, operator-actions, deletion, task-runs, startup), each taking
// the engine as its first argument.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { AtlasError, isAtlasError } from '../errors.js';
import { assertTaskId } from '../store/names.js';
import type { TaskRecord, TaskStatus } from '../store/records.js';
import type { Store, StoreIndex } from '../store/store.js';
import { cursorOf, type Cursor } from '../events/event.js';
import { EventJournal } from '../events/journal.js';
import { WebhookManager } from '../webhooks/manager.js';
import type { LogRecord } from '../store/task-log.js';
import { idSortKey } from '../store/task-ids.js';
import type { TemplateRegistry } from '../templates/loader.js';
import { Dependencies } from './dependencies.js';
import { DestructionGuard } from './destruction-guard.js';
import type { Cluster } from './cluster.js';
import type { StopReason } from './runner.js';
import { Scheduler } from './scheduler.js';
import { runEntry } from './task-runs.js';

export type EngineState = 'created' | 'running' | 'draining' | 'stopped';

export interface Active {
  controller: AbortController;
  reason: StopReason | undefined;
  done: Promise<void>;
}

/** Statuses in which a task waits for nothing but a slot or its own step. */
export const MOVING: ReadonlySet<TaskStatus> = new Set(['pending', 'running']);

/** What the engine announces, and with what (listeners need no casts). */
export interface EngineEvents {
  /** A task as just written: created, checkpointed by its runner, or changed by an action. */
  task: [task: TaskRecord];
  /** A task.log record as its runner writes it; also a transient `engine_error` for followers. */
  log: [id: string, record: LogRecord];
  /** A run stopped on an error outside its steps (see task-runs.ts). */
  task_error: [id: string, err: unknown];
  /** A task was deleted (or purged with its workspace). */
  deleted: [id: string];
  /** A task was moved to the archive (atlas prune). */
  archived: [id: string];
}

export class EngineCore extends EventEmitter<EngineEvents> {
  readonly store: Store;
  readonly templates: TemplateRegistry;
  config: Config;
  state: EngineState = 'created';
  readonly scheduler: Scheduler;
  readonly active = new Map<string, Active>();
  /** Runs to try again after a storage error, a conflict or a busy lock, by task id. */
  readonly retries = new Map<string, { timer: NodeJS.Timeout | undefined; failures: number }>();
  /** Tasks a cancel is ending: no runner may start them meanwhile. */
  readonly canceling = new Set<string>();
  revalidateTimer: NodeJS.Timeout | undefined;
  readonly log: Logger | undefined;
  /** Refuses a burst of deletions (more than 20 a minute) without force. */
  readonly guard = new DestructionGuard();
  /** The background sweep of idle tasks' temp files started by recovery. */
  sweeping: Promise<void> | undefined;
  readonly index: StoreIndex;
  readonly dependencies: Dependencies;
  /** Durable events (DESIGN §10): every task and step change, announced once on disk. */
  readonly events: EventJournal;
  /** With a shared (PostgreSQL) store: claiming, leases and takeover among daemons. */
  cluster: Cluster | undefined;
  /** Webhook deliveries from the events log (DESIGN §10); 'attempt' events feed metrics. */
  readonly webhooks: WebhookManager;

  protected constructor(store: Store, config: Config, templates: TemplateRegistry, logger: Logger | undefined) {
    super();
    this.setMaxListeners(0);
    this.store = store;
    const warn = (msg: string, err: unknown) => logger?.warn({ err: errorData(err) }, msg);
    this.events = new EventJournal(store.openEvents({ onError: (err) => warn('events log', err) }), warn);
    this.webhooks = new WebhookManager(store.paths.root, config.webhooks, this.events, (msg) => logger?.warn(msg));
    this.config = config;
    this.templates = templates;
    this.log = logger;
    this.index = store.openIndex();
    this.scheduler = new Scheduler(config.max_concurrent_tasks, (e) => runEntry(this, e));
    this.dependencies = new Dependencies({
      statusOf: (id) => this.statusOf(id),
      update: (id, mutate) => this.updateAndLog(id, mutate),
      release: (t) => this.enqueue(t),
      log: logger,
    });
  }


  async getTask(id: string): Promise<TaskRecord> {
    return this.store.tasks.getTask(assertTaskId(id));
  }

  assertRunning(): void {
    if (this.state !== 'running') throw new AtlasError('not_allowed', `atlas is ${this.state === 'draining' ? 'shutting down' : this.state}; try again once it has restarted`, { retryable: true });
  }

  requireStatus(t: TaskRecord, status: TaskStatus, verb: string): void {
    if (t.status !== status) {
      throw new AtlasError('not_allowed', `task ${t.id} is ${t.status}, not ${status}; it cannot be ${verb}`, { details: { id: t.id, status: t.status } });
    }
  }

  /** Updates a task that no runner holds; retries on a conflict with the runner. */
  async updateIdle(id: string, mutate: (t: TaskRecord) => void): Promise<TaskRecord> {
    assertTaskId(id);
    this.assertRunning();
    for (let tries = 0; ; tries++) {
      const active = this.active.get(id);
      if (active) {
        const t = await this.getTask(id);
        if (MOVING.has(t.status)) throw new AtlasError('not_allowed', `task ${id} is ${t.status}`, { details: { id, status: t.status } });
        // The runner has settled the task (its checkpoint is what the caller saw) and is
        // letting go of it: wait for that rather than refuse.
        await active.done;
        continue;
      }
      try {
        return await this.updateAndLog(id, mutate);
      } catch (err) {
        if (isAtlasError(err, 'conflict') && tries < 5) continue;
        throw err;
      }
    }
  }

  /** Updates a task under its lock, then logs the status changes it made and announces it. */
  async updateAndLog(id: string, mutate: (t: TaskRecord) => void): Promise<TaskRecord> {
    let since = 0;
    let cursor: Cursor = { t: 0, r: 0 };
    const t = await this.store.tasks.updateTask(id, (task) => {
      since = task.transitions.length;
      cursor = cursorOf(task);
      mutate(task);
    });
    this.events.record(t, cursor);
    this.logTransitions(t, since);
    this.emitTask(t);
    return t;
  }

  /** Logs the status changes an update made outside a runner (a runner logs its own). */
  logTransitions(task: TaskRecord, since: number): void {
    for (const tr of task.transitions.slice(since)) {
      this.logCommitted(task.workspace, task.id, { event: 'transition', from_status: tr.from_status, to_status: tr.to_status, reason: tr.reason });
    }
  }

  /**
   * Logs a change already checkpointed in task.json. The change stands whether or not its log
   * record can be written (out of file descriptors, a full disk): failing the request would
   * leave a created or approved task that nothing queues, and a client that retries it.
   */
  logCommitted(ws: string, id: string, record: LogRecord): void {
    try {
      this.store.appendLog(ws, id, record);
    } catch (err) {
      this.log?.warn({ task: id, event: record.event, err: errorData(err) }, `task ${id}: could not log ${record.event}: ${(err as Error).message}`);
    }
  }

  /** A task's status, or undefined when there is no such task. */
  async statusOf(id: string): Promise<TaskStatus | undefined> {
    try {
      return (await this.store.tasks.getTask(id)).status;
    } catch (err) {
      if (isAtlasError(err, 'not_found')) return undefined;
      throw err;
    }
  }

  enqueue(task: TaskRecord): void {
    if (this.state !== 'running') return;
    if (task.status === 'pending' && task.waiting_on?.length) {
      // Not runnable yet: the dependency tracker hands it over once nothing is left to wait on.
      this.dependencies.watch(task);
      return;
    }
    // Shared store: tasks are claimed from the database (by whichever daemon can run them).
    if (this.cluster) return this.cluster.nudge();
    this.scheduler.enqueue({ id: task.id, workspace: task.workspace, priority: task.priority, order: `${task.created_at}|${idSortKey(task.id)}` });
  }

  emitTask(task: TaskRecord): void {
    this.index.put(task, this.store.tasks.writtenSignature(task.id));
    this.dependencies.changed(task);
    this.emit('task', task);
  }

  clearRetry(id: string): void {
    const r = this.retries.get(id);
    if (r?.timer) clearTimeout(r.timer);
    this.retries.delete(id);
  }
}

export function errorData(err: unknown): Record<string, unknown> {
  return isAtlasError(err) ? { code: err.code, message: err.message } : { message: (err as Error)?.message ?? String(err) };
}
