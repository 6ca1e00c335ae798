// Queries over task summaries (DESIGN §13: `atlas list` filters, paging, totals), shared by
// every index that keeps summaries in memory.
//
// Order and paging: tasks are listed newest first by their sort key (creation time, then the
// id's suffix). A cursor is the sort key of the last task of a page, encoded; the next page
// holds the tasks whose key sorts strictly before it. Tasks created while someone pages are
// newer than every cursor, so they never shift a page: paging through everything yields each
// task that existed at the start exactly once (and tasks deleted meanwhile are skipped).
//
// The total counts every task the filter matches (not only those after the cursor), so
// "showing 50 of 1,234" stays the same from page to page.
import { AtlasError } from '../errors.js';
import type { TaskRecord, TaskStatus, TaskSummary } from './records.js';

export interface TaskQuery {
  workspace?: string;
  status?: TaskStatus | TaskStatus[];
  template?: string;
  /** Every label given must be present with this value. */
  labels?: Record<string, string>;
  /** ISO 8601 instants: created at or after `since`, before `until`. */
  since?: string;
  until?: string;
  /** Case-insensitive substring of the description, an input (name or value) or the error. */
  text?: string;
  limit?: number;
  /** From a previous page's `next_cursor`. */
  cursor?: string;
}

export interface QueryPage {
  tasks: TaskSummary[];
  total: number;
  next_cursor: string | null;
}

/** One indexed task: its summary, its sort key, and its searchable text (lower case). */
export interface Searchable {
  summary: TaskSummary;
  key: string;
  text?: string;
}

/** At most this much of each input value is searched. */
export const SEARCH_INPUT_CHARS = 2048;

/** What `--text` looks at: description, inputs (name=value, each value capped) and error, in lower case. */
export function searchText(task: Pick<TaskRecord, 'description' | 'inputs' | 'error'>): string {
  const parts = [task.description ?? ''];
  for (const [k, v] of Object.entries(task.inputs ?? {})) parts.push(`${k}=${typeof v === 'string' ? v.slice(0, SEARCH_INPUT_CHARS) : ''}`);
  if (task.error) parts.push(task.error);
  return parts.join('\n').toLowerCase();
}

export function encodeCursor(key: string): string {
  return Buffer.from(key, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): string {
  const key = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!cursor || key.length === 0 || key.length > 200 || encodeCursor(key) !== cursor) {
    throw new AtlasError('invalid_input', `--cursor ${JSON.stringify(cursor.slice(0, 60))} is not a cursor this atlas gave out; use the next_cursor of the previous page`);
  }
  return key;
}

/** A predicate for one query (everything but limit and cursor). */
export function compileQuery(q: TaskQuery): (e: Searchable) => boolean {
  const statuses = q.status === undefined ? undefined : new Set<TaskStatus>(Array.isArray(q.status) ? q.status : [q.status]);
  const labels = q.labels ? Object.entries(q.labels) : [];
  const text = q.text?.toLowerCase();
  const { workspace, template, since, until } = q;
  return (e) => {
    const s = e.summary;
    if (workspace !== undefined && s.workspace !== workspace) return false;
    if (statuses && !statuses.has(s.status)) return false;
    if (template !== undefined && s.template !== template) return false;
    if (since !== undefined && s.created_at < since) return false;
    if (until !== undefined && s.created_at >= until) return false;
    for (const [k, v] of labels) if (s.labels?.[k] !== v) return false;
    if (text !== undefined) {
      const hay = e.text ?? `${s.description}\n${s.error ?? ''}`.toLowerCase();
      if (!hay.includes(text)) return false;
    }
    return true;
  };
}

/**
 * Runs a query over entries sorted newest first. `verify` may replace an entry that is about
 * to be returned (re-read because its file changed) or drop it (undefined).
 */
export function runQuery(ordered: readonly Searchable[], q: TaskQuery, verify: (e: Searchable) => Searchable | undefined = (e) => e): QueryPage {
  const match = compileQuery(q);
  const after = q.cursor !== undefined ? decodeCursor(q.cursor) : undefined;
  const limit = q.limit ?? Infinity;
  const tasks: TaskSummary[] = [];
  let total = 0;
  let lastKey: string | undefined;
  let more = false;
  for (let i = 0, n = ordered.length; i < n; i++) {
    const e = ordered[i]!;
    if (!match(e)) continue;
    total++;
    if (after !== undefined && e.key >= after) continue;
    if (tasks.length >= limit) {
      more = true;
      continue;
    }
    const fresh = verify(e);
    if (!fresh || !match(fresh)) {
      total--;
      continue;
    }
    tasks.push(fresh.summary);
    lastKey = e.key;
  }
  return { tasks, total, next_cursor: more && lastKey !== undefined ? encodeCursor(lastKey) : null };
}
