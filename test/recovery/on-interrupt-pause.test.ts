// on_interrupt: pause (DESIGN §4, §6): a step that must not be re-run blindly. After a
// kill -9 of the daemon while it runs, recovery kills its leftover process tree and leaves
// the task 'interrupted' (it does not run the step again by itself); `atlas resume` then
// runs it as a new attempt and the task finishes.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { TaskRecord } from '../../src/store/records.js';
import {
  call,
  cli,
  createWorkspaces,
  groupAlive,
  killHard,
  markerProcesses,
  readTask,
  startTask,
  startTheDaemon,
  stopTheDaemon,
  waitFor,
  waitForTask,
  withSandbox,
  writeTemplateText,
} from './harness.js';

test('on_interrupt: pause: a step cut off by kill -9 leaves the task interrupted; atlas resume finishes it', { timeout: 60_000 }, async () => {
  await withSandbox({ workspaces: ['w1'] }, async (sb) => {
    const ws = sb.workspaces['w1']!;
    const env = `    env: { ATLAS_TEST_MARK: ${sb.marker} }`;
    writeTemplateText(
      sb,
      'careful',
      [
        'name: careful',
        'steps:',
        '  - name: prepare',
        '    type: shell',
        `    run: ${JSON.stringify(`echo "$ATLAS_STEP:$ATLAS_ATTEMPT" >> lines.txt # ${sb.marker}`)}`,
        env,
        '  - name: migrate',
        // A validation step: after a crash it is not re-attached (shell and ai steps are), so the policy applies.
        '    type: validation',
        '    on_interrupt: pause',
        // Hangs until the test drops a 'release' file, so the kill surely lands mid-step.
        `    commands: ${JSON.stringify([`echo "$ATLAS_ATTEMPT" >> started; while [ ! -f release ]; do sleep 0.05; done; echo "$ATLAS_STEP:$ATLAS_ATTEMPT" >> lines.txt # ${sb.marker}`])}`,
        env,
      ].join('\n') + '\n',
    );
    let pid = await startTheDaemon(sb);
    await createWorkspaces(sb);
    const t = await startTask(sb, 'careful', 'w1');
    const running = await waitForTask(sb, 'w1', t.id, 'step migrate running with its process recorded', (x) => x.current_step === 1 && x.steps[1]?.status === 'running' && x.steps[1].process !== null);
    await waitFor('migrate to start', () => fs.existsSync(path.join(ws, 'started')));
    const pgid = running.steps[1]!.process!.pgid;

    await killHard(pid);
    assert.ok(groupAlive(pgid), 'the step outlives its daemon');
    pid = await startTheDaemon(sb);

    // Recovery did its work before the daemon answered.
    assert.equal(groupAlive(pgid), false, 'the interrupted step process tree must be killed');
    const paused = readTask(sb, 'w1', t.id);
    assert.equal(paused.status, 'interrupted');
    assert.equal(paused.steps[0]!.status, 'completed');
    const last = paused.step_results.at(-1)!;
    assert.deepEqual([last.step_name, last.attempt, last.status], ['migrate', 1, 'interrupted']);
    assert.equal(paused.transitions.at(-1)!.to_status, 'interrupted');
    const shown = cli(sb, ['show', t.id, '--json']);
    assert.equal((JSON.parse(shown.stdout) as TaskRecord).status, 'interrupted');
    // Nothing runs it again by itself: it is neither running nor queued.
    const status = (await call(sb, 'daemon.status')) as { running_tasks: number; queue_depth: number };
    assert.deepEqual([status.running_tasks, status.queue_depth], [0, 0]);
    assert.equal(fs.readFileSync(path.join(ws, 'started'), 'utf8'), '1\n');

    fs.writeFileSync(path.join(ws, 'release'), '');
    const r = cli(sb, ['resume', t.id]);
    assert.equal(r.status, 0, r.stderr);
    const done = await waitForTask(sb, 'w1', t.id, 'completed', (x) => x.status === 'completed');
    assert.equal(fs.readFileSync(path.join(ws, 'started'), 'utf8'), '1\n2\n');
    assert.equal(fs.readFileSync(path.join(ws, 'lines.txt'), 'utf8'), 'prepare:1\nmigrate:2\n');
    assert.deepEqual(
      done.step_results.map((x) => [x.step_name, x.attempt, x.status]),
      [
        ['prepare', 1, 'completed'],
        ['migrate', 1, 'interrupted'],
        ['migrate', 2, 'completed'],
      ],
    );
    await stopTheDaemon(sb, pid);
    assert.deepEqual(markerProcesses(sb), []);
  });
});
