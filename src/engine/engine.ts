// The engine: the in-process API that the daemon (and tests) call. It creates tasks from
// templates, schedules them, runs them through the runner, applies operator actions, and
// on start recovers every task a previous process left unfinished (DESIGN §6).
//
// Lifecycle: 'created' -> 'running' -> 'draining' -> 'stopped'.
import { EventEmitter } from 'node:events';
import fsp from 'node:fs/promises';
import type { Logger } from 'pino';
import { loadConfig, type Config } from '../config/config.js';
import { AtlasError, isAtlasError } from '../errors.js';
import { assertName, assertTaskId } from '../store/names.js';
import { SCHEMA_VERSION, TERMINAL_STATUSES, type StepState, type TaskRecord, type TaskStatus, type TaskSummary } from '../store/records.js';
import { checkDependencies, Dependencies } from './dependencies.js';
import { checkLabels } from './labels.js';
import { runDoctor, type DoctorReport } from './doctor.js';
import { removeWorkspace, type RemoveResult } from './workspaces.js';
import { openStore } from '../store/open-store.js';
import { HomePaths } from '../store/paths.js';
import type { Store, StoreIndex, TaskFilter } from '../store/store.js';
import { cursorOf, type Cursor, type StepStart } from '../events/event.js';
import { EventJournal } from '../events/journal.js';
import { repairEvents } from '../events/repair.js';
import { WebhookManager } from '../webhooks/manager.js';
import type { LogRecord } from '../store/task-log.js';
import type { IndexScan } from '../store/task-index.js';
import { idSortKey } from '../store/task-store.js';
import { runQuery, type QueryPage, type TaskQuery } from '../store/task-query.js';
import { cleanEnvironment } from '../store/task-env.js';
import { DestructionGuard } from './destruction-guard.js';
import { BUILTIN_DIR, TemplateRegistry, loadTemplateFile } from '../templates/loader.js';
import type { Template } from '../templates/schema.js';
import { checkDurationInputs, newStepState, resolveInputs } from './new-task.js';
import { PgStore } from '../store/pg/pg-store.js';
import { spawner } from '../steps/spawner.js';
import { configKeyName, diffConfig, type ReloadResult } from './reload.js';
import { Cluster } from './cluster.js';
import { killLeftover } from './reattach.js';
import { recoverTasks, type RecoveryReport } from './recovery.js';
import { runTask, type StopReason } from './runner.js';
import { Scheduler, type QueueEntry } from './scheduler.js';
import { RESUMABLE_FROM, transition } from './transitions.js';

export type { RecoveryReport };
export { resolveInputs };

export type EngineState = 'created' | 'running' | 'draining' | 'stopped';

export interface EngineOptions {
  home: string;
  /** Settings; read from $home/config.yaml when absent. */
  config?: Config;
  builtinTemplatesDir?: string;
  logger?: Logger;
}

export interface StartParams {
  template: string;
  workspace: string;
  inputs?: Record<string, string>;
  description?: string;
  priority?: number;
  /** A template file to use instead of a template name (the name is then taken from the file). */
  template_file?: string;
  /** The environment the task's steps start from (the `atlas start` caller's); absent: the daemon's. */
  env?: Record<string, string>;
  /** Ids of tasks that must complete before this one runs (DESIGN §13). */
  after?: string[];
  /** Set by the schedule runner: the fire (`<schedule>@<slot>`) that creates this task. */
  schedule_fire?: string;
  /** User labels, `key=value` (DESIGN §13). */
  labels?: Record<string, string>;
}


/** A checked start request: the task's record without its id, and the caller's environment. */
export interface PreparedTask {
  task: TaskRecord;
  environment: Record<string, string> | undefined;
}

interface Active {
  controller: AbortController;
  reason: StopReason | undefined;
  done: Promise<void>;
}

/** Statuses in which a task waits for nothing but a slot or its own step. */
const MOVING: ReadonlySet<TaskStatus> = new Set(['pending', 'running']);

