// The daemon answers list queries from an index, but the files stay the source of truth: a
// user who restores a backup by copying task directories into the home, or deletes one,
// sees that in the very next `atlas list`; and a restart lists the same tasks.
import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TaskRecord, TaskSummary } from '../../src/store/records.js';
import { TestHome } from '../helpers/daemon.js';

describe('the task index follows the disk', () => {
  let h: TestHome;
  let backup: TestHome;

  before(async () => {
    h = new TestHome({ templates: ['quick'] });
    backup = new TestHome({ templates: ['quick'] });
    await h.startDaemon();
    await h.createWorkspaces(['ws']);
  });
  after(async () => {
    await h.dispose();
    await backup.dispose();
  });

  test('task directories copied in from a backup are listed; removed ones vanish; a restart agrees', async () => {
    const own = await h.json<TaskRecord>(['start', 'quick', '-w', 'ws', '--wait']);
    assert.equal(own.status, 'completed');

    // A backup taken from another home with the same workspace name. Ids have one-second
    // resolution: let the clock pass the second of the first task so the ids differ.
    while (new Date().toISOString().slice(0, 19) === own.created_at.slice(0, 19)) await sleep(20);
    await backup.startDaemon();
    await backup.createWorkspaces(['ws']);
    const saved = await backup.json<TaskRecord>(['start', 'quick', '-w', 'ws', '--wait']);
    await backup.stopDaemon();
    assert.notEqual(saved.id, own.id);
    fs.cpSync(backup.taskDir('ws', saved.id), h.taskDir('ws', saved.id), { recursive: true });

    const listed = await h.json<TaskSummary[]>(['list']);
    assert.deepEqual(listed.map((t) => t.id).sort(), [own.id, saved.id].sort());
    assert.equal((await h.json<TaskRecord>(['show', saved.id])).status, 'completed');
    assert.equal((await h.json<TaskSummary[]>(['list', '--status', 'completed'])).length, 2);

    fs.rmSync(h.taskDir('ws', own.id), { recursive: true });
    assert.deepEqual((await h.json<TaskSummary[]>(['list'])).map((t) => t.id), [saved.id]);

    await h.stopDaemon();
    await h.startDaemon();
    assert.deepEqual((await h.json<TaskSummary[]>(['list'])).map((t) => t.id), [saved.id]);
    assert.ok(fs.existsSync(path.join(h.home, 'cache', 'task-index.json')), 'the index snapshot is kept in the home');
  });
});
