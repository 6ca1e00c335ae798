// A writer SIGKILLed at a random moment of a tight checkpoint loop, again and again. Whatever
// the moment: task.json parses, its revision never goes backwards, sweep leaves no temp
// file, and the next writer gets the dead writer's lock at once (the store breaks locks
// whose recorded holder is dead) instead of waiting for it to go stale.
import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { decodeTask } from '../../src/store/task-codec.js';
import { Fixture, addTask, addWorkspace, reap, tempHome } from './helpers.js';

const ROUNDS = 60;
const MODES = ['checkpoint', 'lease', 'update'] as const;

test(`a writer SIGKILLed mid-checkpoint ${ROUNDS} times never corrupts task.json nor blocks the next writer`, { timeout: 120_000 }, async () => {
  const warnings: string[] = [];
  const h = await tempHome({ warn: (m) => warnings.push(m) });
  const fixtures: Fixture[] = [];
  try {
    await addWorkspace(h.store, 'alpha');
    const created = await addTask(h.store, 'alpha');
    const id = created.id;
    const dir = h.store.paths.taskDir('alpha', id);
    const file = h.store.paths.taskFile('alpha', id);
    let lastRevision = created.revision;
    const seenModes = new Set<string>();

    for (let round = 0; round < ROUNDS; round++) {
      const mode = MODES[round % MODES.length]!;
      seenModes.add(mode);
      const f = new Fixture('store-checkpoint-loop', [h.home, id, mode]);
      fixtures.push(f);
      await f.waitForLine('started');
      // Any moment will do: the assertions below must hold for all of them.
      await sleep(Math.random() * 30);
      const exit = await f.kill();
      assert.equal(exit.signal, 'SIGKILL', `round ${round}: the writer was killed mid-loop, not failed: ${f.stderr}`);

      // task.json itself (not the backup) is a whole checkpoint.
      const onDisk = decodeTask(fs.readFileSync(file, 'utf8'), file);
      assert.ok(onDisk.revision >= lastRevision, `round ${round}: revision went from ${lastRevision} back to ${onDisk.revision}`);
      assert.ok(onDisk.revision > lastRevision, `round ${round}: the writer checkpointed at least once before it was killed`);
      const bakFile = h.store.paths.taskBackup('alpha', id);
      if (fs.existsSync(bakFile)) {
        const bak = decodeTask(fs.readFileSync(bakFile, 'utf8'), bakFile);
        assert.ok(bak.revision <= onDisk.revision, `round ${round}: the backup is never newer than task.json`);
      }

      await h.store.tasks.sweep('alpha', id);
      assert.deepEqual(fs.readdirSync(dir).filter((n) => n.includes('.tmp-')), [], `round ${round}: sweep removed the temp files`);

      // The parent reads and checkpoints: the dead writer's lock must not stand in the way.
      const task = await h.store.tasks.getTask(id);
      assert.equal(task.revision, onDisk.revision);
      task.inputs['parent'] = String(round);
      await h.store.tasks.checkpoint(task);
      assert.equal(task.revision, onDisk.revision + 1);
      lastRevision = task.revision;
      const after = decodeTask(fs.readFileSync(file, 'utf8'), file);
      assert.equal(after.revision, lastRevision);
      assert.equal(after.inputs['parent'], String(round));
      // Nothing of the dead writer is left: no lock, no lock record, no temp file.
      assert.deepEqual(fs.readdirSync(dir).sort(), ['task.json', 'task.json.bak'], `round ${round}: leftovers in the task directory`);
    }
    assert.equal(seenModes.size, MODES.length);
    assert.deepEqual(warnings, [], 'task.json never had to be recovered from the backup');
  } finally {
    await reap(fixtures);
    await h.cleanup();
  }
});
