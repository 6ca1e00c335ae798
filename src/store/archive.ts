// Archived tasks (DESIGN §14): one checksummed tar.gz per task (tgz.ts) at
// archive/<ws>/<yyyy-mm>/<id>.tar.gz (the month the task was created), with its summary
// beside it (<id>.json), so archived tasks are listed without opening an archive.
//
// A task is always exactly one of live or archived, whatever kills the daemon, because each
// move has one commit point, a rename, and the rule "the live directory wins" settles the rest:
//   archive:   write summary, then <id>.tar.gz (temp, fsync, rename, fsync dir)
//              -> rename tasks/<id> to tasks/.archived-<id>, fsync   [commit]
//              -> remove tasks/.archived-<id>
//   unarchive: extract into tasks/.unarchiving-<id>-<pid>, fsync every file
//              -> rename it to tasks/<id>, fsync                      [commit]
//              -> remove the archive and its summary
// reconcile() (at the daemon's start) finishes or undoes what a crash cut off: an archive
// whose task is still live is removed (uncommitted), a leftover .archived- directory is
// removed (its archive is complete), an .unarchiving- one is removed (uncommitted), a
// summary without its archive is removed.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { AtlasError, errnoCode, storageError } from '../errors.js';
import { faultPoint } from '../util/fault.js';
import { ARCHIVE_FORMAT, notArchived, packArchive, unpackArchive, type ArchiveEntry, type ArchivedSummary, type ArchivedTask, type ReconcileReport, type TaskArchives } from './archive-format.js';
import { DIR_MODE, FILE_MODE, ensureDir, fsyncDir, isTempFile, sweepTempFiles, writeFileDurable } from './atomic.js';
import { isValidName, isValidTaskId } from './names.js';
import type { HomePaths } from './paths.js';
import { summarize, type TaskRecord } from './records.js';
import { decodeTask } from './task-codec.js';
import { lockTaskDir } from './task-lock.js';
import { readTgz } from './tgz.js';

export type { ArchivedSummary, ArchivedTask, ReconcileReport } from './archive-format.js';

interface Where {
  workspace: string;
  file: string;
}

export class TaskArchive implements TaskArchives {
  readonly writesEvents = false;
  /** id -> where its archive is; loaded on first use. */
  private where: Map<string, Where> | undefined;
  private readonly summaries = new Map<string, ArchivedSummary>();
  /** The last few archives read whole (show, then logs, then artifacts of one task). */
  private readonly cache = new Map<string, ArchivedTask>();

  constructor(private readonly paths: HomePaths) {}

  get root(): string {
    return path.join(this.paths.root, 'archive');
  }

  fileFor(ws: string, id: string, createdAt: string): string {
    const month = /^\d{4}-\d{2}/.exec(createdAt)?.[0] ?? 'unknown';
    return path.join(this.root, ws, month, `${id}.tar.gz`);
  }

  /** Finishes or undoes moves a crash cut off (see the top of this file). */
  async reconcile(): Promise<ReconcileReport> {
    const report: ReconcileReport = { archives_removed: [], leftovers_removed: [] };
    const live = new Set<string>();
    for (const ws of await readdirOr(this.paths.workspacesDir)) {
      if (!isValidName(ws)) continue;
      const tasksDir = this.paths.tasksDir(ws);
      for (const name of await readdirOr(tasksDir)) {
        if (isValidTaskId(name)) {
          live.add(name);
          continue;
        }
        const archived = /^\.archived-(.+)$/.exec(name);
        const unarchiving = /^\.unarchiving-(.+)-\d+$/.exec(name);
        if (!archived && !unarchiving) continue;
        const dir = path.join(tasksDir, name);
        if (archived && !(await this.load()).has(archived[1]!)) {
          // Cannot happen by the protocol (the rename follows the durable archive); keep the task.
          await fsp.rename(dir, path.join(tasksDir, archived[1]!)).catch(() => undefined);
          live.add(archived[1]!);
          continue;
        }
        await fsp.rm(dir, { recursive: true, force: true });
        report.leftovers_removed.push(name);
      }
    }
    const where = await this.load();
    for (const [id, w] of [...where]) {
      if (!live.has(id)) continue;
      await this.removeFiles(w.file);
      where.delete(id);
      this.summaries.delete(id);
      report.archives_removed.push(id);
    }
    return report;
  }

