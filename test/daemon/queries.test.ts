// Queries (DESIGN §13): every `atlas list` filter, alone and combined, run by a real daemon
// over a generated history of 3,000 tasks and compared with a brute-force filter of the same
// records; totals; paging through everything with --cursor yields each task exactly once
// while new tasks are being created; the CLI prints "showing N of M" and --with-total.
// Once on the filesystem store (the in-memory index) and once on PostgreSQL (SQL queries,
// pg-query.ts), with the same history: the same answers, pages and cursors.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generateHistory, writeHistory } from '../../scripts/history.js';
import { fileDatabase, pgStore } from '../helpers/pg.js';
import { idSortKey } from '../../src/store/task-ids.js';
import { encodeCursor } from '../../src/store/task-query.js';
import type { AtlasClient } from '../../src/client/client.js';
import type { TaskRecord, TaskStatus, TaskSummary } from '../../src/store/records.js';
import { TestHome, expectExit, parseStdout } from '../helpers/daemon.js';
import { TEMPLATES } from '../helpers/templates.js';

const N = 3000;
const DAY = 86_400_000;

interface Q {
  workspace?: string;
  status?: TaskStatus[];
  template?: string;
  labels?: Record<string, string>;
  since?: string;
  until?: string;
  text?: string;
}

/** The brute-force reading of a query, written independently of src/store/task-query.ts. */
function brute(all: readonly TaskRecord[], q: Q, sinceIso?: string, untilIso?: string): string[] {
  const out = all.filter((t) => {
    if (q.workspace && t.workspace !== q.workspace) return false;
    if (q.status && !q.status.includes(t.status)) return false;
    if (q.template && t.template !== q.template) return false;
    for (const [k, v] of Object.entries(q.labels ?? {})) if ((t.labels ?? {})[k] !== v) return false;
    if (sinceIso && Date.parse(t.created_at) < Date.parse(sinceIso)) return false;
    if (untilIso && Date.parse(t.created_at) >= Date.parse(untilIso)) return false;
    if (q.text) {
      const needle = q.text.toLowerCase();
      const fields = [t.description, ...Object.entries(t.inputs).map(([k, v]) => `${k}=${v}`), t.error ?? ''];
      if (!fields.some((f) => f.toLowerCase().includes(needle))) return false;
    }
    return true;
  });
  return out.map((t) => t.id).sort().reverse();
}

const db = await fileDatabase('queries');

/** Writes the history into the database, as daemons would have left it. */
async function writeHistoryPg(url: string, schema: string, tasks: readonly TaskRecord[]): Promise<void> {
  const store = pgStore(url, schema, 'history-writer');
  await store.init();
  try {
    for (let i = 0; i < tasks.length; i += 500) {
      await store.tasks.createTasks(tasks.slice(i, i + 500).map((t) => ({ task: { ...t, revision: 1 } })));
    }
  } finally {
    await store.close();
  }
}

