// Writers of one task racing inside the daemon. While the engine runs a task it holds the
// task's lease and skips the cross-process lock; in-process writers (an operator's update, a
// runner's checkpoint) must then still go one at a time, or two of them pass the revision
// check together and one silently overwrites the other. A runner that meets a conflict (the
// task changed behind its back) is retried from the new state instead of being left
// `running` with nothing running it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { addTask, addWorkspace, tempHome } from '../store/helpers.js';
import { readTaskFile, settle, taskDir, waitFor, withEnv, writeTemplate } from './helpers.js';

test('in-process writers of a leased task go one at a time: no update is lost', async () => {
  const h = await tempHome();
  try {
    await addWorkspace(h.store, 'alpha', h.root);
    const task = await addTask(h.store, 'alpha');
    await h.store.tasks.acquireLease(task.id);
    const start = (await h.store.tasks.getTask(task.id)).revision;
    const n = 8;
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        h.store.tasks.updateTask(task.id, (t) => {
          t.inputs[`k${i}`] = String(i);
        }),
      ),
    );
    const after = await h.store.tasks.getTask(task.id);
    assert.equal(after.revision, start + n, 'every update wrote its own revision');
    assert.deepEqual(Object.keys(after.inputs).filter((k) => k.startsWith('k')).sort(), Array.from({ length: n }, (_, i) => `k${i}`).sort(), 'no update was lost');
    await h.store.tasks.releaseLease(task.id);
  } finally {
    await h.cleanup();
  }
});

test('a runner whose checkpoint meets a conflict is retried from the new state, not left running', { timeout: 40_000 }, async () => {
  await withEnv({}, async (env) => {
    writeTemplate(env, {
      name: 'gated',
      steps: [
        { name: 'gate', type: 'shell', run: 'while [ ! -f go ]; do sleep 0.02; done; echo "$ATLAS_ATTEMPT" >> attempts' },
        { name: 'after', type: 'shell', run: 'echo after >> attempts' },
      ],
    });
    const started = await env.engine.startTask({ template: 'gated', workspace: env.wsName });
    await waitFor('the gate step to run', () => {
      const t = readTaskFile(env, env.wsName, started.id);
      return t.steps[0]?.status === 'running' && t.steps[0].process !== null;
    });
    // Another program edits task.json behind the runner's back (a new revision).
    const file = `${taskDir(env, env.wsName, started.id)}/task.json`;
    // The runner may still write (its pre-start record, output offsets) while the step waits:
    // an edit read before such a write and renamed after it would itself be the lost update.
    // So the edit is made again until no runner write fell between its read and its rename.
    for (;;) {
      const edited = readTaskFile(env, env.wsName, started.id);
      const seen = edited.revision;
      edited.revision += 1;
      edited.description = 'edited behind the runner';
      fs.writeFileSync(`${file}.edit`, JSON.stringify(edited, null, 2));
      if (readTaskFile(env, env.wsName, started.id).revision !== seen) continue;
      fs.renameSync(`${file}.edit`, file);
      break;
    }
    fs.writeFileSync(`${env.ws}/go`, '');
    const done = await settle(env.engine, started.id, 30_000);
    assert.equal(done.status, 'completed', done.error ?? '');
    assert.equal(done.description, 'edited behind the runner', 'the retry ran from the state on disk');
    // The gate ran (again, or its finished attempt was taken up); the next step ran once.
    const lines = fs.readFileSync(`${env.ws}/attempts`, 'utf8').trim().split('\n');
    assert.equal(lines[0], '1');
    assert.deepEqual(lines.filter((l) => l === 'after'), ['after']);
    assert.equal(lines.at(-1), 'after');
  });
});