  /** Walks archive/<ws>/<month>/ once: ids and files (summaries are read when listed). */
  private async load(): Promise<Map<string, Where>> {
    if (this.where) return this.where;
    const where = new Map<string, Where>();
    for (const ws of await readdirOr(this.root)) {
      if (!isValidName(ws)) continue;
      for (const month of await readdirOr(path.join(this.root, ws))) {
        const dir = path.join(this.root, ws, month);
        await sweepTempFiles(dir);
        const names = await readdirOr(dir);
        const archives = new Set(names.filter((n) => n.endsWith('.tar.gz')).map((n) => n.slice(0, -'.tar.gz'.length)));
        for (const n of names) {
          // A summary whose archive never got written (a crash between the two).
          if (n.endsWith('.json') && !archives.has(n.slice(0, -5)) && !isTempFile(n)) await fsp.rm(path.join(dir, n), { force: true });
        }
        for (const id of archives) if (isValidTaskId(id)) where.set(id, { workspace: ws, file: path.join(dir, `${id}.tar.gz`) });
      }
    }
    this.where = where;
    return where;
  }

  async locate(id: string): Promise<Where | undefined> {
    return (await this.load()).get(id);
  }

  async has(id: string): Promise<boolean> {
    return (await this.load()).has(id);
  }

  get size(): number {
    return this.where?.size ?? 0;
  }

  /** Every archived task's summary, newest first (read from the small summary files, once). */
  async list(): Promise<ArchivedSummary[]> {
    const where = await this.load();
    const out: ArchivedSummary[] = [];
    for (const [id, w] of where) {
      let s = this.summaries.get(id);
      if (!s) {
        try {
          s = JSON.parse(await fsp.readFile(w.file.replace(/\.tar\.gz$/, '.json'), 'utf8')) as ArchivedSummary;
        } catch {
          s = (await this.read(id).catch(() => undefined))?.summary;
          if (!s) continue;
        }
        this.summaries.set(id, s);
      }
      out.push(s);
    }
    return out;
  }

  /** Archives the task under its lock if `accept` agrees (see TaskArchives). */
  async archiveIf(workspace: string, id: string, accept: (task: TaskRecord) => boolean): Promise<ArchivedSummary | undefined> {
    const lock = await lockTaskDir(this.paths.taskDir(workspace, id), { waitMs: 2_000 });
    try {
      const file = this.paths.taskFile(workspace, id);
      let text: string;
      try {
        text = await fsp.readFile(file, 'utf8');
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') throw new AtlasError('not_found', `no task ${id}`, { details: { id } });
        throw storageError('read', file, err);
      }
      const task = decodeTask(text, file);
      if (!accept(task)) return undefined;
      await this.archive(task);
      return this.summaries.get(id);
    } finally {
      await lock.release().catch(() => undefined);
    }
  }

  /**
   * Archives a task (the caller holds its lock and checked it may be archived). Returns the
   * archive's size. Fault points `archive.written` (archive durable, task still live) and
   * `archive.committed` (task moved away, not yet removed) let tests kill it at each step.
   */
  async archive(task: TaskRecord): Promise<number> {
    const { workspace: ws, id } = task;
    const dir = this.paths.taskDir(ws, id);
    const entries: ArchiveEntry[] = [];
    let task0: TaskRecord = task;
    for (const f of ['task.json', 'task.json.bak', 'env.json', 'task.log']) {
      const data = await readOr(path.join(dir, f));
      if (!data) continue;
      if (f === 'task.json') task0 = decodeTask(data.toString('utf8'), path.join(dir, f));
      entries.push({ name: f, data });
    }
    const artDir = this.paths.artifactsDir(ws, id);
    for (const n of (await readdirOr(artDir)).filter((n) => isValidName(n) && !isTempFile(n)).sort()) {
      const file = path.join(artDir, n);
      const data = await readOr(file);
      if (!data) continue;
      const st = await fsp.stat(file).catch(() => undefined);
      entries.push({ name: `artifacts/${n}`, data, ...(st ? { mtime: st.mtime } : {}) });
    }
    const body = await packArchive(entries, { id, workspace: ws });
    const file = this.fileFor(ws, id, task0.created_at);
    const summary: ArchivedSummary = { ...summarize(task0), archived_at: new Date().toISOString(), archive_bytes: body.length };
    await ensureDir(path.dirname(file));
    await writeFileDurable(file.replace(/\.tar\.gz$/, '.json'), JSON.stringify(summary) + '\n', { skipDirSync: true });
    await writeFileDurable(file, body);
    faultPoint('archive.written');
    const tasksDir = this.paths.tasksDir(ws);
    const doomed = path.join(tasksDir, `.archived-${id}`);
    try {
      await fsp.rename(dir, doomed);
    } catch (err) {
      await this.removeFiles(file);
      throw storageError('archive', dir, err);
    }
    await fsyncDir(tasksDir);
    (await this.load()).set(id, { workspace: ws, file });
    this.summaries.set(id, summary);
    faultPoint('archive.committed');
    await fsp.rm(doomed, { recursive: true, force: true });
    return body.length;
  }

