// An in-memory index of task summaries, so listing and filtering 10,000 tasks does not read
// 10,000 files. The files stay the source of truth:
//   - each entry remembers the signature (inode, size, mtime, ctime) of the task.json it
//     came from; an entry whose file changed is re-read;
//   - each workspace's tasks/ directory is watched by its mtime: when task directories
//     appear or vanish behind our back (a backup copied in, a directory removed), the next
//     query rescans that workspace;
//   - a snapshot is saved in cache/task-index.json so a restart only stats files instead of
//     reading them; a missing or damaged snapshot just means a full scan. Every task.json is
//     still stat'ed at load: a task edited while no daemon ran (a backup copied over it, a
//     crash state) must be seen by recovery.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { ensureDir, writeFileDurable } from './atomic.js';
import { isValidName, isValidTaskId } from './names.js';
import type { HomePaths } from './paths.js';
import { summarize, type TaskRecord, type TaskStatus, type TaskSummary } from './records.js';
import { decodeTask } from './task-codec.js';
import { runQuery, searchText, type QueryPage, type TaskQuery } from './task-query.js';
import type { StoreIndex, TaskFilter } from './store.js';
import { idSortKey } from './task-ids.js';

const SNAPSHOT_VERSION = 4;

interface Entry {
  summary: TaskSummary;
  sig: string;
  /** What `list --text` searches (task-query.ts searchText). */
  text: string;
  /** Sorts like compareIds (newest last). */
  key: string;
}

/** cache/task-index.json: one array per task, positional (a 10,000-task snapshot parses in a
 *  third of the time an object per task took, and is 40% smaller). */
interface Snapshot {
  version: number;
  entries: SnapshotRow[];
}

type SnapshotRow = [
  id: string,
  workspace: string,
  template: string,
  description: string,
  status: TaskStatus,
  current_step: number,
  current_step_name: string | null,
  steps_total: number,
  priority: number,
  created_at: string,
  updated_at: string,
  completed_at: string | null,
  error: string | null,
  sig: string,
  text: string,
  /** waiting_on, labels, schedule_fire when the task has any of them; else 0. */
  extra: Pick<TaskSummary, 'waiting_on' | 'labels' | 'schedule_fire'> | 0,
];

function toRow(e: Entry): SnapshotRow {
  const s = e.summary;
  const extra = s.waiting_on || s.labels || s.schedule_fire ? { ...(s.waiting_on ? { waiting_on: s.waiting_on } : {}), ...(s.labels ? { labels: s.labels } : {}), ...(s.schedule_fire ? { schedule_fire: s.schedule_fire } : {}) } : 0;
  return [s.id, s.workspace, s.template, s.description, s.status, s.current_step, s.current_step_name, s.steps_total, s.priority, s.created_at, s.updated_at, s.completed_at, s.error, e.sig, e.text, extra];
}

/** The entry a snapshot row describes, or undefined for a row that is not one (a damaged snapshot). */
function fromRow(row: unknown): Entry | undefined {
  if (!Array.isArray(row) || row.length !== 16 || typeof row[0] !== 'string' || typeof row[1] !== 'string' || typeof row[13] !== 'string' || typeof row[14] !== 'string') return undefined;
  const [id, workspace, template, description, status, current_step, current_step_name, steps_total, priority, created_at, updated_at, completed_at, error, sig, text, extra] = row as SnapshotRow;
  const summary: TaskSummary = { id, workspace, template, description, status, current_step, current_step_name, steps_total, priority, created_at, updated_at, completed_at, error, ...(extra === 0 ? {} : extra) };
  return { summary, sig, text, key: idSortKey(id) };
}

export interface IndexScan {
  tasks: number;
  read: number;
  unreadable: Array<{ id: string; workspace: string; error: string }>;
  duration_ms: number;
}

