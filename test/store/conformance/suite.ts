// The store conformance suite: what every backend of the Store interface (src/store/store.ts)
// must do, written once against the interface. A backend's test file calls
// `runConformance(name, factory)` with a factory that makes a fresh, empty store; `second()`
// opens another store on the same data, as another process (another daemon) would.
import assert from 'node:assert/strict';
import os from 'node:os';
import { test } from 'node:test';
import type { Store } from '../../../src/store/store.js';
import type { TaskRecord } from '../../../src/store/records.js';
import { expectCode, makeTask } from '../helpers.js';
import { runMemoryConformance } from './memory.js';

export interface Backend {
  store: Store;
  /** Another store on the same data (a second process or daemon). */
  second(): Promise<Store>;
  /** Makes the latest checkpoint of a task unreadable, the way this backend can be damaged. */
  damage(workspace: string, id: string): Promise<void>;
  cleanup(): Promise<void>;
}

export type BackendFactory = () => Promise<Backend>;

const T0 = new Date('2026-11-21T10:15:00.000Z');

async function withBackend(factory: BackendFactory, fn: (b: Backend) => Promise<void>): Promise<void> {
  const b = await factory();
  try {
    await fn(b);
  } finally {
    await b.cleanup();
  }
}

async function addWs(store: Store, name: string): Promise<void> {
  await store.workspaces.create({ name, path: os.tmpdir(), kind: 'path', repo: null, branch: null });
}

async function newTask(store: Store, ws: string, overrides: Partial<TaskRecord> = {}, at?: Date): Promise<TaskRecord> {
  return store.tasks.createTask(makeTask(await store.tasks.newTaskId(at), ws, overrides));
}

