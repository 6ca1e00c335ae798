// Tasks in PostgreSQL: one row per task holding the record exactly as task.json would, the
// previous checkpoint, a summary for listing, and the lease (owner, epoch, expiry).
//
// A checkpoint is one statement, so one transaction and one round trip: the task's new
// state and the log records appended since the last write, fenced by the revision the
// writer holds and, when this daemon runs the task, by its lease (owner + epoch). A write
// that matches nothing is then diagnosed: no row (not_found), another owner or epoch
// (lease_lost: the runner kills the step and writes nothing more), or a newer revision
// (conflict).
import { AtlasError } from '../../errors.js';
import { assertName, assertTaskId } from '../names.js';
import { TERMINAL_STATUSES, summarize, type TaskRecord } from '../records.js';
import type { NewTask, ReadResult, StoreTasks, TaskFilter, Warn } from '../store.js';
import { decodeTask, encodeTask } from '../task-codec.js';
import { idSortKey } from '../task-ids.js';
import { cursorOf, deriveEvents, type Cursor, type EventDraft } from '../../events/event.js';
import type { Db } from './db.js';
import { eventParams, eventsCte, startedDraft } from './pg-events.js';
import { queryColumns } from './pg-query.js';

interface Row {
  id: string;
  workspace: string;
  data: string;
  prev: string | null;
}

export class PgTasks implements StoreTasks {
  private readonly reservedIds = new Set<string>();
  /** task id -> the revision this process last read or wrote, and its facts' cursor: a
   *  checkpoint at that revision derives events from there (else from the start, the
   *  statement keeping only facts past the row's ev_t / ev_r). */
  private readonly known = new Map<string, { revision: number; cursor: Cursor }>();

  constructor(
    private readonly db: Db,
    private readonly warn: Warn,
  ) {}

  async newTaskId(now: Date = new Date()): Promise<string> {
    const p = (n: number) => String(n).padStart(2, '0');
    const base =
      `task-${now.getUTCFullYear()}${p(now.getUTCMonth() + 1)}${p(now.getUTCDate())}` +
      `-${p(now.getUTCHours())}${p(now.getUTCMinutes())}${p(now.getUTCSeconds())}`;
    const taken = new Set(
      (await this.db.query<{ id: string }>('list task ids', `SELECT id FROM tasks WHERE id = $1 OR id LIKE $2`, [base, `${base}-%`])).rows.map((r) => r.id),
    );
    for (let n = 1; ; n++) {
      const id = n === 1 ? base : `${base}-${n}`;
      if (this.reservedIds.has(id) || taken.has(id)) continue;
      this.reservedIds.add(id);
      return id;
    }
  }

  async locate(id: string): Promise<string | undefined> {
    assertTaskId(id);
    const r = await this.db.query<{ workspace: string }>('locate a task', 'SELECT workspace FROM tasks WHERE id = $1', [id]);
    return r.rows[0]?.workspace;
  }

  async workspaceNames(): Promise<string[]> {
    const r = await this.db.query<{ workspace: string }>('list workspaces', 'SELECT DISTINCT workspace FROM tasks ORDER BY workspace');
    return r.rows.map((x) => x.workspace);
  }

  async getTask(id: string): Promise<TaskRecord> {
    return (await this.readTask(id)).task;
  }

  async readTask(id: string): Promise<ReadResult> {
    assertTaskId(id);
    const r = await this.db.query<Row>('read a task', 'SELECT id, workspace, data, prev FROM tasks WHERE id = $1', [id]);
    const row = r.rows[0];
    if (!row) throw notFound(id);
    const out = this.decode(row);
    this.remember(out.task);
    return out;
  }

  private remember(task: TaskRecord): void {
    if (TERMINAL_STATUSES.has(task.status)) this.known.delete(task.id);
    else this.known.set(task.id, { revision: task.revision, cursor: cursorOf(task) });
  }

  /** The events of writing `next` over the stored revision `expected`, with the step starts logged since. */
  private eventsOf(next: TaskRecord, expected: number, starts: ReturnType<Db['takeStarts']>): EventDraft[] {
    const k = this.known.get(next.id);
    const since = k && k.revision === expected ? k.cursor : { t: 0, r: 0 };
    return deriveEvents(next, since, undefined, starts.map((s) => s.start));
  }

  async readTaskAt(workspace: string, id: string): Promise<ReadResult> {
    assertName('workspace', workspace);
    return this.readTask(id);
  }

