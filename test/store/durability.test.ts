// Durability gaps that no crash short of a power cut shows, checked at the system-call
// boundary instead: which file an fdatasync really reaches, whether a failed sync is
// reported, which directories are synced after a rename, and that task.json.bak is always a
// durable checkpoint. fs calls are wrapped (the module object is shared) and restored after.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { quarantine } from '../../src/store/repair.js';
import { TaskLogs } from '../../src/store/task-log.js';
import { readTaskFile, run, taskDir, withEnv, writeTemplate } from '../engine/helpers.js';
import { addTask, addWorkspace, tempHome } from './helpers.js';

type Fdatasync = typeof fs.fdatasync;

/** The file an open descriptor refers to now. */
function fdPath(fd: number): string | undefined {
  try {
    return fs.readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
}

test('a log closed (least recently used) while its sync runs: the sync reaches that log, not a reused descriptor', async () => {
  const h = await tempHome();
  const original: Fdatasync = fs.fdatasync;
  const reached: Array<string | undefined> = [];
  try {
    const logs = new TaskLogs({ maxOpen: 1 });
    const a = path.join(h.root, 'a.log');
    const b = path.join(h.root, 'b.log');
    logs.append(a, { event: 'one' });
    // The sync is queued to the thread pool; model it starting a moment later.
    (fs as { fdatasync: Fdatasync }).fdatasync = ((fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
      setImmediate(() => {
        reached.push(fdPath(fd));
        original(fd, cb);
      });
    }) as Fdatasync;
    const syncing = logs.sync(a).then(
      () => 'ok',
      (err: unknown) => `error: ${(err as Error).message}`,
    );
    logs.append(b, { event: 'two' }); // maxOpen 1: closes a.log, opens b.log (often on a's descriptor)
    const outcome = await syncing;
    (fs as { fdatasync: Fdatasync }).fdatasync = original;
    assert.equal(outcome, 'ok');
    assert.deepEqual(reached, [a], 'the sync reported for a.log reached a.log');
    logs.closeAll();
  } finally {
    (fs as { fdatasync: Fdatasync }).fdatasync = original;
    await h.cleanup();
  }
});

test("a streamed output artifact whose sync fails is an error, never a name recorded for data that may not be there", async () => {
  const h = await tempHome();
  const original: Fdatasync = fs.fdatasync;
  try {
    await addWorkspace(h.store, 'alpha', h.root);
    const task = await addTask(h.store, 'alpha');
    const stream = h.store.artifacts('alpha', task.id).openStream('build.output', '.log', 1);
    stream.write('hello\n');
    (fs as { fdatasync: Fdatasync }).fdatasync = ((_fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
      setImmediate(() => cb(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' })));
    }) as Fdatasync;
    await assert.rejects(stream.finish(), (err: Error & { code?: string }) => err.code === 'storage' && /EIO/.test(err.message));
  } finally {
    (fs as { fdatasync: Fdatasync }).fdatasync = original;
    await h.cleanup();
  }
});

/** Records the paths of directories fsynced while `fn` runs. */
async function dirsSynced(fn: () => Promise<unknown>): Promise<string[]> {
  const original = fs.fsync;
  const seen: string[] = [];
  (fs as { fsync: typeof fs.fsync }).fsync = ((fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
    const p = fdPath(fd);
    if (p && fs.statSync(p).isDirectory()) seen.push(p);
    original(fd, cb);
  }) as typeof fs.fsync;
  try {
    await fn();
  } finally {
    (fs as { fsync: typeof fs.fsync }).fsync = original;
  }
  return seen;
}

test('deleting a task and quarantining one sync the directories their renames changed', async () => {
  const h = await tempHome();
  try {
    await addWorkspace(h.store, 'alpha', h.root);
    const gone = await addTask(h.store, 'alpha');
    const tasksDir = fs.realpathSync(h.store.paths.tasksDir('alpha'));
    assert.ok((await dirsSynced(() => h.store.tasks.deleteTask(gone.id))).includes(tasksDir), 'delete: the tasks directory was not synced');
    const bad = await addTask(h.store, 'alpha');
    const synced = await dirsSynced(() => quarantine(h.store.paths, 'alpha', bad.id));
    assert.ok(synced.includes(tasksDir), 'quarantine: the tasks directory was not synced');
    assert.ok(synced.includes(fs.realpathSync(h.store.paths.quarantineDir)), 'quarantine: the quarantine directory was not synced');
  } finally {
    await h.cleanup();
  }
});

test('task.json.bak is the last durable checkpoint, never the un-synced pre-spawn record of a shell step', async () => {
  await withEnv({}, async (env) => {
    writeTemplate(env, { name: 'one', steps: [{ name: 'only', type: 'shell', run: 'true' }] });
    const done = await run(env, 'one');
    assert.equal(done.status, 'completed');
    const bak = JSON.parse(fs.readFileSync(path.join(taskDir(env, env.wsName, done.id), 'task.json.bak'), 'utf8')) as ReturnType<typeof readTaskFile>;
    assert.equal(bak.steps[0]!.process, null, `the backup (revision ${bak.revision}) is the pre-spawn checkpoint`);
    assert.equal(bak.status, 'pending');
  });
});
