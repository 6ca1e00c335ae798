// Backups of a filesystem home (DESIGN §14): one checksummed tar.gz (tgz.ts) made while the
// daemon runs and its tasks keep running, verified whole before anything is restored.
//
// Why the snapshot is consistent without stopping anything:
//   - task.json is only ever replaced by rename, so reading it yields one whole checkpoint,
//     never a half-written one; it is read first, and checked to decode;
//   - the task's log, its previous checkpoint and its artifacts are read after it, so they
//     hold at least what that checkpoint refers to (the log may run ahead, exactly as after a
//     crash, which recovery handles); versioned artifacts appear whole (link) or not at all;
//   - the events log is read before any task, so no event refers to a checkpoint the backup
//     lacks (events are written after their checkpoint; ones a task is ahead by are derived
//     again at start, as after a crash);
//   - a task no runner holds is read under its lock, so a delete or an archive cannot take it
//     away half read; a running task's files are read as a crash would leave them.
// Left out: the socket, pid and lock files, logs/, cache/ (rebuilt), run/ (a running
// attempt's pipes), temp files, http.token (made again at first use), daemon.id, and
// worktrees/ (git checkouts: back them up with git).
//
// Restore writes into a fresh directory beside the home and renames it into place, so a
// restore cut off half way leaves no half-restored home. Steps that were running at backup
// time lose their process record: the restored daemon runs them again, as after a reboot
// (their processes, if any still live, belong to the original home).
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { AtlasError, errnoCode, storageError } from '../errors.js';
import { VERSION } from '../version.js';
import { pidAlive } from '../util/proc.js';
import { DIR_MODE, FILE_MODE, fsyncDir, isTempFile } from './atomic.js';
import { isValidName, isValidTaskId } from './names.js';
import type { HomePaths } from './paths.js';
import { decodeTask } from './task-codec.js';
import { readTgz, TgzWriter, type Manifest } from './tgz.js';

export const BACKUP_FORMAT = 'atlas-backup';

/** Top-level directories copied whole (after the tasks, except events, which go first). */
const WHOLE_DIRS = ['templates', 'webhooks', 'schedules', 'quarantine', 'archive'];
/** Top-level files copied when present. */
const TOP_FILES = ['config.yaml'];

export interface BackupOptions {
  /** Locks a task no runner holds while it is read; undefined when it cannot (it is running). */
  lockTask?: (workspace: string, id: string) => Promise<(() => Promise<void>) | undefined>;
}

export interface BackupSummary {
  files: number;
  tasks: number;
  bytes_in: number;
  /** Tasks whose task.json did not decode: copied as they are (recovery repairs them). */
  unreadable: string[];
}

/** Streams a snapshot of the home into `writer`; the caller reads `writer.output`. */
export async function writeBackup(paths: HomePaths, writer: TgzWriter, options: BackupOptions = {}): Promise<BackupSummary> {
  const sum: BackupSummary = { files: 0, tasks: 0, bytes_in: 0, unreadable: [] };
  const add = async (rel: string, data: Buffer) => {
    await writer.add(rel, data);
    sum.files++;
    sum.bytes_in += data.length;
  };
  const root = paths.root;
  for (const f of TOP_FILES) {
    const data = await readOrUndefined(path.join(root, f));
    if (data) await add(f, data);
  }
  await addTree(root, 'events', add);
  let workspaces: string[] = [];
  try {
    workspaces = (await fsp.readdir(paths.workspacesDir)).filter(isValidName).sort();
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw storageError('list', paths.workspacesDir, err);
  }
  for (const ws of workspaces) {
    const rec = await readOrUndefined(paths.workspaceFile(ws));
    if (rec) await add(`workspaces/${ws}/workspace.json`, rec);
    // Append-only: a copy taken during an append ends at most in a torn line, which readers skip.
    const memory = await readOrUndefined(paths.memoryFile(ws));
    if (memory) await add(`workspaces/${ws}/memory.jsonl`, memory);
    let ids: string[] = [];
    try {
      ids = (await fsp.readdir(paths.tasksDir(ws))).filter(isValidTaskId).sort();
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw storageError('list', paths.tasksDir(ws), err);
    }
    for (const id of ids) {
      const release = await options.lockTask?.(ws, id).catch((err: unknown) => {
        if (err instanceof AtlasError && err.code === 'not_found') return null;
        throw err;
      });
      if (release === null) continue; // deleted or archived meanwhile
      try {
        if (await addTask(paths, ws, id, add, sum)) sum.tasks++;
      } finally {
        await release?.();
      }
    }
  }
  for (const d of WHOLE_DIRS) await addTree(root, d, add);
  return sum;
}

