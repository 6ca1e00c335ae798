// The filesystem task store. task.json is the source of truth for a task; every write is a
// durable atomic replace that keeps the previous checkpoint as task.json.bak.
//
// Concurrency: every write carries the revision the writer last saw. A writer that holds an
// older revision than the file gets a `conflict`, never a silent overwrite. Writers in other
// processes serialise on a per-task lock (proper-lockfile); the engine holds a task's lock for
// as long as it runs the task (a lease), so its checkpoints need no extra lock round trip.
import fsp from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { AtlasError, errnoCode, isAtlasError, storageError } from '../errors.js';
import { ensureDir, fsyncDir, sweepTempFiles, writeFileDurable } from './atomic.js';
import { assertName, assertTaskId } from './names.js';
import type { HomePaths } from './paths.js';
import { TERMINAL_STATUSES, type TaskRecord } from './records.js';
import type { NewTask, ReadResult, StoreTasks, TaskFilter, Warn } from './store.js';
import { createAllOrNothing, rollBackBatches } from './batch-journal.js';
import { decodeTask, encodeTask, encodeTaskPieces } from './task-codec.js';
import { breakDeadLock, lockTaskDir, type TaskLock } from './task-lock.js';
import { readTaskEnv, writeTaskEnv } from './task-env.js';
import { taskIdBase } from './task-ids.js';
import { TaskLocator } from './task-locator.js';

export type { TaskFilter, Warn, ReadResult };

/** What this process last wrote to a task.json: the revision and the file's identity. An inode
 *  alone is not enough: ext4 hands a freed inode number to the next new file, and an in-place
 *  rewrite by another program keeps it. */
interface Written {
  revision: number;
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  /** Whether that write was fsynced: only a durable task.json may become task.json.bak. */
  durable: boolean;
}

function sameFile(w: Written, st: Stats): boolean {
  return w.ino === st.ino && w.size === st.size && w.mtimeMs === st.mtimeMs && w.ctimeMs === st.ctimeMs;
}

export class TaskStore implements StoreTasks {
  readonly paths: HomePaths;
  private readonly warn: Warn;
  /** Finds a task's workspace by id alone (ids are unique across the home). */
  private readonly locator: TaskLocator;
  /** What this process last wrote to each task.json, to detect writes behind its back cheaply. */
  private readonly written = new Map<string, Written>();
  private readonly leases = new Map<string, TaskLock>();
  private readonly reservedIds = new Set<string>();
  /** In-process writers of a task, one at a time: the cross-process lock is skipped while this
   *  process holds the task's lease, and two writers that both passed the revision check would
   *  otherwise both write revision + 1 (a lost update). */
  private readonly writers = new Map<string, Promise<void>>();

  constructor(paths: HomePaths, options: { warn?: Warn } = {}) {
    this.paths = paths;
    this.locator = new TaskLocator(paths);
    this.warn = options.warn ?? (() => undefined);
  }

  async init(): Promise<void> {
    await ensureDir(this.paths.workspacesDir);
    const undone = await rollBackBatches(this.paths, this);
    if (undone.length) this.warn(`deleted ${undone.length} task(s) of a batch a crash cut short (a batch is created whole or not at all): ${undone.join(', ')}`);
  }

  /** Several new tasks, all or nothing (batch-journal.ts). */
  createTasks(entries: NewTask[]): Promise<TaskRecord[]> {
    return createAllOrNothing(this.paths, this, entries);
  }

  // ---- ids -------------------------------------------------------------------------

  /** A new task id, `task-YYYYMMDD-HHMMSS` (UTC), with a suffix when that id is taken. */
  async newTaskId(now: Date = new Date()): Promise<string> {
    const base = taskIdBase(now);
    for (let n = 1; ; n++) {
      const id = n === 1 ? base : `${base}-${n}`;
      if (this.reservedIds.has(id)) continue;
      // Reserve before the first await, so concurrent callers in this process never pick the same id.
      this.reservedIds.add(id);
      if ((await this.locate(id)) !== undefined) {
        this.reservedIds.delete(id);
        continue;
      }
      return id;
    }
  }

