// A dead predecessor that had this process's pid (PID 1 in a container restarted by its
// supervisor; pid reuse anywhere). Its lock, its claims and its temp files must be seen as
// dead by their start time, never taken as ours: a daemon that believed its own pid proved
// the holder alive said "already running" and exited 0, so Restart=on-failure left it down.
// The predecessor's records are built on disk with our pid and another start time.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { acquireHomeLock } from '../../src/daemon/home-lock.js';
import { sweepTempFiles } from '../../src/store/atomic.js';
import { lockTaskDir } from '../../src/store/task-lock.js';
import { processStartTicks } from '../../src/util/proc.js';
import { addTask, addWorkspace, tempHome } from './helpers.js';

const myTicks = processStartTicks(process.pid);
const predecessor = { pid: process.pid, start_ticks: (myTicks ?? 0) + 977 };

test('the home lock of a dead predecessor with our pid is broken', { skip: myTicks === null ? 'no /proc start times here' : false }, async () => {
  const h = await tempHome();
  try {
    const lockPath = path.join(h.home, 'daemon.lock');
    const pidFile = path.join(h.home, 'daemon.pid');
    fs.mkdirSync(lockPath);
    const ownerFile = path.join(h.home, 'daemon.json');
    fs.writeFileSync(pidFile, `${predecessor.pid}\n`);
    fs.writeFileSync(ownerFile, JSON.stringify(predecessor) + '\n');
    fs.writeFileSync(`${lockPath}.claim-${process.pid}`, JSON.stringify(predecessor));
    const got = await acquireHomeLock(h.home, lockPath, { pid: pidFile, owner: ownerFile }, { pid: process.pid, start_ticks: myTicks });
    assert.equal(got.ok, true, 'the predecessor was taken for a live daemon');
    if (got.ok) await got.lock.release();
  } finally {
    await h.cleanup();
  }
});

test('a task lock held by a dead predecessor with our pid is broken at once', { skip: myTicks === null ? 'no /proc start times here' : false }, async () => {
  const h = await tempHome();
  try {
    await addWorkspace(h.store, 'alpha', h.root);
    const task = await addTask(h.store, 'alpha');
    const dir = h.store.paths.taskDir('alpha', task.id);
    fs.mkdirSync(path.join(dir, 'task.lock'));
    fs.writeFileSync(path.join(dir, 'task.lock.owner'), JSON.stringify(predecessor));
    fs.writeFileSync(path.join(dir, `task.lock.owner.claim-${process.pid}-424242`), JSON.stringify(predecessor));
    const lock = await lockTaskDir(dir, { waitMs: 0 });
    assert.equal(lock.compromised, false);
    await lock.release();
    // And a lock this process really holds is never broken by a second taker here.
    const held = await lockTaskDir(dir, { waitMs: 0 });
    await assert.rejects(lockTaskDir(dir, { waitMs: 0 }), (err: Error & { code?: string }) => err.code === 'locked');
    await held.release();
  } finally {
    await h.cleanup();
  }
});

test('temp files with our pid made before this process started are swept; ours are kept', async () => {
  const h = await tempHome();
  try {
    const dir = path.join(h.root, 'd');
    fs.mkdirSync(dir);
    const old = path.join(dir, `task.json.tmp-${process.pid}-7`);
    const mine = path.join(dir, `task.json.tmp-${process.pid}-8`);
    fs.writeFileSync(old, 'x');
    fs.writeFileSync(mine, 'y');
    const before = new Date(performance.timeOrigin - 3_600_000);
    fs.utimesSync(old, before, before);
    assert.deepEqual(await sweepTempFiles(dir), [path.basename(old)]);
    assert.ok(fs.existsSync(mine));
  } finally {
    await h.cleanup();
  }
});