/** One task's files, task.json first. False when the task vanished before its checkpoint was read. */
async function addTask(paths: HomePaths, ws: string, id: string, add: (rel: string, data: Buffer) => Promise<void>, sum: BackupSummary): Promise<boolean> {
  const dir = paths.taskDir(ws, id);
  const rel = `workspaces/${ws}/tasks/${id}`;
  const checkpoint = await readOrUndefined(paths.taskFile(ws, id));
  if (!checkpoint) return false;
  try {
    decodeTask(checkpoint.toString('utf8'), paths.taskFile(ws, id));
  } catch {
    sum.unreadable.push(id);
  }
  await add(`${rel}/task.json`, checkpoint);
  for (const f of ['task.json.bak', 'env.json', 'task.log']) {
    const data = await readOrUndefined(path.join(dir, f));
    if (data) await add(`${rel}/${f}`, data);
  }
  let names: string[] = [];
  try {
    names = (await fsp.readdir(paths.artifactsDir(ws, id))).filter((n) => isValidName(n) && !isTempFile(n)).sort();
  } catch {
    // no artifacts
  }
  for (const n of names) {
    const data = await readOrUndefined(path.join(paths.artifactsDir(ws, id), n));
    if (data) await add(`${rel}/artifacts/${n}`, data);
  }
  return true;
}

/** Every regular file under `root/dir`, sorted, skipping temp files, locks and claims. */
async function addTree(root: string, dir: string, add: (rel: string, data: Buffer) => Promise<void>): Promise<void> {
  let names: fs.Dirent[];
  try {
    names = await fsp.readdir(path.join(root, dir), { withFileTypes: true });
  } catch {
    return;
  }
  names.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const d of names) {
    if (isTempFile(d.name) || d.name.includes('.lock') || d.name.includes('.claim-') || d.name.startsWith('.')) continue;
    const rel = `${dir}/${d.name}`;
    if (d.isDirectory()) await addTree(root, rel, add);
    else if (d.isFile()) {
      const data = await readOrUndefined(path.join(root, rel));
      if (data) await add(rel, data);
    }
  }
}

async function readOrUndefined(file: string): Promise<Buffer | undefined> {
  try {
    return await fsp.readFile(file);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return undefined;
    throw storageError('read', file, err);
  }
}

export function backupAbout(paths: HomePaths, sum: BackupSummary): Record<string, unknown> {
  return { home: paths.root, store: 'fs', atlas_version: VERSION, tasks: sum.tasks, files: sum.files, bytes: sum.bytes_in, unreadable: sum.unreadable };
}

// ---- verify and restore ----------------------------------------------------------------

/** Reads the whole backup, checking every checksum; returns its manifest or throws `corrupt` with the reason. */
export async function verifyBackup(file: string): Promise<Manifest> {
  const stream = openForRead(file);
  return readTgz(stream, file, BACKUP_FORMAT);
}

export function openForRead(file: string): fs.ReadStream {
  try {
    const fd = fs.openSync(file, 'r');
    return fs.createReadStream(file, { fd });
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw new AtlasError('not_found', `no backup file ${file}`, { details: { file } });
    throw storageError('open', file, err);
  }
}

export interface RestoreResult {
  home: string;
  tasks: number;
  files: number;
  /** With --force, where the home that was there before went. */
  moved_aside: string | null;
  backup_created_at: string;
  /** Tasks whose running step will run again (it was running at backup time). */
  rerun: string[];
}

