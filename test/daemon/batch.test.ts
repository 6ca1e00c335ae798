// Batches (DESIGN §13): `atlas start --batch FILE.yaml` creates a graph of tasks all or
// nothing. A good file runs in dependency order (--follow shows every task and exits 0);
// a cycle, an `after` naming a missing key, an unknown template, an unknown field each are
// refused with file:line (and the cycle's keys), and nothing is created.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { BatchResult } from '../../src/engine/batch.js';
import { TestHome, assertGone, expectExit, parseStdout } from '../helpers/daemon.js';

describe('batches', () => {
  let h: TestHome;

  before(async () => {
    h = new TestHome({ templates: ['quick'] });
    await h.startDaemon();
    await h.createWorkspaces(['wa', 'wb']);
  });
  after(async () => {
    await h.dispose();
  });

  const write = (name: string, text: string) => {
    const f = path.join(h.root, name);
    fs.writeFileSync(f, text);
    return f;
  };

  const refused = async (name: string, text: string, expected: RegExp[]) => {
    const f = write(name, text);
    const c = await h.client();
    try {
      await assert.rejects(c.call('task.batch', { file: f }), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'invalid_input', err.message);
        for (const re of expected) assert.match(err.message, re);
        return true;
      });
    } finally {
      c.close();
    }
    assert.equal((await h.listTasks()).length, 0, `${name}: something was created`);
  };

  test('a cycle is refused naming its keys, with file:line; nothing is created', async () => {
    await refused(
      'cycle.yaml',
      `tasks:
  - { key: a, template: quick, workspace: wa, after: [c] }
  - key: b
    template: quick
    workspace: wb
    after: [a]
  - key: c
    template: quick
    workspace: wa
    after: [b]
`,
      [/cycle\.yaml:2: the tasks form a cycle: a -> c -> b -> a/],
    );
  });

  test('an after naming a missing key is refused at its line; so is an unknown field', async () => {
    await refused(
      'missing.yaml',
      `tasks:
  - key: a
    template: quick
    workspace: wa
  - key: b
    template: quick
    workspace: wb
    after:
      - a
      - nope
  - key: c
    template: quick
    workspace: wb
    depends_on: [a]
`,
      [/missing\.yaml:10: b\.after: unknown key 'nope'/, /missing\.yaml:14: tasks\[2\]: unknown key 'depends_on'/],
    );
  });

  test('a bad template is refused with file:line through the CLI (exit 2); nothing is created', async () => {
    const f = write(
      'badtemplate.yaml',
      `tasks:
  - key: a
    template: quick
    workspace: wa
  - key: b
    template: no-such-template
    workspace: wb
    after: [a]
`,
    );
    const r = expectExit(await h.cli(['start', '--batch', f]), 2);
    assert.match(r.stderr, /badtemplate\.yaml:5: b: .*no-such-template/);
    assert.equal((await h.listTasks()).length, 0);
  });

  test('a good batch: created in one go, run in dependency order; --follow shows every task', async () => {
    const f = write(
      'good.yaml',
      `tasks:
  - key: first
    template: quick
    workspace: wa
    labels: { kind: batch }
  - { key: left, template: quick, workspace: wa, after: [first] }
  - { key: right, template: quick, workspace: wb, after: [first] }
  - { key: last, template: quick, workspace: wb, after: [left, right], description: the end }
`,
    );
    const r = expectExit(await h.cli(['start', '--batch', f, '--follow'], { timeoutMs: 120_000 }), 0);
    for (const key of ['first', 'left', 'right', 'last']) assert.match(r.stdout, new RegExp(`^${key} +task-\\S+ +completed`, 'm'), r.stdout);
    assert.match(r.stderr, /all completed: 4 completed/);
    const tasks = await h.listTasks();
    assert.equal(tasks.length, 4);
    const byDesc = new Map(tasks.map((t) => [t.id, t]));
    const full = await Promise.all(tasks.map((t) => h.getTask(t.id)));
    const last = full.find((t) => t.description === 'the end')!;
    assert.equal(last.after?.length, 2);
    for (const dep of last.after!) {
      const d = full.find((t) => t.id === dep)!;
      assert.ok(d.completed_at! <= last.transitions.find((x) => x.to_status === 'running')!.timestamp, 'a dependency ended before the dependent started');
    }
    assert.equal(full.filter((t) => t.labels?.['kind'] === 'batch').length, 1);
    void byDesc;
    // --json without --follow prints the tasks by key.
    const again = parseStdout<BatchResult>(expectExit(await h.cli(['start', '--batch', f, '--json']), 0));
    assert.deepEqual(again.tasks.map((t) => t.key), ['first', 'left', 'right', 'last']);
    for (const t of again.tasks) await h.waitSettled(t.task.id);
  });

  test('kill -9 after part of a batch is written: the next start finds none of it', async () => {
    const before = new Set((await h.listTasks()).map((t) => t.id));
    const f = write(
      'cut.yaml',
      `tasks:
  - { key: one, template: quick, workspace: wa }
  - { key: two, template: quick, workspace: wb }
  - { key: three, template: quick, workspace: wa, after: [one, two] }
`,
    );
    await h.stopDaemon();
    // This daemon dies (SIGKILL) right after writing the first task of a batch.
    const pid = await h.startDaemon({ env: { ATLAS_FAULTS: 'batch.task_written' } });
    const r = await h.cli(['start', '--batch', f]);
    assert.notEqual(r.code, 0, 'the batch cannot have been created');
    await assertGone(pid, 'the daemon killed part way through the batch');
    const onDisk = ['wa', 'wb'].flatMap((ws) => {
      const dir = path.join(h.home, 'workspaces', ws, 'tasks');
      return fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => n.startsWith('task-') && !before.has(n)) : [];
    });
    assert.equal(onDisk.length, 1, `one task of the batch was written before the crash: ${onDisk.join(', ')}`);
    assert.equal(fs.readdirSync(path.join(h.home, 'batches')).filter((n) => n.endsWith('.json')).length, 1, 'its journal is there');
    await h.startDaemon();
    const after = (await h.listTasks()).filter((t) => !before.has(t.id));
    assert.deepEqual(after, [], 'nothing of the cut batch is left, and nothing of it ran');
    assert.ok(!fs.existsSync(h.taskDir('wa', onDisk[0]!)) && !fs.existsSync(h.taskDir('wb', onDisk[0]!)), 'its directory is gone');
    assert.deepEqual(fs.readdirSync(path.join(h.home, 'batches')).filter((n) => n.endsWith('.json')), []);
    // The same file goes through whole afterwards.
    const ok = parseStdout<BatchResult>(expectExit(await h.cli(['start', '--batch', f, '--json']), 0));
    assert.equal(ok.tasks.length, 3);
    for (const t of ok.tasks) assert.equal((await h.waitSettled(t.task.id)).status, 'completed');
  });
});
