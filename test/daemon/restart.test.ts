// Restarts (DESIGN §5, §6): `daemon stop` with tasks running, then `daemon start`: the tasks
// carry on where they stood and complete, and no step that had finished runs again; kill -9
// of the daemon, then `daemon start`: it starts at once (the dead daemon's lock, pid file and
// socket are replaced), re-attaches to the step that outlived the killed daemon, and the
// earlier task completes without running that step again.
//
// The template's last step waits for a file the test creates, so a task can never finish
// before the stop or the kill, whatever the machine's speed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TaskRecord } from '../../src/store/records.js';
import { processStartTicks } from '../../src/util/proc.js';
import { VERSION } from '../../src/version.js';
import { TestHome, assertGone, cliEnv, expectExit, homeProcesses, parseStdout, waitFor } from '../helpers/daemon.js';

const GATED = `name: gated
description: two short steps, then one that waits for a file named gate in the workspace
steps:
  - name: s1
    type: shell
    run: sleep 0.2; echo step-1
  - name: s2
    type: shell
    run: sleep 0.2; echo step-2
  - name: s3
    type: shell
    run: until [ -f gate ]; do sleep 0.05; done; echo step-3
`;

/** Steps whose completed attempt is on record. */
function finishedSteps(t: TaskRecord): string[] {
  return t.step_results.filter((r) => r.status === 'completed').map((r) => r.step_name);
}

function assertCompletedOnce(t: TaskRecord, before: TaskRecord): void {
  assert.equal(t.status, 'completed', `task ${t.id} ended ${t.status}: ${t.error}`);
  assert.deepEqual(t.steps.map((s) => s.status), ['completed', 'completed', 'completed']);
  // Every step completed exactly once; those finished before the restart were not run again.
  assert.deepEqual(finishedSteps(t).sort(), ['s1', 's2', 's3']);
  for (const r of before.step_results.filter((x) => x.status === 'completed')) {
    assert.equal(t.step_results.filter((x) => x.step_name === r.step_name).length, before.step_results.filter((x) => x.step_name === r.step_name).length, `step ${r.step_name} ran again after the restart`);
  }
}

