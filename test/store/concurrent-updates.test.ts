// Read-modify-write updates of one task from many writers at once: real processes released
// together at a barrier, and concurrent calls in one process. No update may be lost.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { faults } from '../../src/store/atomic.js';
import { decodeTask, encodeTask } from '../../src/store/task-codec.js';
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

test('an edit by another program that lands right after a leased checkpoint is detected, never overwritten', async () => {
  const h = await tempHome();
  try {
    await addWorkspace(h.store, 'alpha');
    const task = await addTask(h.store, 'alpha');
    await h.store.tasks.acquireLease(task.id);
    const runner = await h.store.tasks.getTask(task.id);
    const file = h.store.paths.taskFile('alpha', task.id);
    // Another program replaces task.json the instant after the runner's rename, before the
    // runner has looked at what it wrote.
    faults.afterRename = (f) => {
      if (f !== file) return;
      faults.afterRename = undefined;
      const edited = decodeTask(fs.readFileSync(f, 'utf8'), f);
      edited.revision += 1;
      edited.description = 'edited by another program';
      fs.writeFileSync(`${f}.edit`, encodeTask(edited));
      fs.renameSync(`${f}.edit`, f);
    };
    runner.inputs['step'] = '1';
    await h.store.tasks.checkpoint(runner);
    runner.inputs['step'] = '2';
    await assert.rejects(h.store.tasks.checkpoint(runner), (err: Error & { code?: string }) => err.code === 'conflict', 'the next checkpoint sees the edit');
    assert.equal(decodeTask(fs.readFileSync(file, 'utf8'), file).description, 'edited by another program', 'the edit is still there');
    await h.store.tasks.releaseLease(task.id);
  } finally {
    faults.afterRename = undefined;
    await h.cleanup();
  }
});
