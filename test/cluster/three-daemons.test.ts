// Three daemons (three homes) on one PostgreSQL database run 30 tasks: every task completes
// once, the work is spread over the daemons, no step runs twice (steps append to a file).
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import type { TaskRecord } from '../../src/store/records.js';
import { waitFor } from '../helpers/daemon.js';
import { fileDatabase } from '../helpers/pg.js';
import { APPEND_TEMPLATE, ClusterHomes, readAppends } from './helpers.js';

const db = await fileDatabase('three');
const skip = db.skip;

test('three daemons on one database run 30 tasks: each completes once, spread, no step twice', { skip, timeout: 240_000 }, async () => {
  const workspaces = ['w1', 'w2', 'w3', 'w4', 'w5', 'w6'];
  const c = new ClusterHomes({ url: db.url, schema: 'atlas', workspaces }, 3, APPEND_TEMPLATE(3, '0.05'));
  try {
    const [a, b, d] = c.homes as [(typeof c.homes)[0], (typeof c.homes)[0], (typeof c.homes)[0]];
    await Promise.all(c.homes.map((h) => h.startDaemon()));
    for (const ws of workspaces) await a.ok(['workspace', 'create', ws, '--path', a.dir(ws)]);
    const log = path.join(a.root, 'appends.log');
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) {
      const via = [a, b, d][i % 3]!;
      ids.push((await via.json<TaskRecord>(['start', 'append', '-w', workspaces[i % workspaces.length]!, '-i', `log=${log}`])).id);
    }
    const counts = await c.waitAllSettled(30, 180_000);
    assert.deepEqual(counts, { completed: 30 });

    const lines = readAppends(log);
    for (const id of ids) {
      for (const s of ['s1', 's2', 's3']) {
        assert.equal(lines.filter(([t, st, ph]) => t === id && st === s && ph === 'done').length, 1, `${id} ${s} ran once`);
        assert.equal(lines.filter(([t, st, ph]) => t === id && st === s && ph === 'start').length, 1, `${id} ${s} started once`);
      }
    }
    const homes = new Set(lines.map((l) => l[3]));
    assert.ok(homes.size >= 2, `the work was spread over the daemons (ran on ${[...homes].join(', ')})`);

    // Every daemon sees every task, with the history of each step.
    const listed = await d.json<Array<{ id: string; status: string }>>(['list', '--limit', '100']);
    assert.equal(listed.filter((t) => ids.includes(t.id)).length, 30);
    const shown = await b.json<TaskRecord>(['show', ids[0]!]);
    assert.equal(shown.step_results.filter((r) => r.status === 'completed').length, 3);
    // Every daemon shows the cluster's events: each task's, whichever daemon ran it, once each.
    for (const h of [a, b, d]) {
      const events = await waitFor(
        'the daemon to show every task.finished',
        async () => {
          const lines = (await h.ok(['events', '--json'])).stdout.trim().split('\n').filter(Boolean);
          const evs = lines.map((l) => JSON.parse(l) as { seq: number; id: string; type: string; task_id: string });
          return evs.filter((e) => e.type === 'task.finished' && ids.includes(e.task_id)).length === 30 ? evs : undefined;
        },
        30_000,
        200,
      );
      const seqs = events.map((e) => e.seq);
      assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y), 'in seq order');
      assert.equal(new Set(events.map((e) => e.id)).size, events.length, 'no event twice');
      for (const id of ids) {
        const mine = events.filter((e) => e.task_id === id);
        assert.equal(mine.filter((e) => e.type === 'task.created').length, 1, `${id}: one task.created`);
        assert.equal(mine.filter((e) => e.type === 'step.finished').length, 3, `${id}: one step.finished per step`);
        assert.equal(mine.filter((e) => e.type === 'step.started').length, 3, `${id}: one step.started per step`);
      }
    }
    const status = await a.json<{ daemons?: Array<{ id: string; heartbeat_age_ms: number }> }>(['daemon', 'status']);
    assert.equal(status.daemons?.length, 3, 'daemon status lists the three daemons');
  } finally {
    await c.dispose();
  }
});
