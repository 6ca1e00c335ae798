// The conformance suite against the PostgreSQL store, on a fresh database of the local server.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { HomePaths } from '../../../src/store/paths.js';
import { PgStore } from '../../../src/store/pg/pg-store.js';
import { fileDatabase, pgStore } from '../../helpers/pg.js';
import { runConformance } from './suite.js';

const db = await fileDatabase('conformance');
if (db.skip) {
  test('postgres store conformance', { skip: db.skip }, () => undefined);
} else {
  let n = 0;
  runConformance('postgres', async () => {
    // Each test gets its own schema: a fresh, empty store.
    const schema = `conf_${++n}`;
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'atlas-pg-conformance-'));
    const make = async (id: string) => {
      const s = pgStore(db.url, schema, id, { paths: new HomePaths(root) });
      await s.init();
      return s;
    };
    const store = await make('daemon-a');
    const others: PgStore[] = [];
    return {
      store,
      async second() {
        const s = await make(`daemon-${others.length + 2}`);
        others.push(s);
        return s;
      },
      async damage(_ws, id) {
        await store.pool.query(`UPDATE "${schema}".tasks SET data = '{"torn": ' WHERE id = $1`, [id]);
      },
      async cleanup() {
        for (const s of [store, ...others]) await s.close();
        fs.rmSync(root, { recursive: true, force: true });
      },
    };
  });
}
