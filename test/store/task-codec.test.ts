// Checkpoint encoding with reuse: whatever happens to a task between checkpoints (a step
// changed in place, a field removed and added back, a nested change, new results), the bytes
// written are exactly JSON.stringify(task) + '\n', and a checkpoint of a long task on disk
// reads back as the task.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { StepState, TaskRecord } from '../../src/store/records.js';
import { encodeTask, encodeTaskPieces } from '../../src/store/task-codec.js';
import { addTask, addWorkspace, makeTask, tempHome } from './helpers.js';

const joined = (t: TaskRecord) => Buffer.concat(encodeTaskPieces(t)).toString('utf8');

function step(i: number): StepState {
  return { name: `s${i}`, type: 'shell', status: 'pending', attempts: 0, started_at: null, completed_at: null, error: null, definition: { name: `s${i}`, type: 'shell', run: `echo ${i} "quoted" é` }, process: null, deadline: null, next_attempt_at: null } as unknown as StepState;
}

test('the pieces are the bytes of JSON.stringify through every kind of change between checkpoints', () => {
  const t = makeTask('task-20260101-000000', 'ws', { steps: Array.from({ length: 6 }, (_, i) => step(i)) });
  const check = (what: string) => assert.equal(joined(t), encodeTask(t), what);
  check('first encoding');
  check('reused as is');
  const s0 = t.steps[0]! as unknown as Record<string, unknown>;
  s0['status'] = 'running';
  s0['attempts'] = 1;
  check('a step changed in place');
  s0['process'] = { pid: 42, pgid: 42, start_ticks: 7, started_at: 'x' };
  check('a nested object set');
  (s0['process'] as Record<string, unknown>)['pid'] = 43;
  check('a nested object changed in place');
  delete s0['error'];
  check('a field removed');
  s0['error'] = 'back';
  check('the field added back (now last in key order)');
  s0['extra'] = undefined;
  check('an undefined field (left out)');
  s0['nan'] = NaN;
  check('NaN (written as null)');
  check('NaN again');
  ((s0['definition'] as Record<string, unknown>)['env'] = { A: '1' });
  check('a field added to the nested definition');
  t.step_results.push({ step_index: 0, step_name: 's0', attempt: 1, status: 'completed', started_at: 'a', completed_at: 'b', duration_ms: 1, exit_code: 0, error: null, artifacts: ['out.1.log'], files_changed: [] } as unknown as TaskRecord['step_results'][number]);
  check('a result appended');
  t.step_results[0]!.artifacts.push('more.1.json');
  check('an array inside a result grown in place');
  t.steps.splice(1, 1);
  check('a step removed');
  t.steps.reverse();
  check('steps reordered');
  (t as unknown as Record<string, unknown>)['labels'] = { team: 'x' };
  check('a new top-level field');
  t.steps[2] = step(99);
  check('a step replaced');
});

test('a task of several hundred steps stays byte-exact as runs of unchanged steps are reused, grown, shrunk and changed', () => {
  const t = makeTask('task-20260101-000001', 'ws', { steps: Array.from({ length: 200 }, (_, i) => step(i)) });
  const check = (what: string) => assert.equal(joined(t), encodeTask(t), what);
  check('first encoding');
  assert.ok(encodeTaskPieces(t).length < 20, 'unchanged runs of steps are written as a few joined pieces, not one per step');
  (t.steps[130]! as unknown as Record<string, unknown>)['status'] = 'completed';
  check('a step in a middle run changed in place');
  for (let i = 200; i < 300; i++) t.steps.push(step(i));
  check('steps appended past a run boundary');
  t.steps.length = 129;
  check('cut back inside a run');
  t.steps.splice(10, 0, step(1000));
  check('a step inserted near the start (every later step moves)');
  t.steps[0] = step(2000);
  check('the first step (written without a comma) replaced');
  for (let i = 0; i < 300; i++) t.step_results.push({ step_index: i, step_name: `s${i}`, attempt: 1, status: 'completed', started_at: 'a', completed_at: 'b', duration_ms: i, exit_code: 0, error: null, artifacts: [], files_changed: [] } as unknown as TaskRecord['step_results'][number]);
  check('many results appended');
  t.step_results[299]!.error = 'late';
  check('the last result changed');
  t.steps.length = 0;
  check('no steps left');
});

test('a checkpoint of a long task written in pieces reads back as the task, revision by revision', async () => {
  const h = await tempHome();
  try {
    await addWorkspace(h.store, 'alpha', h.root);
    const task = await addTask(h.store, 'alpha', { steps: Array.from({ length: 1500 }, (_, i) => step(i)) });
    for (let i = 0; i < 5; i++) {
      const s = task.steps[i]!;
      s.status = 'completed';
      s.attempts = 1;
      task.step_results.push({ step_index: i, step_name: s.name, attempt: 1, status: 'completed', started_at: 'a', completed_at: 'b', duration_ms: 1, exit_code: 0, error: null, artifacts: [], files_changed: [] } as unknown as TaskRecord['step_results'][number]);
      task.current_step = i + 1;
      await h.store.tasks.checkpoint(task);
      const onDisk = fs.readFileSync(path.join(h.home, 'workspaces', 'alpha', 'tasks', task.id, 'task.json'), 'utf8');
      assert.equal(onDisk, encodeTask(task), `checkpoint ${i + 1} holds the task exactly`);
      assert.deepEqual((await h.store.tasks.getTask(task.id)).steps.length, 1500);
    }
  } finally {
    await h.cleanup();
  }
});
