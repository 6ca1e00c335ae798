// SIGTERM drains (running steps get the grace period), a second signal skips the grace
// period, and the tasks left running resume at the next start (DESIGN §5).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, test } from 'node:test';
import type { TaskRecord } from '../../src/store/records.js';
import { CLI_PATH, TestHome, cliEnv, homeProcesses, isGone, socketAnswers, waitFor } from '../helpers/daemon.js';

let h: TestHome | undefined;
after(async () => {
  await h?.dispose();
});

test('a second SIGTERM skips the grace period; the running task carries on after a restart', { timeout: 120_000 }, async () => {
  h = new TestHome({ templates: ['sleeper'] });
  const home = h.home;
  // A foreground daemon with a grace period far longer than this test may take.
  const daemon = spawn(process.execPath, [CLI_PATH, 'daemon', 'run', '--home', home, '--quiet', '--timeout', '600s'], { env: cliEnv(), stdio: 'ignore' });
  const exited = new Promise<number | null>((r) => daemon.once('exit', (code) => r(code)));
  try {
    await waitFor('the foreground daemon to answer', () => socketAnswers(h!.socketPath));
    await h.createWorkspaces(['ws']);
    const started = await h.json<TaskRecord>(['start', 'sleeper', '-w', 'ws']);
    await h.waitStepProcess(started.id);

    daemon.kill('SIGTERM');
    // Draining: the step keeps running through the grace period, and new work is refused.
    await waitFor('the socket to close while draining', async () => !(await socketAnswers(h!.socketPath)));
    assert.equal(isGone(daemon.pid!), false, 'the daemon waits for its running step during the grace period');
    daemon.kill('SIGTERM');
    assert.equal(await Promise.race([exited, new Promise<'late'>((r) => setTimeout(() => r('late'), 60_000))]), 0, 'the second signal ends the wait and the daemon exits 0');
    await waitFor('the step process to be stopped with the daemon', () => homeProcesses(home).length === 0);

    // Left as it stood: the step was running, so the next start runs it again.
    const onDisk = h.readTaskFile('ws', started.id);
    assert.equal(onDisk.status, 'running');
    assert.equal(onDisk.steps[0]?.status, 'running');
    await h.startDaemon();
    const again = await h.waitTask(started.id, 'the step to run again', (t) => t.steps[0]!.attempts === 2 && t.steps[0]!.status === 'running');
    assert.equal(again.step_results.at(-1)?.status, 'interrupted');
    await h.ok(['cancel', started.id]);
  } finally {
    if (!isGone(daemon.pid!)) daemon.kill('SIGKILL');
  }
});
