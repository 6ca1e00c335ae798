// A --path workspace runs only on the daemon that made it (and daemons that list it under
// `workspaces:`): while that daemon is down, a task of the workspace waits, every daemon's
// `show` says why, and the task runs once the daemon is back.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import type { TaskRecord } from '../../src/store/records.js';
import { waitFor } from '../helpers/daemon.js';
import { fileDatabase } from '../helpers/pg.js';
import { APPEND_TEMPLATE, ClusterHomes, readAppends } from './helpers.js';

const db = await fileDatabase('blocked');

test('a task whose --path workspace only a stopped daemon has waits; show says why; it runs when that daemon is back', { skip: db.skip, timeout: 120_000 }, async () => {
  // No daemon lists w under workspaces:, so only its maker (a) can run it.
  const c = new ClusterHomes({ url: db.url, schema: 'atlas', workspaces: [] }, 2, APPEND_TEMPLATE(1, '0'));
  try {
    const [a, b] = c.homes as [(typeof c.homes)[0], (typeof c.homes)[0]];
    await Promise.all(c.homes.map((h) => h.startDaemon()));
    await a.ok(['workspace', 'create', 'w', '--path', a.dir('w')]);
    const log = path.join(a.root, 'appends.log');
    const first = (await a.json<TaskRecord>(['start', 'append', '-w', 'w', '-i', `log=${log}`])).id;
    assert.equal((await a.waitSettled(first, 60_000)).status, 'completed');
    const aId = (await a.json<{ daemon_id?: string }>(['daemon', 'status'])).daemon_id ?? '';
    assert.ok(aId, 'daemon status names the daemon');

    await a.stopDaemon();
    const id = (await b.json<TaskRecord>(['start', 'append', '-w', 'w', '-i', `log=${log}`])).id;
    const shown = await b.json<TaskRecord & { blocked_reason?: string }>(['show', id]);
    assert.equal(shown.status, 'pending');
    assert.match(shown.blocked_reason ?? '', /no live daemon can run workspace w/, 'show --json says why the task waits');
    assert.ok(shown.blocked_reason?.includes(aId), `the reason names the daemon that can run it (${aId}): ${shown.blocked_reason}`);
    assert.match(shown.blocked_reason ?? '', /workspaces:/, 'the reason says how another daemon could run it');
    const human = (await b.ok(['show', id])).stdout;
    assert.match(human, /blocked +no live daemon can run workspace w/, `show says why in its text:\n${human}`);

    // A task another daemon can run (its workspace listed nowhere else, but its maker is live) is not blocked.
    await b.ok(['workspace', 'create', 'v', '--path', b.dir('v')]);
    const free = (await b.json<TaskRecord>(['start', 'append', '-w', 'v', '-i', `log=${log}`])).id;
    assert.equal((await b.waitSettled(free, 60_000)).status, 'completed');
    assert.equal((await b.json<TaskRecord & { blocked_reason?: string }>(['show', id])).status, 'pending', 'b never runs a workspace it does not have');

    await a.startDaemon();
    const done = await waitFor('the waiting task to run once its daemon is back', async () => {
      const t = await b.json<TaskRecord & { blocked_reason?: string }>(['show', id]);
      return t.status === 'completed' ? t : undefined;
    }, 60_000, 100);
    assert.equal(done.blocked_reason, undefined, 'a finished task is not blocked');
    const ran = readAppends(log).filter((l) => l[0] === id);
    assert.deepEqual(ran.map((l) => l[3]), [a.home, a.home], 'the task ran on the daemon that has the workspace, once');
  } finally {
    await c.dispose();
  }
});
