// Three daemons on one PostgreSQL database, one schedule, a clock the test moves (the same
// ATLAS_TEST_CLOCK file for all): every slot fires exactly once, whichever daemons pass over
// it, also after one daemon is killed with -9 part way.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { ScheduleDetail } from '../../src/engine/schedules.js';
import type { TaskSummary } from '../../src/store/records.js';
import { assertGone, waitFor } from '../helpers/daemon.js';
import { fileDatabase } from '../helpers/pg.js';
import { APPEND_TEMPLATE, ClusterHomes, readAppends } from './helpers.js';

const db = await fileDatabase('sched');
const skip = db.skip;

test('three daemons, one schedule: every slot fires exactly once, a kill -9 of one daemon included', { skip, timeout: 300_000 }, async () => {
  const c = new ClusterHomes({ url: db.url, schema: 'atlas', workspaces: ['wa'] }, 3, APPEND_TEMPLATE(1, '0'));
  try {
    const [a, b, d] = c.homes as [(typeof c.homes)[0], (typeof c.homes)[0], (typeof c.homes)[0]];
    const clock = path.join(a.root, 'clock');
    const setClock = (t: string) => {
      fs.writeFileSync(`${clock}.tmp`, t);
      fs.renameSync(`${clock}.tmp`, clock);
    };
    setClock('2026-04-01T00:00:30Z');
    const env = { ATLAS_TEST_CLOCK: clock };
    const pids = await Promise.all(c.homes.map((h) => h.startDaemon({ env })));
    await a.ok(['workspace', 'create', 'wa', '--path', a.dir('wa')]);
    const log = path.join(a.root, 'appends.log');
    await b.ok(['schedule', 'add', 'every', 'append', '--cron', '* * * * *', '--tz', 'UTC', '-w', 'wa', '-i', `log=${log}`]);
    const slots: string[] = [];
    for (let i = 1; i <= 8; i++) {
      const slot = `2026-04-01T00:${String(i).padStart(2, '0')}:00.000Z`;
      slots.push(slot);
      if (i === 5) {
        // One daemon dies; the other two carry on.
        process.kill(pids[1]!, 'SIGKILL');
        await assertGone(pids[1]!, 'the killed daemon');
      }
      setClock(slot.replace(':00.000Z', ':02Z'));
      await waitFor(`the fire of ${slot}`, async () => (await d.json<ScheduleDetail>(['schedule', 'show', 'every'])).fires.some((f) => f.slot === slot && f.state === 'created'), 60_000, 100);
    }
    const shown = await a.json<ScheduleDetail>(['schedule', 'show', 'every']);
    assert.deepEqual(shown.fires.map((f) => f.slot).reverse(), slots, 'each slot recorded once, in order');
    await c.waitAllSettled(8, 120_000);
    const tasks = (await a.json<TaskSummary[]>(['list', '--all'])).filter((t) => t.schedule_fire?.startsWith('every@'));
    assert.deepEqual(tasks.map((t) => t.schedule_fire!.slice('every@'.length)).sort(), slots, 'one task per slot, none twice');
    assert.deepEqual(new Set(tasks.map((t) => t.id)), new Set(shown.fires.map((f) => f.task_id)));
    const ran = readAppends(log).filter(([, , phase]) => phase === 'done');
    assert.equal(ran.length, 8, 'each task ran once');
  } finally {
    await c.dispose();
  }
});
