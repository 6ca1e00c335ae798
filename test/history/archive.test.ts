// Archiving on both stores (DESIGN §14): prune moves finished tasks into the archive (files in
// the home, or rows of the database) and leaves a waiting one; show, logs and artifacts of an
// archived task answer what they answered when it was live (artifacts byte for byte); list
// --archived lists it; unarchive brings it back as it was, and it can be archived again. Each
// move is a task.archived / task.unarchived event. On PostgreSQL the archive lives in the
// database: a daemon with a brand-new home reads it, and no task is both live and archived.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import type { AtlasClient } from '../../src/client/client.js';
import type { TaskRecord } from '../../src/store/records.js';
import { TestHome } from '../helpers/daemon.js';
import { fileDatabase } from '../helpers/pg.js';
import { TEMPLATES } from '../helpers/templates.js';

const db = await fileDatabase('archive');

const TEMPLATE = `name: arty
steps:
  - name: say
    type: shell
    run: echo "hello from $ATLAS_TASK_ID"
  - name: check
    type: validation
    commands: ["true", "echo checked"]
`;

async function look(c: AtlasClient, id: string): Promise<unknown> {
  const { archived_at: _, ...task } = (await c.call('task.get', { id })) as TaskRecord & { archived_at?: string };
  const logs = (await c.call('task.logs', { id })).records;
  const artifacts = (await c.call('task.artifacts', { id })).map((a) => ({ name: a.name, size: a.size }));
  const contents: Record<string, unknown> = {};
  for (const a of artifacts) contents[a.name] = await c.call('task.artifact', { id, name: a.name });
  assert.ok(artifacts.length > 0, `task ${id} has no artifact: the test would compare nothing`);
  return { task, logs, artifacts, contents };
}

function configFor(backend: 'fs' | 'postgres', home: string): void {
  if (backend === 'postgres') fs.writeFileSync(path.join(home, 'config.yaml'), `store: ${db.url}\nstore_schema: arch\n`, { mode: 0o600 });
}

for (const backend of ['fs', 'postgres'] as const) describe(`archiving (${backend} store)`, { skip: backend === 'postgres' ? db.skip : undefined }, () => {
  let h: TestHome;
  let c: AtlasClient;
  const done: string[] = [];
  let waiting: string;
  const before_ = new Map<string, unknown>();

  before(async () => {
    h = new TestHome({ templates: ['review'] });
    void TEMPLATES;
    h.writeTemplate('arty', TEMPLATE);
    fs.mkdirSync(h.home, { recursive: true, mode: 0o700 });
    configFor(backend, h.home);
    await h.startDaemon();
    await h.createWorkspaces(['w', 'v']);
    c = await h.client();
    for (let i = 0; i < 2; i++) done.push(((await c.call('task.start', { template: 'arty', workspace: 'w' })) as TaskRecord).id);
    waiting = ((await c.call('task.start', { template: 'review', workspace: 'v' })) as TaskRecord).id;
    for (const id of done) assert.equal((await h.waitSettled(id)).status, 'completed');
    assert.equal((await h.waitSettled(waiting)).status, 'awaiting_approval');
    for (const id of done) before_.set(id, await look(c, id));
  });
  after(async () => {
    c?.close();
    await h?.dispose();
  });

  const events = async (type: string) => (await c.call('events.list', { types: [type] })).events.filter((e) => done.includes(e.task_id));

  test('prune archives the finished tasks; they read as before, list --archived lists them', async () => {
    const r = await c.call('task.prune', { older_than: '1ms' });
    assert.deepEqual([...r.archived].sort(), [...done].sort());
    assert.ok(r.archive_bytes > 0);
    assert.deepEqual((await c.call('task.list', {})).map((t) => t.id), [waiting], 'the waiting task is never pruned');
    assert.deepEqual((await c.call('task.list', { archived: true })).map((t) => t.id), [...done].sort().reverse());
    for (const id of done) assert.deepEqual(await look(c, id), before_.get(id), `${id} reads as it did when live`);
    const shown = await h.ok(['show', done[0]!]);
    assert.match(shown.stderr, /is archived/);
    const ev = await events('task.archived');
    assert.deepEqual(ev.map((e) => e.task_id).sort(), [...done].sort(), 'one task.archived event per task');
    for (const e of ev) assert.ok(Number(e.data['archive_bytes']) > 0);
  });

  test('unarchive brings a task back as it was; it can be archived again', async () => {
    const back = done[0]!;
    const t = await c.call('task.unarchive', { id: back });
    assert.equal(t.id, back);
    assert.deepEqual((await c.call('task.list', { archived: true })).map((x) => x.id), [done[1]]);
    assert.ok((await c.call('task.list', {})).some((x) => x.id === back));
    assert.deepEqual(await look(c, back), before_.get(back));
    await assert.rejects(c.call('task.unarchive', { id: back }), /not archived/);
    assert.deepEqual((await events('task.unarchived')).map((e) => e.task_id), [back]);
    const again = await c.call('task.prune', { older_than: '1ms' });
    assert.deepEqual(again.archived, [back]);
    assert.equal((await events('task.archived')).length, 3, 'the second archiving is an event of its own');
    assert.deepEqual(await look(c, back), before_.get(back));
  });

  if (backend === 'postgres') {
    test('the archive is in the database: a daemon with a new home reads it; no task is both live and archived', async () => {
      const pool = new pg.Pool({ connectionString: db.url, max: 1 });
      try {
        const both = await pool.query('SELECT a.id FROM arch.archived_tasks a JOIN arch.tasks t USING (id)');
        assert.equal(both.rowCount, 0);
        const rows = await pool.query<{ id: string }>('SELECT id FROM arch.archived_tasks ORDER BY id');
        assert.deepEqual(rows.rows.map((r) => r.id), [...done].sort());
        const logs = await pool.query('SELECT 1 FROM arch.task_logs WHERE task_id = ANY($1)', [done]);
        assert.equal(logs.rowCount, 0, 'the live rows (logs too) are gone');
      } finally {
        await pool.end();
      }
      const fresh = new TestHome();
      try {
        fs.mkdirSync(fresh.home, { recursive: true, mode: 0o700 });
        configFor(backend, fresh.home);
        await fresh.startDaemon();
        const c2 = await fresh.client();
        assert.deepEqual((await c2.call('task.list', { archived: true })).map((t) => t.id), [...done].sort().reverse());
        for (const id of done) assert.deepEqual(await look(c2, id), before_.get(id));
        c2.close();
      } finally {
        await fresh.dispose();
      }
    });
  }
});
