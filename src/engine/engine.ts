// The engine: the in-process API that the daemon (and tests) call. It creates tasks from
// templates, schedules them, runs them through the runner, applies operator actions, and
// on start recovers every task a previous process left unfinished (DESIGN §6).
//
// Lifecycle: 'created' -> 'running' -> 'draining' -> 'stopped'.
//
// This file holds the lifecycle (open, start, reload, shutdown) and the public API; each
// operation lives with its concern: task-intake.ts (start), task-reads.ts (show, list,
// query, wait), operator-actions.ts (resume, approve, reject, cancel), deletion.ts,
// task-runs.ts (running queued tasks), startup.ts (recovery or joining a cluster), and
// engine-core.ts (the shared state and the update/queue/announce primitives).
import fsp from 'node:fs/promises';
import type { Logger } from 'pino';
import { loadConfig, type Config } from '../config/config.js';
import { AtlasError } from '../errors.js';
import type { TaskRecord, TaskSummary } from '../store/records.js';
import { openStore } from '../store/open-store.js';
import { HomePaths } from '../store/paths.js';
import type { TaskFilter } from '../store/store.js';
import type { QueryPage, TaskQuery } from '../store/task-query.js';
import { repairEvents } from '../events/repair.js';
import { BUILTIN_DIR, TemplateRegistry } from '../templates/loader.js';
import { PgStore } from '../store/pg/pg-store.js';
import { spawner } from '../steps/spawner.js';
import { runDoctor, type DoctorReport } from './doctor.js';
import { EngineCore, MOVING, errorData, type EngineState } from './engine-core.js';
import { deleteTask, destroy, removeWorkspace } from './deletion.js';
import { resolveInputs } from './new-task.js';
import { approve, cancel, reject, resume } from './operator-actions.js';
import type { RecoveryReport } from './recovery.js';
import { configKeyName, diffConfig, type ReloadResult } from './reload.js';
import { joinCluster, recover } from './startup.js';
import { launchTask, prepareTask, startTask, writeTask, type PreparedTask, type StartParams } from './task-intake.js';
import { listTasks, queryTasks, showTask, waitForSettled } from './task-reads.js';
import type { RemoveResult } from './workspaces.js';

export type { EngineState, PreparedTask, RecoveryReport, StartParams };
export { resolveInputs };

export interface EngineOptions {
  home: string;
  /** Settings; read from $home/config.yaml when absent. */
  config?: Config;
  builtinTemplatesDir?: string;
  logger?: Logger;
}

export class Engine extends EngineCore {
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
    const repaired = await repairEvents(this.events.store, this.index.loaded?.() ?? this.index.list({}), async (ws, id) => (await this.store.tasks.readTaskAt(ws, id)).task);
    if (repaired.appended > 0) this.log?.info({ events_repair: repaired }, `recorded ${repaired.appended} event(s) a crash had cut off`);
    const report = this.store instanceof PgStore ? await joinCluster(this, this.store, scan.tasks) : await recover(this, scan);
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

  startTask(p: StartParams): Promise<TaskRecord> {
    return startTask(this, p);
  }

  /** Checks a start request and builds the new task's record, without an id and without writing anything. */
  prepareTask(p: StartParams): Promise<PreparedTask> {
    return prepareTask(this, p);
  }

  /** Writes a prepared task under `id`, waiting on `deps`; nothing runs it until launchTask. */
  writeTask(prepared: PreparedTask, id: string, deps?: { after: string[]; waiting_on: string[] }): Promise<TaskRecord> {
    return writeTask(this, prepared, id, deps);
  }

  /** Announces a written task and hands it to the scheduler (or to the dependency tracker). */
  launchTask(task: TaskRecord): void {
    launchTask(this, task);
  }

  /** The task for `show`; an unreadable task.json is repaired and the answer warns so. */
  showTask(id: string): Promise<TaskRecord & { warnings?: string[]; blocked_reason?: string }> {
    return showTask(this, id);
  }

  listTasks(filter: TaskFilter = {}): Promise<TaskSummary[]> {
    return listTasks(this, filter);
  }

  queryTasks(q: TaskQuery): Promise<QueryPage> {
    return queryTasks(this, q);
  }

  /** Task counts by status. */
  taskCounts(): Record<string, number> {
    return this.index.counts();
  }

  /** Resolves with the task once it no longer moves by itself (terminal, failed, awaiting approval...). */
  waitForSettled(id: string, signal?: AbortSignal): Promise<TaskRecord> {
    return waitForSettled(this, id, signal);
  }

  resume(id: string): Promise<TaskRecord> {
    return resume(this, id);
  }

  approve(id: string): Promise<TaskRecord> {
    return approve(this, id);
  }

  reject(id: string, reason: string, retryFrom?: string): Promise<TaskRecord> {
    return reject(this, id, reason, retryFrom);
  }

  cancel(id: string): Promise<TaskRecord> {
    return cancel(this, id);
  }

  deleteTask(id: string, options: { force?: boolean } = {}): Promise<void> {
    return deleteTask(this, id, options);
  }

  destroy<T>(what: string, force: boolean, run: () => Promise<T>): Promise<T> {
    return destroy(this, what, force, run);
  }

  removeWorkspace(name: string, purge: boolean): Promise<RemoveResult> {
    return removeWorkspace(this, name, purge);
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
}