export class Engine extends EventEmitter {
  readonly store: Store;
  readonly templates: TemplateRegistry;
  config: Config;
  private state: EngineState = 'created';
  private readonly scheduler: Scheduler;
  private readonly active = new Map<string, Active>();
  /** Runs to try again after a storage error, a conflict or a busy lock, by task id. */
  private readonly retries = new Map<string, { timer: NodeJS.Timeout | undefined; failures: number }>();
  /** Tasks a cancel is ending: no runner may start them meanwhile. */
  private readonly canceling = new Set<string>();
  private revalidateTimer: NodeJS.Timeout | undefined;
  private readonly log: Logger | undefined;
  /** Refuses a burst of deletions (more than 20 a minute) without force. */
  readonly guard = new DestructionGuard();
  /** The background sweep of idle tasks' temp files started by recovery. */
  private sweeping: Promise<void> | undefined;
  readonly index: StoreIndex;
  readonly dependencies: Dependencies;
  /** Durable events (DESIGN §10): every task and step change, announced once on disk. */
  readonly events: EventJournal;
  /** With a shared (PostgreSQL) store: claiming, leases and takeover among daemons. */
  cluster: Cluster | undefined;
  /** Webhook deliveries from the events log (DESIGN §10); 'attempt' events feed metrics. */
  readonly webhooks: WebhookManager;

  private constructor(store: Store, config: Config, templates: TemplateRegistry, logger: Logger | undefined) {
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
    this.scheduler = new Scheduler(config.max_concurrent_tasks, (e) => this.runEntry(e));
    this.dependencies = new Dependencies({
      statusOf: (id) => this.statusOf(id),
      update: (id, mutate) => this.updateAndLog(id, mutate),
      release: (t) => this.enqueue(t),
      log: logger,
    });
  }

  /** Re-reads config.yaml: applies what can change live, reports what needs a restart (see reload.ts). */
  async reload(): Promise<ReloadResult> {
    const next = await loadConfig(this.store.paths.config);
    const { changed, live, restart } = diffConfig(this.config, next);
    // Runners hold this same object: the next step of a running task sees the new values.
    const target = this.config as unknown as Record<string, unknown>;
    for (const k of live) target[k] = next[k];
    if (live.includes('max_concurrent_tasks')) this.scheduler.setConcurrency(next.max_concurrent_tasks);
    if (live.includes('log_level') && this.log) this.log.level = next.log_level;
    let templates: string[] = [];
    try {
      templates = (await fsp.readdir(this.store.paths.templatesDir)).filter((n) => n.endsWith('.yaml')).map((n) => n.slice(0, -5)).sort();
    } catch {
      // no user templates
    }
    const result: ReloadResult = { changed: changed.map(configKeyName), applied: live.map(configKeyName), needs_restart: restart.map(configKeyName), templates };
    this.log?.info({ reload: result }, `config reloaded: ${result.changed.length ? `changed ${result.changed.join(', ')}` : 'nothing changed'}${result.needs_restart.length ? `; needs a restart: ${result.needs_restart.join(', ')}` : ''}`);
    return result;
  }

  static async open(options: EngineOptions): Promise<Engine> {
    const logger = options.logger;
    const paths = new HomePaths(options.home);
    const config = options.config ?? (await loadConfig(paths.config));
    const store = openStore(paths, config, { warn: (msg, details) => logger?.warn(details ?? {}, msg) });
    await store.init();
    const templates = new TemplateRegistry(store.paths.templatesDir, options.builtinTemplatesDir ?? BUILTIN_DIR);
    return new Engine(store, config, templates, logger);
  }

  get lifecycle(): EngineState {
    return this.state;
  }

  get queueDepth(): number {
    return this.scheduler.pending;
  }

  get runningCount(): number {
    return this.active.size;
  }

  /** Ids of the tasks a runner holds now. */
  get activeTaskIds(): string[] {
    return [...this.active.keys()];
  }

  /** Recovers what a previous process left, then starts running tasks. */
  async start(): Promise<RecoveryReport> {
    if (this.state !== 'created') throw new AtlasError('not_allowed', `the engine is ${this.state}`);
    this.state = 'running';
    const scan = await this.index.load();
    // Events cut off by a crash are derived again from the checkpoints before recovery moves anything.
    await this.events.store.open();
    const repaired = await repairEvents(this.events.store, this.index.list({}), async (ws, id) => (await this.store.tasks.readTaskAt(ws, id)).task);
    if (repaired.appended > 0) this.log?.info({ events_repair: repaired }, `recorded ${repaired.appended} event(s) a crash had cut off`);
    const report = this.store instanceof PgStore ? await this.joinCluster(this.store, scan.tasks) : await this.recover(scan);
    await this.webhooks.start();
    // In-place edits of task.json behind our back (no directory change to notice) are picked
    // up here, every minute; the snapshot is refreshed too, so a start after a crash has
    // little to read.
    const upkeep = () => {
      this.index.revalidateAll();
      void this.index.save().catch((err: unknown) => this.log?.warn({ err: errorData(err) }, 'could not save the task index snapshot'));
    };
    this.revalidateTimer = setInterval(upkeep, 60_000);
    this.revalidateTimer.unref();
    return report;
  }

