// The PostgreSQL store (DESIGN §9): tasks, step results, logs, artifacts and workspaces in
// one database schema shared by several daemons. The home keeps only config, socket, lock,
// the daemon's own log, its id and local worktrees.
//
// Logs: `appendLog` is synchronous (the runner streams output through it), so records are
// buffered per task and written by the next checkpoint of that task (in the same statement:
// a step's result and its log records commit together), by `syncLog`, or by a short timer so
// that followers on other daemons see output live. A task's writes go out in order.
import type pg from 'pg';
import type { EventStoreOptions } from '../../events/event-log.js';
import { AtlasError } from '../../errors.js';
import type { HomePaths } from '../paths.js';
import type { RepairResult } from '../repair.js';
import type { LogRecord, ReadLogResult, Store, StoreArtifacts, Warn } from '../store.js';
import { LOG_PAGE_RECORDS, type LogPage, type LogPageOptions } from '../log-reader.js';
import { parseRecord } from '../task-log.js';
import { decodeTask } from '../task-codec.js';
import { summarize } from '../records.js';
import { poolFor, pgError, type PgTarget } from './connect.js';
import { Db } from './db.js';
import { migrate, type MigrateResult } from './migrate.js';
import { PgArchive } from './pg-archive.js';
import { PgArtifacts } from './pg-artifacts.js';
import { eventParams, eventsCte, PgEventLog, startedDraft, stepStartOf } from './pg-events.js';
import { PgIndex } from './pg-index.js';
import { fillSearch, queryColumns } from './pg-query.js';
import { PgTasks } from './pg-tasks.js';
import { PgWorkspaces } from './pg-workspaces.js';
import { PgSchedules } from './pg-schedules.js';
import { PgMemory } from './pg-memory.js';

export interface PgStoreOptions {
  target: PgTarget;
  paths: HomePaths;
  daemonId: string;
  /** Lease time to live (ms). */
  ttlMs?: number;
  warn?: Warn;
  /** How often buffered log records are written when nothing else writes them (ms). */
  logFlushMs?: number;
  poolSize?: number;
}

export class PgStore implements Store {
  readonly kind = 'postgres' as const;
  readonly paths: HomePaths;
  readonly db: Db;
  readonly tasks: PgTasks;
  readonly workspaces: PgWorkspaces;
  readonly schedules: PgSchedules;
  readonly memory: PgMemory;
  readonly target: PgTarget;
  migration: MigrateResult | undefined;
  /** The events log opened last (poked after a log batch wrote step.started events). */
  private events: PgEventLog | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly logFlushMs: number;
  private closed = false;

  constructor(options: PgStoreOptions) {
    this.paths = options.paths;
    this.target = options.target;
    const pool = poolFor(options.target, { max: options.poolSize ?? 8, application: `atlas ${options.daemonId}`, daemonId: options.daemonId });
    this.db = new Db(pool, options.target, options.daemonId, options.ttlMs ?? 15_000);
    this.tasks = new PgTasks(this.db, options.warn ?? (() => undefined));
    this.workspaces = new PgWorkspaces(this.db);
    this.schedules = new PgSchedules(this.db);
    this.memory = new PgMemory(this.db);
    this.logFlushMs = options.logFlushMs ?? 100;
  }

  get pool(): pg.Pool {
    return this.db.pool;
  }

