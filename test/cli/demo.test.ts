// The quick start (`npm run demo`, i.e. node dist/scripts/demo.js): runs the built-in demo
// template end to end through a real daemon in a scratch home, exits 0, says 'completed',
// and leaves no process behind; it tells how to get `atlas` on the PATH and removes its
// scratch home and workspace directory.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { DIST, cliEnv, homeProcesses, waitFor } from '../helpers/daemon.js';

test('npm run demo: exit 0, the task completed, nothing left running', async () => {
  const child = spawn(process.execPath, [path.join(DIST, 'scripts', 'demo.js')], { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  clearTimeout(timer);
  const out = `--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`;

  const m = /home (\S+), workspace directory (\S+)/.exec(stdout);
  const [home, workdir] = [m?.[1], m?.[2]];
  try {
    assert.equal(code, 0, out);
    assert.ok(home && workdir, out);
    assert.match(stdout, /task task-\S+: completed/, out);
    assert.match(stderr, /step 5\/5 report/, out);
    assert.match(stdout, /npm link/, out);
    assert.match(stdout, /npm run demo -- --keep/, out);
    assert.match(stdout, /removed the scratch home and workspace directory/, out);
    assert.equal(fs.existsSync(home), false, 'the scratch home is left behind');
    assert.equal(fs.existsSync(workdir), false, 'the scratch workspace is left behind');
  } finally {
    if (home) {
      try {
        await waitFor('the demo to leave no process behind', () => homeProcesses(home).length === 0, 10_000);
      } catch (err) {
        for (const pid of homeProcesses(home)) process.kill(pid, 'SIGKILL');
        throw err;
      } finally {
        fs.rmSync(home, { recursive: true, force: true });
        if (workdir) fs.rmSync(workdir, { recursive: true, force: true });
      }
    }
  }
});
