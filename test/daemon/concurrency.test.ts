// Many clients at once (DESIGN §2 ids, §5): 20 CLI processes and then 20 socket clients
// start tasks at the same moment; every id is distinct, every task completes, and each task
// ran its own step (its output names its own id).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AtlasClient } from '../../src/client/client.js';
import { TASK_ID_PATTERN } from '../../src/store/names.js';
import type { TaskRecord } from '../../src/store/records.js';
import { TestHome, expectExit, parseStdout } from '../helpers/daemon.js';

const WORKSPACES = ['w0', 'w1', 'w2', 'w3'];

describe('20 clients starting tasks at once', () => {
  let h: TestHome;

  before(async () => {
    h = new TestHome({ templates: ['quick'] });
    await h.startDaemon();
    await h.createWorkspaces(WORKSPACES);
  });
  after(async () => {
    await h.dispose();
  });

  async function checkCompleted(tasks: TaskRecord[]): Promise<void> {
    const ids = tasks.map((t) => t.id);
    assert.equal(new Set(ids).size, ids.length, `duplicate ids: ${ids.join(', ')}`);
    for (const id of ids) assert.match(id, TASK_ID_PATTERN);
    for (const t of tasks) {
      const done = await h.waitSettled(t.id, 60_000);
      assert.equal(done.status, 'completed', `task ${t.id} ended ${done.status}: ${done.error}`);
      const output = fs.readFileSync(path.join(h.taskDir(t.workspace, t.id), 'artifacts', 'hello.output.1.log'), 'utf8');
      assert.equal(output, `quick ${t.id}\n`);
    }
  }

  test('20 concurrent CLI processes: distinct ids, all complete', async () => {
    const runs = Array.from({ length: 20 }, (_, i) => h.cli(['start', 'quick', '-w', WORKSPACES[i % WORKSPACES.length]!, '-d', `cli ${i}`, '--json']));
    const results = await Promise.all(runs);
    const tasks = results.map((r) => parseStdout<TaskRecord>(expectExit(r, 0)));
    assert.deepEqual(tasks.map((t) => t.description).sort(), Array.from({ length: 20 }, (_, i) => `cli ${i}`).sort());
    await checkCompleted(tasks);
  });

  test('20 concurrent socket clients: distinct ids, all complete', async () => {
    const clients = await Promise.all(Array.from({ length: 20 }, () => AtlasClient.connect(h.home)));
    try {
      const tasks = (await Promise.all(clients.map((c, i) => c.call('task.start', { template: 'quick', workspace: WORKSPACES[i % WORKSPACES.length]!, description: `socket ${i}` })))) as TaskRecord[];
      await checkCompleted(tasks);
    } finally {
      for (const c of clients) c.close();
    }
    const all = await h.json<Array<{ id: string; status: string }>>(['list', '--limit', '100']);
    assert.equal(all.length, 40);
    assert.equal(new Set(all.map((t) => t.id)).size, 40);
    assert.ok(all.every((t) => t.status === 'completed'));
    await h.stopDaemon();
  });
});
