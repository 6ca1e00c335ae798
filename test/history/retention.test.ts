// `retention:` in config.yaml (DESIGN §14): the daemon archives finished tasks past their age
// by itself after it starts, never a waiting one; prune --delete is one purge for the guard;
// a bad retention key is refused with its name.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TaskRecord } from '../../src/store/records.js';
import { TestHome, expectExit, waitFor } from '../helpers/daemon.js';

describe('retention', () => {
  let h: TestHome;
  let done: string;
  let waiting: string;

  before(async () => {
    h = new TestHome({ templates: ['quick', 'review'] });
    await h.startDaemon();
    await h.createWorkspaces(['w', 'v']);
    const c = await h.client();
    done = ((await c.call('task.start', { template: 'quick', workspace: 'w' })) as TaskRecord).id;
    waiting = ((await c.call('task.start', { template: 'review', workspace: 'v' })) as TaskRecord).id;
    assert.equal((await h.waitSettled(done)).status, 'completed');
    assert.equal((await h.waitSettled(waiting)).status, 'awaiting_approval');
    await h.stopDaemon();
  });
  after(async () => {
    await h?.dispose();
  });

  test('a bad retention key is refused by name', () => {
    fs.writeFileSync(path.join(h.home, 'config.yaml'), 'retention:\n  older_than: soon\n');
    return h.cli(['daemon', 'start']).then((r) => {
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /retention\.older_than/);
    });
  });

  test('the daemon archives finished tasks past their age after it starts, never a waiting one', async () => {
    fs.writeFileSync(path.join(h.home, 'config.yaml'), 'retention:\n  older_than: 1ms\n');
    await h.startDaemon({ env: { ATLAS_RETENTION_DELAY_MS: '200' } });
    const c = await h.client();
    await waitFor('the finished task to be archived', async () => (await c.call('task.query', { archived: true })).total === 1, 30_000);
    assert.deepEqual((await c.call('task.list', { archived: true })).map((t) => t.id), [done]);
    assert.deepEqual((await c.call('task.list', {})).map((t) => t.id), [waiting]);
    // Archived, it still shows.
    const shown = await h.ok(['show', done]);
    assert.match(shown.stderr, /is archived/);
    assert.match(shown.stdout, /completed/);
    // A waiting task is never pruned, even named.
    const refused = expectExit(await h.cli(['prune', '--status', 'awaiting_approval']), 2);
    assert.match(refused.stderr, /awaiting_approval/);
  });
});
