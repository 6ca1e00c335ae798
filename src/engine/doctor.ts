// atlas doctor: every problem in a home, found without changing anything, and with
// `repair` fixed where that is safe. Runs inside the daemon (the only writer), with the same
// checks recovery makes at start.
import fsp from 'node:fs/promises';
import path from 'node:path';
import { loadConfig } from '../config/config.js';
import { isAtlasError } from '../errors.js';
import { isTempFile, sweepTempFiles } from '../store/atomic.js';
import { isValidName, isValidTaskId } from '../store/names.js';
import { diagnoseTask, repairTask } from '../store/repair.js';
import type { Store } from '../store/store.js';
import { breakDeadLock } from '../store/task-lock.js';
import { readLog } from '../store/task-log.js';
import type { TemplateRegistry } from '../templates/loader.js';

export type Severity = 'error' | 'warning' | 'info';

export interface Finding {
  severity: Severity;
  kind: string;
  target: string;
  message: string;
  /** What --repair does about it, or null when it needs a person. */
  fix: string | null;
  fixed: boolean;
}

export interface DoctorReport {
  home: string;
  repair: boolean;
  tasks_checked: number;
  findings: Finding[];
  /** Task ids repaired back into a readable state (the engine picks them up again). */
  repaired_tasks: string[];
  ok: boolean;
}

export async function runDoctor(store: Store, templates: TemplateRegistry, repair: boolean, isActive: (id: string) => boolean): Promise<DoctorReport> {
  const paths = store.paths;
  const findings: Finding[] = [];
  const repaired: string[] = [];
  const add = (f: Omit<Finding, 'fixed'>, fixed = false) => findings.push({ ...f, fixed });

  const st = await fsp.stat(paths.root);
  if ((st.mode & 0o077) !== 0) {
    if (repair) await fsp.chmod(paths.root, 0o700);
    add({ severity: 'warning', kind: 'home_mode', target: paths.root, message: `the home is mode ${(st.mode & 0o777).toString(8)}; others can read it`, fix: 'chmod 700' }, repair);
  }
  try {
    await loadConfig(paths.config);
  } catch (err) {
    add({ severity: 'error', kind: 'config_invalid', target: paths.config, message: (err as Error).message, fix: null });
  }
  for (const t of await templates.list()) {
    if (t.error) add({ severity: 'warning', kind: 'template_invalid', target: t.source, message: t.error, fix: null });
  }

  let checked = 0;
  for (const ws of await store.tasks.workspaceNames()) {
    try {
      await store.workspaces.get(ws);
    } catch (err) {
      if (isAtlasError(err, 'not_found')) add({ severity: 'info', kind: 'workspace_record_missing', target: paths.workspaceDir(ws), message: `tasks of workspace ${ws} are kept but the workspace itself was removed`, fix: null });
      else {
        let fixed = false;
        if (repair) {
          // The newest task knows the directory; with no task there is nothing to keep.
          const [newest] = await store.tasks.listTasks({ workspace: ws, limit: 1 }).catch(() => []);
          if (newest?.workdir) {
            const kind = newest.workdir.startsWith(`${paths.worktreesDir}${path.sep}`) ? 'worktree' : 'path';
            await store.workspaces.create({ name: ws, path: newest.workdir, kind, repo: null, branch: null });
          } else {
            await store.workspaces.remove(ws, false);
          }
          fixed = true;
        }
        add({ severity: 'error', kind: 'workspace_corrupt', target: paths.workspaceFile(ws), message: (err as Error).message, fix: 'rebuild workspace.json from its newest task (remove it when it has none); the broken file is kept beside it' }, fixed);
      }
    }
    let entries: string[] = [];
    try {
      entries = await fsp.readdir(paths.tasksDir(ws));
    } catch {
      continue;
    }
    for (const name of entries) {
      const full = path.join(paths.tasksDir(ws), name);
      if (name.startsWith('.deleted-')) {
        if (repair) await fsp.rm(full, { recursive: true, force: true });
        add({ severity: 'warning', kind: 'half_deleted_task', target: full, message: 'a task deletion was cut off', fix: 'finish deleting it' }, repair);
        continue;
      }
      if (!isValidTaskId(name)) continue;
      checked++;
      const id = name;
      if (isActive(id)) continue;
      const diag = await diagnoseTask(paths, ws, id);
      if (diag.problem) {
        const fix = diag.fix === 'restored_backup' ? 'restore task.json.bak' : diag.fix === 'rebuilt_from_log' ? 'rebuild task.json from task.log' : diag.fix === 'quarantined' ? `move the task to ${paths.quarantineDir}` : null;
        let fixed = false;
        if (repair && fix) {
          const r = await repairTask(paths, ws, id);
          fixed = r.action !== 'none';
          if (r.action === 'restored_backup' || r.action === 'rebuilt_from_log') repaired.push(id);
        }
        add({ severity: 'error', kind: 'task_unreadable', target: paths.taskFile(ws, id), message: diag.problem, fix }, fixed);
        if (fixed && diag.fix === 'quarantined') continue;
      }
      const temps = (await fsp.readdir(paths.taskDir(ws, id)).catch(() => [] as string[])).filter(isTempFile);
      if (temps.length) {
        const swept = repair ? await sweepTempFiles(paths.taskDir(ws, id)) : [];
        add({ severity: 'warning', kind: 'temp_files', target: paths.taskDir(ws, id), message: `${temps.length} temp file(s) left by an interrupted write: ${temps.join(', ')}`, fix: 'remove those of dead writers' }, repair && swept.length === temps.length);
      }
      const lockPresent = await fsp.stat(path.join(paths.taskDir(ws, id), 'task.lock')).then(() => true, () => false);
      if (lockPresent) {
        const broken = repair ? breakDeadLock(paths.taskDir(ws, id)) : false;
        add({ severity: 'warning', kind: 'task_lock', target: paths.taskDir(ws, id), message: 'a lock is held on this task (by a dead process if nothing runs it)', fix: 'break it if its holder is dead' }, broken);
      }
      const { skipped } = await readLog(paths.taskLog(ws, id), () => false);
      if (skipped.length) {
        add({ severity: 'info', kind: 'log_torn_lines', target: paths.taskLog(ws, id), message: `${skipped.length} torn or unreadable line(s) (lines ${skipped.slice(0, 5).join(', ')}${skipped.length > 5 ? ', ...' : ''}); readers skip them`, fix: null });
      }
    }
  }
  try {
    const q = (await fsp.readdir(paths.quarantineDir)).filter((n) => !n.startsWith('.'));
    if (q.length) add({ severity: 'info', kind: 'quarantine', target: paths.quarantineDir, message: `${q.length} unrecoverable task(s) kept for inspection: ${q.slice(0, 5).join(', ')}${q.length > 5 ? ', ...' : ''}`, fix: null });
  } catch {
    // no quarantine: nothing to say
  }
  for (const n of await fsp.readdir(paths.workspacesDir).catch(() => [] as string[])) {
    if (!n.startsWith('.') && !isValidName(n)) add({ severity: 'info', kind: 'stray_entry', target: path.join(paths.workspacesDir, n), message: 'not a valid workspace name; ignored', fix: null });
  }
  const ok = findings.every((f) => f.severity === 'info' || f.fixed);
  return { home: paths.root, repair, tasks_checked: checked, findings, repaired_tasks: repaired, ok };
}
