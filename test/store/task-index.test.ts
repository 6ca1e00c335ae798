// The task index answers list queries from memory, but the files stay the source of truth:
// tasks copied in, removed or rewritten behind its back must show up as they are on disk,
// and a saved snapshot lets a restart skip reading unchanged tasks.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { encodeTask } from '../../src/store/task-codec.js';
import { TaskIndex } from '../../src/store/task-index.js';
import { addTask, addWorkspace, makeTask, tempHome } from './helpers.js';

const at = (s: number) => new Date(Date.UTC(2026, 10, 21, 10, 0, s));

test('the index lists tasks newest first and filters like the store', async () => {
  const h = await tempHome();
  try {
    await addWorkspace(h.store, 'a');
    await addWorkspace(h.store, 'b');
    await addTask(h.store, 'a', { status: 'completed' }, at(1));
    await addTask(h.store, 'b', { status: 'failed', template: 'deploy' }, at(2));
    await addTask(h.store, 'a', { status: 'failed' }, at(3));
    const index = new TaskIndex(h.store.paths);
    const scan = await index.load();
    assert.equal(scan.tasks, 3);
    assert.deepEqual(index.list().map((t) => t.id), ['task-20261121-100003', 'task-20261121-100002', 'task-20261121-100001']);
    assert.deepEqual(index.list({ status: 'failed' }).map((t) => t.id), ['task-20261121-100003', 'task-20261121-100002']);
    assert.deepEqual(index.list({ workspace: 'a', limit: 1 }).map((t) => t.id), ['task-20261121-100003']);
    assert.deepEqual(index.list({ template: 'deploy' }).map((t) => t.id), ['task-20261121-100002']);
    assert.deepEqual(index.counts(), { completed: 1, failed: 2 });
  } finally {
    await h.cleanup();
  }
});

test('task directories copied in or removed behind its back are seen at the next query', async () => {
  const h = await tempHome();
  const other = await tempHome();
  try {
    await addWorkspace(h.store, 'a');
    await addTask(h.store, 'a', { status: 'completed' }, at(1));
    const index = new TaskIndex(h.store.paths);
    await index.load();
    assert.equal(index.list().length, 1);

    // A backup made elsewhere, restored by copying its task directory into the home.
    await addWorkspace(other.store, 'a');
    const restored = await addTask(other.store, 'a', { status: 'failed' }, at(9));
    fs.cpSync(other.store.paths.taskDir('a', restored.id), h.store.paths.taskDir('a', restored.id), { recursive: true });
    assert.deepEqual(index.list().map((t) => [t.id, t.status]), [
      [restored.id, 'failed'],
      ['task-20261121-100001', 'completed'],
    ]);

    fs.rmSync(h.store.paths.taskDir('a', 'task-20261121-100001'), { recursive: true });
    assert.deepEqual(index.list().map((t) => t.id), [restored.id]);
  } finally {
    await h.cleanup();
    await other.cleanup();
  }
});

test('a task.json rewritten in place is re-read before it is shown', async () => {
  const h = await tempHome();
  try {
    await addWorkspace(h.store, 'a');
    const t = await addTask(h.store, 'a', { status: 'failed' }, at(1));
    const index = new TaskIndex(h.store.paths);
    await index.load();
    assert.equal(index.list()[0]?.status, 'failed');
    // Overwrite the file itself (same directory, same inode possible): no directory change.
    fs.writeFileSync(h.store.paths.taskFile('a', t.id), encodeTask({ ...t, status: 'completed', description: 'restored' }));
    const [shown] = index.list();
    assert.equal(shown?.status, 'completed');
    assert.equal(shown?.description, 'restored');
    // A status filter learns of the change through the periodic revalidation.
    fs.writeFileSync(h.store.paths.taskFile('a', t.id), encodeTask({ ...t, status: 'abandoned', description: 'restored again, longer' }));
    assert.equal(index.revalidateAll(), 1);
    assert.deepEqual(index.list({ status: 'abandoned' }).map((x) => x.id), [t.id]);
  } finally {
    await h.cleanup();
  }
});

test('a saved snapshot lets the next load skip reading unchanged tasks', async () => {
  const h = await tempHome();
  try {
    await addWorkspace(h.store, 'a');
    const ids: string[] = [];
    for (let i = 1; i <= 20; i++) ids.push((await addTask(h.store, 'a', { status: 'completed' }, at(i))).id);
    const first = new TaskIndex(h.store.paths);
    assert.equal((await first.load()).read, 20);
    await first.save();

    const second = new TaskIndex(h.store.paths);
    const scan = await second.load();
    assert.equal(scan.tasks, 20);
    assert.equal(scan.read, 0, 'nothing changed, so nothing is read');
    assert.deepEqual(second.list().map((t) => t.id), [...ids].reverse());

    // One task changes while no index is running: only it is read at the next load.
    const changed = await h.store.tasks.getTask(ids[4]!);
    await h.store.tasks.updateTask(changed.id, (t) => void (t.status = 'abandoned'));
    const third = new TaskIndex(h.store.paths);
    const scan3 = await third.load();
    assert.equal(scan3.read, 1);
    assert.equal(third.list({ status: 'abandoned' })[0]?.id, changed.id);

    // A damaged snapshot only means a full scan.
    fs.writeFileSync(first.snapshotFile, '{ not json');
    const fourth = new TaskIndex(h.store.paths);
    assert.equal((await fourth.load()).read, 20);
  } finally {
    await h.cleanup();
  }
});

test('an unreadable task.json is reported, and listed from its backup while one is valid', async () => {
  const h = await tempHome();
  try {
    await addWorkspace(h.store, 'a');
    const t = await addTask(h.store, 'a', { status: 'pending' }, at(1));
    await h.store.tasks.updateTask(t.id, (x) => void (x.status = 'running'));
    fs.writeFileSync(h.store.paths.taskFile('a', t.id), '{"torn');
    const lonely = makeTask('task-20261121-100005', 'a', { status: 'failed' });
    fs.mkdirSync(h.store.paths.taskDir('a', lonely.id));
    fs.writeFileSync(h.store.paths.taskFile('a', lonely.id), '');
    const index = new TaskIndex(h.store.paths);
    const scan = await index.load();
    assert.deepEqual(scan.unreadable.map((u) => u.id).sort(), [t.id, lonely.id].sort());
    // The one with a valid backup is listed as its previous checkpoint says; the other is not listed.
    assert.deepEqual(index.list().map((x) => [x.id, x.status]), [[t.id, 'pending']]);
  } finally {
    await h.cleanup();
  }
});