  private decode(row: Row): ReadResult {
    const where = `task ${row.id} in the database`;
    try {
      return { task: decodeTask(row.data, where), source: 'primary' };
    } catch (err) {
      if (err instanceof AtlasError && err.code === 'unsupported_schema') throw err;
      if (row.prev !== null) {
        try {
          const task = decodeTask(row.prev, `${where} (previous checkpoint)`);
          this.warn(`${(err as Error).message}; using the previous checkpoint`, { task: row.id });
          return { task, source: 'backup' };
        } catch {
          // fall through to the first error
        }
      }
      throw err;
    }
  }

  async createTask(task: TaskRecord, options: { environment?: Record<string, string> } = {}): Promise<TaskRecord> {
    assertName('workspace', task.workspace);
    assertTaskId(task.id);
    task.revision = 1;
    const lines = this.db.takeLogs(task.id);
    const starts = this.db.takeStarts(task.id);
    const drafts = deriveEvents(task, { t: 0, r: 0 }, undefined, starts.map((s) => s.start));
    const c = cursorOf(task);
    let created: number;
    try {
      const r = await this.db.query<{ n: string }>(
        'create a task',
        `WITH up AS (
           INSERT INTO tasks (id, workspace, sort_key, status, template, priority, created_at, revision, data, summary, environment, ev_t, ev_r, labels, search)
           VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9, $11, $12, $13, $20::jsonb, $21) ON CONFLICT (id) DO NOTHING RETURNING id),
         cur AS (SELECT 0 AS ev_t, 0 AS ev_r),
         lg AS (INSERT INTO task_logs (task_id, record) SELECT up.id, l.r FROM up, unnest($10::text[]) WITH ORDINALITY AS l(r, n) ORDER BY l.n),
         ${eventsCte(14)}
         SELECT count(*) AS n FROM up`,
        [
          task.id, task.workspace, idSortKey(task.id), task.status, task.template, task.priority, task.created_at, encodeTask(task), JSON.stringify(summarize(task)), lines,
          options.environment ? JSON.stringify(options.environment) : null, c.t, c.r, task.workspace, ...eventParams(drafts), ...queryColumns(task),
        ],
      );
      created = Number(r.rows[0]?.n ?? 0);
    } catch (err) {
      this.db.restoreLogs(task.id, lines);
      this.db.restoreStarts(task.id, starts);
      throw err;
    }
    if (created === 1) this.remember(task);
    this.reservedIds.delete(task.id);
    if (created !== 1) {
      throw new AtlasError('already_exists', `task ${task.id} already exists`, { details: { id: task.id } });
    }
    return task;
  }

  /** A batch: every task in one transaction, so a crash or a taken id leaves none of them. */
  async createTasks(entries: NewTask[]): Promise<TaskRecord[]> {
    for (const { task } of entries) {
      assertName('workspace', task.workspace);
      assertTaskId(task.id);
      task.revision = 1;
    }
    await this.db.tx('create a batch of tasks', async (c) => {
      for (const { task, environment } of entries) {
        const r = await c.query(
          `INSERT INTO tasks (id, workspace, sort_key, status, template, priority, created_at, revision, data, summary, environment, labels, search)
           VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9, $10, $11::jsonb, $12) ON CONFLICT (id) DO NOTHING`,
          [task.id, task.workspace, idSortKey(task.id), task.status, task.template, task.priority, task.created_at, encodeTask(task), JSON.stringify(summarize(task)), environment ? JSON.stringify(environment) : null, ...queryColumns(task)],
        );
        if (r.rowCount !== 1) throw new AtlasError('already_exists', `task ${task.id} already exists`, { details: { id: task.id } });
      }
    });
    for (const { task } of entries) this.reservedIds.delete(task.id);
    return entries.map((e) => e.task);
  }

  async readEnvironment(id: string): Promise<Record<string, string> | undefined> {
    assertTaskId(id);
    const r = await this.db.query<{ environment: string | null }>('read a task environment', 'SELECT environment FROM tasks WHERE id = $1', [id]);
    const row = r.rows[0];
    if (!row) throw notFound(id);
    if (row.environment === null) return undefined;
    try {
      return JSON.parse(row.environment) as Record<string, string>;
    } catch (err) {
      throw new AtlasError('corrupt', `the captured environment of task ${id} is not valid JSON`, { details: { id }, cause: err });
    }
  }

  async checkpoint(task: TaskRecord, _options: { durable?: boolean } = {}): Promise<void> {
    await this.db.serial(task.id, () => this.write(task));
  }

