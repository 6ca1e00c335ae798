// Dependencies in the engine (DESIGN §13): a task started after others waits (pending, with
// waiting_on) until every one of them completed; a dependency abandoned or rejected abandons
// its dependents, naming it; a failed one keeps them waiting until it is resumed; fan-out and
// fan-in; bad --after ids refused before anything is written; a restart re-evaluates.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Engine } from '../../src/engine/engine.js';
import { judge } from '../../src/engine/dependencies.js';
import type { TaskRecord } from '../../src/store/records.js';
import { closeEnv, openEnv, settle, waitFor, withEnv, writeTemplate, type TestEnv } from './helpers.js';

/** A one-step template that waits for <workspace>/gate-<name> before it ends (exit 1 when the gate says "fail"). */
function gated(env: TestEnv): void {
  writeTemplate(env, {
    name: 'gated',
    inputs: { name: { required: true } },
    steps: [{ name: 'work', type: 'shell', timeout: '30s', run: 'g="gate-$ATLAS_INPUT_NAME"; until [ -f "$g" ]; do sleep 0.02; done; ! grep -q fail "$g"' }],
  });
}

function open(env: TestEnv, name: string, content = ''): void {
  fs.writeFileSync(path.join(env.ws, `gate-${name}`), content);
}

const start = (env: TestEnv, name: string, after: string[] = []) =>
  env.engine.startTask({ template: 'gated', workspace: env.wsName, inputs: { name }, ...(after.length ? { after } : {}) });

const statusOf = async (env: TestEnv, id: string) => (await env.engine.getTask(id)).status;

test('judge: completed deps drop out, abandoned/rejected/missing abandon, others keep waiting', () => {
  const s = new Map<string, TaskRecord['status'] | undefined>([
    ['a', 'completed'],
    ['b', 'failed'],
    ['c', 'running'],
    ['d', 'rejected'],
  ]);
  assert.deepEqual(judge(['a', 'b', 'c'], s), { remaining: ['b', 'c'] });
  assert.equal(judge(['a', 'd'], s).abandon, 'dependency d ended rejected');
  assert.equal(judge(['x'], s).abandon, 'dependency x no longer exists');
});

test('fan-out and fan-in: dependents wait, then run once every dependency completed', async () => {
  await withEnv({}, async (env) => {
    gated(env);
    const a = await start(env, 'a');
    const b = await start(env, 'b', [a.id]);
    const c = await start(env, 'c', [a.id]);
    const d = await start(env, 'd', [b.id, c.id, b.id]);
    assert.deepEqual(d.after, [b.id, c.id], 'duplicates are dropped');
    assert.deepEqual(d.waiting_on, [b.id, c.id]);
    assert.equal(b.status, 'pending');
    assert.deepEqual(b.waiting_on, [a.id]);
    // The summaries say what each waits on.
    const listed = await env.engine.listTasks({});
    assert.deepEqual(listed.find((t) => t.id === d.id)?.waiting_on, [b.id, c.id]);

    open(env, 'b');
    open(env, 'c');
    // b and c cannot run before a: their gates are open, yet they stay pending.
    await waitFor('a to run', async () => (await statusOf(env, a.id)) === 'running');
    assert.equal(await statusOf(env, b.id), 'pending');
    open(env, 'a');
    assert.equal((await settle(env.engine, a.id)).status, 'completed');
    assert.equal((await settle(env.engine, b.id)).status, 'completed');
    assert.equal((await settle(env.engine, c.id)).status, 'completed');
    await waitFor('d to run', async () => (await statusOf(env, d.id)) === 'running');
    const running = await env.engine.getTask(d.id);
    assert.deepEqual(running.waiting_on, []);
    open(env, 'd');
    assert.equal((await settle(env.engine, d.id)).status, 'completed');
    // A task started after completed tasks runs at once.
    const e = await start(env, 'e', [a.id, d.id]);
    assert.deepEqual(e.waiting_on, []);
    open(env, 'e');
    assert.equal((await settle(env.engine, e.id)).status, 'completed');
  });
});

test('a failed dependency keeps its dependents waiting; resumed and completed, it releases them', async () => {
  await withEnv({}, async (env) => {
    gated(env);
    const a = await start(env, 'a');
    const b = await start(env, 'b', [a.id]);
    open(env, 'a', 'fail');
    assert.equal((await settle(env.engine, a.id)).status, 'failed');
    await env.engine.dependencies.idle();
    const waiting = await env.engine.getTask(b.id);
    assert.equal(waiting.status, 'pending');
    assert.deepEqual(waiting.waiting_on, [a.id]);
    open(env, 'a');
    open(env, 'b');
    await env.engine.resume(a.id);
    assert.equal((await settle(env.engine, a.id)).status, 'completed');
    assert.equal((await settle(env.engine, b.id)).status, 'completed');
  });
});

test('a rejected or canceled dependency abandons its dependents, transitively, naming it', async () => {
  await withEnv({}, async (env) => {
    gated(env);
    const a = await start(env, 'a');
    const b = await start(env, 'b', [a.id]);
    const c = await start(env, 'c', [b.id]);
    await env.engine.cancel(a.id);
    const bDone = await settle(env.engine, b.id);
    assert.equal(bDone.status, 'abandoned');
    assert.match(bDone.transitions.at(-1)!.reason, new RegExp(`dependency ${a.id} ended abandoned`));
    assert.match(bDone.error ?? '', new RegExp(a.id));
    const cDone = await settle(env.engine, c.id);
    assert.equal(cDone.status, 'abandoned');
    assert.match(cDone.transitions.at(-1)!.reason, new RegExp(`dependency ${b.id}`));
    // Nothing may be started after a task that can never complete.
    await assert.rejects(start(env, 'x', [a.id]), (e: Error & { code?: string }) => e.code === 'invalid_input' && /ended abandoned/.test(e.message));
  });
});

test('--after with an unknown or malformed id is refused and creates nothing', async () => {
  await withEnv({}, async (env) => {
    gated(env);
    await assert.rejects(start(env, 'x', ['task-20000101-000000']), (e: Error & { code?: string }) => e.code === 'not_found');
    await assert.rejects(start(env, 'x', ['../etc']), (e: Error & { code?: string }) => e.code === 'invalid_name' || e.code === 'invalid_input');
    assert.equal((await env.engine.listTasks({})).length, 0);
  });
});

test('a dependency that completed while no engine ran releases its dependents at the next start', async () => {
  const env = await openEnv({});
  const engines: Engine[] = [];
  try {
    gated(env);
    const a = await start(env, 'a');
    const b = await start(env, 'b', [a.id]);
    await env.engine.shutdown(100);
    // The state a crash between "a completed" and "b released" leaves: a completed on disk, b still waiting.
    const file = path.join(env.home, 'workspaces', env.wsName, 'tasks', a.id, 'task.json');
    const t = JSON.parse(fs.readFileSync(file, 'utf8')) as TaskRecord;
    t.status = 'completed';
    t.completed_at = new Date().toISOString();
    t.revision++;
    fs.writeFileSync(file, JSON.stringify(t));
    assert.deepEqual((JSON.parse(fs.readFileSync(path.join(env.home, 'workspaces', env.wsName, 'tasks', b.id, 'task.json'), 'utf8')) as TaskRecord).waiting_on, [a.id]);
    open(env, 'b');
    const next = await Engine.open({ home: env.home, config: env.config });
    engines.push(next);
    await next.start();
    assert.equal((await settle(next, b.id)).status, 'completed');
  } finally {
    await closeEnv(env, engines);
  }
});
