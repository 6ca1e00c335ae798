// A wait step is a durable timer (DESIGN §4, §6): its deadline is checkpointed before it
// waits, and a kill -9 and restart keep that deadline instead of starting the wait over.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { createWorkspaces, killHard, readTask, startTask, startTheDaemon, stopTheDaemon, waitForTask, withSandbox, writeTemplateText } from './harness.js';

test('a wait step keeps its original deadline across a kill -9 of the daemon', { timeout: 60_000 }, async () => {
  await withSandbox({ workspaces: ['w1'] }, async (sb) => {
    writeTemplateText(
      sb,
      'timer',
      [
        'name: timer',
        'steps:',
        '  - name: pause',
        '    type: wait',
        '    duration: 4s',
        '  - name: after',
        '    type: shell',
        `    run: ${JSON.stringify(`date +%s%3N >> after # ${sb.marker}`)}`,
        `    env: { ATLAS_TEST_MARK: ${sb.marker} }`,
      ].join('\n') + '\n',
    );
    let pid = await startTheDaemon(sb);
    await createWorkspaces(sb);
    const t = await startTask(sb, 'timer', 'w1');
    const waiting = await waitForTask(sb, 'w1', t.id, 'the wait deadline recorded', (x) => x.steps[0]?.status === 'running' && x.steps[0].deadline !== null);
    const deadline = waiting.steps[0]!.deadline!;

    await killHard(pid);
    pid = await startTheDaemon(sb);
    // Recovery keeps the deadline: a wait that had let go of its slot (parked) goes on as
    // the same attempt; one cut off before it parked re-runs as a new attempt.
    const after = readTask(sb, 'w1', t.id);
    assert.equal(after.steps[0]!.deadline, deadline, 'the restart changed the deadline');

    const done = await waitForTask(sb, 'w1', t.id, 'completed', (x) => x.status === 'completed', 30_000);
    assert.equal(done.steps[0]!.deadline, deadline);
    const results = done.step_results.filter((r) => r.step_name === 'pause');
    const last = results.at(-1)!;
    assert.equal(last.status, 'completed');
    assert.ok(results.slice(0, -1).every((r) => r.status === 'interrupted'), JSON.stringify(results.map((r) => [r.attempt, r.status])));
    assert.ok(results.length <= 2, 'the wait ran at most twice');
    const ends = Date.parse(last.completed_at);
    assert.ok(ends >= Date.parse(deadline), `the wait ended at ${last.completed_at}, before its deadline ${deadline}`);
    const ranAfter = Number(fs.readFileSync(path.join(sb.workspaces['w1']!, 'after'), 'utf8').trim());
    assert.ok(ranAfter >= Date.parse(deadline), 'the next step ran before the deadline');
    await stopTheDaemon(sb, pid);
  });
});
