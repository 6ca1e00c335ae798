// Names and task ids are checked before any path is built: a bad one is refused with
// 'invalid_name' and nothing is created anywhere, inside the home or above it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isValidName } from '../../src/store/names.js';
import { addTask, addWorkspace, expectCode, makeTask, snapshotTree, tempHome } from './helpers.js';

const BAD_NAMES = [
  '../x',
  '../../x',
  '../../../escaped',
  '..',
  '.',
  'A',
  'Alpha',
  '',
  'a/b',
  '/abs',
  '.hidden',
  '-dash',
  'a'.repeat(65),
  'nul\0byte',
  'has space',
  ' lead',
  'tab\tname',
  'new\nline',
  'a..b',
  'ünï',
];

const BAD_IDS = [
  '',
  'task',
  'task-1',
  'task-2026112-101500',
  'TASK-20261121-101500',
  'task-20261121-101500-',
  'task-20261121-101500/../../x',
  '../task-20261121-101500',
  'task-20261121-101500\0',
  'task-20261121-101500 ',
  'task-20261121-1015000',
];

test('valid names are accepted up to 64 characters', { timeout: 30_000 }, async () => {
  const h = await tempHome();
  try {
    for (const name of ['a', '0', 'a'.repeat(64), 'my-ws_2.0', 'x.y']) assert.ok(isValidName(name), name);
    await addWorkspace(h.store, 'a'.repeat(64));
    assert.equal((await h.store.workspaces.get('a'.repeat(64))).name, 'a'.repeat(64));
  } finally {
    await h.cleanup();
  }
});

test('bad workspace, artifact and template names are refused before anything is written', { timeout: 30_000 }, async () => {
  const h = await tempHome();
  try {
    await addWorkspace(h.store, 'alpha');
    const task = await addTask(h.store, 'alpha');
    const before = snapshotTree(h.root);
    const arts = h.store.artifacts('alpha', task.id);
    for (const bad of BAD_NAMES) {
      const attempts: Array<[string, () => unknown]> = [
        ['workspaces.create', () => addWorkspace(h.store, bad)],
        ['workspaces.get', () => h.store.workspaces.get(bad)],
        ['workspaces.remove', () => h.store.workspaces.remove(bad, true)],
        ['tasks.createTask', async () => h.store.tasks.createTask(makeTask(await h.store.tasks.newTaskId(), bad))],
        ['tasks.listTasks', () => h.store.tasks.listTasks({ workspace: bad })],
        ['tasks.readTaskAt', () => h.store.tasks.readTaskAt(bad, task.id)],
        ['store.artifacts', () => h.store.artifacts(bad, task.id)],
        ['store.appendLog', () => h.store.appendLog(bad, task.id, { event: 'x' })],
        ['artifacts.save', () => arts.save(bad, 'data')],
        ['artifacts.saveVersioned', () => arts.saveVersioned(bad, '.json', 'data')],
        ['artifacts.get', () => arts.get(bad)],
        ['paths.userTemplate', () => h.store.paths.userTemplate(bad)],
      ];
      for (const [what, attempt] of attempts) {
        const err = await expectCode(attempt, 'invalid_name').catch((e: Error) => {
          throw new Error(`${what}(${JSON.stringify(bad)}): ${e.message}`);
        });
        assert.match(err.message, /invalid .* name/, `${what} says what was wrong`);
      }
      // An extension cannot smuggle a path in either.
      await expectCode(() => arts.saveVersioned('validation', `/../../${bad}`, 'data'), 'invalid_name');
    }
    assert.deepEqual(snapshotTree(h.root), before, 'no file or directory was created or removed');
  } finally {
    await h.cleanup();
  }
});

test('bad task ids are refused before anything is written', { timeout: 30_000 }, async () => {
  const h = await tempHome();
  try {
    await addWorkspace(h.store, 'alpha');
    await addTask(h.store, 'alpha');
    const before = snapshotTree(h.root);
    for (const bad of BAD_IDS) {
      const attempts: Array<[string, () => unknown]> = [
        ['getTask', () => h.store.tasks.getTask(bad)],
        ['updateTask', () => h.store.tasks.updateTask(bad, () => undefined)],
        ['deleteTask', () => h.store.tasks.deleteTask(bad)],
        ['createTask', () => h.store.tasks.createTask(makeTask(bad, 'alpha'))],
        ['checkpoint', () => h.store.tasks.checkpoint(makeTask(bad, 'alpha'))],
        ['acquireLease', () => h.store.tasks.acquireLease(bad)],
        ['readTaskAt', () => h.store.tasks.readTaskAt('alpha', bad)],
        ['sweep', () => h.store.tasks.sweep('alpha', bad)],
        ['appendLog', () => h.store.appendLog('alpha', bad, { event: 'x' })],
        ['readLog', () => h.store.readLog('alpha', bad)],
        ['artifacts', () => h.store.artifacts('alpha', bad)],
      ];
      for (const [what, attempt] of attempts) {
        const err = await expectCode(attempt, 'invalid_name').catch((e: Error) => {
          throw new Error(`${what}(${JSON.stringify(bad)}): ${e.message}`);
        });
        assert.match(err.message, /invalid task id/);
      }
    }
    assert.deepEqual(snapshotTree(h.root), before, 'no file or directory was created or removed');
  } finally {
    await h.cleanup();
  }
});
