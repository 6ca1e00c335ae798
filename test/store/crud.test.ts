// Workspaces and tasks through the Store: create, read, update with revision checks, list
// with filters, delete; task ids; file modes; the backup checkpoint.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { decodeTask } from '../../src/store/task-codec.js';
import { FsStore } from '../../src/store/fs-store.js';
import { addTask, addWorkspace, expectCode, makeTask, mode, tempHome } from './helpers.js';

const T0 = new Date('2026-11-21T10:15:00.123Z');

test('workspaces: create, get, list, refuse a duplicate, remove', { timeout: 30_000 }, async () => {
  const h = await tempHome();
  try {
    await addWorkspace(h.store, 'beta', h.root);
    await addWorkspace(h.store, 'alpha', h.root);
    const got = await h.store.workspaces.get('alpha');
    assert.equal(got.name, 'alpha');
    assert.equal(got.path, h.root);
    assert.equal(got.schema_version, '1.0');
    assert.deepEqual((await h.store.workspaces.list()).map((w) => w.name), ['alpha', 'beta']);
    await expectCode(() => addWorkspace(h.store, 'alpha'), 'already_exists');
    await expectCode(() => h.store.workspaces.get('gamma'), 'not_found');
    await h.store.workspaces.remove('beta', true);
    assert.deepEqual((await h.store.workspaces.list()).map((w) => w.name), ['alpha']);
    await expectCode(() => h.store.workspaces.get('beta'), 'not_found');
  } finally {
    await h.cleanup();
  }
});

test('task ids: task-YYYYMMDD-HHMMSS in UTC, suffixed -2, -3 when taken, unique across workspaces', { timeout: 30_000 }, async () => {
  const h = await tempHome();
  try {
    await addWorkspace(h.store, 'alpha');
    await addWorkspace(h.store, 'beta');
    const tasks = h.store.tasks;
    const id1 = await tasks.newTaskId(T0);
    assert.equal(id1, 'task-20261121-101500');
    await tasks.createTask(makeTask(id1, 'alpha'));
    const id2 = await tasks.newTaskId(T0);
    assert.equal(id2, 'task-20261121-101500-2');
    await tasks.createTask(makeTask(id2, 'beta'));
    // An id taken in another workspace is taken for the whole home.
    const id3 = await tasks.newTaskId(T0);
    assert.equal(id3, 'task-20261121-101500-3');
    // A reserved but not yet created id is not handed out twice.
    const id4 = await tasks.newTaskId(T0);
    assert.equal(id4, 'task-20261121-101500-4');
    await tasks.createTask(makeTask(id3, 'beta'));
    await tasks.createTask(makeTask(id4, 'alpha'));

    // Another process (a fresh store on the same home) sees the ids on disk.
    const other = new FsStore(h.home);
    assert.equal(await other.tasks.newTaskId(T0), 'task-20261121-101500-5');
    // and cannot create a second task with an id that another workspace already holds.
    await expectCode(() => other.tasks.createTask(makeTask(id1, 'beta')), 'already_exists');
    await expectCode(() => other.tasks.createTask(makeTask(id2, 'beta')), 'already_exists');
    assert.equal(fs.existsSync(h.store.paths.taskDir('beta', id1)), false, 'no duplicate task directory was made');
    assert.equal((await other.tasks.getTask(id1)).workspace, 'alpha');

    // The suffix sorts numerically: -10 is newer than -9.
    for (let n = 5; n <= 10; n++) await tasks.createTask(makeTask(await tasks.newTaskId(T0), 'alpha'));
    const ids = (await tasks.listTaskIds()).map((t) => t.id);
    assert.deepEqual(ids.slice(0, 3), ['task-20261121-101500-10', 'task-20261121-101500-9', 'task-20261121-101500-8']);
    assert.equal(ids.at(-1), 'task-20261121-101500');
    for (const id of ids) assert.match(id, /^task-\d{8}-\d{6}(-\d+)?$/);
  } finally {
    await h.cleanup();
  }
});

