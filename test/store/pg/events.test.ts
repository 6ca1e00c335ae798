// Events in the PostgreSQL store: rows written in the statement of the checkpoint (or log
// batch) that made them, numbered in commit order, and seen by every daemon of the database.
import assert from 'node:assert/strict';
import os from 'node:os';
import { test } from 'node:test';
import type { AtlasEvent } from '../../../src/events/event.js';
import { EventJournal } from '../../../src/events/journal.js';
import type { StepResult, TaskRecord } from '../../../src/store/records.js';
import type { PgStore } from '../../../src/store/pg/pg-store.js';
import { waitFor } from '../../helpers/daemon.js';
import { fileDatabase, pgStore } from '../../helpers/pg.js';
import { expectCode, makeTask } from '../helpers.js';

const db = await fileDatabase('events');
const skip = db.skip;

function result(task: TaskRecord, i: number): StepResult {
  const at = new Date().toISOString();
  return {
    step_index: i,
    step_name: task.steps[i]?.name ?? `s${i}`,
    attempt: 1,
    status: 'completed',
    started_at: at,
    completed_at: at,
    duration_ms: 1,
    exit_code: 0,
    signal: null,
    error: null,
    artifacts: [],
    files_changed: [],
    output_bytes: 0,
    output_truncated: false,
  };
}

async function daemons(schema: string, ids: string[]): Promise<PgStore[]> {
  const stores = ids.map((id) => pgStore(db.url, schema, id));
  for (const s of stores) await s.init();
  return stores;
}

function move(task: TaskRecord, to: TaskRecord['status']): void {
  task.transitions.push({ from_status: task.status, to_status: to, timestamp: new Date().toISOString(), reason: 'test' });
  task.status = to;
}

test('a checkpoint writes its events with it; every daemon announces them, in seq order', { skip, timeout: 60_000 }, async () => {
  const [a, b] = await daemons('one', ['daemon-a', 'daemon-b']);
  const la = a!.openEvents();
  const lb = b!.openEvents();
  await la.open();
  await lb.open();
  const seen: AtlasEvent[] = [];
  lb.onDurable = (batch) => seen.push(...batch);
  try {
    await a!.workspaces.create({ name: 'w', path: os.tmpdir(), kind: 'path', repo: null, branch: null });
    const task = await a!.tasks.createTask(makeTask(await a!.tasks.newTaskId(), 'w'));
    await a!.tasks.acquireLease(task.id);
    move(task, 'running');
    a!.appendLog('w', task.id, { event: 'step_started', step: 'compile', step_index: 0, attempt: 1, type: 'shell' });
    await a!.tasks.checkpoint(task);
    task.step_results.push(result(task, 0));
    move(task, 'completed');
    await a!.tasks.checkpoint(task);

    // Nothing pokes daemon b: its poll finds what daemon a wrote.
    const types = await waitFor('daemon b to announce the task finished', () => {
      const mine = seen.filter((e) => e.task_id === task.id);
      return mine.some((e) => e.type === 'task.finished') ? mine.map((e) => e.type) : undefined;
    });
    assert.deepEqual(types, ['task.created', 'task.status_changed', 'step.started', 'step.finished', 'task.status_changed', 'task.finished']);
    const seqs = seen.map((e) => e.seq);
    assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y), 'announced in seq order');
    assert.equal(new Set(seqs).size, seqs.length, 'each seq once');
    assert.deepEqual((await lb.read(0, 100)).map((e) => e.id), seen.map((e) => e.id), 'read() returns what was announced');
    await la.flush();
    const fromA = await la.read(0, 100);
    assert.deepEqual(fromA.map((e) => e.id), seen.map((e) => e.id), 'after flush, daemon a reads the same events');
    // Webhooks deliver an event from the daemon that wrote it only (once, not once per daemon).
    assert.ok(fromA.every((e) => la.isLocal(e)), 'daemon a wrote them');
    assert.ok(seen.every((e) => !lb.isLocal(e)), 'daemon b did not');
    assert.ok(seen.every((e) => e.workspace === 'w' && typeof e.at === 'string'));
    assert.equal(seen.find((e) => e.type === 'step.finished')?.data['status'], 'completed');

    // A write refused (stale revision) writes no events.
    const before = (await b!.pool.query('SELECT count(*)::int AS n FROM one.events')).rows[0].n as number;
    const stale = { ...task, revision: task.revision - 1, transitions: [...task.transitions, { from_status: 'completed' as const, to_status: 'failed' as const, timestamp: new Date().toISOString(), reason: 'x' }] };
    await expectCode(() => b!.tasks.checkpoint(stale), 'conflict');
    const after = (await b!.pool.query('SELECT count(*)::int AS n FROM one.events')).rows[0].n as number;
    assert.equal(after, before, 'a refused checkpoint added no event');
  } finally {
    await la.close();
    await lb.close();
    await a!.close();
    await b!.close();
  }
});

