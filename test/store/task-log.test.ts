// task.log framing and file-descriptor bounds: torn and garbage lines are skipped and never
// swallow the next record; idle logs are closed and at most maxOpen stay open, so writing
// hundreds of task logs never holds hundreds of descriptors.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { TaskLogs, readLog } from '../../src/store/task-log.js';
import { addTask, addWorkspace, tempHome, until } from './helpers.js';

function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

test('records round-trip with level, time and fields; a missing log reads as empty', { timeout: 30_000 }, async () => {
  const h = await tempHome();
  try {
    await addWorkspace(h.store, 'alpha');
    const task = await addTask(h.store, 'alpha');
    assert.deepEqual(await h.store.readLog('alpha', task.id), { records: [], skipped: [] });
    h.store.appendLog('alpha', task.id, { event: 'task.started', template: 'build' });
    h.store.appendLog('alpha', task.id, { event: 'step.output', level: 'warn', step: 'compile', line: 'héllo "quoted"\nnext' });
    h.store.appendLog('alpha', task.id, { event: 'step.failed', level: 'error', step: 'compile', exit_code: 2 });
    await h.store.syncLog('alpha', task.id);
    const { records, skipped } = await h.store.readLog('alpha', task.id);
    assert.deepEqual(skipped, []);
    assert.deepEqual(records.map((r) => [r.event, r.level]), [['task.started', 'info'], ['step.output', 'warn'], ['step.failed', 'error']]);
    assert.equal(records[1]?.['line'], 'héllo "quoted"\nnext', 'a newline in a field stays inside its record');
    assert.equal(records[2]?.['exit_code'], 2);
    for (const r of records) assert.match(String(r.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const text = fs.readFileSync(h.store.paths.taskLog('alpha', task.id), 'utf8');
    assert.equal(text.split('\n').length, 4, 'one line per record');
    const failed = await h.store.readLog('alpha', task.id, (r) => r.level === 'error');
    assert.deepEqual(failed.records.map((r) => r.event), ['step.failed']);
  } finally {
    await h.cleanup();
  }
});

test('a torn last line is skipped, and the next append starts a new line', { timeout: 30_000 }, async () => {
  const h = await tempHome();
  try {
    await addWorkspace(h.store, 'alpha');
    const task = await addTask(h.store, 'alpha');
    const file = h.store.paths.taskLog('alpha', task.id);
    for (let i = 0; i < 3; i++) h.store.appendLog('alpha', task.id, { event: 'step.output', n: i });
    h.store.logs.closeAll();
    // A writer killed in the middle of a record.
    fs.appendFileSync(file, '{"level":"info","time":"2026-11-21T10:15:00.000Z","event":"step.out');

    const torn = await readLog(file);
    assert.deepEqual(torn.records.map((r) => r['n']), [0, 1, 2]);
    assert.deepEqual(torn.skipped, [4]);

    // A new writer (after a restart) appends: its record is whole and readable.
    const logs = new TaskLogs();
    try {
      logs.append(file, { event: 'task.recovered' });
      logs.append(file, { event: 'step.output', n: 3 });
    } finally {
      logs.closeAll();
    }
    const after = await readLog(file);
    assert.deepEqual(after.records.map((r) => r.event), ['step.output', 'step.output', 'step.output', 'task.recovered', 'step.output']);
    assert.deepEqual(after.skipped, [4], 'only the torn record is lost');
    assert.ok(fs.readFileSync(file, 'utf8').endsWith('\n'));
  } finally {
    await h.cleanup();
  }
});

test('garbage lines are skipped and reported; the records around them survive', { timeout: 30_000 }, async () => {
  const h = await tempHome();
  try {
    await addWorkspace(h.store, 'alpha');
    const task = await addTask(h.store, 'alpha');
    const file = h.store.paths.taskLog('alpha', task.id);
    h.store.appendLog('alpha', task.id, { event: 'a' });
    h.store.logs.closeAll();
    fs.appendFileSync(file, 'not json at all\n[1,2,3]\n{"no_event":true}\n\n"just a string"\n{"event":42}\n\u0000\u0000\u0000\n');
    h.store.appendLog('alpha', task.id, { event: 'b' });
    const { records, skipped } = await readLog(file);
    assert.deepEqual(records.map((r) => r.event), ['a', 'b']);
    // Line 5 is empty: not a record, not an error either.
    assert.deepEqual(skipped, [2, 3, 4, 6, 7, 8]);
  } finally {
    await h.cleanup();
  }
});

test('500 task logs: at most maxOpen descriptors are open, and none lose a record', { timeout: 60_000 }, async () => {
  const h = await tempHome();
  const logs = new TaskLogs({ maxOpen: 16, idleMs: 60_000 });
  try {
    const dir = path.join(h.root, 'logs');
    fs.mkdirSync(dir, { mode: 0o700 });
    const files = Array.from({ length: 500 }, (_, i) => path.join(dir, `task-${i}.log`));
    const baseline = openFds();
    let maxOpen = 0;
    for (const [i, f] of files.entries()) {
      logs.append(f, { event: 'task.created', i });
      // Revisit an older log now and then, so evicted logs get reopened.
      if (i >= 40) logs.append(files[i - 40]!, { event: 'task.touched', i });
      maxOpen = Math.max(maxOpen, logs.openCount);
      assert.ok(openFds() <= baseline + 16, `at most 16 log descriptors (after ${i + 1} logs: ${openFds() - baseline})`);
    }
    assert.equal(maxOpen, 16);
    logs.closeAll();
    assert.equal(logs.openCount, 0);
    assert.equal(openFds(), baseline, 'closeAll releases every descriptor');
    for (const [i, f] of files.entries()) {
      const { records, skipped } = await readLog(f);
      assert.deepEqual(skipped, []);
      assert.deepEqual(records.map((r) => r.event), i < 460 ? ['task.created', 'task.touched'] : ['task.created']);
    }
  } finally {
    logs.closeAll();
    await h.cleanup();
  }
});

test('500 task logs: idle logs are closed, written or not, so no descriptor stays open', { timeout: 60_000 }, async () => {
  const h = await tempHome();
  const logs = new TaskLogs({ maxOpen: 1000, idleMs: 50 });
  try {
    const dir = path.join(h.root, 'logs');
    fs.mkdirSync(dir, { mode: 0o700 });
    const baseline = openFds();
    const files = Array.from({ length: 500 }, (_, i) => path.join(dir, `task-${i}.log`));
    for (const f of files) logs.append(f, { event: 'step.output', line: 'x' });
    // Checked before any await, so no idle timer can have run yet.
    assert.equal(logs.openCount, 500);
    // Half of them were made durable by the engine at a step boundary; the rest were not.
    for (const f of files.slice(0, 250)) await logs.sync(f);
    await until(10_000, 'idle task logs to be closed', () => logs.openCount === 0);
    assert.equal(openFds(), baseline, 'no log descriptor is left open');
    // A closed log reopens on the next append and keeps its records.
    logs.append(files[0]!, { event: 'step.finished' });
    assert.equal(logs.openCount, 1);
    assert.deepEqual((await readLog(files[0]!)).records.map((r) => r.event), ['step.output', 'step.finished']);
    assert.deepEqual((await readLog(files[499]!)).records.map((r) => r.event), ['step.output']);
  } finally {
    logs.closeAll();
    await h.cleanup();
  }
});