  // ---- locating --------------------------------------------------------------------

  workspaceNames(): Promise<string[]> {
    return this.locator.workspaceNames();
  }

  /** The workspace that holds task `id`, or undefined. */
  locate(id: string): Promise<string | undefined> {
    return this.locator.locate(id);
  }

  private requireLocation(id: string): Promise<string> {
    return this.locator.require(id);
  }

  // ---- reading ---------------------------------------------------------------------

  async getTask(id: string): Promise<TaskRecord> {
    return (await this.readTask(id)).task;
  }

  /** Reads task.json, falling back to task.json.bak when task.json is missing or corrupt. */
  async readTask(id: string): Promise<ReadResult> {
    const ws = await this.requireLocation(id);
    return this.readTaskAt(ws, id);
  }

  async readTaskAt(ws: string, id: string): Promise<ReadResult> {
    const file = this.paths.taskFile(ws, id);
    let primaryError: unknown;
    try {
      const task = decodeTask(await fsp.readFile(file, 'utf8'), file);
      return { task, source: 'primary' };
    } catch (err) {
      if (isAtlasError(err, 'unsupported_schema')) throw err;
      primaryError = isAtlasError(err) ? err : errnoCode(err) === 'ENOENT' ? new AtlasError('corrupt', `${file} is missing`, { details: { file } }) : storageError('read', file, err);
      if (isAtlasError(primaryError, 'storage')) throw primaryError;
    }
    const bak = this.paths.taskBackup(ws, id);
    try {
      const task = decodeTask(await fsp.readFile(bak, 'utf8'), bak);
      this.warn(`${(primaryError as Error).message}; using the previous checkpoint ${bak}`, { task: id, file });
      return { task, source: 'backup' };
    } catch {
      throw primaryError;
    }
  }

  // ---- writing ---------------------------------------------------------------------

  /** Writes a brand-new task (revision 1). The task's directory must not exist yet. */
  /** Creates a task; `environment` (the caller's captured environment) goes to env.json beside it. */
  async createTask(task: TaskRecord, options: { environment?: Record<string, string> } = {}): Promise<TaskRecord> {
    assertName('workspace', task.workspace);
    assertTaskId(task.id);
    // Ids are unique across the home, not only within a workspace.
    if ((await this.locate(task.id)) !== undefined) throw new AtlasError('already_exists', `task ${task.id} already exists`, { details: { id: task.id } });
    const dir = this.paths.taskDir(task.workspace, task.id);
    await ensureDir(this.paths.tasksDir(task.workspace));
    try {
      await fsp.mkdir(dir, { mode: 0o700 });
    } catch (err) {
      if (errnoCode(err) === 'EEXIST') throw new AtlasError('already_exists', `task ${task.id} already exists`, { details: { id: task.id } });
      throw storageError('create', dir, err);
    }
    task.revision = 1;
    let st: Stats | undefined;
    try {
      if (options.environment) await writeTaskEnv(dir, options.environment);
      st = await writeFileDurable(this.paths.taskFile(task.workspace, task.id), encodeTask(task), { skipDirSync: true });
      // One sync covers the new task.json in the new directory; then the directory's own entry.
      await syncDirs([dir, this.paths.tasksDir(task.workspace)]);
    } catch (err) {
      // No half-made task: a directory without its task.json would be neither run nor listed.
      await fsp.rm(dir, { recursive: true, force: true }).catch(() => undefined);
      throw err;
    }
    this.locator.remember(task.id, task.workspace);
    this.reservedIds.delete(task.id);
    this.remember(task, st);
    return task;
  }

  /**
   * The checkpoint: durably replaces task.json with `task` at revision + 1 and keeps the
   * previous file as task.json.bak. `task.revision` must be the revision on disk; a file
   * changed behind the caller's back gives a conflict. On success `task.revision` grows by one.
   * With `durable: false` the replace is atomic but not fsynced: it survives a crash of this
   * process, not a power cut (then task.json.bak or the log has the previous durable state).
   */
  async checkpoint(task: TaskRecord, options: { durable?: boolean } = {}): Promise<void> {
    return this.oneWriter(task.id, () => this.checkpointNow(task, options));
  }

