// human steps: the task parks in awaiting_approval; approve runs the next step; reject ends
// the task as rejected; reject with retry_from really runs the earlier step again.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { isAtlasError } from '../../src/errors.js';
import { resultSummary, run, settle, withEnv, writeTemplate, type TestEnv } from '../engine/helpers.js';

function reviewTemplate(env: TestEnv): void {
  writeTemplate(env, {
    name: 'review',
    steps: [
      { name: 'make', type: 'shell', run: 'echo "made $ATLAS_ATTEMPT" >> made.txt' },
      { name: 'review', type: 'human', prompt: 'Look at made.txt' },
      { name: 'ship', type: 'shell', run: 'echo shipped > shipped.txt' },
    ],
  });
}

test('human: approve continues with the next step', async () => {
  await withEnv({}, async (env) => {
    reviewTemplate(env);
    const t = await run(env, 'review');
    assert.equal(t.status, 'awaiting_approval');
    assert.equal(t.current_step, 1);
    assert.equal(t.steps[1]!.status, 'waiting');
    assert.equal(fs.existsSync(path.join(env.ws, 'shipped.txt')), false);
    // Nothing else is allowed while it waits.
    await assert.rejects(env.engine.resume(t.id), (e: unknown) => isAtlasError(e, 'not_allowed'));

    const approved = await env.engine.approve(t.id);
    assert.equal(approved.status, 'pending');
    const done = await settle(env.engine, t.id);
    assert.equal(done.status, 'completed');
    assert.equal(fs.readFileSync(path.join(env.ws, 'shipped.txt'), 'utf8'), 'shipped\n');
    assert.deepEqual(resultSummary(done), ['make#1:completed', 'review#1:completed', 'ship#1:completed']);
    assert.deepEqual(
      done.transitions.map((x) => x.to_status),
      ['pending', 'running', 'awaiting_approval', 'pending', 'running', 'completed'],
    );
    // Approving twice is refused.
    await assert.rejects(env.engine.approve(t.id), (e: unknown) => isAtlasError(e, 'not_allowed'));
  });
});

test('human: reject ends the task as rejected and records the reason', async () => {
  await withEnv({}, async (env) => {
    reviewTemplate(env);
    const t = await run(env, 'review');
    assert.equal(t.status, 'awaiting_approval');
    await assert.rejects(env.engine.reject(t.id, '  '), (e: unknown) => isAtlasError(e, 'invalid_input'));
    const rejected = await env.engine.reject(t.id, 'not good enough');
    assert.equal(rejected.status, 'rejected');
    assert.ok(rejected.completed_at);
    const again = await env.engine.getTask(t.id);
    assert.equal(again.status, 'rejected');
    assert.equal(again.step_results.at(-1)!.status, 'rejected');
    assert.equal(again.step_results.at(-1)!.error, 'not good enough');
    assert.match(again.steps[1]!.error ?? '', /not good enough/);
    assert.equal(fs.existsSync(path.join(env.ws, 'shipped.txt')), false);
    // rejected is terminal.
    await assert.rejects(env.engine.resume(t.id), (e: unknown) => isAtlasError(e, 'not_allowed'));
    await assert.rejects(env.engine.cancel(t.id), (e: unknown) => isAtlasError(e, 'not_allowed'));
  });
});

test('human: reject with retry_from runs the earlier step again, then waits for approval again', async () => {
  await withEnv({}, async (env) => {
    reviewTemplate(env);
    const t = await run(env, 'review');
    assert.equal(t.status, 'awaiting_approval');
    await assert.rejects(env.engine.reject(t.id, 'redo', 'nope'), (e: unknown) => isAtlasError(e, 'invalid_input') && /make, review, ship/.test(e.message));
    await assert.rejects(env.engine.reject(t.id, 'redo', 'ship'), (e: unknown) => isAtlasError(e, 'invalid_input'));

    const back = await env.engine.reject(t.id, 'try again', 'make');
    assert.equal(back.status, 'pending');
    assert.equal(back.current_step, 0);
    const waiting = await settle(env.engine, t.id);
    assert.equal(waiting.status, 'awaiting_approval');
    assert.equal(fs.readFileSync(path.join(env.ws, 'made.txt'), 'utf8'), 'made 1\nmade 2\n');

    await env.engine.approve(t.id);
    const done = await settle(env.engine, t.id);
    assert.equal(done.status, 'completed');
    assert.deepEqual(resultSummary(done), ['make#1:completed', 'review#1:rejected', 'make#2:completed', 'review#2:completed', 'ship#1:completed']);
    assert.equal(done.step_results[1]!.error, 'try again');
    assert.deepEqual(
      done.transitions.map((x) => x.to_status),
      ['pending', 'running', 'awaiting_approval', 'pending', 'running', 'awaiting_approval', 'pending', 'running', 'completed'],
    );
  });
});