  /** Writes `task` at revision + 1 with the pending log lines, fenced; diagnoses a miss. */
  private async write(task: TaskRecord): Promise<void> {
    const expected = task.revision;
    const next = { ...task, revision: expected + 1 };
    const lines = this.db.takeLogs(task.id);
    const starts = this.db.takeStarts(task.id);
    const drafts = this.eventsOf(next, expected, starts);
    const c = cursorOf(next);
    const fence = this.db.fence(task.id, 19);
    // A durable wait that let go of the task: no daemon claims it before its deadline.
    const step = next.steps[next.current_step];
    const wake = next.status === 'running' && step?.status === 'running' && step.parked_until ? step.parked_until : null;
    let updated: number;
    try {
      const r = await this.db.query<{ n: string }>(
        'write a checkpoint',
        `WITH cur AS (SELECT ev_t, ev_r FROM tasks WHERE id = $1),
         up AS (
           UPDATE tasks SET data = $2, prev = data, summary = $3, status = $4, revision = $5 + 1, priority = $6,
                  change_seq = nextval('change_seq'), ev_t = $8, ev_r = $9, wake_at = $16, labels = $17::jsonb, search = $18
           WHERE id = $1 AND revision = $5 AND ${fence.sql} RETURNING id),
         lg AS (INSERT INTO task_logs (task_id, record) SELECT up.id, l.r FROM up, unnest($7::text[]) WITH ORDINALITY AS l(r, n) ORDER BY l.n),
         ${eventsCte(10)}
         SELECT count(*) AS n FROM up`,
        [task.id, encodeTask(next), JSON.stringify(summarize(next)), next.status, expected, next.priority, lines, c.t, c.r, task.workspace, ...eventParams(drafts), wake, ...queryColumns(next), ...fence.params],
      );
      updated = Number(r.rows[0]?.n ?? 0);
    } catch (err) {
      this.db.restoreLogs(task.id, lines);
      this.db.restoreStarts(task.id, starts);
      throw err;
    }
    if (updated === 1) {
      task.revision = expected + 1;
      this.remember(task);
      return;
    }
    this.db.restoreStarts(task.id, starts);
    throw await this.diagnose(task.id, expected, lines);
  }

  /** Why a fenced write matched nothing. */
  private async diagnose(id: string, expected: number, lines: string[]): Promise<AtlasError> {
    const r = await this.db.query<{ revision: number; owner: string | null; lease_epoch: string }>('read a task', 'SELECT revision, owner, lease_epoch FROM tasks WHERE id = $1', [id]);
    const row = r.rows[0];
    if (!row) return notFound(id);
    const epoch = this.db.leases.get(id);
    if (epoch !== undefined && (row.owner !== this.db.daemonId || Number(row.lease_epoch) !== epoch)) {
      return this.db.leaseLost(id, row.owner ? `daemon ${row.owner} holds it now (epoch ${row.lease_epoch})` : 'its lease expired');
    }
    this.db.restoreLogs(id, lines);
    return new AtlasError('conflict', `task ${id} changed in the database (revision ${row.revision}, this writer holds ${expected}); reload it and try again`, {
      details: { id, revision: row.revision, expected },
      retryable: true,
    });
  }

  async updateTask(id: string, mutate: (task: TaskRecord) => void | Promise<void>): Promise<TaskRecord> {
    assertTaskId(id);
    return this.db.serial(id, async () => {
      for (let tries = 0; ; tries++) {
        const { task } = await this.readTask(id);
        await mutate(task);
        task.updated_at = new Date().toISOString();
        try {
          await this.write(task);
          return task;
        } catch (err) {
          // Another writer got in between our read and write: read again and re-apply.
          if (err instanceof AtlasError && err.code === 'conflict' && tries < 20) continue;
          throw err;
        }
      }
    });
  }

  // ---- leases ----------------------------------------------------------------------

  /** Claims the task for this daemon unless another daemon's lease on it is alive. */
  async acquireLease(id: string, _options: { waitMs?: number } = {}): Promise<void> {
    assertTaskId(id);
    if (this.db.leases.has(id)) return;
    const r = await this.db.query<{ lease_epoch: string; owner: string | null }>(
      'claim a task',
      `UPDATE tasks SET owner = $2, last_owner = $2, lease_epoch = lease_epoch + 1, lease_until = now() + $3 * interval '1 millisecond'
       WHERE id = $1 AND (owner IS NULL OR owner = $2 OR lease_until < now()) RETURNING lease_epoch`,
      [id, this.db.daemonId, this.db.ttlMs],
    );
    const row = r.rows[0];
    if (row) {
      this.db.leases.set(id, Number(row.lease_epoch));
      return;
    }
    const who = await this.db.query<{ owner: string | null }>('read a task', 'SELECT owner FROM tasks WHERE id = $1', [id]);
    if (!who.rows[0]) throw notFound(id);
    throw new AtlasError('locked', `task ${id} is run by daemon ${who.rows[0].owner ?? '?'}; try again shortly`, { details: { id, owner: who.rows[0].owner }, retryable: true });
  }