  /** Connects (failing within seconds, naming the server) and applies pending migrations. */
  async init(): Promise<void> {
    let client: pg.PoolClient;
    try {
      client = await this.db.pool.connect();
    } catch (err) {
      throw pgError('connect', this.target, err);
    }
    try {
      this.migration = await migrate(client, this.target.schema);
      await fillSearch(this.db);
    } catch (err) {
      throw err instanceof AtlasError ? err : pgError('apply migrations', this.target, err);
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    await this.flushAll().catch(() => undefined);
    await this.tasks.releaseAllLeases();
    this.closed = true;
    await this.db.pool.end().catch(() => undefined);
  }

  artifacts(_workspace: string, id: string): StoreArtifacts {
    return new PgArtifacts(this.db, id);
  }

  /** The database's events, shared by every daemon; written by this store's own writes. */
  openEvents(options: EventStoreOptions = {}): PgEventLog {
    this.events = new PgEventLog(this.db, options);
    return this.events;
  }

  /** Archived tasks in the database (the home may be wiped). */
  openArchive(): PgArchive {
    return new PgArchive(this.db, () => this.events?.poke());
  }

  openIndex(): PgIndex {
    return new PgIndex(this.db);
  }

  appendLog(workspace: string, id: string, record: LogRecord): void {
    const { event, level, time: _time, ...rest } = record;
    const line = JSON.stringify({ level: level ?? 'info', time: new Date().toISOString(), event, ...rest });
    const lines = this.db.pendingLogs.get(id);
    if (lines) lines.push(line);
    else this.db.pendingLogs.set(id, [line]);
    const start = stepStartOf(record);
    if (start) {
      const starts = this.db.pendingStarts.get(id);
      if (starts) starts.push({ start, record, workspace });
      else this.db.pendingStarts.set(id, [{ start, record, workspace }]);
    }
    this.flushTimer ??= setTimeout(() => {
      this.flushTimer = undefined;
      void this.flushAll().catch(() => undefined);
    }, this.logFlushMs);
  }

  async syncLog(_workspace: string, id: string): Promise<void> {
    await this.db.serial(id, () => this.flush(id));
  }

  closeLog(_workspace: string, _id: string): void {
    // Nothing is held open per task.
  }

  private async flushAll(): Promise<void> {
    await Promise.all([...this.db.pendingLogs.keys()].map((id) => this.db.serial(id, () => this.flush(id)).catch(() => undefined)));
  }

  /** Writes a task's pending log records (and the step.started events among them), fenced by
   *  its lease when this daemon runs it. */
  private async flush(id: string): Promise<void> {
    const lines = this.db.takeLogs(id);
    if (lines.length === 0) return;
    const starts = this.db.takeStarts(id);
    const fence = this.db.fence(id, 9);
    let r: pg.QueryResult<{ n: string }>;
    try {
      const ws = starts[0]?.workspace ?? '';
      const drafts = starts.map((s) => startedDraft(id, ws, s.record, s.start.at));
      r = await this.db.query<{ n: string }>(
        'append to a task log',
        // FOR UPDATE: every write of a task's log rows holds the task's row (a checkpoint updates
        // it), so its rows commit in `seq` order and a follower reading by `seq` misses none.
        `WITH up AS (SELECT id FROM tasks WHERE id = $1 AND ${fence.sql} FOR UPDATE),
         cur AS (SELECT 0 AS ev_t, 0 AS ev_r),
         lg AS (INSERT INTO task_logs (task_id, record) SELECT up.id, l.r FROM up, unnest($2::text[]) WITH ORDINALITY AS l(r, n) ORDER BY l.n),
         ${eventsCte(3)}
         SELECT count(*) AS n FROM up`,
        [id, lines, ws, ...eventParams(drafts), ...fence.params],
      );
    } catch (err) {
      this.db.restoreLogs(id, lines);
      this.db.restoreStarts(id, starts);
      throw err;
    }
    if (starts.length) this.events?.poke();
    if (Number(r.rows[0]?.n ?? 0) === 0) {
      const row = (await this.db.query<{ owner: string | null }>('read a task', 'SELECT owner FROM tasks WHERE id = $1', [id])).rows[0];
      if (!row) return; // the task was deleted: its log went with it
      throw this.db.leaseLost(id, row.owner ? `daemon ${row.owner} holds it now` : 'its lease expired');
    }
  }

  async readLog(_workspace: string, id: string, filter?: (r: LogRecord) => boolean): Promise<ReadLogResult> {
    return this.readLogAfter(id, 0, filter);
  }

  /** Records after log position `after` (a `seq`, the order key: a task's rows commit in that
   *  order), at most `limit` rows; `last` is the seq of the last row read, `rows` how many. */
  async readLogAfter(id: string, after: number, filter?: (r: LogRecord) => boolean, limit?: number): Promise<ReadLogResult & { last: number; rows: number }> {
    const r = await this.db.query<{ seq: string; record: string }>(
      'read a task log',
      `SELECT seq, record FROM task_logs WHERE task_id = $1 AND seq > $2 ORDER BY seq${limit !== undefined ? ' LIMIT $3' : ''}`,
      limit !== undefined ? [id, after, limit] : [id, after],
    );
    const records: LogRecord[] = [];
    const skipped: number[] = [];
    let last = after;
    for (const row of r.rows) {
      last = Number(row.seq);
      const rec = parseRecord(row.record);
      if (!rec) skipped.push(last);
      else if (!filter || filter(rec)) records.push(rec);
    }
    return { records, skipped, last, rows: r.rows.length };
  }

  /** The seq of the `ordinal`-th record of a task's log (the position readLogPage calls `ordinal`), 0 for none. */
  async logSeqAt(id: string, ordinal: number): Promise<number> {
    if (ordinal <= 0) return 0;
    const r = await this.db.query<{ seq: string }>(
      'read a task log',
      `SELECT coalesce((SELECT seq FROM task_logs WHERE task_id = $1 ORDER BY seq OFFSET $2 LIMIT 1), (SELECT max(seq) FROM task_logs WHERE task_id = $1), 0) AS seq`,
      [id, ordinal - 1],
    );
    return Number(r.rows[0]?.seq ?? 0);
  }

  /** A page of a task's log; positions are record ordinals (0 = the first record). */
  async readLogPage(_workspace: string, id: string, o: LogPageOptions): Promise<LogPage> {
    const start = o.start ?? 0;
    const limit = Math.min(o.limit ?? LOG_PAGE_RECORDS, LOG_PAGE_RECORDS);
    const span = o.end !== undefined ? Math.max(0, o.end - start) : undefined;
    const want = o.tail !== undefined ? span : Math.min(limit, span ?? limit);
    const r = await this.db.query<{ record: string }>(
      'read a task log',
      `SELECT record FROM task_logs WHERE task_id = $1 ORDER BY seq OFFSET $2${want !== undefined ? ' LIMIT $3' : ''}`,
      want !== undefined ? [id, start, want + 1] : [id, start],
    );
    const rows = want !== undefined ? r.rows.slice(0, want) : r.rows;
    const more = o.tail === undefined && want !== undefined && r.rows.length > want && (span === undefined || want < span);
    let records: LogRecord[] = [];
    let skipped = 0;
    for (const row of rows) {
      const rec = parseRecord(row.record);
      if (!rec) skipped++;
      else if (!o.filter || o.filter(rec)) records.push(rec);
    }
    if (o.tail !== undefined) records = records.slice(-o.tail);
    return { records, skipped, next: start + rows.length, more };
  }

  /** Restores the previous checkpoint of a task whose latest cannot be read, else quarantines it. */
  async repairTask(workspace: string, id: string): Promise<RepairResult> {
    const row = (await this.db.query<{ data: string; prev: string | null }>('read a task', 'SELECT data, prev FROM tasks WHERE id = $1', [id])).rows[0];
    if (!row) return { id, workspace, action: 'none', problem: 'no such task' };
    try {
      decodeTask(row.data, id);
      return { id, workspace, action: 'none', problem: null };
    } catch (err) {
      const problem = (err as Error).message;
      if (row.prev !== null) {
        try {
          const prev = decodeTask(row.prev, id);
          // The columns follow the restored record (a writer holds its revision; queries read them).
          await this.db.query(
            'restore a checkpoint',
            `UPDATE tasks SET data = prev, revision = $2, status = $3, priority = $4, summary = $5, labels = $6::jsonb, search = $7, change_seq = nextval('change_seq') WHERE id = $1`,
            [id, prev.revision, prev.status, prev.priority, JSON.stringify(summarize(prev)), ...queryColumns(prev)],
          );
          return { id, workspace, action: 'restored_backup', problem };
        } catch {
          // quarantine below
        }
      }
      await this.db.tx('quarantine a task', async (c) => {
        await c.query('INSERT INTO quarantine (id, workspace, data, prev) SELECT id, workspace, data, prev FROM tasks WHERE id = $1 ON CONFLICT (id) DO NOTHING', [id]);
        await c.query('DELETE FROM tasks WHERE id = $1', [id]);
      });
      return { id, workspace, action: 'quarantined', problem, quarantined_to: `${this.target.schema}.quarantine` };
    }
  }
}