  private async checkpointNow(task: TaskRecord, options: { durable?: boolean }): Promise<void> {
    const lease = this.leases.get(task.id);
    if (lease) {
      if (lease.compromised) {
        throw new AtlasError('conflict', `lost the lock on task ${task.id} (another process may have taken it); not writing`, { details: { id: task.id } });
      }
      await this.writeChecked(task, options.durable);
      return;
    }
    const lock = await lockTaskDir(this.paths.taskDir(task.workspace, task.id));
    try {
      await this.writeChecked(task, options.durable);
    } finally {
      await lock.release();
    }
  }

  /** Read-modify-write under the task's lock. `mutate` gets the current record and changes it in place. */
  async updateTask(id: string, mutate: (task: TaskRecord) => void | Promise<void>): Promise<TaskRecord> {
    return this.oneWriter(id, () => this.updateNow(id, mutate));
  }

  /** Runs `write` once every earlier in-process writer of task `id` has finished. */
  private async oneWriter<T>(id: string, write: () => Promise<T>): Promise<T> {
    const before = this.writers.get(id);
    let done!: () => void;
    const mine = new Promise<void>((r) => (done = r));
    const tail = before ? before.then(() => mine) : mine;
    this.writers.set(id, tail);
    try {
      if (before) await before;
      return await write();
    } finally {
      done();
      if (this.writers.get(id) === tail) this.writers.delete(id);
    }
  }

  private async updateNow(id: string, mutate: (task: TaskRecord) => void | Promise<void>): Promise<TaskRecord> {
    const ws = await this.requireLocation(id);
    const held = this.leases.get(id);
    const lock = held ? undefined : await lockTaskDir(this.paths.taskDir(ws, id));
    try {
      const { task } = await this.readTaskAt(ws, id);
      await mutate(task);
      task.updated_at = new Date().toISOString();
      await this.writeChecked(task);
      return task;
    } finally {
      await lock?.release();
    }
  }

  private async writeChecked(task: TaskRecord, durable = true): Promise<void> {
    const file = this.paths.taskFile(task.workspace, task.id);
    const expected = task.revision;
    const known = this.written.get(task.id);
    let st: Stats | undefined;
    try {
      st = await fsp.stat(file);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw storageError('stat', file, err);
    }
    if (!(known && st && sameFile(known, st) && known.revision === expected)) {
      // Not (only) our own writes on disk: compare with what is really there.
      let onDisk: number | undefined;
      try {
        onDisk = (await this.readTaskAt(task.workspace, task.id)).task.revision;
      } catch (err) {
        if (!isAtlasError(err, 'corrupt')) throw err;
      }
      if (onDisk !== undefined && onDisk !== expected) {
        throw new AtlasError(
          'conflict',
          `task ${task.id} changed on disk (revision ${onDisk}, this writer holds ${expected}); reload it and try again`,
          { details: { id: task.id, revision: onDisk, expected }, retryable: true },
        );
      }
    }
    const next = { ...task, revision: expected + 1 };
    // task.json.bak is the fallback when task.json is lost: it must be a durable checkpoint.
    // A non-durable one (the pre-spawn record of a shell step) is replaced without keeping it,
    // so the backup stays the last durable checkpoint before it.
    const replacingDurable = known?.revision !== expected || known.durable;
    const mine = await writeFileDurable(file, encodeTaskPieces(next), { ...(replacingDurable ? { backup: this.paths.taskBackup(task.workspace, task.id) } : {}), durable });
    task.revision = expected + 1;
    this.remember(task, mine, durable);
  }

  /** The signature (inode, size, mtime, ctime) of task.json as this process last wrote it. */
  writtenSignature(id: string): string | undefined {
    const w = this.written.get(id);
    return w ? `${w.ino}:${w.size}:${w.mtimeMs}:${w.ctimeMs}` : undefined;
  }

  /** Keeps the stats of the task.json this process just wrote (none: another writer replaced it at once). */
  private remember(task: TaskRecord, st: Stats | undefined, durable = true): void {
    if (!st) {
      this.written.delete(task.id);
      return;
    }
    this.written.set(task.id, { revision: task.revision, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, durable });
  }


