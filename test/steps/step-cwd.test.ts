// A step's cwd cannot leave the workspace through a symlink (issue 9 item 10): the step fails
// with a clear message and runs nothing; a symlink that stays inside is fine.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { run, withEnv, writeTemplate } from '../engine/helpers.js';

test('cwd through a symlink out of the workspace is refused; one that stays inside runs', async () => {
  await withEnv({}, async (env) => {
    const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'atlas-outside-'));
    try {
      fs.symlinkSync(outside, path.join(env.ws, 'linkout'));
      fs.mkdirSync(path.join(env.ws, 'inner'));
      fs.symlinkSync('inner', path.join(env.ws, 'linkin'));
      writeTemplate(env, { name: 'in', steps: [{ name: 'here', type: 'shell', cwd: 'linkin', run: 'pwd > where.txt' }] });
      const ok = await run(env, 'in');
      assert.equal(ok.status, 'completed', ok.error ?? '');
      assert.ok(fs.existsSync(path.join(env.ws, 'inner', 'where.txt')));

      writeTemplate(env, { name: 'out', steps: [{ name: 'escape', type: 'shell', cwd: 'linkout', run: 'touch escaped' }] });
      const t = await run(env, 'out');
      assert.equal(t.status, 'failed');
      assert.match(t.steps[0]!.error ?? '', /outside the workspace/);
      assert.equal(fs.existsSync(path.join(outside, 'escaped')), false, 'the step ran outside the workspace');
    } finally {
      fs.rmSync(outside, { recursive: true, force: true });
    }
  });
});