test('a write under a lost lease is refused with its events; the journal records nothing itself', { skip, timeout: 60_000 }, async () => {
  const [a, b] = await daemons('fence', ['daemon-a', 'daemon-b']);
  const la = a!.openEvents();
  await la.open();
  const journal = new EventJournal(la);
  try {
    await a!.workspaces.create({ name: 'w', path: os.tmpdir(), kind: 'path', repo: null, branch: null });
    const task = await a!.tasks.createTask(makeTask(await a!.tasks.newTaskId(), 'w'));
    await a!.tasks.acquireLease(task.id);
    // Daemon b takes the task over (a's lease is past, as if a had been partitioned away).
    await b!.pool.query(`UPDATE fence.tasks SET owner = 'daemon-b', lease_epoch = lease_epoch + 1, lease_until = now() + interval '1 minute' WHERE id = $1`, [task.id]);
    move(task, 'running');
    a!.appendLog('w', task.id, { event: 'step_started', step: 'compile', step_index: 0, attempt: 1, type: 'shell' });
    await expectCode(() => a!.tasks.checkpoint(task), 'lease_lost');
    journal.record(task, { t: 1, r: 0 });
    await la.flush();
    const ids = (await la.read(0, 100)).map((e) => e.id);
    assert.deepEqual(ids, [`${task.id}.t0`], 'only task.created: the fenced checkpoint and the journal wrote nothing');
  } finally {
    await la.close();
    await a!.close();
    await b!.close();
  }
});

test('two daemons writing at once: a third announces every event once, seqs gapless and in order', { skip, timeout: 120_000 }, async () => {
  const [a, b, c] = await daemons('race', ['daemon-a', 'daemon-b', 'daemon-c']);
  const lc = c!.openEvents();
  await lc.open();
  const seen: AtlasEvent[] = [];
  lc.onDurable = (batch) => seen.push(...batch);
  try {
    await a!.workspaces.create({ name: 'w', path: os.tmpdir(), kind: 'path', repo: null, branch: null });
    const tasks: string[] = [];
    for (let i = 0; i < 16; i++) tasks.push((await a!.tasks.createTask(makeTask(await a!.tasks.newTaskId(), 'w'))).id);
    // Each task is updated 8 times, by a and b in turn, all tasks at once.
    await Promise.all(
      tasks.map(async (id, i) => {
        for (let k = 0; k < 8; k++) {
          const s = (i + k) % 2 ? a! : b!;
          await s.tasks.updateTask(id, (t) => {
            t.step_results.push(result(t, 0));
            move(t, k % 2 ? 'running' : 'pending');
          });
        }
      }),
    );
    const total = (await c!.pool.query('SELECT count(*)::int AS n FROM race.events')).rows[0].n as number;
    assert.equal(total, 16 * (1 + 8 * 2), 'one task.created per task, one step.finished and one status change per update');
    await waitFor('daemon c to announce every event', () => seen.length >= total || undefined, 30_000);
    assert.equal(seen.length, total, 'each event announced once');
    assert.deepEqual(
      seen.map((e) => e.seq),
      Array.from({ length: total }, (_, i) => i + 1),
      'seqs 1..n, in order',
    );
    for (const id of tasks) {
      const mine = seen.filter((e) => e.task_id === id && e.type === 'step.finished').map((e) => e.data['result_index']);
      assert.deepEqual(mine, [0, 1, 2, 3, 4, 5, 6, 7], `${id}: its step results in order`);
    }
  } finally {
    await lc.close();
    for (const s of [a!, b!, c!]) await s.close();
  }
});
