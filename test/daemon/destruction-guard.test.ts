// The destruction guard (DESIGN §14): the 21st deletion within a minute, counted across
// clients, is refused (exit 5, nothing deleted); --force passes; every deletion is a line in
// daemon.log. Plus the guard's window on a fake clock.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DestructionGuard } from '../../src/engine/destruction-guard.js';
import { isAtlasError } from '../../src/errors.js';
import type { TaskRecord } from '../../src/store/records.js';
import { TestHome, expectExit, waitFor } from '../helpers/daemon.js';

test('the guard: 20 a minute, the window slides, a failed deletion gives its slot back', () => {
  let now = 0;
  const g = new DestructionGuard(20, 60_000, () => now);
  for (let i = 0; i < 19; i++) g.admit(`t${i}`, false);
  const giveBack = g.admit('t19', false);
  assert.throws(() => g.admit('t20', false), (e: unknown) => isAtlasError(e, 'not_allowed') && /--force/.test((e as Error).message));
  giveBack();
  g.admit('again', false);
  g.admit('forced', true);
  now = 60_001;
  g.admit('later', false);
});

describe('the destruction guard through the CLI', () => {
  let h: TestHome;
  const ids: string[] = [];

  before(async () => {
    h = new TestHome({ templates: ['quick'] });
    await h.startDaemon();
    await h.createWorkspaces(['w']);
    const c = await h.client();
    for (let i = 0; i < 22; i++) ids.push(((await c.call('task.start', { template: 'quick', workspace: 'w' })) as TaskRecord).id);
    for (const id of ids) await h.waitSettled(id);
  });
  after(async () => {
    await h.dispose();
  });

  test('the 21st deletion within a minute is refused; --force passes; each is logged', async () => {
    // Twenty deletions from two clients (the socket and the CLI) count together.
    const c = await h.client();
    for (const id of ids.slice(0, 15)) await c.call('task.delete', { id });
    for (const id of ids.slice(15, 20)) expectExit(await h.cli(['delete', id]), 0);
    const refused = expectExit(await h.cli(['delete', ids[20]!]), 5);
    assert.match(refused.stderr, /20 deletions or purges in the last 60s already.*--force/);
    assert.ok(fs.existsSync(h.taskDir('w', ids[20]!)), 'the refused deletion deleted the task');
    expectExit(await h.cli(['delete', ids[20]!, '--force']), 0);
    assert.equal(fs.existsSync(h.taskDir('w', ids[20]!)), false);
    const logged = () => fs.readFileSync(path.join(h.home, 'logs', 'daemon.log'), 'utf8');
    await waitFor('a daemon.log line for every deletion', () => ids.slice(0, 21).every((id) => logged().includes(`deleted task ${id}`)), 10_000);
    // A purge counts too.
    const purge = expectExit(await h.cli(['workspace', 'remove', 'w', '--purge']), 5);
    assert.match(purge.stderr, /refused to delete the task history of workspace w/);
  });
});
