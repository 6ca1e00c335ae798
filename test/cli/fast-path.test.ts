// The CLI's fast path (src/cli/fast.ts): the plain forms of list, show, daemon status and start
// are read without yargs; everything else (help, an unknown option, a bad status, a missing
// value, --follow) goes to the full CLI. Both paths print the same thing for the same request.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { fastCommand } from '../../src/cli/fast.js';
import type { TaskRecord, TaskSummary } from '../../src/store/records.js';
import { TestHome, expectExit } from '../helpers/daemon.js';

test('the fast path takes the plain forms and leaves everything else to the full CLI', () => {
  for (const argv of [
    ['list'],
    ['--home', '/h', 'list', '--json'],
    ['list', '--status', 'failed', '--status=running', '-w', 'api', '-n', '10', '--with-total', '--json'],
    ['show', 'task-20260101-000000'],
    ['daemon', 'status', '--json'],
    ['start', 'demo', '-w', 'ws', '-i', 'a=1', '-i', 'b=@file', '--priority', '-3', '--wait', '-l', 'team=x'],
  ]) assert.equal(typeof fastCommand(argv), 'function', argv.join(' '));
  for (const argv of [
    [],
    ['list', '--help'],
    ['list', '--status', 'bogus'],
    ['list', '--limit', 'ten'],
    ['list', '--workspace'],
    ['list', '-n50'],
    ['list', 'extra'],
    ['list', '--json', '--json'],
    ['show'],
    ['show', 'a', 'b'],
    ['daemon', 'stop'],
    ['daemon', 'status', 'now'],
    ['start', 'demo'],
    ['start', 'demo', '-w', 'ws', '--follow'],
    ['start', '--batch', 'b.yaml'],
    ['logs', 'task-20260101-000000'],
    ['--version'],
  ]) assert.equal(fastCommand(argv), undefined, argv.join(' '));
});

describe('the fast path and the full CLI answer alike', () => {
  let h: TestHome;
  before(async () => {
    h = new TestHome({ templates: ['quick'] });
    await h.startDaemon();
    await h.createWorkspaces(['alpha']);
  });
  after(async () => {
    await h.dispose();
  });

  test('start, list (fast and full), show and daemon status', async () => {
    const task = await h.json<TaskRecord>(['start', 'quick', '-w', 'alpha', '--wait']);
    assert.equal(task.status, 'completed');
    const fast = expectExit(await h.cli(['list', '--limit', '50', '--json']), 0);
    // -n50 is read by yargs only: the same request through the full CLI.
    const full = expectExit(await h.cli(['list', '-n50', '--json']), 0);
    assert.equal(fast.stdout, full.stdout);
    assert.deepEqual((JSON.parse(fast.stdout) as TaskSummary[]).map((t) => t.id), [task.id]);
    assert.match(fast.stderr, /showing 1 of 1/);
    const shown = await h.json<TaskRecord>(['show', task.id]);
    assert.equal(shown.id, task.id);
    const text = expectExit(await h.cli(['show', task.id]), 0);
    assert.match(text.stdout, new RegExp(`${task.id}\\s+completed`));
    const status = await h.json<{ running: boolean; tasks_total: number }>(['daemon', 'status']);
    assert.equal(status.running, true);
    assert.equal(status.tasks_total, 1);
    // A bad status is the full CLI's usage error (exit 2), not the fast path's.
    const bad = expectExit(await h.cli(['list', '--status', 'bogus']), 2);
    assert.match(bad.stderr, /Choices/);
  });
});