  // ---- tasks -----------------------------------------------------------------------

  async startTask(p: StartParams): Promise<TaskRecord> {
    const prepared = await this.prepareTask(p);
    const deps = p.after?.length ? await checkDependencies(p.after.map((d) => assertTaskId(d)), (d) => this.statusOf(d)) : undefined;
    const task = await this.writeTask(prepared, await this.store.tasks.newTaskId(new Date()), deps);
    this.launchTask(task);
    return task;
  }

  /** Checks a start request (workspace, template, inputs, labels) and builds the new task's
   *  record, without an id and without writing anything (batches check every task first). */
  async prepareTask(p: StartParams): Promise<PreparedTask> {
    this.assertRunning();
    const workspace = await this.store.workspaces.get(assertName('workspace', p.workspace));
    const template = p.template_file ? await loadTemplateFile(p.template_file) : await this.templates.get(p.template);
    this.checkRunnable(template);
    const inputs = resolveInputs(template, p.inputs ?? {});
    checkDurationInputs(template, inputs);
    const environment = p.env !== undefined ? cleanEnvironment(p.env) : undefined;
    const priority = p.priority ?? 0;
    if (!Number.isInteger(priority) || Math.abs(priority) > 1_000_000) {
      throw new AtlasError('invalid_input', `priority must be a whole number (got ${String(p.priority)})`);
    }
    try {
      const st = await fsp.stat(workspace.path);
      if (!st.isDirectory()) throw new Error('not a directory');
    } catch {
      throw new AtlasError('invalid_input', `workspace ${workspace.name}'s directory ${workspace.path} does not exist; recreate the workspace`);
    }
    const labels = checkLabels(p.labels);
    const at = new Date().toISOString();
    const task: TaskRecord = {
      schema_version: SCHEMA_VERSION,
      id: '',
      workspace: workspace.name,
      template: template.name,
      description: p.description ?? template.description,
      inputs,
      status: 'pending',
      current_step: 0,
      steps: template.steps.map((s) => newStepState(s as unknown as StepState['definition'])),
      step_results: [],
      transitions: [{ from_status: null, to_status: 'pending', timestamp: at, reason: 'created' }],
      priority,
      created_at: at,
      updated_at: at,
      completed_at: null,
      revision: 0,
      error: null,
      workdir: workspace.path,
      env: template.env,
      ...(labels ? { labels } : {}),
      ...(p.schedule_fire ? { schedule_fire: p.schedule_fire } : {}),
    };
    return { task, environment };
  }

  /** Writes a prepared task under `id`, waiting on `deps`; nothing runs it until launchTask. */
  async writeTask(prepared: PreparedTask, id: string, deps?: { after: string[]; waiting_on: string[] }): Promise<TaskRecord> {
    const at = new Date().toISOString();
    const task: TaskRecord = { ...prepared.task, id, created_at: at, updated_at: at, transitions: prepared.task.transitions.map((t) => ({ ...t, timestamp: at })) };
    if (deps) {
      task.after = deps.after;
      task.waiting_on = deps.waiting_on;
    }
    await this.store.tasks.createTask(task, prepared.environment ? { environment: prepared.environment } : {});
    return task;
  }

  /** Announces a written task and hands it to the scheduler (or to the dependency tracker). */
  launchTask(task: TaskRecord): void {
    this.events.record(task, { t: 0, r: 0 });
    this.logCommitted(task.workspace, task.id, { event: 'task_created', task });
    this.emitTask(task);
    this.enqueue(task);
  }

  async getTask(id: string): Promise<TaskRecord> {
    return this.store.tasks.getTask(assertTaskId(id));
  }