export function runConformance(name: string, factory: BackendFactory, options: { timeout?: number } = {}): void {
  const opts = { timeout: options.timeout ?? 60_000 };
  runMemoryConformance(name, (fn) => withBackend(factory, fn), opts);

  test(`${name} store: workspaces are created, read, listed, refused twice and removed`, opts, () =>
    withBackend(factory, async ({ store }) => {
      await addWs(store, 'beta');
      await addWs(store, 'alpha');
      assert.equal((await store.workspaces.get('alpha')).name, 'alpha');
      assert.deepEqual((await store.workspaces.list()).map((w) => w.name), ['alpha', 'beta']);
      await expectCode(() => addWs(store, 'alpha'), 'already_exists');
      await expectCode(() => store.workspaces.get('gamma'), 'not_found');
      await expectCode(() => addWs(store, '../escape'), 'invalid_name');
      await store.workspaces.remove('beta', true);
      assert.deepEqual((await store.workspaces.list()).map((w) => w.name), ['alpha']);
    }),
  );

  test(`${name} store: task CRUD, ids unique across workspaces, revisions grow by one`, opts, () =>
    withBackend(factory, async ({ store, second }) => {
      await addWs(store, 'alpha');
      await addWs(store, 'beta');
      const id1 = await store.tasks.newTaskId(T0);
      assert.equal(id1, 'task-20261121-101500');
      const t = await store.tasks.createTask(makeTask(id1, 'alpha'));
      assert.equal(t.revision, 1);
      const id2 = await store.tasks.newTaskId(T0);
      assert.equal(id2, 'task-20261121-101500-2');
      await expectCode(() => store.tasks.createTask(makeTask(id1, 'beta')), 'already_exists');
      const other = await second();
      await expectCode(() => other.tasks.createTask(makeTask(id1, 'beta')), 'already_exists');
      assert.equal(await other.tasks.newTaskId(T0), 'task-20261121-101500-2');
      assert.equal(await other.tasks.locate(id1), 'alpha');

      const got = await other.tasks.getTask(id1);
      assert.deepEqual(got, t);
      t.description = 'changed';
      await store.tasks.checkpoint(t);
      assert.equal(t.revision, 2);
      assert.equal((await other.tasks.getTask(id1)).description, 'changed');
      const u = await other.tasks.updateTask(id1, (x) => {
        x.status = 'running';
      });
      assert.equal(u.revision, 3);
      assert.equal((await store.tasks.readTask(id1)).task.status, 'running');
      assert.equal((await store.tasks.readTaskAt('alpha', id1)).source, 'primary');

      await expectCode(() => store.tasks.getTask('task-20990101-000000'), 'not_found');
      await expectCode(() => store.tasks.getTask('../../etc'), 'invalid_name');
      await store.tasks.deleteTask(id1);
      await expectCode(() => other.tasks.getTask(id1), 'not_found');
      assert.equal(await store.tasks.locate(id1), undefined);
    }),
  );

  test(`${name} store: a writer holding an older revision gets a conflict, never a silent overwrite`, opts, () =>
    withBackend(factory, async ({ store, second }) => {
      await addWs(store, 'alpha');
      const t = await newTask(store, 'alpha');
      const other = await second();
      const stale = await other.tasks.getTask(t.id);
      t.description = 'first writer';
      await store.tasks.checkpoint(t);
      stale.description = 'second writer';
      const err = await expectCode(() => other.tasks.checkpoint(stale), 'conflict');
      assert.equal(err.retryable, true);
      assert.equal((await store.tasks.getTask(t.id)).description, 'first writer');
      // The same instance is not exempt: an old copy is refused too.
      const old = { ...t, revision: 1 };
      await expectCode(() => store.tasks.checkpoint(old), 'conflict');
      assert.equal((await other.tasks.getTask(t.id)).revision, 2);
    }),
  );

  test(`${name} store: concurrent writers from two stores lose no update`, opts, () =>
    withBackend(factory, async ({ store, second }) => {
      await addWs(store, 'alpha');
      const t = await newTask(store, 'alpha', { inputs: { n: '0' } });
      const other = await second();
      const bump = (s: Store) =>
        s.tasks.updateTask(t.id, (x) => {
          x.inputs['n'] = String(Number(x.inputs['n']) + 1);
        });
      await Promise.all(Array.from({ length: 8 }, (_, i) => bump(i % 2 ? store : other)));
      const end = await store.tasks.getTask(t.id);
      assert.equal(end.inputs['n'], '8');
      assert.equal(end.revision, 9);
      // Two stores creating the same id at once: exactly one wins.
      const id = await store.tasks.newTaskId(new Date('2026-11-22T00:00:00Z'));
      const results = await Promise.allSettled([store.tasks.createTask(makeTask(id, 'alpha')), other.tasks.createTask(makeTask(id, 'alpha'))]);
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, 'one create of a taken id succeeds');
    }),
  );

  test(`${name} store: versioned artifacts never overwrite each other; streams, fixed names, listing`, opts, () =>
    withBackend(factory, async ({ store, second }) => {
      await addWs(store, 'alpha');
      const t = await newTask(store, 'alpha');
      const a = store.artifacts('alpha', t.id);
      const b = (await second()).artifacts('alpha', t.id);
      const names = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).saveVersioned('validation', '.json', `{"n":${i}}`)));
      assert.deepEqual([...names].sort((x, y) => x.localeCompare(y, 'en', { numeric: true })), Array.from({ length: 12 }, (_, i) => `validation.${i + 1}.json`));
      const contents = new Set(await Promise.all(names.map(async (n) => (await a.get(n)).toString())));
      assert.equal(contents.size, 12, 'every version kept its own content');
      await a.save('notes.txt', 'one');
      await a.save('notes.txt', 'two');
      assert.equal((await b.get('notes.txt')).toString(), 'two');
      const bin = Uint8Array.from([0, 255, 1, 254]);
      await a.save('blob.bin', bin);
      assert.deepEqual([...(await b.get('blob.bin'))], [...bin]);

      const s = a.openStream('build.output', '.log', 2);
      assert.equal(await s.finish(), undefined, 'a stream that got nothing makes no artifact');
      const s2 = a.openStream('build.output', '.log', 2);
      s2.write('hello ');
      s2.write('world\n');
      assert.equal(await s2.finish(), 'build.output.2.log');
      const s3 = b.openStream('build.output', '.log', 2);
      s3.write('again');
      assert.equal(await s3.finish(), 'build.output.3.log', 'a taken number is skipped');
      assert.equal((await a.get('build.output.2.log')).toString(), 'hello world\n');

      const listed = (await b.list()).map((x) => x.name);
      assert.deepEqual(listed, ['blob.bin', 'build.output.2.log', 'build.output.3.log', 'notes.txt', ...Array.from({ length: 12 }, (_, i) => `validation.${i + 1}.json`)]);
      const info = (await a.list()).find((x) => x.name === 'notes.txt');
      assert.equal(info?.size, 3);
      assert.ok(!Number.isNaN(Date.parse(info?.modified_at ?? '')));
      await expectCode(() => a.get('missing.txt'), 'not_found');
      await expectCode(() => a.get('../task.json'), 'invalid_name');
      await expectCode(() => a.save('../x', 'no'), 'invalid_name');
    }),
  );

  test(`${name} store: log records read back in append order, filtered, from another store`, opts, () =>
    withBackend(factory, async ({ store, second }) => {
      await addWs(store, 'alpha');
      const t = await newTask(store, 'alpha');
      assert.deepEqual((await store.readLog('alpha', t.id)).records, [], 'an empty log reads as empty');
      for (let i = 0; i < 300; i++) store.appendLog('alpha', t.id, { event: i % 3 ? 'output' : 'step_started', i, text: `line ${i} ünïcode` });
      await store.syncLog('alpha', t.id);
      const other = await second();
      const { records, skipped } = await other.readLog('alpha', t.id);
      assert.deepEqual(skipped, []);
      assert.deepEqual(records.map((r) => r['i']), Array.from({ length: 300 }, (_, i) => i));
      assert.equal(records[5]?.['text'], 'line 5 ünïcode');
      const started = await other.readLog('alpha', t.id, (r) => r.event === 'step_started');
      assert.equal(started.records.length, 100);
      store.closeLog('alpha', t.id);
      store.appendLog('alpha', t.id, { event: 'after_close', i: 300 });
      await store.syncLog('alpha', t.id);
      assert.equal((await other.readLog('alpha', t.id)).records.at(-1)?.event, 'after_close');
    }),
  );

  test(`${name} store: listing is newest first and filters by workspace, status, template, limit`, opts, () =>
    withBackend(factory, async ({ store, second }) => {
      await addWs(store, 'alpha');
      await addWs(store, 'beta');
      const made: TaskRecord[] = [];
      for (let i = 0; i < 6; i++) {
        made.push(await newTask(store, i % 2 ? 'beta' : 'alpha', { status: i < 2 ? 'completed' : 'pending', template: i % 3 ? 'build' : 'deploy' }, new Date(T0.getTime() + i * 1000)));
      }
      const other = await second();
      const newestFirst = [...made].reverse().map((t) => t.id);
      assert.deepEqual((await other.tasks.listTaskIds()).map((x) => x.id), newestFirst);
      assert.deepEqual((await other.tasks.listTasks()).map((t) => t.id), newestFirst);
      assert.deepEqual((await other.tasks.listTasks({ workspace: 'beta' })).map((t) => t.id), newestFirst.filter((_, i) => made[5 - i]!.workspace === 'beta'));
      assert.deepEqual((await other.tasks.listTasks({ status: 'completed' })).map((t) => t.id), [made[1]!.id, made[0]!.id]);
      assert.deepEqual((await other.tasks.listTasks({ status: ['completed', 'pending'], limit: 2 })).map((t) => t.id), newestFirst.slice(0, 2));
      assert.deepEqual((await other.tasks.listTasks({ template: 'deploy' })).map((t) => t.id), [made[3]!.id, made[0]!.id]);
      assert.deepEqual(await other.tasks.workspaceNames(), ['alpha', 'beta']);

      // The index: the same answers from summaries.
      const index = other.openIndex();
      const scan = await index.load();
      assert.equal(scan.tasks, 6);
      assert.deepEqual(index.list({}).map((s) => s.id), newestFirst);
      assert.deepEqual(index.list({ workspace: 'alpha', status: 'pending' }).map((s) => s.id), [made[4]!.id, made[2]!.id]);
      assert.deepEqual(index.counts(), { completed: 2, pending: 4 });
      const changed = await store.tasks.updateTask(made[2]!.id, (x) => {
        x.status = 'running';
      });
      index.put(changed, other.tasks.writtenSignature(changed.id));
      await index.catchUp?.();
      assert.deepEqual(index.counts(), { completed: 2, pending: 3, running: 1 });
      await store.tasks.deleteTask(made[0]!.id);
      index.remove(made[0]!.id, 'alpha');
      await index.catchUp?.();
      assert.equal(index.list({}).length, 5);
    }),
  );

  test(`${name} store: damaged or missing data is reported, never returned as a task, never fatal to listing`, opts, () =>
    withBackend(factory, async ({ store, damage }) => {
      await addWs(store, 'alpha');
      const good = await newTask(store, 'alpha');
      const bad = await newTask(store, 'alpha');
      bad.description = 'second checkpoint';
      await store.tasks.checkpoint(bad);
      await damage('alpha', bad.id);
      let read: { source: string; revision: number } | undefined;
      try {
        const r = await store.tasks.readTask(bad.id);
        read = { source: r.source, revision: r.task.revision };
      } catch (err) {
        assert.equal((err as { code?: string }).code, 'corrupt');
      }
      if (read) assert.deepEqual(read, { source: 'backup', revision: 1 }, 'only the previous good checkpoint may stand in');
      const listed = await store.tasks.listTasks();
      assert.ok(listed.some((t) => t.id === good.id), 'the readable task is still listed');
      for (const t of listed) assert.equal(typeof t.status, 'string');
      await expectCode(() => store.tasks.updateTask('task-20990101-000000', () => undefined), 'not_found');
      await expectCode(() => store.tasks.deleteTask('task-20990101-000000'), 'not_found');
      await expectCode(() => store.workspaces.remove('nope', false), 'not_found');
    }),
  );
}
