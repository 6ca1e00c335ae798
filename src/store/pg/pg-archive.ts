// Archived tasks in PostgreSQL (DESIGN §14; migration 7): one row of `archived_tasks` per
// task, holding the same checksummed tar.gz the filesystem store writes (archive-format.ts),
// so show, logs and artifacts read either alike. The home may be wiped: nothing is kept there.
//
// Each move is one transaction, its own commit point, so a crash leaves the task live or
// archived, never both, never neither, and there is nothing to reconcile at start:
//   archive:   lock the task row (FOR UPDATE), refuse it if a daemon holds its lease or
//              `accept` says no, read its log and artifacts, insert the archive row, delete the
//              task (its logs and artifacts go with it), insert the task.archived event;
//   unarchive: lock the archive row, insert the task row (at its revision, its events
//              already recorded), its log records and artifacts, delete the archive row,
//              insert the task.unarchived event.
import { AtlasError } from '../../errors.js';
import { archiveEvent, cursorOf, type EventDraft } from '../../events/event.js';
import { notArchived, packArchive, unpackArchive, type ArchiveEntry, type ArchivedSummary, type ArchivedTask, type ReconcileReport, type TaskArchives } from '../archive-format.js';
import { assertTaskId } from '../names.js';
import { summarize, type TaskRecord } from '../records.js';
import { decodeTask } from '../task-codec.js';
import { idSortKey } from '../task-ids.js';
import type pg from 'pg';
import type { Db } from './db.js';
import { queryColumns } from './pg-query.js';
import { notFound } from './pg-tasks.js';

/** The entry that keeps what the artifacts table knows beyond names (versioned artifacts). */
const ARTIFACT_META = 'pg-artifacts.json';

interface ArtifactMeta {
  base: string | null;
  ext: string | null;
  version: number | null;
}

export class PgArchive implements TaskArchives {
  readonly writesEvents = true;
  /** The last few archives read whole (show, then logs, then artifacts of one task). */
  private readonly cache = new Map<string, ArchivedTask>();

  constructor(
    private readonly db: Db,
    /** Called after a move committed its event (the events log numbers and announces it). */
    private readonly onEvent: () => void = () => undefined,
  ) {}

  async reconcile(): Promise<ReconcileReport> {
    return { archives_removed: [], leftovers_removed: [] }; // every move is one transaction
  }

  async has(id: string): Promise<boolean> {
    const r = await this.db.query('read an archived task', 'SELECT 1 FROM archived_tasks WHERE id = $1', [assertTaskId(id)]);
    return (r.rowCount ?? 0) > 0;
  }

  async list(): Promise<ArchivedSummary[]> {
    const r = await this.db.query<{ summary: string }>('list archived tasks', 'SELECT summary FROM archived_tasks');
    const out: ArchivedSummary[] = [];
    for (const row of r.rows) {
      try {
        out.push(JSON.parse(row.summary) as ArchivedSummary);
      } catch {
        // an unreadable summary row: the task is still read by id
      }
    }
    return out;
  }

  async read(id: string): Promise<ArchivedTask> {
    const cached = this.cache.get(id);
    if (cached) return cached;
    const row = (await this.db.query<{ summary: string; data: Buffer }>('read an archived task', 'SELECT summary, data FROM archived_tasks WHERE id = $1', [assertTaskId(id)])).rows[0];
    if (!row) throw new AtlasError('not_found', `no task ${id}, live or archived; 'atlas list' and 'atlas list --archived' show the tasks there are`, { details: { id } });
    const { task, log, artifacts } = await unpackArchive(row.data, `the archive of ${id} in the database`, id);
    let summary: ArchivedSummary;
    try {
      summary = JSON.parse(row.summary) as ArchivedSummary;
    } catch {
      summary = { ...summarize(task), archived_at: new Date(0).toISOString(), archive_bytes: row.data.length };
    }
    const out: ArchivedTask = { task, summary, log, artifacts };
    this.cache.set(id, out);
    if (this.cache.size > 4) this.cache.delete(this.cache.keys().next().value!);
    return out;
  }