test('tasks: create, get, update with revision checks, backup of the previous checkpoint', { timeout: 30_000 }, async () => {
  const h = await tempHome();
  try {
    await addWorkspace(h.store, 'alpha');
    const tasks = h.store.tasks;
    const created = await addTask(h.store, 'alpha', { inputs: { issue: '42' }, priority: 3 }, T0);
    assert.equal(created.revision, 1);
    const file = h.store.paths.taskFile('alpha', created.id);
    const bak = h.store.paths.taskBackup('alpha', created.id);
    assert.equal(fs.existsSync(bak), false, 'a new task has no previous checkpoint');

    const got = await tasks.getTask(created.id);
    assert.deepEqual(got, created);
    assert.equal(got.schema_version, '1.0');
    // What other programs read is exactly what getTask returns.
    assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), got);

    const updated = await tasks.updateTask(created.id, (t) => {
      t.status = 'running';
      t.inputs['issue'] = '43';
    });
    assert.equal(updated.revision, 2);
    const reread = await tasks.getTask(created.id);
    assert.equal(reread.revision, 2);
    assert.equal(reread.status, 'running');
    assert.equal(reread.inputs['issue'], '43');
    assert.ok(reread.updated_at >= created.updated_at);
    // task.json.bak holds the previous checkpoint, byte for byte.
    const bakTask = decodeTask(fs.readFileSync(bak, 'utf8'), bak);
    assert.equal(bakTask.revision, 1);
    assert.equal(bakTask.inputs['issue'], '42');

    // Two writers start from the same revision: the first wins, the second gets a conflict.
    const a = await tasks.getTask(created.id);
    const b = await tasks.getTask(created.id);
    a.description = 'from A';
    await tasks.checkpoint(a);
    assert.equal(a.revision, 3);
    b.description = 'from B';
    const err = await expectCode(() => tasks.checkpoint(b), 'conflict');
    assert.match(err.message, /revision 3/);
    assert.equal(b.revision, 2, 'a refused writer keeps its revision');
    const onDisk = decodeTask(fs.readFileSync(file, 'utf8'), file);
    assert.equal(onDisk.description, 'from A');
    assert.equal(onDisk.revision, 3);
    assert.equal(decodeTask(fs.readFileSync(bak, 'utf8'), bak).revision, 2);

    // The same across processes: a second store holding revision 3 loses to a write it never saw.
    const other = new FsStore(h.home);
    const c = await other.tasks.getTask(created.id);
    await tasks.checkpoint(a); // revision 4
    c.description = 'from C';
    await expectCode(() => other.tasks.checkpoint(c), 'conflict');
    // After reloading it can write.
    const c2 = await other.tasks.getTask(created.id);
    c2.description = 'from C';
    await other.tasks.checkpoint(c2);
    assert.equal(c2.revision, 5);
    // And the first store notices that write too.
    a.description = 'stale A';
    await expectCode(() => tasks.checkpoint(a), 'conflict');

    // Every checkpoint moves the previous one to the backup: revision - 1.
    for (let i = 0; i < 3; i++) {
      const before = fs.readFileSync(file);
      await tasks.updateTask(created.id, (t) => {
        t.current_step = i;
      });
      const now = decodeTask(fs.readFileSync(file, 'utf8'), file);
      assert.equal(decodeTask(fs.readFileSync(bak, 'utf8'), bak).revision, now.revision - 1);
      assert.deepEqual(fs.readFileSync(bak), before);
    }
    await expectCode(() => tasks.getTask('task-20261121-999999'), 'not_found');
    await expectCode(() => tasks.updateTask('task-20261121-999999', () => undefined), 'not_found');
  } finally {
    await h.cleanup();
  }
});

