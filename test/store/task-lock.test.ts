// Task locks left by crashed writers, built directly on disk. A writer killed at any point
// of taking or releasing a lock leaves its claim beside the lock, so the next writer breaks
// the lock at once; a lock whose holder lives, or that nobody can be shown to hold, is
// never broken.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { lockTaskDir } from '../../src/store/task-lock.js';
import { processStartTicks } from '../../src/util/proc.js';
import { addTask, addWorkspace, deadPid, expectCode, tempHome, within } from './helpers.js';

function leaveLock(dir: string, parts: { lock?: boolean; claimPid?: number; ownerPid?: number }): void {
  if (parts.lock) fs.mkdirSync(path.join(dir, 'task.lock'));
  if (parts.claimPid !== undefined) {
    const rec = JSON.stringify({ pid: parts.claimPid, start_ticks: processStartTicks(parts.claimPid) });
    fs.writeFileSync(path.join(dir, `task.lock.owner.claim-${parts.claimPid}-1`), rec, { mode: 0o600 });
  }
  if (parts.ownerPid !== undefined) {
    fs.writeFileSync(path.join(dir, 'task.lock.owner'), JSON.stringify({ pid: parts.ownerPid, start_ticks: null }), { mode: 0o600 });
  }
}

const CRASH_POINTS: Array<[string, (dead: number) => { lock?: boolean; claimPid?: number; ownerPid?: number }]> = [
  ['after claiming, before taking the lock', (dead) => ({ claimPid: dead })],
  ['after taking the lock, before recording itself', (dead) => ({ lock: true, claimPid: dead })],
  ['while holding the lock', (dead) => ({ lock: true, claimPid: dead, ownerPid: dead })],
  ['while releasing, after forgetting itself', (dead) => ({ lock: true, claimPid: dead })],
  ['holding a lock taken by an older atlas (owner record only)', (dead) => ({ lock: true, ownerPid: dead })],
];

for (const [when, parts] of CRASH_POINTS) {
  test(`a writer killed ${when}: the next writer gets the lock at once`, { timeout: 30_000 }, async () => {
    const h = await tempHome();
    try {
      await addWorkspace(h.store, 'alpha');
      const task = await addTask(h.store, 'alpha');
      const dir = h.store.paths.taskDir('alpha', task.id);
      leaveLock(dir, parts(await deadPid()));
      // One try only: a lock that had to go stale would fail here.
      const lock = await lockTaskDir(dir, { waitMs: 0 });
      await lock.release();
      // A claim with no lock left behind it is cleared by sweep (recovery runs it on start).
      await h.store.tasks.sweep('alpha', task.id);
      assert.deepEqual(fs.readdirSync(dir).sort(), ['task.json'], 'the dead writer left nothing behind');
      // And through the store's normal write path.
      leaveLock(dir, parts(await deadPid()));
      const updated = await h.store.tasks.updateTask(task.id, (t) => {
        t.description = 'after the crash';
      });
      assert.equal(updated.revision, 2);
      await h.store.tasks.sweep('alpha', task.id);
      assert.deepEqual(fs.readdirSync(dir).sort(), ['task.json', 'task.json.bak']);
    } finally {
      await h.cleanup();
    }
  });
}

test('a lock whose holder is alive is not broken; it is free once the holder is dead', { timeout: 30_000 }, async () => {
  const h = await tempHome();
  const holder = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  const gone = new Promise((r) => holder.once('exit', r));
  try {
    await addWorkspace(h.store, 'alpha');
    const task = await addTask(h.store, 'alpha');
    const dir = h.store.paths.taskDir('alpha', task.id);
    // The live holder's claim, plus a dead contender's leftover claim.
    leaveLock(dir, { lock: true, claimPid: holder.pid!, ownerPid: holder.pid! });
    leaveLock(dir, { claimPid: await deadPid() });
    const err = await expectCode(() => lockTaskDir(dir, { waitMs: 0 }), 'locked');
    assert.equal(err.retryable, true);
    assert.ok(fs.existsSync(path.join(dir, 'task.lock')), 'the live holder keeps its lock');
    assert.ok(fs.existsSync(path.join(dir, `task.lock.owner.claim-${holder.pid}-1`)));
    // A sweep does not take it away either.
    await h.store.tasks.sweep('alpha', task.id);
    assert.ok(fs.existsSync(path.join(dir, 'task.lock')));

    holder.kill('SIGKILL');
    await within(10_000, 'the holder to die', gone);
    const lock = await lockTaskDir(dir, { waitMs: 0 });
    await lock.release();
    assert.deepEqual(fs.readdirSync(dir).sort(), ['task.json']);
  } finally {
    if (holder.exitCode === null && holder.signalCode === null) holder.kill('SIGKILL');
    await h.cleanup();
  }
});

test('a lock with no record of its holder is left to go stale, never broken on a guess', { timeout: 30_000 }, async () => {
  const h = await tempHome();
  try {
    await addWorkspace(h.store, 'alpha');
    const task = await addTask(h.store, 'alpha');
    const dir = h.store.paths.taskDir('alpha', task.id);
    leaveLock(dir, { lock: true });
    await expectCode(() => lockTaskDir(dir, { waitMs: 0 }), 'locked');
    assert.ok(fs.existsSync(path.join(dir, 'task.lock')));
  } finally {
    await h.cleanup();
  }
});

test('the lock of a deleted task reports not_found; a held lock serialises writers in one process', { timeout: 30_000 }, async () => {
  const h = await tempHome();
  try {
    await addWorkspace(h.store, 'alpha');
    const task = await addTask(h.store, 'alpha');
    const dir = h.store.paths.taskDir('alpha', task.id);
    const first = await lockTaskDir(dir, { waitMs: 0 });
    // Our own live lock is never mistaken for a dead one.
    await expectCode(() => lockTaskDir(dir, { waitMs: 0 }), 'locked');
    const second = lockTaskDir(dir, { waitMs: 5_000 });
    await first.release();
    await (await within(10_000, 'the second lock', second)).release();
    assert.deepEqual(fs.readdirSync(dir).sort(), ['task.json']);

    await h.store.tasks.deleteTask(task.id);
    await expectCode(() => lockTaskDir(dir, { waitMs: 0 }), 'not_found');
    assert.equal(fs.existsSync(dir), false);
  } finally {
    await h.cleanup();
  }
});
