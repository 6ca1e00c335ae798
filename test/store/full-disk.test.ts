// A full disk (a 256 KiB tmpfs): a checkpoint fails with a storage error that says so and
// leaves the previous task.json intact; a log append throws instead of crashing; once space
// is freed, both work again. Needs root to mount the tmpfs; skipped (with the reason) otherwise.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { errnoCode } from '../../src/errors.js';
import { decodeTask } from '../../src/store/task-codec.js';
import { FsStore } from '../../src/store/fs-store.js';
import { addTask, addWorkspace, expectCode } from './helpers.js';

/** Writes to `file` until the filesystem is full, down to the last byte. */
function fillDisk(file: string): void {
  const fd = fs.openSync(file, 'w', 0o600);
  try {
    for (const chunk of [64 * 1024, 4096, 256, 1]) {
      const buf = Buffer.alloc(chunk, 0x61);
      for (;;) {
        try {
          if (fs.writeSync(fd, buf) < chunk) break;
        } catch (err) {
          if (errnoCode(err) === 'ENOSPC') break;
          throw err;
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

test('full disk: checkpoint and log append fail with storage errors and lose nothing', { timeout: 60_000 }, async (t) => {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    t.skip('not running as root: cannot mount a small tmpfs to fill');
    return;
  }
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'atlas-store-fulldisk-'));
  const mnt = path.join(root, 'disk');
  fs.mkdirSync(mnt);
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'tmpfs', mnt], { encoding: 'utf8', timeout: 10_000 });
  if (mount.status !== 0) {
    fs.rmSync(root, { recursive: true, force: true });
    t.skip(`cannot mount a tmpfs: ${(mount.stderr || mount.error?.message || `exit ${mount.status}`).trim()}`);
    return;
  }
  const store = new FsStore(path.join(mnt, 'home'));
  try {
    await store.init();
    await addWorkspace(store, 'alpha', root);
    const task = await addTask(store, 'alpha');
    task.status = 'running';
    await store.tasks.checkpoint(task);
    assert.equal(task.revision, 2);
    const id = task.id;
    const file = store.paths.taskFile('alpha', id);
    const before = fs.readFileSync(file);
    store.appendLog('alpha', id, { event: 'step.started', step: 'compile' });
    await store.syncLog('alpha', id);

    const filler = path.join(mnt, 'filler');
    fillDisk(filler);

    // The checkpoint fails, says why, and task.json is untouched.
    task.current_step = 1;
    task.description = 'x'.repeat(8192);
    const err = await expectCode(() => store.tasks.checkpoint(task), 'storage');
    assert.match(err.message, /disk is full/);
    assert.match(err.message, /task\.json/);
    assert.equal(task.revision, 2, 'a failed checkpoint does not advance the revision');
    assert.deepEqual(fs.readFileSync(file), before, 'task.json is intact');
    assert.equal(decodeTask(fs.readFileSync(file, 'utf8'), file).revision, 2);
    assert.equal((await store.tasks.getTask(id)).revision, 2);
    assert.deepEqual(fs.readdirSync(store.paths.taskDir('alpha', id)).filter((n) => n.includes('.tmp-') || n.startsWith('task.lock')), []);
    // updateTask fails the same way.
    await expectCode(() => store.tasks.updateTask(id, (t2) => { t2.description = 'y'.repeat(8192); }), 'storage');
    assert.deepEqual(fs.readFileSync(file), before);

    // Log appends fill the last page of the log, then throw a storage error; never crash.
    let logErr: unknown;
    for (let i = 0; i < 10_000 && logErr === undefined; i++) {
      try {
        store.appendLog('alpha', id, { event: 'step.output', step: 'compile', line: `line ${i} ${'o'.repeat(100)}` });
      } catch (e) {
        logErr = e;
      }
    }
    assert.ok(logErr instanceof Error, 'an append on a full disk throws');
    await expectCode(() => {
      throw logErr;
    }, 'storage');
    assert.match((logErr as Error).message, /disk is full/);

    // Free the space: everything works again, from the state before the failures.
    fs.rmSync(filler);
    await store.tasks.checkpoint(task);
    assert.equal(task.revision, 3);
    const now = decodeTask(fs.readFileSync(file, 'utf8'), file);
    assert.equal(now.revision, 3);
    assert.equal(now.current_step, 1);
    assert.deepEqual(fs.readFileSync(store.paths.taskBackup('alpha', id)), before, 'the backup is the last good checkpoint');
    store.appendLog('alpha', id, { event: 'step.finished', step: 'compile' });
    await store.syncLog('alpha', id);
    const log = await store.readLog('alpha', id);
    assert.equal(log.records[0]?.event, 'step.started');
    assert.equal(log.records.at(-1)?.event, 'step.finished', 'the log is readable past the failed append');
    assert.ok(log.skipped.length <= 1, 'at most the one record cut by the full disk is skipped');
  } finally {
    await store.close();
    const um = spawnSync('umount', [mnt], { encoding: 'utf8', timeout: 10_000 });
    if (um.status !== 0) spawnSync('umount', ['-l', mnt], { timeout: 10_000 });
    fs.rmSync(root, { recursive: true, force: true });
  }
});
