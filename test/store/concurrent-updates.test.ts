// Read-modify-write updates of one task from many writers at once: real processes released
// together at a barrier, and concurrent calls in one process. No update may be lost.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { decodeTask } from '../../src/store/task-codec.js';
import { Fixture, addTask, addWorkspace, reap, tempHome } from './helpers.js';

test('4 processes x 25 updates of one task: none is lost', { timeout: 90_000 }, async () => {
  const h = await tempHome();
  const fixtures: Fixture[] = [];
  try {
    await addWorkspace(h.store, 'alpha');
    const task = await addTask(h.store, 'alpha', { inputs: { counter: '0' } });
    const WORKERS = 4;
    const EACH = 25;
    for (let w = 0; w < WORKERS; w++) fixtures.push(new Fixture('store-updater', [h.home, task.id, String(EACH), `w${w}`]));
    await Promise.all(fixtures.map((f) => f.waitForLine('ready')));
    for (const f of fixtures) f.send('go');
    await Promise.all(fixtures.map((f) => f.succeeded(60_000)));

    const file = h.store.paths.taskFile('alpha', task.id);
    const final = decodeTask(fs.readFileSync(file, 'utf8'), file);
    assert.equal(final.inputs['counter'], String(WORKERS * EACH), 'every increment landed');
    for (let w = 0; w < WORKERS; w++) assert.equal(final.inputs[`by_w${w}`], String(EACH), `worker ${w} saw all its own updates`);
    assert.equal(final.revision, 1 + WORKERS * EACH, 'one revision per update');
    const bak = decodeTask(fs.readFileSync(h.store.paths.taskBackup('alpha', task.id), 'utf8'), file);
    assert.equal(bak.revision, final.revision - 1);
    assert.equal(bak.inputs['counter'], String(WORKERS * EACH - 1));
    // No lock or temp file is left behind.
    assert.deepEqual(fs.readdirSync(h.store.paths.taskDir('alpha', task.id)).sort(), ['task.json', 'task.json.bak']);
  } finally {
    await reap(fixtures);
    await h.cleanup();
  }
});

test('30 concurrent updates in one process: none is lost', { timeout: 30_000 }, async () => {
  const h = await tempHome();
  try {
    await addWorkspace(h.store, 'alpha');
    const task = await addTask(h.store, 'alpha', { inputs: { counter: '0' } });
    await Promise.all(
      Array.from({ length: 30 }, () =>
        h.store.tasks.updateTask(task.id, (t) => {
          t.inputs['counter'] = String(Number(t.inputs['counter']) + 1);
        }),
      ),
    );
    const final = await h.store.tasks.getTask(task.id);
    assert.equal(final.inputs['counter'], '30');
    assert.equal(final.revision, 31);
  } finally {
    await h.cleanup();
  }
});