  async archiveIf(_workspace: string, id: string, accept: (task: TaskRecord) => boolean): Promise<ArchivedSummary | undefined> {
    assertTaskId(id);
    const summary = await this.db.tx('archive a task', async (c) => {
      const row = (await c.query<{ data: string; prev: string | null; environment: string | null; owner: string | null }>('SELECT data, prev, environment, owner FROM tasks WHERE id = $1 FOR UPDATE', [id])).rows[0];
      if (!row) throw notFound(id);
      if (row.owner !== null) return undefined; // a daemon holds it
      const task = decodeTask(row.data, `task ${id} in the database`);
      if (!accept(task)) return undefined;
      const entries: ArchiveEntry[] = [{ name: 'task.json', data: Buffer.from(row.data) }];
      if (row.prev !== null) entries.push({ name: 'task.json.bak', data: Buffer.from(row.prev) });
      if (row.environment !== null) entries.push({ name: 'env.json', data: Buffer.from(row.environment) });
      const logs = await c.query<{ record: string }>('SELECT record FROM task_logs WHERE task_id = $1 ORDER BY seq', [id]);
      entries.push({ name: 'task.log', data: Buffer.from(logs.rows.map((r) => `${r.record}\n`).join('')) });
      const arts = await c.query<{ name: string; base: string | null; ext: string | null; version: number | null; data: Buffer; modified_at: Date }>(
        'SELECT name, base, ext, version, data, modified_at FROM artifacts WHERE task_id = $1 ORDER BY name',
        [id],
      );
      const meta: Record<string, ArtifactMeta> = {};
      for (const a of arts.rows) {
        entries.push({ name: `artifacts/${a.name}`, data: a.data, mtime: a.modified_at });
        meta[a.name] = { base: a.base, ext: a.ext, version: a.version };
      }
      entries.push({ name: ARTIFACT_META, data: Buffer.from(JSON.stringify(meta)) });
      const body = await packArchive(entries, { id, workspace: task.workspace, store: 'postgres' });
      const archivedAt = new Date().toISOString();
      const s: ArchivedSummary = { ...summarize(task), archived_at: archivedAt, archive_bytes: body.length };
      await c.query('INSERT INTO archived_tasks (id, workspace, sort_key, summary, archived_at, data) VALUES ($1, $2, $3, $4, $5, $6)', [id, task.workspace, idSortKey(id), JSON.stringify(s), archivedAt, body]);
      await c.query('DELETE FROM tasks WHERE id = $1', [id]);
      await insertEvent(c, archiveEvent('task.archived', task, archivedAt, { archive_bytes: body.length }));
      return s;
    });
    if (summary) this.onEvent();
    return summary;
  }

  async unarchive(id: string): Promise<TaskRecord> {
    assertTaskId(id);
    const task = await this.db.tx('unarchive a task', async (c) => {
      const row = (await c.query<{ data: Buffer }>('SELECT data FROM archived_tasks WHERE id = $1 FOR UPDATE', [id])).rows[0];
      if (!row) throw notArchived(id);
      const { task, log, artifacts, entries } = await unpackArchive(row.data, `the archive of ${id} in the database`, id);
      const text = (name: string) => entries.get(name)?.data.toString('utf8') ?? null;
      const cursor = cursorOf(task);
      const ins = await c.query(
        `INSERT INTO tasks (id, workspace, sort_key, status, template, priority, created_at, revision, data, prev, summary, environment, labels, search, ev_t, ev_r)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb, $14, $15, $16) ON CONFLICT (id) DO NOTHING`,
        [
          id, task.workspace, idSortKey(id), task.status, task.template, task.priority, task.created_at, task.revision, text('task.json'), text('task.json.bak'),
          JSON.stringify(summarize(task)), text('env.json'), ...queryColumns(task), cursor.t, cursor.r,
        ],
      );
      if (ins.rowCount !== 1) throw new AtlasError('already_exists', `task ${id} is live already`, { details: { id } });
      const lines = log.toString('utf8').split('\n').filter((l) => l.length > 0);
      await c.query('INSERT INTO task_logs (task_id, record) SELECT $1, l.r FROM unnest($2::text[]) WITH ORDINALITY AS l(r, n) ORDER BY l.n', [id, lines]);
      const meta = parseMeta(text(ARTIFACT_META));
      for (const [name, a] of artifacts) {
        const m = meta[name];
        await c.query('INSERT INTO artifacts (task_id, name, base, ext, version, data, modified_at) VALUES ($1, $2, $3, $4, $5, $6, $7)', [id, name, m?.base ?? null, m?.ext ?? null, m?.version ?? null, a.data, a.modified_at]);
      }
      await c.query('DELETE FROM archived_tasks WHERE id = $1', [id]);
      await insertEvent(c, archiveEvent('task.unarchived', task, new Date().toISOString()));
      return task;
    });
    this.cache.delete(id);
    this.onEvent();
    return task;
  }
}

async function insertEvent(c: pg.PoolClient, e: EventDraft): Promise<void> {
  await c.query('INSERT INTO events (id, type, task_id, workspace, data) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING', [e.id, e.type, e.task_id, e.workspace, JSON.stringify(e.data)]);
}

function parseMeta(text: string | null): Record<string, ArtifactMeta> {
  if (text === null) return {};
  try {
    return JSON.parse(text) as Record<string, ArtifactMeta>;
  } catch {
    return {};
  }
}