  /**
   * The task for `show`. An unreadable task.json is never served from task.json.bak in
   * silence: the task is repaired as a restart would (the backup or the log, whichever is
   * further along), and the answer carries a warning saying so.
   */
  async showTask(id: string): Promise<TaskRecord & { warnings?: string[] }> {
    const { task, source } = await this.store.tasks.readTask(assertTaskId(id));
    if (source === 'primary') return task;
    if (this.active.has(id) || this.state !== 'running') {
      return { ...task, warnings: [`task.json of ${id} is unreadable; this is its previous checkpoint (task.json.bak), which may be behind`] };
    }
    const fixed = await this.store.repairTask(task.workspace, id);
    const action = fixed.action === 'rebuilt_from_log' ? 'rebuilt it from task.log' : fixed.action === 'restored_backup' ? 'restored task.json.bak' : fixed.action.replace(/_/g, ' ');
    const warning = `task.json of ${id} was unreadable (${fixed.problem ?? 'unknown problem'}); atlas ${action}`;
    this.log?.warn({ task: id, repair: fixed }, warning);
    if (fixed.action === 'quarantined') throw new AtlasError('corrupt', `${warning}; the task was moved to ${fixed.quarantined_to}`, { details: { id } });
    const now = await this.getTask(id);
    this.emitTask(now);
    if (MOVING.has(now.status)) this.enqueue(now);
    return { ...now, warnings: [warning] };
  }

  /** Summaries newest first, from the index (which picks up changes made behind its back). */
  async listTasks(filter: TaskFilter = {}): Promise<TaskSummary[]> {
    if (filter.workspace !== undefined) assertName('workspace', filter.workspace);
    if (this.state === 'created') await this.index.load();
    else await this.index.catchUp?.();
    return this.index.list(filter);
  }

  /** One page of tasks matching a query, newest first, with the total (DESIGN §13). */
  async queryTasks(q: TaskQuery): Promise<QueryPage> {
    if (q.workspace !== undefined) assertName('workspace', q.workspace);
    if (this.state === 'created') await this.index.load();
    await this.index.catchUp?.();
    if (this.index.query) return this.index.query(q);
    const all = this.index.list({});
    return runQuery(all.map((summary) => ({ summary, key: idSortKey(summary.id) })), q);
  }

  /** Task counts by status. */
  taskCounts(): Record<string, number> {
    return this.index.counts();
  }

  /** Re-runs the failed (or interrupted) step as a new attempt. */
  async resume(id: string): Promise<TaskRecord> {
    const task = await this.updateIdle(id, (t) => {
      if (!RESUMABLE_FROM.has(t.status)) {
        throw new AtlasError('not_allowed', `task ${id} is ${t.status}; only failed, validation_failed, gh_failed, ci_failed, ci_timeout or interrupted tasks can be resumed`, {
          details: { id, status: t.status },
        });
      }
      const step = t.steps[t.current_step];
      if (step) {
        step.status = 'pending';
        step.error = null;
        step.deadline = null;
        step.process = null;
      }
      t.error = null;
      transition(t, 'pending', 'resumed by the user');
    });
    this.enqueue(task);
    return task;
  }

  async approve(id: string): Promise<TaskRecord> {
    const task = await this.updateIdle(id, (t) => {
      this.requireStatus(t, 'awaiting_approval', 'approved');
      const step = t.steps[t.current_step]!;
      step.status = 'completed';
      step.completed_at = new Date().toISOString();
      t.current_step++;
      transition(t, 'pending', `step ${step.name} approved`);
    });
    this.logCommitted(task.workspace, task.id, { event: 'approved', step: task.steps[task.current_step - 1]?.name });
    this.enqueue(task);
    return task;
  }

  /** Ends the task as rejected, or with `retryFrom` runs it again from that step. */
  async reject(id: string, reason: string, retryFrom?: string): Promise<TaskRecord> {
    if (typeof reason !== 'string' || reason.trim() === '') throw new AtlasError('invalid_input', 'a rejection needs a reason (--reason "...")');
    const task = await this.updateIdle(id, (t) => {
      this.requireStatus(t, 'awaiting_approval', 'rejected');
      const step = t.steps[t.current_step]!;
      const last = t.step_results.at(-1);
      if (last && last.step_index === t.current_step) {
        last.status = 'rejected';
        last.error = reason;
      }
      (t.rejections ??= []).push({ step: step.name, reason, retry_from: retryFrom ?? null, at: new Date().toISOString() });
      if (retryFrom === undefined) {
        step.status = 'failed';
        step.error = `rejected: ${reason}`;
        step.completed_at = new Date().toISOString();
        transition(t, 'rejected', `rejected: ${reason}`);
        return;
      }
      const from = t.steps.findIndex((s) => s.name === retryFrom);
      if (from < 0) {
        throw new AtlasError('invalid_input', `no step ${retryFrom} in task ${id}; its steps are ${t.steps.map((s) => s.name).join(', ')}`);
      }
      if (from > t.current_step) throw new AtlasError('invalid_input', `--retry-from must name step ${step.name} or an earlier one`);
      for (let i = from; i <= t.current_step; i++) {
        const s = t.steps[i]!;
        s.status = 'pending';
        s.completed_at = null;
        s.error = null;
        s.deadline = null;
        s.process = null;
      }
      t.current_step = from;
      transition(t, 'pending', `rejected (${reason}); running again from step ${retryFrom}`);
    });
    this.logCommitted(task.workspace, task.id, { event: 'rejected', reason, retry_from: retryFrom ?? null });
    if (task.status === 'pending') this.enqueue(task);
    return task;
  }

