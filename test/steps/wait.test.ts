// wait steps: a durable timer whose deadline is stored in task.json before waiting, so a
// restart keeps the original deadline instead of starting the wait over.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Engine } from '../../src/engine/engine.js';
import { closeEnv, openEnv, readTaskFile, resultSummary, run, settle, waitFor, withEnv, writeTemplate } from '../engine/helpers.js';

test('wait: the deadline is stored in task.json and the next step starts after it', async () => {
  await withEnv({}, async (env) => {
    writeTemplate(env, {
      name: 'w',
      steps: [
        { name: 'pause', type: 'wait', duration: '300ms' },
        { name: 'after', type: 'shell', run: 'true' },
      ],
    });
    const t = await run(env, 'w');
    assert.equal(t.status, 'completed');
    const onDisk = readTaskFile(env, env.wsName, t.id);
    const deadline = Date.parse(onDisk.steps[0]!.deadline ?? '');
    const [waited, after] = onDisk.step_results;
    assert.ok(deadline >= Date.parse(waited!.started_at) + 300, `deadline ${onDisk.steps[0]!.deadline} vs start ${waited!.started_at}`);
    assert.ok(Date.parse(waited!.completed_at) >= deadline, 'the wait ended at or after its deadline');
    assert.ok(Date.parse(after!.started_at) >= deadline);
    assert.ok(waited!.duration_ms >= 300);
  });
});

test('wait: until in the past completes at once', async () => {
  await withEnv({}, async (env) => {
    writeTemplate(env, { name: 'past', steps: [{ name: 'pause', type: 'wait', until: '2020-01-01T00:00:00Z' }] });
    const t = await run(env, 'past', {}, 5_000);
    assert.equal(t.status, 'completed');
  });
});

test('wait: a restart keeps the stored deadline instead of starting the wait over', async () => {
  const env = await openEnv();
  let second: Engine | undefined;
  try {
    writeTemplate(env, {
      name: 'long',
      steps: [
        { name: 'pause', type: 'wait', duration: '60s' },
        { name: 'after', type: 'shell', run: 'echo after >> after.txt' },
      ],
    });
    const started = await env.engine.startTask({ template: 'long', workspace: env.wsName });
    const recorded = await waitFor('the wait deadline in task.json', () => readTaskFile(env, env.wsName, started.id).steps[0]!.deadline ?? undefined);
    assert.ok(Date.parse(recorded) >= Date.now() + 50_000);
    // Stop the engine mid-wait: the task stays checkpointed as it stands.
    await env.engine.shutdown(0);
    const stopped = readTaskFile(env, env.wsName, started.id);
    assert.equal(stopped.status, 'running');
    assert.equal(stopped.steps[0]!.status, 'running');
    assert.equal(stopped.steps[0]!.deadline, recorded);

    // Move the stored deadline close, as if most of the 60s had passed while atlas was down.
    second = await Engine.open({ home: env.home, config: env.config });
    const soon = new Date(Date.now() + 300).toISOString();
    await second.store.tasks.updateTask(started.id, (t) => {
      t.steps[0]!.deadline = soon;
    });
    const report = await second.start();
    // The long wait had let go of its slot (parked): it was not cut off, so the same attempt
    // goes on with the stored deadline.
    assert.deepEqual(report.rerun, []);
    assert.deepEqual(report.requeued, [started.id]);
    // A fresh 60s wait would blow this bound.
    const done = await settle(second, started.id, 15_000);
    assert.equal(done.status, 'completed');
    assert.equal(done.steps[0]!.deadline, soon);
    assert.deepEqual(resultSummary(done), ['pause#1:completed', 'after#1:completed']);
    assert.ok(Date.parse(done.step_results[0]!.completed_at) >= Date.parse(soon));
  } finally {
    await closeEnv(env, second ? [second] : []);
  }
});

test('wait: a long wait gives its slot back but keeps its workspace; cancel frees it', async () => {
  await withEnv({ config: { max_concurrent_tasks: 1 } }, async (env) => {
    const other = path.join(env.root, 'other');
    fs.mkdirSync(other);
    await env.engine.store.workspaces.create({ name: 'other', path: other, kind: 'path', repo: null, branch: null });
    writeTemplate(env, { name: 'long', steps: [{ name: 'pause', type: 'wait', duration: '10m' }] });
    writeTemplate(env, { name: 'quick', steps: [{ name: 'hello', type: 'shell', run: 'echo hi' }] });
    const waiting = await env.engine.startTask({ template: 'long', workspace: env.wsName });
    await waitFor('the wait to let go of its slot', () => readTaskFile(env, env.wsName, waiting.id).steps[0]!.parked_until ?? undefined);
    // The only slot is free: a task in another workspace runs to the end while the wait goes on.
    const elsewhere = await env.engine.startTask({ template: 'quick', workspace: 'other' });
    assert.equal((await settle(env.engine, elsewhere.id, 30_000)).status, 'completed');
    // The waiting task keeps its workspace: a task there stays queued behind it.
    const behind = await env.engine.startTask({ template: 'quick', workspace: env.wsName });
    const again = await env.engine.startTask({ template: 'quick', workspace: 'other' });
    assert.equal((await settle(env.engine, again.id, 30_000)).status, 'completed');
    assert.equal(readTaskFile(env, env.wsName, behind.id).status, 'pending');
    assert.equal(readTaskFile(env, env.wsName, waiting.id).status, 'running');
    // Cancel the wait: the workspace is free and the queued task runs.
    assert.equal((await env.engine.cancel(waiting.id)).status, 'abandoned');
    assert.equal((await settle(env.engine, behind.id, 30_000)).status, 'completed');
  });
});
