// Damaged task.json files built directly on disk: corrupted, empty, truncated, missing, and
// written by a newer atlas. Reads fall back to the backup when it is good, name the file when
// nothing is, listing skips the bad task with a warning, and a newer file is never rewritten.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import type { TaskRecord } from '../../src/store/records.js';
import { FsStore } from '../../src/store/fs-store.js';
import { addTask, addWorkspace, expectCode, tempHome, type TempHome } from './helpers.js';

interface Warning {
  message: string;
  details: Record<string, unknown> | undefined;
}

async function setup(): Promise<{ h: TempHome; warnings: Warning[]; task: TaskRecord; others: TaskRecord[] }> {
  const warnings: Warning[] = [];
  const h = await tempHome({ warn: (message, details) => warnings.push({ message, details }) });
  await addWorkspace(h.store, 'alpha');
  await addWorkspace(h.store, 'beta');
  const task = await addTask(h.store, 'alpha', { description: 'first' });
  task.description = 'second';
  await h.store.tasks.checkpoint(task); // revision 2
  task.description = 'third';
  await h.store.tasks.checkpoint(task); // revision 3; the backup holds revision 2
  const others = [await addTask(h.store, 'alpha'), await addTask(h.store, 'beta')];
  return { h, warnings, task, others };
}

const DAMAGE: Array<[string, (good: string) => string]> = [
  ['corrupted', (good) => good.replace(/"status"/, '"stat\u0000us":{{')],
  ['empty', () => ''],
  ['truncated', (good) => good.slice(0, Math.floor(good.length / 2))],
  ['not an object', () => '[1, 2, 3]\n'],
  ['missing a field', (good) => JSON.stringify({ ...JSON.parse(good), revision: 'three' })],
];

for (const [kind, damage] of DAMAGE) {
  test(`${kind} task.json: reads fall back to a good task.json.bak`, { timeout: 30_000 }, async () => {
    const { h, warnings, task } = await setup();
    try {
      const file = h.store.paths.taskFile('alpha', task.id);
      fs.writeFileSync(file, damage(fs.readFileSync(file, 'utf8')));
      const read = await h.store.tasks.readTask(task.id);
      assert.equal(read.source, 'backup');
      assert.equal(read.task.revision, 2);
      assert.equal(read.task.description, 'second');
      assert.equal((await h.store.tasks.getTask(task.id)).revision, 2);
      assert.ok(warnings.length >= 1, 'the fallback is reported');
      assert.ok(warnings.every((w) => w.message.includes(file) && w.message.includes('task.json.bak')), 'the warning names both files');
      // A fresh store (another process) falls back the same way.
      assert.equal((await new FsStore(h.home).tasks.readTask(task.id)).source, 'backup');
    } finally {
      await h.cleanup();
    }
  });

  test(`${kind} task.json with no good backup: 'corrupt' naming the file; list skips it with a warning`, { timeout: 30_000 }, async () => {
    const { h, warnings, task, others } = await setup();
    try {
      const file = h.store.paths.taskFile('alpha', task.id);
      const bak = h.store.paths.taskBackup('alpha', task.id);
      const damagedFile = damage(fs.readFileSync(file, 'utf8'));
      const damagedBak = damage(fs.readFileSync(bak, 'utf8'));
      fs.writeFileSync(file, damagedFile);
      fs.writeFileSync(bak, damagedBak);
      const err = await expectCode(() => h.store.tasks.getTask(task.id), 'corrupt');
      assert.ok(err.message.includes(file), `'${err.message}' names ${file}`);
      assert.match(err.message, /atlas doctor/, 'the message says what to do');

      const listed = await h.store.tasks.listTasks();
      assert.deepEqual(listed.map((t) => t.id).sort(), others.map((t) => t.id).sort(), 'the other tasks are still listed');
      const warned = warnings.find((w) => w.message.includes(task.id));
      assert.ok(warned, 'the skipped task was reported through the warn callback');
      assert.ok(warned.message.includes(file));
      // Damaged files are left for doctor to inspect, not deleted or rewritten by reads.
      assert.equal(fs.readFileSync(file, 'utf8'), damagedFile);
      assert.equal(fs.readFileSync(bak, 'utf8'), damagedBak);
    } finally {
      await h.cleanup();
    }
  });
}

test('missing task.json: reads fall back to the backup; with no backup either it is corrupt', { timeout: 30_000 }, async () => {
  const { h, task } = await setup();
  try {
    const file = h.store.paths.taskFile('alpha', task.id);
    fs.rmSync(file);
    const read = await h.store.tasks.readTask(task.id);
    assert.equal(read.source, 'backup');
    assert.equal(read.task.revision, 2);
    fs.rmSync(h.store.paths.taskBackup('alpha', task.id));
    const err = await expectCode(() => h.store.tasks.getTask(task.id), 'corrupt');
    assert.ok(err.message.includes(file));
  } finally {
    await h.cleanup();
  }
});

test('a checkpoint after a fallback to the backup repairs task.json', { timeout: 30_000 }, async () => {
  const { h, task } = await setup();
  try {
    const file = h.store.paths.taskFile('alpha', task.id);
    fs.writeFileSync(file, '{"trunc');
    const fresh = new FsStore(h.home);
    const { task: recovered, source } = await fresh.tasks.readTask(task.id);
    assert.equal(source, 'backup');
    recovered.description = 'repaired';
    await fresh.tasks.checkpoint(recovered);
    const read = await fresh.tasks.readTask(task.id);
    assert.equal(read.source, 'primary');
    assert.equal(read.task.description, 'repaired');
    assert.equal(read.task.revision, 3);
  } finally {
    await h.cleanup();
  }
});

test("schema_version '9.0': refused as unsupported_schema and never rewritten", { timeout: 30_000 }, async () => {
  const { h, warnings, task, others } = await setup();
  try {
    const file = h.store.paths.taskFile('alpha', task.id);
    const newer = JSON.stringify({ ...task, schema_version: '9.0', revision: 7, future_field: { x: 1 } }, null, 2);
    fs.writeFileSync(file, newer);
    const mtime = fs.statSync(file).mtimeMs;

    const err = await expectCode(() => h.store.tasks.getTask(task.id), 'unsupported_schema');
    assert.match(err.message, /9\.0/);
    assert.match(err.message, /upgrade atlas/);
    assert.ok(err.message.includes(file));
    // Not silently replaced by the older backup either.
    await expectCode(() => h.store.tasks.readTask(task.id), 'unsupported_schema');
    // No write path touches it: not an update, not a checkpoint from a writer that held the task before.
    await expectCode(() => h.store.tasks.updateTask(task.id, (t) => { t.description = 'clobber'; }), 'unsupported_schema');
    await expectCode(() => h.store.tasks.checkpoint(task), 'unsupported_schema');
    await expectCode(() => new FsStore(h.home).tasks.checkpoint({ ...task, revision: 7 }), 'unsupported_schema');
    const listed = await h.store.tasks.listTasks();
    assert.deepEqual(listed.map((t) => t.id).sort(), others.map((t) => t.id).sort());
    assert.ok(warnings.some((w) => w.message.includes(task.id) && w.message.includes('newer atlas')));

    assert.equal(fs.readFileSync(file, 'utf8'), newer, 'the newer file is byte-for-byte untouched');
    assert.equal(fs.statSync(file).mtimeMs, mtime);
    assert.equal(JSON.parse(fs.readFileSync(h.store.paths.taskBackup('alpha', task.id), 'utf8')).revision, 2, 'the backup was not rotated');
  } finally {
    await h.cleanup();
  }
});
