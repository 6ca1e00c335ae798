// cluster_max_concurrent_tasks: a limit on the tasks running at once across every daemon of
// the database, whatever each daemon's own max_concurrent_tasks allows.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { fileDatabase } from '../helpers/pg.js';
import { APPEND_TEMPLATE, ClusterHomes, readAppends } from './helpers.js';

const db = await fileDatabase('global_limit');

test('two daemons of 4 slots each run at most cluster_max_concurrent_tasks (3) tasks at once', { skip: db.skip, timeout: 240_000 }, async () => {
  const workspaces = Array.from({ length: 9 }, (_, i) => `w${i + 1}`);
  const c = new ClusterHomes({ url: db.url, schema: 'atlas', workspaces, slots: 4, extra: ['cluster_max_concurrent_tasks: 3'] }, 2, APPEND_TEMPLATE(1, '0.6'));
  try {
    const [a, b] = c.homes as [(typeof c.homes)[0], (typeof c.homes)[0]];
    await Promise.all(c.homes.map((h) => h.startDaemon()));
    for (const ws of workspaces) await a.ok(['workspace', 'create', ws, '--path', a.dir(ws)]);
    const log = path.join(a.root, 'appends.log');
    for (let i = 0; i < 9; i++) await (i % 2 ? a : b).ok(['start', 'append', '-w', workspaces[i]!, '-i', `log=${log}`]);
    assert.deepEqual(await c.waitAllSettled(9, 180_000), { completed: 9 });

    // Lines are appended in the order they happened: count the steps between start and done.
    let running = 0;
    let most = 0;
    for (const [, , phase] of readAppends(log)) {
      running += phase === 'start' ? 1 : -1;
      most = Math.max(most, running);
    }
    assert.equal(readAppends(log).length, 18, 'every task ran its step once');
    assert.ok(most <= 3, `at most 3 steps ran at once across both daemons (saw ${most})`);
  } finally {
    await c.dispose();
  }
});
