// kill -9 of the daemon while a step runs a process tree: the tree outlives its daemon (it
// runs in its own session), so recovery must kill it, by its checkpointed pid/pgid/start
// time, before the step runs again. The side effects show it: the killed tree never writes,
// the re-run writes exactly once.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import {
  countLines,
  createWorkspaces,
  groupAlive,
  killHard,
  markerProcesses,
  pidAlive,
  readTask,
  startTask,
  startTheDaemon,
  stopTheDaemon,
  waitFor,
  waitForTask,
  withSandbox,
  writeTemplateText,
  call,
} from './harness.js';
import { cgroupBase } from '../../src/util/cgroup.js';

test('kill -9 while a step runs a child tree: recovery kills the old tree before the step re-runs; its side effect happens once', { timeout: 60_000 }, async () => {
  await withSandbox({ workspaces: ['w1'] }, async (sb) => {
    const ws = sb.workspaces['w1']!;
    // A tree: the step shell, a child shell that sleeps then writes, and a grandchild that left
    // the process group (setsid), which only a tree walk from the recorded pid can find.
    writeTemplateText(
      sb,
      'tree',
      [
        'name: tree',
        'steps:',
        // A validation step: after a crash it is re-run, not re-attached (shell and ai steps are).
        '  - name: work',
        '    type: validation',
        `    commands: ${JSON.stringify([`echo "$ATLAS_ATTEMPT" >> started; sh -c 'sleep 5; echo done >> side-effect' & setsid sh -c 'sleep 5; echo escaped >> escaped' & wait # ${sb.marker}`])}`,
        `    env: { ATLAS_TEST_MARK: ${sb.marker} }`,
        '  - name: after',
        '    type: shell',
        `    run: ${JSON.stringify(`echo after >> after # ${sb.marker}`)}`,
        `    env: { ATLAS_TEST_MARK: ${sb.marker} }`,
      ].join('\n') + '\n',
    );
    let pid = await startTheDaemon(sb);
    await createWorkspaces(sb);
    const t = await startTask(sb, 'tree', 'w1');

    // The step's process is checkpointed and released (it wrote 'started'), and its tree is up.
    const running = await waitForTask(sb, 'w1', t.id, 'step work running with its process recorded', (x) => x.steps[0]?.status === 'running' && x.steps[0].process !== null);
    const proc = running.steps[0]!.process!;
    await waitFor('the step to start its tree', () => countLines(path.join(ws, 'started'), '1') === 1 && markerProcesses(sb).length >= 3);
    const oldTree = markerProcesses(sb).map((p) => p.pid);

    await killHard(pid);
    // The tree outlived its daemon: this is what recovery has to deal with.
    assert.ok(groupAlive(proc.pgid), 'the step process group should outlive a kill -9 of the daemon');
    assert.equal(readTask(sb, 'w1', t.id).steps[0]!.status, 'running');

    pid = await startTheDaemon(sb);
    // Recovery finishes before the daemon listens: by the time it answers, the old tree is gone.
    assert.equal(groupAlive(proc.pgid), false, `the old process group ${proc.pgid} is still alive after recovery`);
    const survivors = oldTree.filter((p) => pidAlive(p));
    assert.deepEqual(survivors, [], `processes of the old tree still alive after recovery: ${survivors.join(', ')}`);

    const done = await waitForTask(sb, 'w1', t.id, 'completed', (x) => x.status === 'completed', 30_000);
    // The killed tree never wrote; the re-run wrote once.
    assert.equal(countLines(path.join(ws, 'side-effect'), 'done'), 1, `side-effect: ${fs.readFileSync(path.join(ws, 'side-effect'), 'utf8')}`);
    assert.equal(countLines(path.join(ws, 'escaped'), 'escaped'), 1, 'the grandchild that left the group also ran exactly once more');
    assert.equal(fs.readFileSync(path.join(ws, 'started'), 'utf8'), '1\n2\n');
    assert.equal(fs.readFileSync(path.join(ws, 'after'), 'utf8'), 'after\n');
    const results = done.step_results.filter((r) => r.step_name === 'work').map((r) => [r.attempt, r.status]);
    assert.deepEqual(results, [
      [1, 'interrupted'],
      [2, 'completed'],
    ]);

    await stopTheDaemon(sb, pid);
    assert.equal(pidAlive(pid), false);
    assert.deepEqual(markerProcesses(sb), []);
  });
});

test('cancel kills a double-forked setsid grandchild (reparented to init) through the step cgroup', { timeout: 60_000, skip: cgroupBase() ? false : 'no writable cgroup v2 here (the README says which escapes are then not caught)' }, async () => {
  await withSandbox({ workspaces: ['w1'] }, async (sb) => {
    writeTemplateText(
      sb,
      'escape',
      [
        'name: escape',
        'steps:',
        '  - name: work',
        '    type: shell',
        `    run: ${JSON.stringify(`(setsid sh -c 'sleep 502 # ${sb.marker}' &); exec sleep 600 # ${sb.marker}`)}`,
        `    env: { ATLAS_TEST_MARK: ${sb.marker} }`,
      ].join('\n') + '\n',
    );
    const pid = await startTheDaemon(sb);
    await createWorkspaces(sb);
    const t = await startTask(sb, 'escape', 'w1');
    await waitFor('the step and its escaped grandchild', () => markerProcesses(sb).some((p) => p.args.includes('sleep 502')) && markerProcesses(sb).some((p) => p.args.includes('sleep 600')));
    await call(sb, 'task.cancel', { id: t.id });
    await waitForTask(sb, 'w1', t.id, 'abandoned', (x) => x.status === 'abandoned');
    await waitFor('every process of the step to be gone, the escaped one too', () => markerProcesses(sb).length === 0);
    await stopTheDaemon(sb, pid);
  });
});
