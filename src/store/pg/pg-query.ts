// `atlas list` queries (DESIGN §13) in SQL on the PostgreSQL store, with the same results,
// order, totals and cursors as the filesystem index's runQuery (task-query.ts):
//   - newest first by sort_key (idSortKey of the id), compared byte-wise (COLLATE "C"), as
//     JavaScript compares the keys; a cursor is the encoded sort_key of a page's last task and
//     the next page holds the keys strictly below it;
//   - --text is a substring of the row's `search` column, which atlas writes in lower case
//     with searchText(), so the database never lower-cases anything itself;
//   - the total counts every matching row, whatever the cursor.
// The count and the page are one statement, so they see one snapshot.
import { searchText, decodeCursor, encodeCursor, type QueryPage, type TaskQuery } from '../task-query.js';
import type { TaskRecord, TaskStatus } from '../records.js';
import type { Db } from './db.js';
import type { OwnedSummary } from './pg-index.js';

/** The query columns of a task row (labels and search), as parameters of a write. */
export function queryColumns(task: Pick<TaskRecord, 'labels' | 'description' | 'inputs' | 'error'>): [string | null, string] {
  const labels = task.labels && Object.keys(task.labels).length ? JSON.stringify(task.labels) : null;
  return [labels, searchText(task)];
}

/** The WHERE clause of a query (everything but the cursor) and its parameters. */
function whereOf(q: TaskQuery): { sql: string; params: unknown[] } {
  const conds: string[] = [];
  const params: unknown[] = [];
  const p = (v: unknown) => `$${params.push(v)}`;
  if (q.workspace !== undefined) conds.push(`workspace = ${p(q.workspace)}`);
  if (q.status !== undefined) conds.push(`status = ANY(${p(Array.isArray(q.status) ? q.status : [q.status as TaskStatus])}::text[])`);
  if (q.template !== undefined) conds.push(`template = ${p(q.template)}`);
  if (q.since !== undefined) conds.push(`created_at COLLATE "C" >= ${p(q.since)}`);
  if (q.until !== undefined) conds.push(`created_at COLLATE "C" < ${p(q.until)}`);
  if (q.labels && Object.keys(q.labels).length) conds.push(`labels @> ${p(JSON.stringify(q.labels))}::jsonb`);
  if (q.text !== undefined) conds.push(`strpos(search, ${p(q.text.toLowerCase())}) > 0`);
  return { sql: conds.length ? conds.join(' AND ') : 'TRUE', params };
}

/** One page of a query and its total, read from the database. */
export async function queryTasksSql(db: Db, q: TaskQuery): Promise<QueryPage> {
  const after = q.cursor !== undefined ? decodeCursor(q.cursor) : undefined;
  const { sql: where, params } = whereOf(q);
  const n = params.length;
  // One more row than the page, to know whether another page follows.
  const limit = q.limit === undefined ? null : Math.max(0, q.limit) + 1;
  const r = await db.query<{ total: string; id: string | null; summary: string | null; owner: string | null; sort_key: string | null }>(
    'query tasks',
    `SELECT t.total, p.id, p.summary, p.owner, p.sort_key
     FROM (SELECT count(*) AS total FROM tasks WHERE ${where}) t
     LEFT JOIN LATERAL (
       SELECT id, summary, owner, sort_key FROM tasks
       WHERE ${where} AND ($${n + 1}::text IS NULL OR sort_key COLLATE "C" < $${n + 1})
       ORDER BY sort_key COLLATE "C" DESC LIMIT $${n + 2}) p ON TRUE
     ORDER BY p.sort_key COLLATE "C" DESC`,
    [...params, after ?? null, limit],
  );
  let total = Number(r.rows[0]?.total ?? 0);
  const rows = r.rows.filter((row) => row.id !== null);
  const more = limit !== null && rows.length >= limit;
  const page = more ? rows.slice(0, limit - 1) : rows;
  const tasks: OwnedSummary[] = [];
  let lastKey: string | undefined;
  for (const row of page) {
    try {
      tasks.push({ ...(JSON.parse(row.summary!) as OwnedSummary), daemon: row.owner });
      lastKey = row.sort_key!;
    } catch {
      total--; // an unreadable summary is skipped, as the in-memory index skips it
    }
  }
  return { tasks, total, next_cursor: more && lastKey !== undefined ? encodeCursor(lastKey) : null };
}

/** Fills in `search` (and labels) of rows written before migration 5; returns how many. */
export async function fillSearch(db: Db, batch = 500): Promise<number> {
  let filled = 0;
  for (;;) {
    const r = await db.query<{ id: string; revision: number; data: string }>('read tasks to index', 'SELECT id, revision, data FROM tasks WHERE search IS NULL LIMIT $1', [batch]);
    if (r.rows.length === 0) return filled;
    const ids: string[] = [];
    const revisions: number[] = [];
    const labels: Array<string | null> = [];
    const search: string[] = [];
    for (const row of r.rows) {
      let task: TaskRecord;
      try {
        task = JSON.parse(row.data) as TaskRecord;
      } catch {
        task = { description: '', inputs: {}, error: null } as unknown as TaskRecord; // searchable by nothing; repaired on read
      }
      const [l, s] = queryColumns(task);
      ids.push(row.id);
      revisions.push(row.revision);
      labels.push(l);
      search.push(s);
    }
    const u = await db.query(
      'index tasks',
      `UPDATE tasks t SET labels = u.labels::jsonb, search = u.search
       FROM unnest($1::text[], $2::int[], $3::text[], $4::text[]) AS u(id, revision, labels, search)
       WHERE t.id = u.id AND t.revision = u.revision AND t.search IS NULL`,
      [ids, revisions, labels, search],
    );
    filled += u.rowCount ?? 0;
    if (r.rows.length < batch || !u.rowCount) return filled;
  }
}
