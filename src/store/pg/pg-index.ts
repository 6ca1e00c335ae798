// The task index over PostgreSQL: summaries cached in memory for synchronous listing and
// counting, brought up to date from the database by change number (every write takes the
// next value of change_seq), so tasks written by other daemons show up too. A change in the
// row count (a delete elsewhere) reloads everything. Queries (`atlas list` filters, pages,
// totals) are answered by the database itself (pg-query.ts), always current.
import { summarize, type TaskRecord, type TaskStatus, type TaskSummary } from '../records.js';
import type { IndexScan, StoreIndex, TaskFilter } from '../store.js';
import { idSortKey } from '../task-ids.js';
import type { QueryPage, TaskQuery } from '../task-query.js';
import type { Db } from './db.js';
import { queryTasksSql } from './pg-query.js';

/** A summary as listed from a shared store: with the daemon that holds the task, if any. */
export interface OwnedSummary extends TaskSummary {
  daemon: string | null;
}

interface Entry {
  summary: OwnedSummary;
  key: string;
}

export class PgIndex implements StoreIndex {
  private readonly entries = new Map<string, Entry>();
  private order: string[] | undefined;
  private lastChange = 0;
  private catching: Promise<void> | undefined;

  constructor(private readonly db: Db) {}

  get size(): number {
    return this.entries.size;
  }

  async load(): Promise<IndexScan> {
    const started = performance.now();
    await this.reload();
    return { tasks: this.entries.size, read: this.entries.size, unreadable: [], duration_ms: Math.round(performance.now() - started) };
  }

  private async reload(): Promise<void> {
    const r = await this.db.query<{ id: string; summary: string; owner: string | null; change_seq: string }>(
      'list tasks',
      'SELECT id, summary, owner, change_seq FROM tasks',
    );
    this.entries.clear();
    let last = 0;
    for (const row of r.rows) {
      this.set(row.id, row.summary, row.owner);
      last = Math.max(last, Number(row.change_seq));
    }
    this.lastChange = last;
    this.order = undefined;
  }

  private set(id: string, summaryText: string, owner: string | null): void {
    try {
      const summary = { ...(JSON.parse(summaryText) as TaskSummary), daemon: owner };
      this.entries.set(id, { summary, key: idSortKey(id) });
    } catch {
      this.entries.delete(id);
    }
  }

  /** Brings the cache up to date with every daemon's writes. */
  catchUp(): Promise<void> {
    this.catching ??= this.fetchChanges().finally(() => {
      this.catching = undefined;
    });
    return this.catching;
  }

  private async fetchChanges(): Promise<void> {
    const r = await this.db.query<{ id: string; summary: string; owner: string | null; change_seq: string; total: string }>(
      'list tasks',
      'SELECT id, summary, owner, change_seq, (SELECT count(*) FROM tasks) AS total FROM tasks WHERE change_seq > $1 ORDER BY change_seq',
      [this.lastChange],
    );
    for (const row of r.rows) {
      if (!this.entries.has(row.id)) this.order = undefined;
      this.set(row.id, row.summary, row.owner);
      this.lastChange = Math.max(this.lastChange, Number(row.change_seq));
    }
    const total = r.rows[0]?.total ?? (await this.db.query<{ n: string }>('count tasks', 'SELECT count(*) AS n FROM tasks')).rows[0]?.n;
    if (Number(total) !== this.entries.size) await this.reload();
  }

  async save(): Promise<void> {
    // The database is the index's store; nothing to save.
  }

  put(task: TaskRecord): void {
    const prev = this.entries.get(task.id);
    if (!prev) this.order = undefined;
    const owner = this.db.leases.has(task.id) ? this.db.daemonId : (prev?.summary.daemon ?? null);
    this.entries.set(task.id, { summary: { ...summarize(task), daemon: owner }, key: idSortKey(task.id) });
  }

  remove(id: string): void {
    if (this.entries.delete(id)) this.order = undefined;
  }

  unreadableTasks(): Array<{ id: string; workspace: string; error: string }> {
    return [];
  }

  list(filter: TaskFilter = {}): TaskSummary[] {
    const statuses = filter.status === undefined ? undefined : new Set<TaskStatus>(Array.isArray(filter.status) ? filter.status : [filter.status]);
    const out: TaskSummary[] = [];
    for (const id of this.ordered()) {
      const s = this.entries.get(id)?.summary;
      if (!s) continue;
      if (filter.workspace !== undefined && s.workspace !== filter.workspace) continue;
      if (statuses && !statuses.has(s.status)) continue;
      if (filter.template !== undefined && s.template !== filter.template) continue;
      out.push(s);
      if (filter.limit !== undefined && out.length >= filter.limit) break;
    }
    return out;
  }

  query(q: TaskQuery): Promise<QueryPage> {
    return queryTasksSql(this.db, q);
  }

  revalidateAll(): number {
    void this.catchUp().catch(() => undefined);
    return 0;
  }

  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const { summary } of this.entries.values()) out[summary.status] = (out[summary.status] ?? 0) + 1;
    return out;
  }

  private ordered(): string[] {
    this.order ??= [...this.entries.entries()].sort((a, b) => (a[1].key < b[1].key ? 1 : a[1].key > b[1].key ? -1 : 0)).map(([id]) => id);
    return this.order;
  }
}
