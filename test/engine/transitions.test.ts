// The task state machine (DESIGN §3): one table; an illegal change throws
// InvalidTransitionError and writes nothing; every status change lands in transitions[].
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { isAtlasError } from '../../src/errors.js';
import { InvalidTransitionError, RESUMABLE_FROM, TRANSITIONS, canTransition, transition } from '../../src/engine/transitions.js';
import { SCHEMA_VERSION, TASK_STATUSES, TERMINAL_STATUSES, type TaskRecord, type TaskStatus } from '../../src/store/records.js';
import { logOf, readTaskFile, run, settle, taskDir, withEnv, writeTemplate } from './helpers.js';

function bareTask(status: TaskStatus): TaskRecord {
  const at = '2026-01-01T00:00:00.000Z';
  return {
    schema_version: SCHEMA_VERSION,
    id: 'task-20260101-000000',
    workspace: 'ws',
    template: 't',
    description: '',
    inputs: {},
    status,
    current_step: 0,
    steps: [],
    step_results: [],
    transitions: [],
    priority: 0,
    created_at: at,
    updated_at: at,
    completed_at: null,
    revision: 3,
    error: null,
    workdir: '/nonexistent',
    env: {},
  };
}

test('transitions: the table matches DESIGN §3', () => {
  assert.deepEqual(Object.keys(TRANSITIONS).sort(), [...TASK_STATUSES].sort());
  for (const s of TERMINAL_STATUSES) assert.deepEqual(TRANSITIONS[s], [], `${s} is terminal`);
  assert.deepEqual([...TRANSITIONS.pending].sort(), ['abandoned', 'running']);
  for (const to of ['completed', 'failed', 'validation_failed', 'gh_failed', 'ci_failed', 'ci_timeout', 'awaiting_approval', 'interrupted', 'abandoned'] as const) {
    assert.ok(canTransition('running', to), `running -> ${to}`);
  }
  assert.deepEqual([...TRANSITIONS.awaiting_approval].sort(), ['abandoned', 'pending', 'rejected']);
  // Every failure status leaves by resume (-> pending) or cancel (-> abandoned), nothing else.
  assert.deepEqual([...RESUMABLE_FROM].sort(), ['ci_failed', 'ci_timeout', 'failed', 'gh_failed', 'interrupted', 'validation_failed']);
  for (const s of RESUMABLE_FROM) assert.deepEqual([...TRANSITIONS[s]].sort(), ['abandoned', 'pending'], s);
  // No status goes straight back to itself.
  for (const s of TASK_STATUSES) assert.equal(canTransition(s, s), false, `${s} -> ${s}`);
});

test('transitions: every illegal change throws InvalidTransitionError and changes nothing', () => {
  let illegal = 0;
  for (const from of TASK_STATUSES) {
    for (const to of TASK_STATUSES) {
      const task = bareTask(from);
      const before = structuredClone(task);
      if (canTransition(from, to)) {
        transition(task, to, 'test', '2026-01-01T00:00:01.000Z');
        assert.equal(task.status, to);
        assert.deepEqual(task.transitions, [{ from_status: from, to_status: to, timestamp: '2026-01-01T00:00:01.000Z', reason: 'test' }]);
        assert.equal(task.completed_at, TERMINAL_STATUSES.has(to) ? '2026-01-01T00:00:01.000Z' : null);
        continue;
      }
      illegal++;
      assert.throws(
        () => transition(task, to, 'test'),
        (err: unknown) => {
          assert.ok(err instanceof InvalidTransitionError, `${from} -> ${to}`);
          assert.ok(isAtlasError(err, 'invalid_transition'));
          assert.deepEqual(err.details, { id: task.id, from_status: from, to_status: to });
          return true;
        },
      );
      assert.deepEqual(task, before, `${from} -> ${to} changed the task`);
    }
  }
  assert.ok(illegal > 100);
});

test('transitions: an illegal change through the store writes nothing to disk', async () => {
  await withEnv({}, async (env) => {
    writeTemplate(env, { name: 'one', steps: [{ name: 's', type: 'shell', run: 'true' }] });
    const t = await run(env, 'one');
    assert.equal(t.status, 'completed');
    const dir = taskDir(env, env.wsName, t.id);
    const snapshot = () => ({ json: fs.readFileSync(`${dir}/task.json`, 'utf8'), bak: fs.readFileSync(`${dir}/task.json.bak`, 'utf8'), log: fs.readFileSync(`${dir}/task.log`, 'utf8') });
    const before = snapshot();
    await assert.rejects(
      env.engine.store.tasks.updateTask(t.id, (task) => transition(task, 'running', 'illegal')),
      (err: unknown) => err instanceof InvalidTransitionError,
    );
    // Operator actions that do not fit the status are refused, also without a write.
    await assert.rejects(env.engine.resume(t.id), (e: unknown) => isAtlasError(e, 'not_allowed'));
    await assert.rejects(env.engine.approve(t.id), (e: unknown) => isAtlasError(e, 'not_allowed'));
    await assert.rejects(env.engine.reject(t.id, 'no'), (e: unknown) => isAtlasError(e, 'not_allowed'));
    await assert.rejects(env.engine.cancel(t.id), (e: unknown) => isAtlasError(e, 'not_allowed'));
    assert.deepEqual(snapshot(), before);
  });
});

test('transitions: every status change of a run is in transitions[] and in task.log, as one chain', async () => {
  await withEnv({}, async (env) => {
    writeTemplate(env, {
      name: 'chain',
      steps: [
        { name: 'check', type: 'validation', commands: ['test -f ok'] },
        { name: 'review', type: 'human' },
        { name: 'end', type: 'shell', run: 'true' },
      ],
    });
    const first = await run(env, 'chain');
    assert.equal(first.status, 'validation_failed');
    fs.writeFileSync(`${env.ws}/ok`, '');
    await env.engine.resume(first.id);
    assert.equal((await settle(env.engine, first.id)).status, 'awaiting_approval');
    await env.engine.approve(first.id);
    const done = await settle(env.engine, first.id);
    assert.equal(done.status, 'completed');

    const onDisk = readTaskFile(env, env.wsName, done.id);
    const chain = onDisk.transitions;
    assert.deepEqual(
      chain.map((t) => `${t.from_status}->${t.to_status}`),
      ['null->pending', 'pending->running', 'running->validation_failed', 'validation_failed->pending', 'pending->running', 'running->awaiting_approval', 'awaiting_approval->pending', 'pending->running', 'running->completed'],
    );
    for (let i = 1; i < chain.length; i++) {
      assert.equal(chain[i]!.from_status, chain[i - 1]!.to_status, `transition ${i} starts where ${i - 1} ended`);
      assert.ok(chain[i]!.timestamp >= chain[i - 1]!.timestamp, 'timestamps never go back');
      assert.ok(chain[i]!.reason.length > 0);
      assert.ok(canTransition(chain[i]!.from_status!, chain[i]!.to_status));
    }
    assert.equal(chain.at(-1)!.to_status, onDisk.status);
    assert.equal(onDisk.completed_at, chain.at(-1)!.timestamp);
    // task.log has the same changes, in the same order (creation is its task_created record).
    const log = await logOf(env, done);
    assert.equal(log[0]!.event, 'task_created');
    const logged = log.filter((r) => r.event === 'transition').map((r) => `${String(r['from_status'])}->${String(r['to_status'])}`);
    assert.deepEqual(logged, chain.slice(1).map((t) => `${t.from_status}->${t.to_status}`));
  });
});
