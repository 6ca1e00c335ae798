// Backups of the PostgreSQL store (DESIGN §14) on a real database: a backup made while four
// tasks run steps restores into a fresh database, where every task is one of its checkpoints
// at backup time (steps finished then are never run again) and a daemon there finishes the
// unfinished ones; the workspace memory comes along. A truncated backup is refused and changes
// nothing; a database that holds tasks is refused without --force, and --force renames its
// schema aside instead of dropping it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import type { TaskRecord } from '../../src/store/records.js';
import type { MemoryEntry } from '../../src/store/memory.js';
import { TestHome, expectExit } from '../helpers/daemon.js';
import { fileDatabase, freshDatabase, type TestDatabase } from '../helpers/pg.js';

const STEPS = 6;
const WS = ['a', 'b', 'c', 'd'];

function template(gate: string): string {
  const run = (i: number) => (i === 3 ? `while [ ! -f '${gate}' ]; do sleep 0.05; done; echo step-3` : `echo step-${i}`);
  return `name: steps\nsteps:\n${Array.from({ length: STEPS }, (_, i) => `  - name: s${i + 1}\n    type: shell\n    run: "${run(i + 1)}"\n`).join('')}`;
}

function config(url: string): string {
  return `store: ${url}\nworkspaces: [${WS.join(', ')}]\nstep_defaults:\n  kill_grace: 200ms\n`;
}

async function tasksIn(url: string): Promise<Map<string, TaskRecord & { owner: string | null }>> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const rows = (await c.query<{ data: string; owner: string | null }>('SELECT data, owner FROM atlas.tasks')).rows;
    return new Map(rows.map((r) => {
      const t = JSON.parse(r.data) as TaskRecord;
      return [t.id, { ...t, owner: r.owner }];
    }));
  } finally {
    await c.end();
  }
}

const db = await fileDatabase('pgbackup');
describe('backup and restore of the PostgreSQL store', { skip: db.skip }, () => {
  let h1: TestHome;
  let h2: TestHome;
  let target: TestDatabase;
  let file: string;
  const ids: string[] = [];
  const finals = new Map<string, TaskRecord>();

  before(async () => {
    target = await freshDatabase('pgrestore');
    h1 = new TestHome();
    h2 = new TestHome();
    const gate = path.join(h1.root, 'gate');
    h1.writeTemplate('steps', template(gate));
    fs.writeFileSync(path.join(h1.home, 'config.yaml'), config(db.url));
    fs.mkdirSync(h2.home, { recursive: true });
    fs.writeFileSync(path.join(h2.home, 'config.yaml'), config(target.url));
    await h1.startDaemon();
    await h1.createWorkspaces(WS);
    await h1.ok(['memory', 'add', '-w', 'a', 'kept in the database', '--kind', 'decision']);
    const c = await h1.client();
    for (const ws of WS) ids.push(((await c.call('task.start', { template: 'steps', workspace: ws })) as TaskRecord).id);
    for (const id of ids) await h1.waitTask(id, 'step 3 running', (t) => t.step_results.length === 2 && t.steps[2]?.status === 'running', 60_000);
    file = path.join(h1.root, 'pg.tar.gz');
    const made = expectExit(await h1.cli(['backup', file]), 0);
    assert.match(made.stderr, /backup of the PostgreSQL store written/);
    fs.writeFileSync(gate, '');
    for (const id of ids) finals.set(id, await h1.waitSettled(id, 60_000));
    await h1.stopDaemon();
  });
  after(async () => {
    await h2?.dispose();
    await h1?.dispose();
    await target?.drop();
  });

  test('--verify names a PostgreSQL backup; a truncated one is refused and restores nothing', async () => {
    const ok = expectExit(await h1.cli(['backup', '--verify', file]), 0);
    assert.match(ok.stderr, /intact: .*4 tasks, .*from the PostgreSQL store, schema atlas/);
    const cut = path.join(h1.root, 'cut.tar.gz');
    const bytes = fs.readFileSync(file);
    fs.writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length * 0.7)));
    const r = expectExit(await h2.cli(['restore', cut]), 7);
    assert.match(r.stderr, /damaged: .*truncated/);
    assert.equal((await tasksIn(target.url).catch(() => new Map())).size, 0);
  });

  test('restored tasks are checkpoints from backup time; a daemon of the new database finishes them', async () => {
    const r = expectExit(await h2.cli(['restore', file, '--json']), 0);
    const out = JSON.parse(r.stdout) as { store: string; tasks: number; rerun: string[] };
    assert.equal(out.store, 'postgres');
    assert.equal(out.tasks, ids.length);
    assert.deepEqual([...out.rerun].sort(), [...ids].sort());
    const restored = await tasksIn(target.url);
    assert.deepEqual([...restored.keys()].sort(), [...ids].sort());
    for (const [id, t] of restored) {
      const final = finals.get(id)!;
      assert.equal(t.owner, null, `${id} kept a lease of the old database`);
      assert.notEqual(t.status, 'completed');
      assert.deepEqual(t.step_results, final.step_results.slice(0, t.step_results.length), `${id}: results differ from every checkpoint`);
      assert.ok(t.step_results.length >= 2);
      for (const s of t.steps) if (s.status === 'running') assert.equal(s.process, null, 'a running step kept its process record');
    }
    // A database that holds tasks is refused without --force.
    const again = expectExit(await h2.cli(['restore', file]), 5);
    assert.match(again.stderr, /schema atlas .* is not empty \(4 tasks.*--force/);

    await h2.startDaemon();
    for (const id of ids) {
      const t = await h2.waitSettled(id, 60_000);
      assert.equal(t.status, 'completed', `${id} ended ${t.status}: ${t.error ?? ''}`);
      assert.equal(t.steps.filter((s) => s.status === 'completed').length, STEPS);
      const before = restored.get(id)!;
      assert.deepEqual(t.step_results.slice(0, before.step_results.length), before.step_results, `${id}: a step finished at backup time ran again`);
    }
    const memory = await h2.json<MemoryEntry[]>(['memory', 'list', '-w', 'a']);
    assert.deepEqual(memory.map((e) => [e.kind, e.text]), [['decision', 'kept in the database']]);
    // New writes take ids past the restored ones (the sequences came along).
    assert.equal(Number((await h2.json<MemoryEntry>(['memory', 'add', '-w', 'a', 'after'])).id), Number(memory[0]!.id) + 1);
  });

  test('--force renames the schema aside (refused while a daemon uses it)', async () => {
    const live = expectExit(await h2.cli(['restore', file, '--force']), 5);
    assert.match(live.stderr, /daemons still use schema atlas/);
    await h2.stopDaemon();
    const r = expectExit(await h2.cli(['restore', file, '--force', '--json']), 0);
    const out = JSON.parse(r.stdout) as { moved_aside: string; tasks: number };
    assert.equal(out.tasks, ids.length);
    assert.match(out.moved_aside, /^atlas_before_restore_\d+$/);
    const c = new pg.Client({ connectionString: target.url });
    await c.connect();
    try {
      const kept = (await c.query<{ n: string }>(`SELECT count(*) AS n FROM "${out.moved_aside}".tasks WHERE data::json->>'status' = 'completed'`)).rows[0]!.n;
      assert.equal(Number(kept), ids.length, 'the schema moved aside lost its tasks');
    } finally {
      await c.end();
    }
    assert.equal([...(await tasksIn(target.url)).values()].filter((t) => t.status === 'completed').length, 0);
  });
});
