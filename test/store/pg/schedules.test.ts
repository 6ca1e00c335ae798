// Schedules in PostgreSQL: the definition's add/read/change/remove, and the exactly-once
// claim: two daemons passing over the same slots at once (each from the cursor it read)
// record every slot exactly once; a fire is settled only by the holder of its task id.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FireRecord, ScheduleRecord } from '../../../src/store/schedules.js';
import { fileDatabase, pgStore } from '../../helpers/pg.js';

const db = await fileDatabase('schedules');
const skip = db.skip;

const schedule = (name: string, cursor: string): ScheduleRecord => ({
  schema_version: '1.0',
  name,
  cron: '* * * * *',
  tz: 'UTC',
  template: 'quick',
  workspace: 'wa',
  inputs: {},
  description: null,
  missed: 'skip',
  paused: false,
  cursor,
  created_at: cursor,
  updated_at: cursor,
});

test('add, read, change, remove; a taken name and a missing one are refused', { skip, timeout: 60_000 }, async () => {
  const a = pgStore(db.url, 'atlas', 'daemon-a');
  await a.init();
  try {
    await a.schedules.create(schedule('nightly', '2026-01-01T00:00:00.000Z'));
    await assert.rejects(a.schedules.create(schedule('nightly', '2026-01-01T00:00:00.000Z')), (e: Error & { code?: string }) => e.code === 'already_exists');
    assert.equal((await a.schedules.get('nightly')).cron, '* * * * *');
    const paused = await a.schedules.update('nightly', (s) => void (s.paused = true));
    assert.equal(paused.paused, true);
    assert.deepEqual((await a.schedules.list()).map((s) => [s.name, s.paused]), [['nightly', true]]);
    await a.schedules.remove('nightly');
    await assert.rejects(a.schedules.get('nightly'), (e: Error & { code?: string }) => e.code === 'not_found');
    await assert.rejects(a.schedules.remove('nightly'), (e: Error & { code?: string }) => e.code === 'not_found');
  } finally {
    await a.close();
  }
});

test('two daemons claiming the same slots at once: each slot recorded exactly once; settle needs the fire’s task id', { skip, timeout: 120_000 }, async () => {
  const a = pgStore(db.url, 'atlas', 'daemon-a');
  const b = pgStore(db.url, 'atlas', 'daemon-b');
  await a.init();
  await b.init();
  try {
    const start = Date.parse('2026-02-01T00:00:00Z');
    await a.schedules.create(schedule('race', new Date(start).toISOString()));
    const wins: string[] = [];
    for (let i = 1; i <= 25; i++) {
      const slot = new Date(start + i * 60_000).toISOString();
      const pass = async (name: string, s: typeof a) => {
        const from = (await s.schedules.get('race')).cursor;
        if (slot <= from) return; // the pass would plan nothing: the slot is decided
        const fire: FireRecord = { slot, state: 'claimed', kind: 'on_time', task_id: `task-20260201-0000${String(i).padStart(2, '0')}-${name === 'a' ? 1 : 2}`, recorded_at: new Date().toISOString() };
        if (await s.schedules.claim('race', from, new Date(start + i * 60_000 + 1000).toISOString(), [fire])) wins.push(name);
      };
      await Promise.all([pass('a', a), pass('b', b)]);
    }
    assert.equal(wins.length, 25, `exactly one daemon recorded each slot (got ${wins.length} claims)`);
    const fires = await b.schedules.fires('race', 100);
    assert.equal(fires.length, 25);
    assert.equal(new Set(fires.map((f) => f.slot)).size, 25, 'no slot twice');
    assert.equal((await a.schedules.openFires()).filter((o) => o.schedule === 'race').length, 25);
    // A claim from a cursor that moved on records nothing.
    assert.equal(await a.schedules.claim('race', new Date(start).toISOString(), new Date(start + 999_999).toISOString(), []), false);
    const f = fires[0]!;
    assert.equal(await b.schedules.settle('race', f.slot, { state: 'created' }, 'task-20990101-000000'), false, 'not with another task id');
    assert.equal(await b.schedules.settle('race', f.slot, { state: 'created' }, f.task_id!), true);
    assert.equal((await a.schedules.fires('race', 1))[0]!.state, 'created');
    await a.schedules.remove('race');
    assert.deepEqual(await a.schedules.openFires(), [], 'a removed schedule takes its fires with it');
  } finally {
    await a.close();
    await b.close();
  }
});
