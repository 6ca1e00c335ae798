// A durable wait on a shared store holds no lease while it waits: the task is let go until
// the deadline, then whichever daemon is free resumes it (same attempt, same deadline).
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import type { TaskRecord } from '../../src/store/records.js';
import { waitFor } from '../helpers/daemon.js';
import { fileDatabase } from '../helpers/pg.js';
import { ClusterHomes, readAppends } from './helpers.js';

const db = await fileDatabase('durable_wait');

const TEMPLATE = [
  'name: append',
  'inputs:',
  '  log: { required: true }',
  'steps:',
  '  - name: before',
  '    type: shell',
  '    run: echo "$ATLAS_TASK_ID before done $ATLAS_HOME" >> "$ATLAS_INPUT_LOG"',
  '  - name: nap',
  '    type: wait',
  '    duration: 20s',
  '  - name: after',
  '    type: shell',
  '    run: echo "$ATLAS_TASK_ID after done $ATLAS_HOME" >> "$ATLAS_INPUT_LOG"',
].join('\n') + '\n';

test('a durable wait lets go of its lease while it waits; a daemon resumes it at the deadline', { skip: db.skip, timeout: 180_000 }, async () => {
  const c = new ClusterHomes({ url: db.url, schema: 'atlas', workspaces: ['w'] }, 2, TEMPLATE);
  try {
    const [a, b] = c.homes as [(typeof c.homes)[0], (typeof c.homes)[0]];
    await Promise.all(c.homes.map((h) => h.startDaemon()));
    await a.ok(['workspace', 'create', 'w', '--path', a.dir('w')]);
    const log = path.join(a.root, 'appends.log');
    const id = (await a.json<TaskRecord>(['start', 'append', '-w', 'w', '-i', `log=${log}`])).id;

    const parked = await waitFor(
      'the task to wait with no daemon holding it',
      async () => {
        const [row] = await c.query<{ owner: string | null; wake_at: Date | null; status: string }>('SELECT owner, wake_at, status FROM tasks WHERE id = $1', [id]);
        return row && row.status === 'running' && row.owner === null && row.wake_at !== null ? row : undefined;
      },
      60_000,
      50,
    );
    const status = await b.json<{ daemons?: Array<{ running: number }> }>(['daemon', 'status']);
    assert.equal(status.daemons?.reduce((n, d) => n + d.running, 0), 0, 'no daemon runs it while it waits');
    const shown = await b.json<TaskRecord>(['show', id]);
    assert.equal(shown.steps[1]?.status, 'running', 'show: the wait step is still under way');

    assert.deepEqual(await c.waitAllSettled(1, 120_000), { completed: 1 });
    const done = await a.json<TaskRecord>(['show', id]);
    assert.ok(Date.parse(done.step_results[1]!.completed_at) >= parked.wake_at!.getTime() - 1000, 'the wait lasted until its deadline');
    assert.deepEqual(
      done.step_results.map((r) => [r.step_name, r.attempt, r.status]),
      [
        ['before', 1, 'completed'],
        ['nap', 1, 'completed'],
        ['after', 1, 'completed'],
      ],
      'one attempt of each step: the let-go wait was no interrupted attempt',
    );
    assert.deepEqual(
      readAppends(log).map((l) => l[1]),
      ['before', 'after'],
      'each shell step ran once',
    );
    const [row] = await c.query<{ wake_at: Date | null }>('SELECT wake_at FROM tasks WHERE id = $1', [id]);
    assert.equal(row?.wake_at, null, 'nothing parked once it finished');
  } finally {
    await c.dispose();
  }
});
