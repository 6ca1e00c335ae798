// SQL queries of the PostgreSQL store (pg-query.ts) over rows written before migration 5:
// the migration fills in their labels, the first store that starts fills in what --text
// searches, and both are kept current by every later write (labels changed, inputs searched).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadMigrations, migrate } from '../../../src/store/pg/migrate.js';
import { summarize } from '../../../src/store/records.js';
import { encodeTask } from '../../../src/store/task-codec.js';
import { idSortKey } from '../../../src/store/task-ids.js';
import { fileDatabase, pgStore } from '../../helpers/pg.js';
import { makeTask } from '../helpers.js';

const db = await fileDatabase('pgquery');
const skip = db.skip;

test('rows from before migration 5 are found by label and by text; later writes keep both current', { skip }, async () => {
  const old = pgStore(db.url, 'upgrade', 'old');
  const client = await old.pool.connect();
  try {
    await migrate(client, 'upgrade', loadMigrations().slice(0, 4));
  } finally {
    client.release();
  }
  const t = makeTask('task-20260101-120000', 'ws', { revision: 1, labels: { team: 'infra' }, inputs: { ticket: 'QX-Seventeen' }, description: 'an old task' });
  await old.pool.query(
    `INSERT INTO upgrade.tasks (id, workspace, sort_key, status, template, priority, created_at, revision, data, summary)
     VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9)`,
    [t.id, t.workspace, idSortKey(t.id), t.status, t.template, t.priority, t.created_at, encodeTask(t), JSON.stringify(summarize(t))],
  );
  await old.close();

  const s = pgStore(db.url, 'upgrade', 'new');
  await s.init();
  try {
    const index = s.openIndex();
    const ids = async (q: Parameters<typeof index.query>[0]) => (await index.query(q)).tasks.map((x) => x.id);
    assert.deepEqual(await ids({ labels: { team: 'infra' } }), [t.id], 'the migration filled in the labels');
    assert.deepEqual(await ids({ text: 'qx-seventeen' }), [t.id], 'the start filled in the searched text (inputs, any case)');
    assert.deepEqual(await ids({ labels: { team: 'web' } }), []);
    await s.tasks.updateTask(t.id, (x) => {
      x.labels = { team: 'web' };
      x.inputs = { ticket: 'QX-Eighteen' };
    });
    assert.deepEqual(await ids({ labels: { team: 'web' } }), [t.id], 'a write changes the labels');
    assert.deepEqual(await ids({ labels: { team: 'infra' } }), []);
    assert.deepEqual(await ids({ text: 'eighteen' }), [t.id]);
    assert.deepEqual(await ids({ text: 'seventeen' }), [], 'a write changes the searched text');
    const page = await index.query({ text: '%', limit: 1 });
    assert.deepEqual(page, { tasks: [], total: 0, next_cursor: null }, 'the needle is a plain substring, never a pattern');
  } finally {
    await s.close();
  }
});

test('a checkpoint restored by repair brings its columns back: queries see it, writers can write it', { skip }, async () => {
  const s = pgStore(db.url, 'repair', 'r');
  await s.init();
  try {
    const t = await s.tasks.createTask(makeTask('task-20260102-120000', 'ws', { labels: { team: 'infra' } }));
    const bad = { ...t, status: 'failed' as const, labels: { team: 'web' } };
    await s.tasks.checkpoint(bad);
    await s.pool.query(`UPDATE repair.tasks SET data = '{"torn": ' WHERE id = $1`, [t.id]);
    assert.equal((await s.repairTask('ws', t.id)).action, 'restored_backup');
    const index = s.openIndex();
    assert.deepEqual((await index.query({ status: 'pending', labels: { team: 'infra' } })).tasks.map((x) => x.id), [t.id]);
    assert.equal((await index.query({ status: 'failed' })).total, 0);
    const next = await s.tasks.updateTask(t.id, (x) => {
      x.description = 'written after the repair';
    });
    assert.equal(next.revision, 2);
  } finally {
    await s.close();
  }
});
