// validation steps: every command runs; a versioned validation.<n>.json records each
// command's exit code, duration and output tail; a failure is validation_failed, and
// resume re-runs the step as a new attempt with a new report version.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { ValidationReport } from '../../src/steps/validation.js';
import { readArtifact, run, settle, withEnv, writeTemplate } from '../engine/helpers.js';

test('validation: a versioned report per attempt with exit code, duration and output tail of each command', async () => {
  await withEnv({}, async (env) => {
    writeTemplate(env, {
      name: 'checks',
      steps: [
        {
          name: 'validation',
          type: 'validation',
          commands: [
            { name: 'lint', run: 'echo lint ok' },
            { name: 'tests', run: `[ -f fixed ] && echo all tests pass || { echo 'test_x failed'; exit 4; }` },
            'echo still runs after a failure; sleep 0.05',
          ],
        },
        { name: 'after', type: 'shell', run: 'echo after >> after.txt' },
      ],
    });
    const first = await run(env, 'checks');
    assert.equal(first.status, 'validation_failed');
    assert.equal(first.current_step, 0);
    assert.equal(fs.existsSync(path.join(env.ws, 'after.txt')), false);
    const r1 = first.step_results[0]!;
    assert.equal(r1.status, 'failed');
    assert.equal(r1.exit_code, 4);
    assert.ok(r1.artifacts.includes('validation.1.json'), JSON.stringify(r1.artifacts));
    assert.match(r1.error ?? '', /validation failed: tests/);

    const rep1 = JSON.parse(readArtifact(env, first, 'validation.1.json')) as ValidationReport;
    assert.equal(rep1.passed, false);
    assert.equal(rep1.attempt, 1);
    assert.equal(rep1.task_id, first.id);
    assert.deepEqual(
      rep1.commands.map((c) => [c.name, c.exit_code, c.status]),
      [
        ['lint', 0, 'completed'],
        ['tests', 4, 'failed'],
        ['echo still runs after a failure; sleep 0.05', 0, 'completed'],
      ],
    );
    for (const c of rep1.commands) assert.ok(Number.isInteger(c.duration_ms) && c.duration_ms >= 0, `duration of ${c.name}`);
    assert.ok(rep1.commands[2]!.duration_ms >= 50, `the sleeping check took ${rep1.commands[2]!.duration_ms} ms`);
    assert.equal(rep1.commands[0]!.output_tail, 'lint ok\n');
    assert.equal(rep1.commands[1]!.output_tail, 'test_x failed\n');

    // Fix the cause and resume: the step runs again as attempt 2, with validation.2.json.
    fs.writeFileSync(path.join(env.ws, 'fixed'), '');
    const resumed = await env.engine.resume(first.id);
    assert.equal(resumed.status, 'pending');
    const done = await settle(env.engine, first.id);
    assert.equal(done.status, 'completed', done.error ?? '');
    assert.deepEqual(
      done.step_results.map((r) => [r.step_name, r.attempt, r.status]),
      [
        ['validation', 1, 'failed'],
        ['validation', 2, 'completed'],
        ['after', 1, 'completed'],
      ],
    );
    assert.ok(done.step_results[1]!.artifacts.includes('validation.2.json'));
    const rep2 = JSON.parse(readArtifact(env, done, 'validation.2.json')) as ValidationReport;
    assert.equal(rep2.passed, true);
    assert.equal(rep2.attempt, 2);
    assert.deepEqual(
      rep2.commands.map((c) => c.exit_code),
      [0, 0, 0],
    );
    // The first report is kept as it was.
    assert.deepEqual(JSON.parse(readArtifact(env, done, 'validation.1.json')), rep1);
    assert.deepEqual(
      done.transitions.map((t) => t.to_status),
      ['pending', 'running', 'validation_failed', 'pending', 'running', 'completed'],
    );
  });
});

test('validation: the output tail is bounded for a chatty command', async () => {
  await withEnv({}, async (env) => {
    writeTemplate(env, {
      name: 'chatty',
      steps: [{ name: 'v', type: 'validation', commands: [{ name: 'noisy', run: 'i=0; while [ $i -lt 2000 ]; do echo "line $i"; i=$((i+1)); done' }] }],
    });
    const t = await run(env, 'chatty');
    assert.equal(t.status, 'completed');
    const rep = JSON.parse(readArtifact(env, t, 'validation.1.json')) as ValidationReport;
    const tail = rep.commands[0]!.output_tail;
    assert.ok(tail.length <= 4096, `tail is ${tail.length} chars`);
    assert.ok(tail.endsWith('line 1999\n'));
  });
});
