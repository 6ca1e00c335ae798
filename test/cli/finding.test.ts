// Finding things (issue 18 item 6): `atlas ps`, `list --status` repeated and `--active`,
// `daemon status` listing what runs, a pending task's `show` naming what it waits for (the
// workspace's running task, or a slot), and `doctor --clear-quarantine`.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TaskRecord, TaskSummary } from '../../src/store/records.js';
import { TestHome, expectExit } from '../helpers/daemon.js';

describe('ps, list filters, daemon status, show of a pending task, clear-quarantine', () => {
  let h: TestHome;

  before(async () => {
    h = new TestHome({ templates: ['quick', 'failing'] });
    h.writeTemplate('sleeper', 'name: sleeper\nsteps:\n  - name: nap\n    type: shell\n    run: sleep 600\n');
    fs.mkdirSync(h.home, { recursive: true });
    fs.writeFileSync(path.join(h.home, 'config.yaml'), 'max_concurrent_tasks: 2\nstep_defaults:\n  kill_grace: 200ms\n');
    await h.startDaemon();
    await h.createWorkspaces(['a', 'b', 'c']);
  });
  after(async () => {
    await h.dispose();
  });

  test('ps and daemon status show what runs; show of a pending task says what it waits for', async () => {
    const a = await h.json<TaskRecord>(['start', 'sleeper', '-w', 'a']);
    const a2 = await h.json<TaskRecord>(['start', 'quick', '-w', 'a']);
    const b = await h.json<TaskRecord>(['start', 'sleeper', '-w', 'b']);
    const c = await h.json<TaskRecord>(['start', 'quick', '-w', 'c']);
    const ra = await h.waitStepProcess(a.id);
    const rb = await h.waitStepProcess(b.id);

    const ps = await h.json<Array<{ id: string; pid: number; step: string; step_index: number; steps_total: number }>>(['ps']);
    assert.deepEqual(ps.map((t) => [t.id, t.pid, t.step]).sort(), [[a.id, ra.steps[0]!.process!.pid, 'nap'], [b.id, rb.steps[0]!.process!.pid, 'nap']].sort());
    const text = (await h.ok(['ps'])).stdout;
    assert.match(text, /TASK\s+WORKSPACE\s+TEMPLATE\s+STEP\s+ELAPSED\s+PID/);
    assert.match(text, new RegExp(`${a.id}\\s+a\\s+sleeper\\s+1/1 nap\\s+\\S+\\s+${ra.steps[0]!.process!.pid}`));
    assert.match(text, /2 of 2 slots in use, \d+ queued/);

    const status = (await h.ok(['daemon', 'status'])).stdout;
    assert.match(status, /running now/);
    assert.match(status, new RegExp(`${b.id}\\s+b\\s+sleeper`));

    assert.match((await h.ok(['show', a2.id])).stdout, new RegExp(`waits for  ${a.id}, running in workspace a`));
    assert.match((await h.ok(['show', c.id])).stdout, /waits for  a free slot: 2 of 2 tasks running/);

    // --active and repeated --status.
    const active = await h.json<TaskSummary[]>(['list', '--active']);
    assert.deepEqual(active.map((t) => t.id).sort(), [a.id, a2.id, b.id, c.id].sort());
    await h.ok(['cancel', a.id]);
    await h.ok(['cancel', b.id]);
    await h.waitSettled(a2.id);
    await h.waitSettled(c.id);
    const f = await h.json<TaskRecord>(['start', 'failing', '-w', 'c', '--wait']).catch(() => undefined);
    void f;
    const two = await h.json<TaskSummary[]>(['list', '--status', 'abandoned', '--status', 'failed']);
    assert.deepEqual(new Set(two.map((t) => t.status)), new Set(['abandoned', 'failed']));
    assert.equal(two.length, 3);
    assert.equal((await h.json<TaskSummary[]>(['list', '--active'])).length, 0);
    assert.match((await h.ok(['ps'])).stdout, /nothing is running/);
  });

  test('doctor --clear-quarantine deletes what quarantine keeps', async () => {
    const q = path.join(h.home, 'quarantine');
    fs.mkdirSync(path.join(q, 'a-task-20260101-000000'), { recursive: true });
    fs.writeFileSync(path.join(q, 'a-task-20260101-000000', 'task.json'), '{broken');
    assert.match((await h.ok(['doctor'])).stdout, /1 unrecoverable task\(s\) kept/);
    const r = expectExit(await h.cli(['doctor', '--clear-quarantine']), 0);
    assert.match(r.stdout, /cleared the quarantine: 1 task\(s\) deleted \(a-task-20260101-000000\)/);
    assert.deepEqual(fs.readdirSync(q), []);
  });
});