describe('daemon restarts', () => {
  let h: TestHome;

  before(async () => {
    h = new TestHome();
    h.writeTemplate('gated', GATED);
    await h.startDaemon();
    await h.createWorkspaces(['a', 'b', 'c', 'd'], (ws) => `ws-${ws}`);
  });
  after(async () => {
    await h.dispose();
  });

  test('daemon stop with tasks running, then daemon start: the tasks carry on and complete', async () => {
    const ids: string[] = [];
    for (const ws of ['a', 'b']) ids.push((await h.json<TaskRecord>(['start', 'gated', '-w', ws])).id);
    for (const id of ids) await h.waitStepProcess(id);

    // A short grace period: a sleep step finishes within it, the gated step is stopped.
    await h.stopDaemon(['--timeout', '1s']);
    const stopped = ids.map((id, i) => h.readTaskFile(['a', 'b'][i]!, id));
    for (const t of stopped) {
      assert.ok(t.status === 'running' || t.status === 'pending', `task ${t.id} is ${t.status} after the stop; it should be left to resume`);
      assert.ok(!finishedSteps(t).includes('s3'));
    }

    for (const ws of ['a', 'b']) fs.writeFileSync(path.join(h.root, `ws-${ws}`, 'gate'), '');
    const r = expectExit(await h.cli(['daemon', 'start']), 0);
    assert.match(r.stdout, /started the atlas daemon/);
    for (const [i, id] of ids.entries()) {
      const done = await h.waitSettled(id);
      assertCompletedOnce(done, stopped[i]!);
      assert.deepEqual(done, h.readTaskFile(['a', 'b'][i]!, id));
    }
  });

  test('logs -f survives a daemon restart: it reconnects and shows every line once', async () => {
    const id = (await h.json<TaskRecord>(['start', 'gated', '-w', 'd'])).id;
    const follower = h.spawn(['logs', id, '-f'], { timeoutMs: 60_000 });
    await waitFor('the follower to show step-1', () => follower.peek().stdout.includes('step-1\n'));
    const running = await h.waitStepProcess(id);
    await h.stopDaemon(['--timeout', '1s'], { othersMayStart: true });
    await assertGone(running.steps[running.current_step]!.process!.pid, 'the step the stop interrupted');
    // The follower may start the daemon again itself; either way one runs afterwards.
    expectExit(await h.cli(['daemon', 'start']), 0);
    fs.writeFileSync(path.join(h.root, 'ws-d', 'gate'), '');
    const r = expectExit(await follower.result, 0);
    assert.equal(r.stdout.match(/step-\d/g)?.join(' '), 'step-1 step-2 step-3', r.stdout);
    assert.match(r.stderr, /lost the daemon; reconnecting/);
    assert.match(r.stderr, new RegExp(`${id} completed`));
    assert.equal((await h.getTask(id)).status, 'completed');
  });

  test('kill -9 of the daemon, then daemon start: it starts and the earlier task completes', async () => {
    const oldPid = (await h.json<{ pid: number }>(['daemon', 'status'])).pid;
    const id = (await h.json<TaskRecord>(['start', 'gated', '-w', 'c'])).id;
    const running = await h.waitTask(id, 'step s3 runs', (t) => t.current_step === 2 && t.steps[2]!.process != null);
    const stepPid = running.steps[2]!.process!.pid;

    process.kill(oldPid, 'SIGKILL');
    await waitFor('the killed daemon to exit', () => !homeProcesses(h.home).includes(oldPid));
    // Its socket, lock and pid file are still there.
    assert.ok(fs.existsSync(path.join(h.home, 'atlas.sock')));
    assert.ok(fs.existsSync(path.join(h.home, 'daemon.pid')));

    const r = expectExit(await h.cli(['daemon', 'start', '--json'], { timeoutMs: 30_000 }), 0);
    const started = parseStdout<{ pid: number; already_running: boolean }>(r);
    assert.equal(started.already_running, false, `daemon start found a daemon running: ${r.stderr}`);
    assert.notEqual(started.pid, oldPid);

    // The killed daemon's step process outlived it: the new daemon re-attaches to it.
    const attached = await h.waitTask(id, 'the step to be re-attached', (t) => t.status === 'running');
    assert.equal(attached.steps[attached.current_step]!.process?.pid, stepPid);
    assert.ok(homeProcesses(h.home).includes(stepPid), 'the step process was stopped');
    fs.writeFileSync(path.join(h.root, 'ws-c', 'gate'), '');
    const done = await h.waitSettled(id);
    assert.equal(done.status, 'completed', `task ended ${done.status}: ${done.error}`);
    assert.deepEqual(done.steps.map((s) => s.status), ['completed', 'completed', 'completed']);
    for (const name of ['s1', 's2', 's3']) assert.equal(done.step_results.filter((x) => x.step_name === name && x.status === 'completed').length, 1);
    assert.equal(done.step_results.filter((x) => x.step_name === 's3').length, 1, 'the re-attached step ran again');
    await assertGone(stepPid, 'the finished step');
    await h.stopDaemon();
  });
});

describe('a home lock whose recorded holder is alive but not answering', () => {
  test('daemon start keeps trying, and starts once the holder is gone', async () => {
    const h = new TestHome();
    // The recorded holder: a live process of ours that never answers on the socket, as a
    // killed daemon does while it is still exiting.
    const holder = spawn('sleep', ['120'], { stdio: 'ignore', env: cliEnv() });
    const holderExit = new Promise((r) => holder.once('exit', r));
    try {
      fs.mkdirSync(h.home, { recursive: true, mode: 0o700 });
      const owner = { pid: holder.pid, start_ticks: processStartTicks(holder.pid!), version: VERSION, socket: h.socketPath, started_at: new Date().toISOString() };
      fs.writeFileSync(path.join(h.home, 'daemon.json'), JSON.stringify(owner) + '\n', { mode: 0o600 });
      fs.writeFileSync(path.join(h.home, 'daemon.pid'), `${owner.pid}\n`, { mode: 0o600 });
      fs.mkdirSync(path.join(h.home, 'daemon.lock'));

      const start = h.spawn(['daemon', 'start', '--json'], { timeoutMs: 60_000 });
      // The first daemon it spawns sees the live holder and steps aside.
      await waitFor('the first spawned daemon to step aside', () => fs.existsSync(path.join(h.home, 'logs', 'daemon.log')) && homeProcesses(h.home).length === 0);
      holder.kill('SIGKILL');
      await holderExit;

      const r = expectExit(await start.result, 0);
      const started = parseStdout<{ pid: number; already_running: boolean }>(r);
      assert.equal(started.already_running, false);
      assert.deepEqual(homeProcesses(h.home), [started.pid]);
      await h.stopDaemon();
    } finally {
      holder.kill('SIGKILL');
      await h.dispose();
    }
  });
});