for (const backend of ['fs', 'postgres'] as const) describe(`queries over a generated history (${backend} store)`, { skip: backend === 'postgres' ? db.skip : undefined }, () => {
  let h: TestHome;
  let client: AtlasClient;
  let history: TaskRecord[];
  const newest = new Date(Date.now() - 60_000);

  before(async () => {
    h = new TestHome({ templates: ['quick'] });
    void TEMPLATES;
    // 3,000 tasks, one every 15 minutes: about a month back from now.
    history = generateHistory({ n: N, newest, spacingMs: 15 * 60_000, seed: 7 });
    if (backend === 'fs') writeHistory(h.home, history);
    else {
      await writeHistoryPg(db.url, 'queries', history);
      fs.writeFileSync(path.join(h.home, 'config.yaml'), `store: ${db.url}\nstore_schema: queries\n`, { mode: 0o600 });
    }
    await h.startDaemon();
    client = await h.client();
  });
  after(async () => {
    client?.close();
    await h.dispose();
  });

  const list = async (q: Record<string, unknown>) => (await client.call('task.list', q as never)) as TaskSummary[];
  const page = async (q: Record<string, unknown>) => (await client.call('task.query', q as never)) as { tasks: TaskSummary[]; total: number; next_cursor: string | null };

  const day = (offsetDays: number) => new Date(newest.getTime() - offsetDays * DAY).toISOString().slice(0, 10);
  const cases: Array<[string, Q]> = [
    ['everything', {}],
    ['one status', { status: ['failed'] }],
    ['several statuses', { status: ['failed', 'ci_timeout', 'interrupted'] }],
    ['workspace', { workspace: 'ws3' }],
    ['template', { template: 'release' }],
    ['one label', { labels: { team: 'infra' } }],
    ['two labels', { labels: { team: 'web', env: 'prod' } }],
    ['a label nobody has', { labels: { team: 'nobody' } }],
    ['since a date', { since: day(10) }],
    ['until a date', { until: day(20) }],
    ['between two dates', { since: day(12), until: day(5) }],
    ['since an ISO time', { since: new Date(newest.getTime() - 3.3 * DAY).toISOString() }],
    ['text in an input, other case', { text: 'FOXTROT' }],
    ['text in the error', { text: 'timeout' }],
    ['text in the description', { text: 'task 1234' }],
    ['text in an input name=value', { text: 'ticket=t-42' }],
    ['everything combined', { status: ['failed', 'ci_timeout'], labels: { team: 'data' }, since: day(25), text: 'timed out', template: 'demo' }],
  ];

  test('each filter matches a brute-force filter of the same records, with its total', async () => {
    for (const [what, q] of cases) {
      const sinceIso = q.since && (q.since.length === 10 ? `${q.since}T00:00:00.000Z` : q.since);
      const untilIso = q.until && (q.until.length === 10 ? `${q.until}T00:00:00.000Z` : q.until);
      const expected = brute(history, q, sinceIso, untilIso);
      assert.ok(what === 'a label nobody has' || expected.length > 0, `${what}: the generated history has no match, so the case tests nothing`);
      assert.ok(what === 'everything' || expected.length < N, `${what}: matches everything, so it filters nothing`);
      const all = await list({ ...q });
      assert.deepEqual(all.map((t) => t.id), expected, `${what}: the ids differ`);
      const first = await page({ ...q, limit: 50 });
      assert.equal(first.total, expected.length, `${what}: total`);
      assert.deepEqual(first.tasks.map((t) => t.id), expected.slice(0, 50), `${what}: first page`);
      assert.equal(first.next_cursor === null, expected.length <= 50, `${what}: next_cursor`);
      if (first.next_cursor !== null) {
        // The cursor is the same on every store: the last task's sort key, encoded.
        assert.equal(first.next_cursor, encodeCursor(idSortKey(expected[49]!)), `${what}: the cursor`);
        const second = await page({ ...q, limit: 50, cursor: first.next_cursor });
        assert.equal(second.total, expected.length, `${what}: total of the second page`);
        assert.deepEqual(second.tasks.map((t) => t.id), expected.slice(50, 100), `${what}: second page`);
      }
    }
  });

  test('--since 7d: a duration back from the daemon\'s now', async () => {
    const before = Date.now();
    const got = (await list({ since: '7d', status: ['completed'] })).map((t) => t.id);
    const after = Date.now();
    const a = brute(history, { status: ['completed'] }, new Date(before - 7 * DAY).toISOString());
    const b = brute(history, { status: ['completed'] }, new Date(after - 7 * DAY).toISOString());
    assert.ok(a.length > 50 && a.length < N / 2);
    assert.ok(JSON.stringify(got) === JSON.stringify(a) || JSON.stringify(got) === JSON.stringify(b), 'matches the brute force at a now between the call and its answer');
  });

  test('bad dates and cursors are refused with the option named', async () => {
    await assert.rejects(list({ since: 'last tuesday' }), /--since "last tuesday": expected a duration/);
    await assert.rejects(list({ until: '2026-13-45' }), /--until/);
    await assert.rejects(list({ cursor: 'not-a-cursor!' }), /not a cursor/);
  });

  test('paging with --cursor yields every task exactly once while new tasks are created', async () => {
    const c = await h.client();
    const dirs = await h.createWorkspaces(['live']);
    void dirs;
    const at = new Set((await list({})).map((t) => t.id));
    const seen: string[] = [];
    const created: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    for (;;) {
      const p = await page({ limit: 97, ...(cursor ? { cursor } : {}) });
      seen.push(...p.tasks.map((t) => t.id));
      pages++;
      // New tasks keep arriving between pages.
      created.push(((await c.call('task.start', { template: 'quick', workspace: 'live' })) as TaskRecord).id);
      if (!p.next_cursor) break;
      cursor = p.next_cursor;
      assert.ok(pages < 100, 'paging does not end');
    }
    c.close();
    assert.equal(new Set(seen).size, seen.length, 'a task was listed twice');
    assert.deepEqual([...seen].sort(), [...at].sort(), 'pages hold exactly the tasks there were at the start');
    assert.ok(pages >= Math.ceil(N / 97));
    for (const id of created) await h.waitSettled(id);
  });

  test('the CLI: "showing 50 of N" on stderr, --json an array, --json --with-total an object', async () => {
    const failed = brute(history, { status: ['failed'] }).length;
    const r = expectExit(await h.cli(['list', '--status', 'failed']), 0);
    assert.match(r.stderr, new RegExp(`showing 50 of ${new Intl.NumberFormat('en-US').format(failed)}; next page: --cursor \\S+`));
    assert.equal(r.stdout.trim().split('\n').length, 51);
    const arr = parseStdout<TaskSummary[]>(expectExit(await h.cli(['list', '--json', '-l', 'team=infra', '--status', 'failed', '--status', 'rejected', '-n', '5']), 0));
    assert.equal(arr.length, 5);
    for (const t of arr) {
      assert.equal(t.labels?.['team'], 'infra');
      assert.ok(t.status === 'failed' || t.status === 'rejected');
    }
    const obj = parseStdout<{ tasks: TaskSummary[]; total: number; next_cursor: string | null }>(expectExit(await h.cli(['list', '--json', '--with-total', '--text', 'timeout', '--all']), 0));
    assert.equal(obj.total, brute(history, { text: 'timeout' }).length);
    assert.equal(obj.tasks.length, obj.total);
    assert.equal(obj.next_cursor, null);
    expectExit(await h.cli(['list', '--since', 'yesterday-ish']), 2);
  });
});
