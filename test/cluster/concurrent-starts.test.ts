// Many starts at once on a shared PostgreSQL store: two daemons' engines start 12 tasks each
// in the same second. Ids are chosen from the database and can collide between the choice and
// the write (another daemon, or a concurrent start in the same one); every start must still
// succeed with a distinct id, and every task complete.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { DEFAULT_CONFIG, type Config } from '../../src/config/config.js';
import { Engine } from '../../src/engine/engine.js';
import { fileDatabase } from '../helpers/pg.js';

const db = await fileDatabase('starts');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'atlas-starts-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

test('24 starts at once on two daemons sharing a database: distinct ids, none refused, all complete', { skip: db.skip, timeout: 120_000 }, async () => {
  const engines: Engine[] = [];
  try {
    for (const name of ['a', 'b']) {
      const home = path.join(root, name);
      fs.mkdirSync(path.join(home, 'templates'), { recursive: true });
      fs.writeFileSync(path.join(home, 'templates', 'one.yaml'), 'name: one\nsteps:\n  - name: s\n    type: wait\n    duration: 0s\n');
      const config: Config = { ...DEFAULT_CONFIG, max_concurrent_tasks: 4, store_url: db.url, store_schema: 'atlas' };
      const e = await Engine.open({ home, config });
      await e.start();
      engines.push(e);
    }
    const dir = path.join(root, 'ws');
    fs.mkdirSync(dir);
    await engines[0]!.store.workspaces.create({ name: 'ws', path: dir, kind: 'path', repo: null, branch: null });
    const started = await Promise.all(engines.flatMap((e) => Array.from({ length: 12 }, () => e.startTask({ template: 'one', workspace: 'ws' }))));
    const ids = started.map((t) => t.id);
    assert.equal(new Set(ids).size, 24, `duplicate ids: ${ids.join(' ')}`);
    const done = await Promise.all(started.map((t) => engines[0]!.waitForSettled(t.id)));
    assert.ok(done.every((t) => t.status === 'completed'), done.map((t) => `${t.id}:${t.status}`).join(' '));
  } finally {
    for (const e of engines) await e.shutdown(5000).catch(() => undefined);
  }
});
