// Migrations of the PostgreSQL store: applied once each by several daemons starting at once,
// recorded in a table; a database newer than the code is refused and left untouched.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { loadMigrations } from '../../../src/store/pg/migrate.js';
import { PgStore } from '../../../src/store/pg/pg-store.js';
import { fileDatabase, pgStore } from '../../helpers/pg.js';
import { expectCode } from '../helpers.js';

const db = await fileDatabase('migrations');
const skip = db.skip;

function store(schema: string, id: string): PgStore {
  return pgStore(db.url, schema, id);
}

test('three daemons starting at once apply each migration exactly once', { skip }, async () => {
  const stores = ['a', 'b', 'c'].map((id) => store('race', id));
  try {
    await Promise.all(stores.map((s) => s.init()));
    const known = loadMigrations().length;
    const applied = stores.flatMap((s) => s.migration?.applied ?? []);
    assert.deepEqual(applied.sort(), Array.from({ length: known }, (_, i) => i + 1), 'every migration applied by exactly one of them');
    const rows = (await stores[0]!.pool.query<{ version: number }>('SELECT version FROM race.migrations ORDER BY version')).rows.map((r) => r.version);
    assert.deepEqual(rows, Array.from({ length: known }, (_, i) => i + 1));
    // A later start applies nothing.
    const again = store('race', 'd');
    await again.init();
    assert.deepEqual(again.migration?.applied, []);
    await again.close();
  } finally {
    for (const s of stores) await s.close();
  }
});

test('a database whose schema is newer than the code is refused, with a message that says so', { skip }, async () => {
  const first = store('newer', 'a');
  await first.init();
  await first.pool.query(`INSERT INTO newer.migrations (version, name) VALUES (999, 'from_the_future')`);
  await first.close();
  const s = store('newer', 'b');
  try {
    const err = await expectCode(() => s.init(), 'unsupported_schema');
    assert.match(err.message, /version 999, newer than this atlas knows/);
    assert.match(err.message, /upgrade atlas/);
  } finally {
    await s.close();
  }
});

test('an unreachable server fails within seconds, naming the host and never the password', { skip }, async () => {
  const s = pgStore('postgres://atlas:s3cret-pw@127.0.0.1:1/nowhere', 'atlas', 'x');
  const started = Date.now();
  try {
    const err = await expectCode(() => s.init(), 'storage');
    assert.ok(Date.now() - started < 10_000);
    assert.match(err.message, /127\.0\.0\.1:1/);
    assert.doesNotMatch(err.message, /s3cret/);
  } finally {
    await s.close();
  }
  void pg;
});
