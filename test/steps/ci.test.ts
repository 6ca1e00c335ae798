// ci steps: poll until exit 0; exit 8 (or any code but 0 and 1) means still running; exit 1
// is ci_failed; passing the deadline is ci_timeout. The deadline is checkpointed.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { assertDead, readArtifact, readPid, run, settle, withEnv, writeTemplate } from '../engine/helpers.js';

// Counts its runs in a file; pending (exit 8) until run number $PASS_ON.
const COUNTER = 'n=$(cat polls 2>/dev/null || echo 0); n=$((n+1)); echo $n > polls; echo "poll $n"';

test('ci: polls a command that is pending twice (exit 8), then passes', async () => {
  await withEnv({}, async (env) => {
    writeTemplate(env, {
      name: 'ci3',
      steps: [{ name: 'ci', type: 'ci', command: `${COUNTER}; [ $n -ge 3 ] && exit 0; exit 8`, interval: '50ms', timeout: '20s' }],
    });
    const before = Date.now();
    const t = await run(env, 'ci3');
    assert.equal(t.status, 'completed', t.error ?? '');
    assert.equal(fs.readFileSync(path.join(env.ws, 'polls'), 'utf8'), '3\n');
    const r = t.step_results[0]!;
    assert.equal(r.status, 'completed');
    assert.equal(r.exit_code, 0);
    assert.equal(r.attempt, 1);
    // The deadline was checkpointed: 20s after the step started.
    const deadline = Date.parse(t.steps[0]!.deadline ?? '');
    assert.ok(Number.isFinite(deadline), `deadline ${t.steps[0]!.deadline}`);
    assert.ok(deadline >= before + 20_000 && deadline <= Date.now() + 20_000, `deadline ${t.steps[0]!.deadline}`);
    // Two "still running" notes and three polls in the output.
    const out = readArtifact(env, t, 'ci.output.1.log');
    assert.equal(out.match(/CI still running \(exit 8\)/g)?.length, 2);
    assert.equal(out.match(/^poll \d$/gm)?.length, 3);
  });
});

test('ci: exit 1 is ci_failed', async () => {
  await withEnv({}, async (env) => {
    writeTemplate(env, {
      name: 'cifail',
      steps: [{ name: 'ci', type: 'ci', command: `${COUNTER}; [ $n -ge 2 ] && exit 1; exit 8`, interval: '50ms', timeout: '20s' }],
    });
    const t = await run(env, 'cifail');
    assert.equal(t.status, 'ci_failed');
    assert.equal(fs.readFileSync(path.join(env.ws, 'polls'), 'utf8'), '2\n');
    assert.equal(t.step_results[0]!.exit_code, 1);
    assert.match(t.step_results[0]!.error ?? '', /^CI failed/);
  });
});

test('ci: a CI that stays pending past the timeout is ci_timeout', async () => {
  await withEnv({}, async (env) => {
    writeTemplate(env, {
      name: 'cipending',
      steps: [{ name: 'ci', type: 'ci', command: `${COUNTER}; exit 8`, interval: '100ms', timeout: '1s' }],
    });
    const t = await run(env, 'cipending');
    assert.equal(t.status, 'ci_timeout');
    assert.match(t.step_results[0]!.error ?? '', /did not pass before the deadline/);
    // It polled (how often within the second depends on the machine's speed).
    assert.ok(Number(fs.readFileSync(path.join(env.ws, 'polls'), 'utf8')) >= 1);
    assert.ok(Date.parse(t.step_results[0]!.completed_at) >= Date.parse(t.steps[0]!.deadline!) - 5, 'it gave up only at the deadline');
  });
});

test('ci: a status command that hangs past the timeout is killed and is ci_timeout', async () => {
  await withEnv({}, async (env) => {
    writeTemplate(env, {
      name: 'cihang',
      steps: [{ name: 'ci', type: 'ci', command: `sleep 100 & echo $! > pid; wait`, interval: '100ms', timeout: '1s' }],
    });
    const t = await run(env, 'cihang');
    assert.equal(t.status, 'ci_timeout');
    await assertDead(readPid(path.join(env.ws, 'pid')), 'the hanging CI command');
  });
});

test('ci: resume after ci_failed polls again as a new attempt', async () => {
  await withEnv({}, async (env) => {
    writeTemplate(env, {
      name: 'ciresume',
      steps: [{ name: 'ci', type: 'ci', command: `[ -f green ] && exit 0; exit 1`, interval: '50ms', timeout: '20s' }],
    });
    const t = await run(env, 'ciresume');
    assert.equal(t.status, 'ci_failed');
    fs.writeFileSync(path.join(env.ws, 'green'), '');
    await env.engine.resume(t.id);
    const done = await settle(env.engine, t.id);
    assert.equal(done.status, 'completed');
    assert.deepEqual(
      done.step_results.map((r) => [r.attempt, r.status]),
      [
        [1, 'failed'],
        [2, 'completed'],
      ],
    );
  });
});