  /**
   * Stops the task for good: kills a running step's process tree first, then records the end.
   * While it runs no runner may pick the task up (a queued entry or a retry timer included).
   */
  async cancel(id: string): Promise<TaskRecord> {
    assertTaskId(id);
    this.canceling.add(id);
    try {
      for (let tries = 0; ; tries++) {
        this.scheduler.remove(id);
        this.clearRetry(id);
        const active = this.active.get(id);
        if (active) {
          active.reason = 'cancel';
          active.controller.abort();
          await active.done;
          const t = await this.getTask(id);
          if (TERMINAL_STATUSES.has(t.status)) return t;
          continue;
        }
        const current = await this.getTask(id);
        if (TERMINAL_STATUSES.has(current.status)) {
          throw new AtlasError('not_allowed', `task ${id} is already ${current.status}`, { details: { id, status: current.status } });
        }
        // Not ours (recovery has not reached it, or it is between runs): its tree dies before
        // the end is recorded, as for a task we run.
        const step = current.steps[current.current_step];
        if (current.status === 'running' && step?.status === 'running' && step.process) await killLeftover(step, this.config.kill_grace_ms);
        try {
          return await this.updateAndLog(id, (t) => {
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
      this.canceling.delete(id);
    }
  }

  /** Deletes a settled task; counted by the destruction guard (refused past the limit without `force`) and logged. */
  async deleteTask(id: string, options: { force?: boolean } = {}): Promise<void> {
    const task = await this.getTask(id);
    const giveBack = this.guard.admit(`task ${id}`, options.force ?? false);
    try {
      await this.deleteSettled(task);
    } catch (err) {
      giveBack();
      throw err;
    }
    this.log?.info({ deleted: 'task', task: id, workspace: task.workspace, force: options.force ?? false }, `deleted task ${id} (workspace ${task.workspace})`);
  }

  /** Counts a purge (a workspace's history, the quarantine) against the destruction guard; runs it and logs it. */
  async destroy<T>(what: string, force: boolean, run: () => Promise<T>): Promise<T> {
    const giveBack = this.guard.admit(what, force);
    try {
      const r = await run();
      this.log?.info({ deleted: what, force }, `deleted ${what}`);
      return r;
    } catch (err) {
      giveBack();
      throw err;
    }
  }

  private async deleteSettled(task: TaskRecord): Promise<void> {
    const id = task.id;
    if (!TERMINAL_STATUSES.has(task.status) && !RESUMABLE_FROM.has(task.status) && task.status !== 'awaiting_approval') {
      throw new AtlasError('not_allowed', `task ${id} is ${task.status}; cancel it before deleting it`, { details: { id, status: task.status } });
    }
    // A runner that just settled the task may still be letting go of it.
    const active = this.active.get(id);
    if (active) await active.done;
    if (this.active.has(id)) throw new AtlasError('not_allowed', `task ${id} is running; cancel it first`);
    this.store.closeLog(task.workspace, id);
    await this.store.tasks.deleteTask(id);
    this.events.deleted(task);
    this.index.remove(id, task.workspace);
    this.emit('deleted', id);
    this.dependencies.settled(id);
  }

  /** Removes a workspace; with `purge` its tasks go too, from the index and from followers' view. */
  async removeWorkspace(name: string, purge: boolean): Promise<RemoveResult> {
    const gone = purge ? this.index.list({ workspace: assertName('workspace', name) }).map((t) => t.id) : [];
    const result = await removeWorkspace(this.store, name, purge);
    for (const id of gone) {
      this.scheduler.remove(id);
      this.clearRetry(id);
      this.store.closeLog(name, id);
      this.index.remove(id, name);
      this.emit('deleted', id);
    }
    return result;
  }

  /** Resolves with the task once it no longer moves by itself (terminal, failed, awaiting approval...). */
  waitForSettled(id: string, signal?: AbortSignal): Promise<TaskRecord> {
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (fn: () => void) => {
        if (done) return;
        done = true;
        this.off('task', onTask);
        signal?.removeEventListener('abort', onAbort);
        fn();
      };
      // Settled means its events are durable too: `atlas events` after `start --wait` shows the end.
      const settled = (t: TaskRecord) => finish(() => void this.eventsDurable().then(() => resolve(t)));
      const onTask = (t: TaskRecord) => {
        if (t.id === id && !MOVING.has(t.status)) settled(t);
      };
      const onAbort = () => finish(() => reject(new AtlasError('internal', 'stopped waiting')));
      this.on('task', onTask);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.getTask(id).then(
        (t) => {
          if (!MOVING.has(t.status)) settled(t);
        },
        (err: unknown) => finish(() => reject(err)),
      );
    });
  }

  /** Waits until every event recorded so far is durable; gives up after 5 s (a disk that cannot sync). */
  private eventsDurable(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, 5_000).unref()));
    return Promise.race([this.events.store.flush().catch(() => undefined), timeout]).finally(() => clearTimeout(timer));
  }

  /** Checks the whole home; with `repair`, fixes what is safe and picks repaired tasks up again. */
  async doctor(repair: boolean): Promise<DoctorReport> {
    const report = await runDoctor(this.store, this.templates, repair, (id) => this.active.has(id) || this.scheduler.has(id));
    for (const id of report.repaired_tasks) {
      const t = await this.getTask(id).catch(() => undefined);
      if (t && MOVING.has(t.status)) this.enqueue(t);
    }
    return report;
  }

  // ---- shutdown ----------------------------------------------------------------------

  /**
   * Drains: no new step starts; running steps get `graceMs` to finish; then the rest are
   * stopped (their process groups killed) and their tasks stay checkpointed as they stand,
   * for the next start to resume. Calling it again skips the grace period.
   */
  async shutdown(graceMs = 10_000, opts: { detach?: boolean } = {}): Promise<void> {
    if (this.state === 'stopped') return;
    if (this.state === 'draining') {
      this.abortAll();
      return;
    }
    // Detach: running steps keep running (their output goes to files, their gate records the
    // exit status) and the next daemon re-attaches to them; nothing waits for them here.
    if (opts.detach) graceMs = 0;
    if (opts.detach) for (const a of this.active.values()) a.reason ??= 'detach';
    this.state = 'draining';
    this.scheduler.pause();
    this.cluster?.pauseClaims();
    if (this.revalidateTimer) clearInterval(this.revalidateTimer);
    for (const r of this.retries.values()) if (r.timer) clearTimeout(r.timer);
    this.retries.clear();
    const all = Promise.all([...this.active.values()].map((a) => a.done));
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<void>((r) => (timer = setTimeout(r, graceMs)));
    await Promise.race([all, graceOver]);
    if (timer) clearTimeout(timer);
    this.abortAll();
    await all;
    await this.dependencies.idle();
    await this.sweeping;
    await this.cluster?.stop();
    await this.index.save().catch((err: unknown) => this.log?.warn({ err: errorData(err) }, 'could not save the task index snapshot'));
    await this.webhooks.stop().catch(() => undefined);
    await this.events.store.close().catch(() => undefined);
    await this.store.close();
    spawner.close();
    this.state = 'stopped';
  }

  private abortAll(): void {
    for (const a of this.active.values()) {
      a.reason ??= 'shutdown';
      a.controller.abort();
    }
  }

  // ---- internals ---------------------------------------------------------------------

  private assertRunning(): void {
    if (this.state !== 'running') throw new AtlasError('not_allowed', `atlas is ${this.state === 'draining' ? 'shutting down' : this.state}; try again once it has restarted`, { retryable: true });
  }

  private requireStatus(t: TaskRecord, status: TaskStatus, verb: string): void {
    if (t.status !== status) {
      throw new AtlasError('not_allowed', `task ${t.id} is ${t.status}, not ${status}; it cannot be ${verb}`, { details: { id: t.id, status: t.status } });
    }
  }

  /** Refuses a template this engine cannot run to the end (for example no agent command). */
  private checkRunnable(template: Template): void {
    const needsAgent = template.steps.find((s) => s.type === 'ai' && s.command === undefined);
    if (needsAgent && !this.config.ai_command) {
      throw new AtlasError(
        'invalid_input',
        `template ${template.name} has an ai step (${needsAgent.name}) but no agent command is configured: set 'ai.command' in ${this.store.paths.config} (for example: ai: { command: "claude -p" })`,
        { details: { template: template.name, step: needsAgent.name, config_key: 'ai.command' } },
      );
    }
  }

  /** Updates a task that no runner holds; retries on a conflict with the runner. */
  private async updateIdle(id: string, mutate: (t: TaskRecord) => void): Promise<TaskRecord> {
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
  private async updateAndLog(id: string, mutate: (t: TaskRecord) => void): Promise<TaskRecord> {
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
  private logTransitions(task: TaskRecord, since: number): void {
    for (const tr of task.transitions.slice(since)) {
      this.logCommitted(task.workspace, task.id, { event: 'transition', from_status: tr.from_status, to_status: tr.to_status, reason: tr.reason });
    }
  }

  /**
   * Logs a change already checkpointed in task.json. The change stands whether or not its log
   * record can be written (out of file descriptors, a full disk): failing the request would
   * leave a created or approved task that nothing queues, and a client that retries it.
   */
  private logCommitted(ws: string, id: string, record: LogRecord): void {
    try {
      this.store.appendLog(ws, id, record);
    } catch (err) {
      this.log?.warn({ task: id, event: record.event, err: errorData(err) }, `task ${id}: could not log ${record.event}: ${(err as Error).message}`);
    }
  }

  /** A task's status, or undefined when there is no such task. */
  private async statusOf(id: string): Promise<TaskStatus | undefined> {
    try {
      return (await this.store.tasks.getTask(id)).status;
    } catch (err) {
      if (isAtlasError(err, 'not_found')) return undefined;
      throw err;
    }
  }

  private enqueue(task: TaskRecord): void {
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

  private emitTask(task: TaskRecord): void {
    this.index.put(task, this.store.tasks.writtenSignature(task.id));
    this.dependencies.changed(task);
    this.emit('task', task);
  }

  private async runEntry(entry: QueueEntry): Promise<void> {
    if (this.state !== 'running' || this.active.has(entry.id) || this.canceling.has(entry.id)) return;
    const controller = new AbortController();
    let finish!: () => void;
    const active: Active = { controller, reason: undefined, done: new Promise<void>((r) => (finish = r)) };
    this.active.set(entry.id, active);
    let failure: unknown;
    let ran = false;
    try {
      await this.store.tasks.acquireLease(entry.id, { waitMs: 15_000 });
      const task = await this.store.tasks.getTask(entry.id);
      if (!MOVING.has(task.status) || (task.status === 'pending' && task.waiting_on?.length)) return;
      ran = true;
      const environment = await this.taskEnvironment(task);
      let cursor = cursorOf(task);
      let started: StepStart[] = [];
      await runTask(task, {
        store: this.store,
        config: this.config,
        environment,
        signal: controller.signal,
        stopReason: () => active.reason,
        hooks: {
          onCheckpoint: (t) => {
            cursor = this.events.record(t, cursor, started);
            started = [];
            this.emitTask(t);
          },
          onLog: (t, record) => {
            if (record['event'] === 'step_started') started.push({ step_index: record['step_index'] as number, attempt: record['attempt'] as number, at: new Date().toISOString() });
            this.emit('log', t.id, record);
          },
          draining: () => this.state !== 'running',
        },
      });
    } catch (err) {
      failure = err;
    } finally {
      this.active.delete(entry.id);
      await this.store.tasks.releaseLease(entry.id).catch(() => undefined);
      finish();
      this.cluster?.nudge();
    }
    // Nothing below may throw: this is the path that keeps a failed run from being a stuck one.
    if (failure === undefined) {
      if (ran) this.retries.delete(entry.id);
      return;
    }
    if (isAtlasError(failure, 'not_found')) return;
    this.reportRunFailure(entry, failure);
  }

  /**
   * A run that stopped on an error outside its steps. A full disk (or out of descriptors), a
   * busy lock, or a conflict with another writer leaves the task at its last good checkpoint:
   * it is tried again, with a delay that grows to 10 s, for as long as it takes. Anything else
   * (a corrupt task.json, a defect) is reported and left for `doctor --repair` or a restart.
   */
  private reportRunFailure(entry: QueueEntry, err: unknown): void {
    const previous = this.retries.get(entry.id);
    const failures = (previous?.failures ?? 0) + 1;
    const delay = Math.min(10_000, 1000 * 2 ** Math.min(failures - 1, 4));
    const message = err instanceof Error ? err.message : String(err);
    const retry = isAtlasError(err, 'storage') || isAtlasError(err, 'locked') || isAtlasError(err, 'conflict');
    const next = retry ? `atlas tries again in ${Math.round(delay / 1000)}s` : `'atlas doctor' may tell why`;
    try {
      this.log?.error({ task: entry.id, err: errorData(err), retry_in_ms: delay }, `task ${entry.id} stopped: ${message}`);
      this.emit('task_error', entry.id, err);
      // Followers learn why nothing moves (it cannot go in task.log: the disk may be full).
      const diskFull = isAtlasError(err, 'storage') && /ENOSPC|EDQUOT/.test(String(err.details?.['errno'] ?? ''));
      this.emit('log', entry.id, {
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
    if (!retry || this.state !== 'running') return;
    if (previous?.timer) clearTimeout(previous.timer);
    const timer = setTimeout(() => {
      const r = this.retries.get(entry.id);
      if (r?.timer === timer) r.timer = undefined;
      this.scheduler.enqueue(entry);
    }, delay);
    this.retries.set(entry.id, { timer, failures });
  }

  private clearRetry(id: string): void {
    const r = this.retries.get(id);
    if (r?.timer) clearTimeout(r.timer);
    this.retries.delete(id);
  }

  /** The captured environment of a task; a corrupt file is reported in the task's log and the daemon's environment used. */
  private async taskEnvironment(task: TaskRecord): Promise<Record<string, string> | undefined> {
    try {
      return await this.store.tasks.readEnvironment(task.id);
    } catch (err) {
      if (!isAtlasError(err, 'corrupt')) throw err;
      this.logCommitted(task.workspace, task.id, { event: 'env_unreadable', message: `${err.message}; steps get the daemon's environment` });
      return undefined;
    }
  }

  private async recover(scan: IndexScan): Promise<RecoveryReport> {
    const { report, toQueue, candidates } = await recoverTasks(
      {
        store: this.store,
        index: this.index,
        killGraceMs: this.config.kill_grace_ms,
        log: this.log,
        settled: (t, since, sinceResults) => {
          this.events.record(t, { t: since, r: sinceResults });
          this.logTransitions(t, since);
          this.emitTask(t);
        },
      },
      scan,
    );
    for (const t of toQueue) this.enqueue(t);
    // A killed writer can leave temp files in tasks recovery had no reason to read too (an
    // approve or a repair cut off mid-write): those are swept in the background, so a large
    // home does not delay the start.
    this.sweeping = this.sweepIdle(this.index.list({}).filter((t) => !candidates.has(t.id)));
    return report;
  }

  /** Joins the daemons of a shared store: takes this daemon's lock, cleans up after a crash, starts claiming. */
  private async joinCluster(store: PgStore, seen: number): Promise<RecoveryReport> {
    const started = performance.now();
    const cluster = new Cluster({
      store,
      config: this.config,
      log: this.log,
      hooks: {
        freeSlots: () => this.config.max_concurrent_tasks - this.active.size - this.scheduler.pending,
        run: (c) => this.scheduler.enqueue({ id: c.id, workspace: c.workspace, priority: c.priority, order: `${c.created_at}|${idSortKey(c.id)}` }),
        leaseLost: (id) => this.stopLost(id),
        running: () => [...this.active.keys()],
      },
    });
    store.db.onLeaseLost((l) => this.stopLost(l.id));
    this.cluster = cluster;
    const { killed_groups } = await cluster.start();
    return { tasks_seen: seen, requeued: [], rerun: [], paused: [], reattached: [], killed_groups, swept_temp_files: 0, unreadable: [], repaired: [], duration_ms: Math.round(performance.now() - started) };
  }

  /** Another daemon holds the task now: its step's tree is killed and nothing more is written. */
  private stopLost(id: string): void {
    const a = this.active.get(id);
    if (!a) return;
    a.reason = 'lease_lost';
    a.controller.abort();
  }

  private async sweepIdle(tasks: Array<{ id: string; workspace: string }>): Promise<void> {
    let swept = 0;
    for (const t of tasks) {
      if (this.state !== 'running') break;
      swept += (await this.store.tasks.sweep(t.workspace, t.id).catch(() => [])).length;
    }
    if (swept) this.log?.info({ swept_temp_files: swept }, `swept ${swept} temp file(s) left by dead writers in idle tasks`);
  }
}

function errorData(err: unknown): Record<string, unknown> {
  return isAtlasError(err) ? { code: err.code, message: err.message } : { message: (err as Error)?.message ?? String(err) };
}