  // ---- leases ----------------------------------------------------------------------

  /** Holds the task's lock until `releaseLease`; checkpoints of this task then skip locking. */
  async acquireLease(id: string, options: { waitMs?: number } = {}): Promise<void> {
    if (this.leases.has(id)) return;
    const ws = await this.requireLocation(id);
    const lock = await lockTaskDir(this.paths.taskDir(ws, id), options);
    this.leases.set(id, lock);
  }

  async releaseLease(id: string): Promise<void> {
    const lock = this.leases.get(id);
    if (!lock) return;
    this.leases.delete(id);
    await lock.release();
  }

  async releaseAllLeases(): Promise<void> {
    await Promise.all([...this.leases.keys()].map((id) => this.releaseLease(id)));
  }

  // ---- listing and deleting ----------------------------------------------------------

  /** Task ids of one workspace (or all), newest first. Ids sort by creation time. */
  listTaskIds(workspace?: string): Promise<Array<{ id: string; workspace: string }>> {
    return this.locator.listTaskIds(workspace);
  }

  /** Tasks newest first. Unreadable tasks are skipped with a warning. */
  async listTasks(filter: TaskFilter = {}): Promise<TaskRecord[]> {
    const statuses = filter.status === undefined ? undefined : new Set(Array.isArray(filter.status) ? filter.status : [filter.status]);
    const out: TaskRecord[] = [];
    for (const { id, workspace } of await this.listTaskIds(filter.workspace)) {
      if (filter.limit !== undefined && out.length >= filter.limit) break;
      let task: TaskRecord;
      try {
        task = (await this.readTaskAt(workspace, id)).task;
      } catch (err) {
        this.warn(`skipping task ${id}: ${(err as Error).message}`, { task: id });
        continue;
      }
      if (statuses && !statuses.has(task.status)) continue;
      if (filter.template !== undefined && task.template !== filter.template) continue;
      out.push(task);
    }
    return out;
  }

  async deleteTask(id: string): Promise<void> {
    return this.oneWriter(id, () => this.deleteNow(id));
  }

  private async deleteNow(id: string): Promise<void> {
    const ws = await this.requireLocation(id);
    const dir = this.paths.taskDir(ws, id);
    const lock = this.leases.has(id) ? undefined : await lockTaskDir(dir);
    try {
      // Rename first so a half-deleted task never looks like a task.
      const doomed = `${this.paths.tasksDir(ws)}/.deleted-${id}-${process.pid}`;
      await fsp.rename(dir, doomed).catch((err: unknown) => {
        throw storageError('delete', dir, err);
      });
      // Once this returns the task is gone for good, a power cut included.
      await fsyncDir(this.paths.tasksDir(ws));
      await fsp.rm(doomed, { recursive: true, force: true });
    } finally {
      if (lock) await lock.release().catch(() => undefined);
      await this.releaseLease(id).catch(() => undefined);
    }
    this.locator.forget(id);
    this.written.delete(id);
  }

  /** The environment captured when the task was started, or undefined when none was. */
  async readEnvironment(id: string): Promise<Record<string, string> | undefined> {
    const ws = await this.requireLocation(id);
    return readTaskEnv(this.paths.taskDir(ws, id));
  }

  /** Removes temp files left by dead writers in a task's directory and its artifacts, and the
   *  lock a dead writer left. Returns the temp files' names (artifacts prefixed 'artifacts/'). */
  async sweep(ws: string, id: string): Promise<string[]> {
    const dir = this.paths.taskDir(ws, id);
    const swept = await sweepTempFiles(dir);
    for (const name of await sweepTempFiles(this.paths.artifactsDir(ws, id))) swept.push(`artifacts/${name}`);
    breakDeadLock(dir);
    return swept;
  }

  isTerminal(task: TaskRecord): boolean {
    return TERMINAL_STATUSES.has(task.status);
  }
}

async function syncDirs(dirs: string[]): Promise<void> {
  for (const d of dirs) await fsyncDir(d);
}