  /** Takes a lease the claimer already won (the epoch it got). */
  adoptLease(id: string, epoch: number): void {
    this.db.leases.set(id, epoch);
  }

  async releaseLease(id: string): Promise<void> {
    const epoch = this.db.leases.get(id);
    if (epoch === undefined) return;
    await this.db.serial(id, async () => {
      // Log lines still pending go out under the lease, before it is let go.
      const lines = this.db.takeLogs(id);
      const starts = this.db.takeStarts(id);
      const drafts = starts.map((s) => startedDraft(id, s.workspace, s.record, s.start.at));
      await this.db.query(
        'release a task',
        `WITH up AS (UPDATE tasks SET owner = NULL, lease_until = NULL, change_seq = nextval('change_seq') WHERE id = $1 AND owner = $2 AND lease_epoch = $3 RETURNING id),
         cur AS (SELECT 0 AS ev_t, 0 AS ev_r),
         lg AS (INSERT INTO task_logs (task_id, record) SELECT up.id, l.r FROM up, unnest($4::text[]) WITH ORDINALITY AS l(r, n) ORDER BY l.n),
         ${eventsCte(5)}
         SELECT count(*) FROM up`,
        [id, this.db.daemonId, epoch, lines, starts[0]?.workspace ?? '', ...eventParams(drafts)],
      );
      this.db.leases.delete(id);
    });
  }

  async releaseAllLeases(): Promise<void> {
    await Promise.all([...this.db.leases.keys()].map((id) => this.releaseLease(id).catch(() => undefined)));
  }

  // ---- listing and deleting ----------------------------------------------------------

  async listTaskIds(workspace?: string): Promise<Array<{ id: string; workspace: string }>> {
    if (workspace !== undefined) assertName('workspace', workspace);
    const r = await this.db.query<{ id: string; workspace: string }>(
      'list tasks',
      `SELECT id, workspace FROM tasks WHERE ($1::text IS NULL OR workspace = $1) ORDER BY sort_key DESC`,
      [workspace ?? null],
    );
    return r.rows;
  }

  async listTasks(filter: TaskFilter = {}): Promise<TaskRecord[]> {
    if (filter.workspace !== undefined) assertName('workspace', filter.workspace);
    const statuses = filter.status === undefined ? null : Array.isArray(filter.status) ? filter.status : [filter.status];
    const r = await this.db.query<Row>(
      'list tasks',
      `SELECT id, workspace, data, prev FROM tasks
       WHERE ($1::text IS NULL OR workspace = $1) AND ($2::text[] IS NULL OR status = ANY($2)) AND ($3::text IS NULL OR template = $3)
       ORDER BY sort_key DESC LIMIT $4`,
      [filter.workspace ?? null, statuses, filter.template ?? null, filter.limit ?? null],
    );
    const out: TaskRecord[] = [];
    for (const row of r.rows) {
      try {
        out.push(this.decode(row).task);
      } catch (err) {
        this.warn(`skipping task ${row.id}: ${(err as Error).message}`, { task: row.id });
      }
    }
    return out;
  }

  async deleteTask(id: string): Promise<void> {
    assertTaskId(id);
    const r = await this.db.query('delete a task', 'DELETE FROM tasks WHERE id = $1', [id]);
    this.db.leases.delete(id);
    this.db.pendingLogs.delete(id);
    this.db.pendingStarts.delete(id);
    this.known.delete(id);
    if (r.rowCount === 0) throw notFound(id);
  }

  async sweep(_workspace: string, _id: string): Promise<string[]> {
    return [];
  }

  writtenSignature(_id: string): string | undefined {
    return undefined;
  }

  isTerminal(task: TaskRecord): boolean {
    return TERMINAL_STATUSES.has(task.status);
  }
}

export function notFound(id: string): AtlasError {
  return new AtlasError('not_found', `no task ${id}; 'atlas list' shows the tasks there are`, { details: { id } });
}
