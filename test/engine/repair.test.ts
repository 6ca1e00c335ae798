// Repair picks the most advanced readable state: task.json.bak is one checkpoint behind, and
// the log may record that the last step finished after it. A step recorded as finished must
// never run again because its task.json was damaged.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Engine } from '../../src/engine/engine.js';
import { diagnoseTask, repairTask } from '../../src/store/repair.js';
import { run, settle, taskDir, withEnv, writeTemplate } from './helpers.js';

test('a damaged task.json of a completed task is rebuilt from the log rather than from the older backup', async () => {
  await withEnv({}, async (env) => {
    writeTemplate(env, { name: 'two', steps: [{ name: 'first', type: 'shell', run: 'echo first >> runs' }, { name: 'last', type: 'shell', run: 'echo last >> runs' }] });
    const done = await run(env, 'two');
    assert.equal(done.status, 'completed');
    const dir = taskDir(env, env.wsName, done.id);
    const backup = JSON.parse(fs.readFileSync(path.join(dir, 'task.json.bak'), 'utf8')) as { status: string };
    assert.notEqual(backup.status, 'completed', 'the backup is the checkpoint before the last one');
    fs.writeFileSync(path.join(dir, 'task.json'), '{"torn');

    assert.equal((await diagnoseTask(env.engine.store.paths, env.wsName, done.id)).fix, 'rebuilt_from_log');
    const r = await repairTask(env.engine.store.paths, env.wsName, done.id);
    assert.equal(r.action, 'rebuilt_from_log');
    const repaired = await env.engine.getTask(done.id);
    assert.equal(repaired.status, 'completed');
    assert.deepEqual(repaired.steps.map((s) => s.status), ['completed', 'completed']);
  });
});

test('recovery after a damaged checkpoint does not run a finished step again', async () => {
  await withEnv({}, async (env) => {
    writeTemplate(env, { name: 'three', steps: [1, 2, 3].map((i) => ({ name: `s${i}`, type: 'shell', run: `echo s${i} >> runs` })) });
    const done = await run(env, 'three');
    await env.engine.shutdown(1000);
    fs.writeFileSync(path.join(taskDir(env, env.wsName, done.id), 'task.json'), '');
    const again = await Engine.open({ home: env.home, config: env.config });
    try {
      const report = await again.start();
      assert.deepEqual(report.repaired.map((x) => x.action), ['rebuilt_from_log']);
      const t = await settle(again, done.id);
      assert.equal(t.status, 'completed');
      assert.equal(fs.readFileSync(path.join(env.ws, 'runs'), 'utf8'), 's1\ns2\ns3\n', 'no step ran twice');
    } finally {
      await again.shutdown(1000);
    }
  });
});

test('when the log is no further along than task.json.bak, the backup is what is restored', async () => {
  await withEnv({}, async (env) => {
    writeTemplate(env, { name: 'two', steps: [{ name: 'first', type: 'shell', run: 'true' }, { name: 'last', type: 'shell', run: 'true' }] });
    const done = await run(env, 'two');
    const dir = taskDir(env, env.wsName, done.id);
    // Drop the log records written after the backup's checkpoint (as a power cut before the log's fsync would).
    const lines = fs.readFileSync(path.join(dir, 'task.log'), 'utf8').split('\n').filter(Boolean);
    const lastStart = lines.findIndex((l) => l.includes('"event":"step_started"') && l.includes('"step":"last"'));
    fs.writeFileSync(path.join(dir, 'task.log'), lines.slice(0, lastStart).join('\n') + '\n');
    fs.writeFileSync(path.join(dir, 'task.json'), 'garbage');
    const r = await repairTask(env.engine.store.paths, env.wsName, done.id);
    assert.equal(r.action, 'restored_backup');
    const t = await env.engine.getTask(done.id);
    // The backup is the last durable checkpoint, made as 'first' finished (never the un-synced
    // pre-spawn record of 'last'): recovery runs 'last' from there.
    assert.deepEqual(t.steps.map((s) => s.status), ['completed', 'pending']);
    assert.equal(t.status, 'running');
  });
});
