// Leftovers of dead writers: temp files named after a dead pid are removed by sweep; those of
// a live writer (another live process, or this one) are kept, since that write is in progress.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { addTask, addWorkspace, deadPid, tempHome, within } from './helpers.js';

test('sweep removes temp files of dead writers and keeps those of live ones', { timeout: 30_000 }, async () => {
  const h = await tempHome();
  try {
    await addWorkspace(h.store, 'alpha');
    const task = await addTask(h.store, 'alpha');
    const dir = h.store.paths.taskDir('alpha', task.id);
    const artifacts = h.store.paths.artifactsDir('alpha', task.id);
    fs.mkdirSync(artifacts, { mode: 0o700 });
    const dead = await deadPid();
    // A live writer: a process of ours that stays up until we kill it.
    const liveSleeper = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    const livePid = liveSleeper.pid!;
    const gone = new Promise((r) => liveSleeper.once('exit', r));
    try {
      const put = (d: string, name: string) => fs.writeFileSync(path.join(d, name), '{"half":', { mode: 0o600 });
      put(dir, `task.json.tmp-${dead}-1`);
      put(dir, `task.json.tmp-${dead}-42`);
      put(artifacts, `validation.json.tmp-${dead}-3`);
      put(dir, `task.json.tmp-${livePid}-1`);
      put(dir, `task.json.tmp-${process.pid}-9`);
      const before = fs.readFileSync(h.store.paths.taskFile('alpha', task.id));

      const swept = await h.store.tasks.sweep('alpha', task.id);
      assert.deepEqual(
        [...swept].map((n) => path.basename(n)).sort(),
        [`task.json.tmp-${dead}-1`, `task.json.tmp-${dead}-42`, `validation.json.tmp-${dead}-3`].sort(),
      );
      assert.deepEqual(fs.readdirSync(dir).sort(), ['artifacts', 'task.json', `task.json.tmp-${livePid}-1`, `task.json.tmp-${process.pid}-9`].sort());
      assert.deepEqual(fs.readdirSync(artifacts), []);
      assert.deepEqual(fs.readFileSync(h.store.paths.taskFile('alpha', task.id)), before, 'task.json is untouched');
      // Temp files never show up as artifacts.
      put(artifacts, `validation.json.tmp-${livePid}-4`);
      assert.deepEqual(await h.store.artifacts('alpha', task.id).list(), []);

      // Once the live writer is gone, its leftovers go too.
      liveSleeper.kill('SIGKILL');
      await within(10_000, 'the live writer to die', gone);
      const later = await h.store.tasks.sweep('alpha', task.id);
      assert.deepEqual(later.map((n) => path.basename(n)).sort(), [`task.json.tmp-${livePid}-1`, `validation.json.tmp-${livePid}-4`]);
      assert.deepEqual(fs.readdirSync(dir).sort(), ['artifacts', 'task.json', `task.json.tmp-${process.pid}-9`]);
    } finally {
      if (liveSleeper.exitCode === null && liveSleeper.signalCode === null) liveSleeper.kill('SIGKILL');
    }
  } finally {
    await h.cleanup();
  }
});