/** Restores `file` into `home`, which must be empty or absent (or, with `force`, is moved aside first). */
export async function restoreBackup(file: string, home: string, options: { force?: boolean; verified?: Manifest } = {}): Promise<RestoreResult> {
  const target = path.resolve(home);
  // Every checksum first: a damaged file changes nothing.
  const manifest = options.verified ?? (await verifyBackup(file));
  if (manifest.about?.['store'] === 'postgres') {
    throw new AtlasError('invalid_input', `${file} is a backup of a PostgreSQL store, not of a home; name the database to restore it into with store: in config.yaml (or ATLAS_STORE_URL)`);
  }
  let movedAside: string | null = null;
  const existing = await fsp.readdir(target).catch((err: unknown) => {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw storageError('read', target, err);
  });
  if (existing && existing.length > 0) {
    if (!options.force) {
      throw new AtlasError('not_allowed', `${target} is not empty (${existing.length} entries); restore into an empty or new home (--home DIR), or pass --force to move this one aside first`, {
        details: { home: target },
      });
    }
    const pid = daemonPid(await fsp.readFile(path.join(target, 'daemon.pid'), 'utf8').catch(() => ''));
    if (Number.isInteger(pid) && pid > 0 && pidAlive(pid)) {
      throw new AtlasError('not_allowed', `a daemon (pid ${pid}) runs in ${target}; stop it first ('atlas daemon stop'), then restore`, { details: { home: target, pid } });
    }
    movedAside = `${target}.before-restore-${stamp(new Date())}`;
    await fsp.rename(target, movedAside).catch((err: unknown) => {
      throw storageError('move aside', target, err);
    });
  }
  const staging = `${target}.restoring-${process.pid}`;
  await fsp.rm(staging, { recursive: true, force: true });
  await fsp.mkdir(staging, { recursive: true, mode: DIR_MODE });
  const rerun: string[] = [];
  const written: string[] = [];
  try {
    await readTgz(openForRead(file), file, BACKUP_FORMAT, async (e) => {
      const dest = safeJoin(staging, e.name);
      let data = e.data;
      const m = /^workspaces\/[^/]+\/tasks\/([^/]+)\/task\.json$/.exec(e.name);
      if (m) data = forgetProcesses(data, () => rerun.push(m[1]!));
      await fsp.mkdir(path.dirname(dest), { recursive: true, mode: DIR_MODE });
      await fsp.writeFile(dest, data, { mode: FILE_MODE, flag: 'wx' });
      written.push(dest);
    });
    await syncAll(staging, written);
    if (existing) await fsp.rmdir(target).catch(() => undefined);
    await fsp.rename(staging, target);
    await fsyncDir(path.dirname(target));
  } catch (err) {
    await fsp.rm(staging, { recursive: true, force: true }).catch(() => undefined);
    if (movedAside) await fsp.rename(movedAside, target).catch(() => undefined);
    throw err instanceof AtlasError ? err : storageError('restore into', target, err);
  }
  const about = manifest.about ?? {};
  return { home: target, tasks: Number(about['tasks'] ?? 0), files: written.length, moved_aside: movedAside, backup_created_at: manifest.created_at, rerun };
}

/** The pid in a daemon.pid file (the owner record `{"pid": N, ...}`, or the pid alone). */
function daemonPid(text: string): number {
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v === 'number') return v;
    if (v && typeof v === 'object' && typeof (v as { pid?: unknown }).pid === 'number') return (v as { pid: number }).pid;
  } catch {
    // neither
  }
  return 0;
}

/** A running step's process record belongs to the home the backup came from: dropped, so
 *  the restored daemon runs the step again instead of touching those processes. */
export function forgetProcesses(data: Buffer, onRerun: () => void): Buffer {
  let task: { status?: string; steps?: Array<{ status?: string; process?: unknown }> };
  try {
    task = JSON.parse(data.toString('utf8')) as typeof task;
  } catch {
    return data; // unreadable: recovery repairs it from its backup or log
  }
  let changed = false;
  for (const s of task.steps ?? []) {
    if (s.process && s.status === 'running') {
      s.process = null;
      changed = true;
    }
  }
  if (!changed) return data;
  onRerun();
  return Buffer.from(JSON.stringify(task) + "\n");
}

/** A path inside `root`; anything that would leave it (absolute, `..`) is refused. */
function safeJoin(root: string, rel: string): string {
  const dest = path.resolve(root, rel);
  if (path.isAbsolute(rel) || rel.split('/').includes('..') || !dest.startsWith(root + path.sep)) {
    throw new AtlasError('corrupt', `the backup names a path outside the home (${rel}); refusing it`, { details: { path: rel } });
  }
  return dest;
}

/** fsync every restored file (a few at a time) and every directory, before the home is renamed into place. */
async function syncAll(root: string, files: string[]): Promise<void> {
  const dirs = new Set<string>();
  for (let i = 0; i < files.length; i += 16) {
    await Promise.all(
      files.slice(i, i + 16).map(async (f) => {
        for (let d = path.dirname(f); d.startsWith(root + path.sep); d = path.dirname(d)) dirs.add(d);
        const fh = await fsp.open(f, 'r');
        try {
          await fh.sync();
        } finally {
          await fh.close();
        }
      }),
    );
  }
  dirs.add(root);
  for (const d of [...dirs].sort((a, b) => b.length - a.length)) await fsyncDir(d);
}

export function stamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
}