test('tasks: list newest first with status, workspace, template filters and a limit', { timeout: 30_000 }, async () => {
  const h = await tempHome();
  try {
    await addWorkspace(h.store, 'alpha');
    await addWorkspace(h.store, 'beta');
    const at = (s: string) => new Date(`2026-11-21T${s}Z`);
    const t1 = await addTask(h.store, 'alpha', { template: 'build' }, at('09:00:00'));
    const t2 = await addTask(h.store, 'beta', { template: 'review' }, at('10:00:00'));
    const t3 = await addTask(h.store, 'alpha', { template: 'review', status: 'completed' }, at('10:00:00'));
    const t4 = await addTask(h.store, 'beta', { template: 'build', status: 'failed' }, at('11:30:00'));
    const t5 = await addTask(h.store, 'alpha', { template: 'build', status: 'running' }, at('08:00:00'));
    const ids = (list: { id: string }[]) => list.map((t) => t.id);
    const tasks = h.store.tasks;

    assert.deepEqual(ids(await tasks.listTasks()), [t4.id, t3.id, t2.id, t1.id, t5.id]);
    assert.equal(t3.id, `${t2.id}-2`);
    assert.deepEqual(ids(await tasks.listTasks({ status: 'pending' })), [t2.id, t1.id]);
    assert.deepEqual(ids(await tasks.listTasks({ status: ['completed', 'failed'] })), [t4.id, t3.id]);
    assert.deepEqual(ids(await tasks.listTasks({ workspace: 'alpha' })), [t3.id, t1.id, t5.id]);
    assert.deepEqual(ids(await tasks.listTasks({ template: 'build' })), [t4.id, t1.id, t5.id]);
    assert.deepEqual(ids(await tasks.listTasks({ workspace: 'beta', template: 'build' })), [t4.id]);
    assert.deepEqual(ids(await tasks.listTasks({ limit: 2 })), [t4.id, t3.id]);
    assert.deepEqual(ids(await tasks.listTasks({ template: 'build', limit: 2 })), [t4.id, t1.id]);
    assert.deepEqual(ids(await tasks.listTasks({ workspace: 'alpha', status: 'running', limit: 5 })), [t5.id]);
    assert.deepEqual(await tasks.listTasks({ limit: 0 }), []);
    assert.deepEqual(await tasks.listTasks({ workspace: 'nothing-here' }), []);

    // An update shows up in the filters.
    await tasks.updateTask(t1.id, (t) => {
      t.status = 'completed';
    });
    assert.deepEqual(ids(await tasks.listTasks({ status: 'completed' })), [t3.id, t1.id]);
  } finally {
    await h.cleanup();
  }
});

test('tasks: delete removes the task, its log and artifacts; later writes get not_found', { timeout: 30_000 }, async () => {
  const h = await tempHome();
  try {
    await addWorkspace(h.store, 'alpha');
    const keep = await addTask(h.store, 'alpha', {}, T0);
    const doomed = await addTask(h.store, 'alpha', {}, T0);
    h.store.appendLog('alpha', doomed.id, { event: 'task.created' });
    await h.store.artifacts('alpha', doomed.id).saveVersioned('validation', '.json', '{}');
    const held = await h.store.tasks.getTask(doomed.id);

    await h.store.tasks.deleteTask(doomed.id);
    assert.equal(fs.existsSync(h.store.paths.taskDir('alpha', doomed.id)), false);
    assert.deepEqual(fs.readdirSync(h.store.paths.tasksDir('alpha')), [keep.id], 'nothing is left behind');
    await expectCode(() => h.store.tasks.getTask(doomed.id), 'not_found');
    await expectCode(() => h.store.tasks.updateTask(doomed.id, () => undefined), 'not_found');
    await expectCode(() => h.store.tasks.deleteTask(doomed.id), 'not_found');
    // A writer still holding the deleted task is told so, not given a raw filesystem error.
    await expectCode(() => h.store.tasks.checkpoint(held), 'not_found');
    assert.equal(fs.existsSync(h.store.paths.taskDir('alpha', doomed.id)), false, 'the checkpoint did not resurrect it');
    assert.deepEqual((await h.store.tasks.listTasks()).map((t) => t.id), [keep.id]);
    assert.equal((await h.store.tasks.getTask(keep.id)).revision, 1);
  } finally {
    await h.cleanup();
  }
});

test('files are mode 0600 and directories 0700', { timeout: 30_000 }, async () => {
  const h = await tempHome();
  try {
    await addWorkspace(h.store, 'alpha');
    const task = await addTask(h.store, 'alpha');
    await h.store.tasks.updateTask(task.id, (t) => {
      t.status = 'running';
    });
    h.store.appendLog('alpha', task.id, { event: 'step.started', step: 'compile' });
    await h.store.syncLog('alpha', task.id);
    await h.store.artifacts('alpha', task.id).saveVersioned('validation', '.json', '{}');
    await h.store.artifacts('alpha', task.id).save('answer.md', '# done\n');

    const seen = { files: 0, dirs: 0 };
    (function walk(dir: string) {
      assert.equal(mode(dir).toString(8), '700', `${dir} is a directory with mode 0700`);
      seen.dirs++;
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else {
          assert.equal(mode(p).toString(8), '600', `${p} is a file with mode 0600`);
          seen.files++;
        }
      }
    })(h.home);
    // workspace.json, task.json, task.json.bak, task.log and two artifacts.
    assert.equal(seen.files, 6);
    assert.ok(seen.dirs >= 6);
  } finally {
    await h.cleanup();
  }
});