  /** Reads an archived task whole, checking every checksum. */
  async read(id: string): Promise<ArchivedTask> {
    const cached = this.cache.get(id);
    if (cached) return cached;
    const w = await this.locate(id);
    if (!w) throw new AtlasError('not_found', `no task ${id}, live or archived; 'atlas list' and 'atlas list --archived' show the tasks there are`, { details: { id } });
    const { task, log, artifacts, manifest } = await unpackArchive(fs.createReadStream(w.file), w.file, id);
    const st = await fsp.stat(w.file);
    const summary = this.summaries.get(id) ?? { ...summarize(task), archived_at: manifest.created_at, archive_bytes: st.size };
    const out: ArchivedTask = { task, summary, log, artifacts };
    this.cache.set(id, out);
    if (this.cache.size > 4) this.cache.delete(this.cache.keys().next().value!);
    return out;
  }

  /** Brings an archived task back into its workspace's tasks/ (see the protocol above). */
  async unarchive(id: string): Promise<TaskRecord> {
    const w = await this.locate(id);
    if (!w) throw notArchived(id);
    const { task } = await this.read(id);
    const tasksDir = this.paths.tasksDir(w.workspace);
    const live = this.paths.taskDir(w.workspace, id);
    if (fs.existsSync(live)) throw new AtlasError('already_exists', `task ${id} is live already`, { details: { id } });
    await ensureDir(tasksDir);
    const staging = path.join(tasksDir, `.unarchiving-${id}-${process.pid}`);
    await fsp.rm(staging, { recursive: true, force: true });
    await fsp.mkdir(path.join(staging, 'artifacts'), { recursive: true, mode: DIR_MODE });
    const files: string[] = [];
    await readTgz(fs.createReadStream(w.file), w.file, ARCHIVE_FORMAT, async (e) => {
      if (e.name.includes('..') || path.isAbsolute(e.name)) throw new AtlasError('corrupt', `the archive of ${id} names a path outside the task (${e.name})`);
      const dest = path.join(staging, e.name);
      await fsp.writeFile(dest, e.data, { mode: FILE_MODE, flag: 'wx' });
      files.push(dest);
    });
    for (const f of files) {
      const fh = await fsp.open(f, 'r');
      await fh.sync().finally(() => fh.close());
    }
    await fsyncDir(path.join(staging, 'artifacts'));
    await fsyncDir(staging);
    await fsp.rename(staging, live);
    await fsyncDir(tasksDir);
    faultPoint('unarchive.committed');
    await this.removeFiles(w.file);
    this.where?.delete(id);
    this.summaries.delete(id);
    this.cache.delete(id);
    return task;
  }

  private async removeFiles(file: string): Promise<void> {
    await fsp.rm(file, { force: true });
    await fsp.rm(file.replace(/\.tar\.gz$/, '.json'), { force: true });
    await fsyncDir(path.dirname(file)).catch(() => undefined);
  }
}

async function readdirOr(dir: string): Promise<string[]> {
  try {
    return await fsp.readdir(dir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return [];
    throw storageError('list', dir, err);
  }
}

async function readOr(file: string): Promise<Buffer | undefined> {
  try {
    return await fsp.readFile(file);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw storageError('read', file, err);
  }
}