function sigOf(st: fs.Stats): string {
  return `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

export class TaskIndex implements StoreIndex {
  private readonly entries = new Map<string, Entry>();
  /** Entries newest first; rebuilt lazily when tasks appear or vanish. An entry that changes
   *  is updated in place (setEntry), so this array stays valid across checkpoints. */
  private order: Entry[] | undefined;
  /** tasks/ directory mtime per workspace, as of the last scan. */
  private readonly dirStamp = new Map<string, number>();
  private readonly unreadable = new Map<string, { workspace: string; error: string }>();
  private dirty = false;

  constructor(private readonly paths: HomePaths) {}

  get size(): number {
    return this.entries.size;
  }

  get snapshotFile(): string {
    return path.join(this.paths.root, 'cache', 'task-index.json');
  }

  /** Loads the snapshot (if any) and reconciles it with the disk. */
  async load(): Promise<IndexScan> {
    const started = performance.now();
    const cached = new Map<string, Entry>();
    try {
      const snap = JSON.parse(await fsp.readFile(this.snapshotFile, 'utf8')) as Snapshot;
      if (snap.version === SNAPSHOT_VERSION && Array.isArray(snap.entries)) {
        for (const row of snap.entries) {
          const e = fromRow(row);
          if (e) cached.set(e.summary.id, e);
        }
      }
    } catch {
      // no snapshot or a damaged one: scan everything
    }
    const scan = { tasks: 0, read: 0 };
    for (const ws of this.workspaceNames()) this.scanWorkspace(ws, cached, scan);
    this.order = undefined;
    this.dirty = true;
    return {
      tasks: scan.tasks,
      read: scan.read,
      unreadable: [...this.unreadable].map(([id, u]) => ({ id, ...u })),
      duration_ms: Math.round(performance.now() - started),
    };
  }

  /** Saves the snapshot so the next start need not read every task. */
  async save(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    await ensureDir(path.dirname(this.snapshotFile));
    const snap: Snapshot = { version: SNAPSHOT_VERSION, entries: [...this.entries.values()].map(toRow) };
    await writeFileDurable(this.snapshotFile, JSON.stringify(snap));
  }

  /** Records a task as just written by this process (`sig`: its file's signature, when known). */
  put(task: TaskRecord, sig?: string): void {
    if (sig === undefined) {
      sig = '';
      try {
        sig = sigOf(fs.statSync(this.paths.taskFile(task.workspace, task.id)));
      } catch {
        // vanished: the next scan settles it
      }
    }
    const key = idSortKey(task.id);
    if (!this.entries.has(task.id)) {
      // A new task is almost always the newest: put it in front instead of sorting again.
      const entry: Entry = { summary: summarize(task), sig, key, text: searchText(task) };
      this.entries.set(task.id, entry);
      const first = this.order?.[0];
      if (this.order && (first === undefined || first.key < key)) this.order.unshift(entry);
      else this.order = undefined;
      this.noteOwnDirChange(task.workspace);
    } else {
      this.setEntry(task.id, { summary: summarize(task), sig, key, text: searchText(task) });
    }
    this.unreadable.delete(task.id);
    this.dirty = true;
  }

  remove(id: string, workspace: string): void {
    if (this.entries.delete(id)) this.order = undefined;
    this.unreadable.delete(id);
    this.noteOwnDirChange(workspace);
    this.dirty = true;
  }

  /** Ids whose task.json could not be read at the last scan. */
  unreadableTasks(): Array<{ id: string; workspace: string; error: string }> {
    return [...this.unreadable].map(([id, u]) => ({ id, ...u }));
  }

  /** Every summary as the last load() or scan found it, newest first, without a stat of each
   *  file again: for the start, which runs right after load() stat'ed every task.json (at
   *  10,000 tasks, each list() costs 10,000 stats). */
  loaded(): TaskSummary[] {
    return this.ordered().map((e) => e.summary);
  }

  /** Summaries newest first, after picking up any change made behind our back. */
  list(filter: TaskFilter = {}): TaskSummary[] {
    return this.query(filter).tasks;
  }

  /**
   * One page of a query (task-query.ts), with the total. What is returned is checked against
   * its file (one stat): a task.json replaced in place behind our back (a backup copied over
   * it) is re-read before it is shown. Changes that make a task newly match a filter are
   * caught by revalidateAll().
   */
  query(q: TaskQuery): QueryPage {
    this.refresh(q.workspace);
    return runQuery(this.ordered(), q, (e) => (this.verified(e.summary.id) ? this.entries.get(e.summary.id) : undefined));
  }

  /** The entry's summary, re-read first if its task.json changed since it was indexed. */
  private verified(id: string): TaskSummary | undefined {
    const e = this.entries.get(id);
    if (!e) return undefined;
    const { workspace } = e.summary;
    const file = this.paths.taskFile(workspace, id);
    let sig: string;
    try {
      sig = sigOf(fs.statSync(file));
    } catch {
      return e.summary; // being replaced, or gone: the directory scan settles it
    }
    if (sig === e.sig) return e.summary;
    try {
      const task = decodeTask(fs.readFileSync(file, 'utf8'), file);
      const fresh = { summary: summarize(task), sig, key: e.key, text: searchText(task) };
      this.setEntry(id, fresh);
      this.dirty = true;
      return fresh.summary;
    } catch {
      return e.summary;
    }
  }

  /** Re-checks every entry against its file: picks up in-place changes the directory mtimes cannot show. */
  revalidateAll(): number {
    let changed = 0;
    for (const [id, e] of [...this.entries]) {
      const before = e.sig;
      this.verified(id);
      if (this.entries.get(id)?.sig !== before) changed++;
    }
    this.refresh();
    return changed;
  }

  counts(): Record<string, number> {
    this.refresh();
    const out: Record<string, number> = {};
    for (const { summary } of this.entries.values()) out[summary.status] = (out[summary.status] ?? 0) + 1;
    return out;
  }

  /** Rescans workspaces whose tasks/ directory changed since we last looked. */
  refresh(workspace?: string): void {
    const names = workspace !== undefined ? [workspace] : this.workspaceNames();
    for (const ws of names) {
      let stamp: number;
      try {
        stamp = fs.statSync(this.paths.tasksDir(ws)).mtimeMs;
      } catch {
        stamp = -1;
      }
      if (this.dirStamp.get(ws) !== stamp) this.scanWorkspace(ws, undefined, { tasks: 0, read: 0 });
    }
    if (workspace === undefined && names.length < this.dirStamp.size) {
      // Workspaces removed wholesale.
      const present = new Set(names);
      for (const ws of [...this.dirStamp.keys()]) if (!present.has(ws)) this.dirStamp.delete(ws);
      for (const [id, e] of this.entries) {
        if (!present.has(e.summary.workspace)) {
          this.entries.delete(id);
          this.order = undefined;
        }
      }
    }
  }

  private workspaceNames(): string[] {
    try {
      return fs.readdirSync(this.paths.workspacesDir).filter(isValidName);
    } catch {
      return [];
    }
  }

  private noteOwnDirChange(ws: string): void {
    // Our own create/delete changed the directory: remember its new mtime so it does not
    // look like an outside change, unless it was already out of date.
    try {
      const prev = this.dirStamp.get(ws);
      if (prev !== undefined) this.dirStamp.set(ws, fs.statSync(this.paths.tasksDir(ws)).mtimeMs);
    } catch {
      this.dirStamp.delete(ws);
    }
  }

  private scanWorkspace(ws: string, cached: Map<string, Entry> | undefined, scan: { tasks: number; read: number }): void {
    const dir = this.paths.tasksDir(ws);
    let stamp = -1;
    let ids: string[] = [];
    try {
      stamp = fs.statSync(dir).mtimeMs;
      ids = fs.readdirSync(dir).filter(isValidTaskId);
    } catch {
      // no tasks directory
    }
    const present = new Set(ids);
    for (const [id, e] of this.entries) {
      if (e.summary.workspace === ws && !present.has(id)) {
        this.entries.delete(id);
        this.order = undefined;
      }
    }
    for (const id of ids) {
      scan.tasks++;
      // Names were validated by isValidTaskId above: plain concatenation is safe and cheap.
      const file = `${dir}/${id}/task.json`;
      const known = this.entries.get(id) ?? cached?.get(id);
      let st: fs.Stats;
      try {
        st = fs.statSync(file);
      } catch {
        this.markUnreadable(id, ws, `${file} is missing`);
        continue;
      }
      const sig = sigOf(st);
      if (known && known.sig === sig && known.summary.workspace === ws) {
        if (!this.entries.has(id)) this.order = undefined;
        this.setEntry(id, known);
        continue;
      }
      scan.read++;
      try {
        const task = decodeTask(fs.readFileSync(file, 'utf8'), file);
        if (!this.entries.has(id)) this.order = undefined;
        this.setEntry(id, { summary: summarize(task), sig, key: idSortKey(id), text: searchText(task) });
        this.unreadable.delete(id);
      } catch (err) {
        this.markUnreadable(id, ws, (err as Error).message);
        // List it as its previous checkpoint says, until it is repaired.
        try {
          const bak = decodeTask(fs.readFileSync(`${dir}/${id}/task.json.bak`, 'utf8'), file);
          if (!this.entries.has(id)) this.order = undefined;
          this.setEntry(id, { summary: summarize(bak), sig, key: idSortKey(id), text: searchText(bak) });
        } catch {
          if (this.entries.delete(id)) this.order = undefined;
        }
      }
    }
    this.dirStamp.set(ws, stamp);
    this.dirty = true;
  }

  private markUnreadable(id: string, ws: string, error: string): void {
    this.unreadable.set(id, { workspace: ws, error });
  }

  /** Stores an entry, updating the existing object in place so `order` stays valid. */
  private setEntry(id: string, e: Entry): void {
    const cur = this.entries.get(id);
    if (!cur) {
      this.entries.set(id, e);
      return;
    }
    if (cur === e) return;
    cur.summary = e.summary;
    cur.sig = e.sig;
    cur.key = e.key;
    cur.text = e.text;
  }

  private ordered(): Entry[] {
    if (!this.order) {
      const all = [...this.entries.values()];
      all.sort((a, b) => (a.key < b.key ? 1 : a.key > b.key ? -1 : 0));
      this.order = all;
    }
    return this.order;
  }
}
