// Schedules (DESIGN §13) through the CLI against a real daemon whose clock a test moves
// (ATLAS_TEST_CLOCK: the runner reads the time from a file), so no test waits for a real
// minute and none depends on timing: add/list/show/pause/resume/remove; bad input refused
// with nothing created; every slot fired exactly once across kill -9 at the fault points
// between recording a fire and creating its task, and at random moments; `--missed skip`
// against `--missed run-once` after the daemon was down across several slots.
import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ScheduleDetail, ScheduleInfo } from '../../src/engine/schedules.js';
import type { TaskSummary } from '../../src/store/records.js';
import { TestHome, assertGone, expectExit, waitFor } from '../helpers/daemon.js';

describe('schedules', () => {
  let h: TestHome;
  let clock: string;
  let env: Record<string, string>;
  /** Moves the daemon's clock (written whole, then renamed: the daemon never reads half a time). */
  const setClock = (t: string) => {
    fs.writeFileSync(`${clock}.tmp`, t);
    fs.renameSync(`${clock}.tmp`, clock);
  };
  const show = (name: string) => h.json<ScheduleDetail>(['schedule', 'show', name]);
  /** Every task (the list is paged: --all). */
  const tasks = async () => h.json<TaskSummary[]>(['list', '--all']);
  const fireOf = (t: TaskSummary) => t.schedule_fire ?? '';

  before(async () => {
    h = new TestHome({ templates: ['quick'] });
    clock = path.join(h.root, 'clock');
    env = { ATLAS_TEST_CLOCK: clock };
    setClock('2026-03-01T00:00:30Z');
    await h.startDaemon({ env });
    await h.createWorkspaces(['wa']);
  });
  after(async () => {
    await h.dispose();
  });

  test('add, list, show, pause, resume, remove', async () => {
    const added = await h.json<ScheduleInfo>(['schedule', 'add', 'hourly', 'quick', '--cron', '0 * * * *', '--tz', 'Europe/Paris', '-w', 'wa', '-d', 'every hour']);
    assert.equal(added.state, 'active');
    assert.equal(added.tz, 'Europe/Paris');
    assert.deepEqual(added.next_fires, ['2026-03-01T01:00:00.000Z']);
    const listed = await h.json<ScheduleInfo[]>(['schedule', 'list']);
    assert.deepEqual(listed.map((s) => [s.name, s.cron, s.template, s.workspace, s.state]), [['hourly', '0 * * * *', 'quick', 'wa', 'active']]);

    setClock('2026-03-01T01:00:05Z');
    const fired = await waitFor('the 01:00 fire to create its task', async () => {
      const s = await show('hourly');
      return s.fires[0]?.state === 'created' && s.fires[0].task_status === 'completed' && s;
    }, 30_000);
    assert.equal(fired.fires.length, 1);
    const task = await h.getTask(fired.fires[0]!.task_id!);
    assert.equal(task.schedule_fire, 'hourly@2026-03-01T01:00:00.000Z');
    assert.equal(task.description, 'every hour');
    assert.deepEqual(fired.next_fires, ['02', '03', '04', '05', '06'].map((hh) => `2026-03-01T${hh}:00:00.000Z`));
    const text = (await h.ok(['schedule', 'show', 'hourly'])).stdout;
    assert.match(text, /next fires \(Europe\/Paris\):\n {2}2026-03-01 03:00\n/, 'times shown in the schedule zone');
    assert.match(text, new RegExp(`2026-03-01 02:00 +${task.id} created +completed`));

    expectExit(await h.cli(['schedule', 'pause', 'hourly']), 0);
    assert.equal((await h.json<ScheduleInfo[]>(['schedule', 'list']))[0]!.state, 'paused');
    setClock('2026-03-01T02:00:05Z');
    // While paused nothing fires; the resume starts from now, so 02:00 never runs.
    const resumed = await h.json<ScheduleInfo>(['schedule', 'resume', 'hourly']);
    assert.equal(resumed.state, 'active');
    assert.deepEqual(resumed.next_fires, ['2026-03-01T03:00:00.000Z']);
    setClock('2026-03-01T03:00:05Z');
    const after3 = await waitFor('the 03:00 fire', async () => {
      const s = await show('hourly');
      return s.fires[0]?.state === 'created' && s;
    }, 30_000);
    assert.deepEqual(after3.fires.map((f) => f.slot), ['2026-03-01T03:00:00.000Z', '2026-03-01T01:00:00.000Z']);

    expectExit(await h.cli(['schedule', 'remove', 'hourly']), 0);
    const gone = expectExit(await h.cli(['schedule', 'show', 'hourly']), 4);
    assert.match(gone.stderr, /no schedule hourly/);
    assert.deepEqual(await h.json<ScheduleInfo[]>(['schedule', 'list']), []);
    assert.equal((await tasks()).filter((t) => fireOf(t).startsWith('hourly@')).length, 2, 'the tasks it started stay');
  });

  test('a bad cron, time zone, template, workspace, name or policy is refused with the reason; nothing is added', async () => {
    const cases: Array<[string[], number, RegExp]> = [
      [['bad', 'quick', '--cron', '61 * * * *', '-w', 'wa'], 2, /bad cron expression "61 \* \* \* \*": .*minute/],
      [['bad', 'quick', '--cron', 'every day', '-w', 'wa'], 2, /bad cron expression/],
      [['bad', 'quick', '--cron', '0 3 * * *', '--tz', 'Mars/Olympus', '-w', 'wa'], 2, /unknown time zone "Mars\/Olympus"/],
      [['bad', 'nope', '--cron', '0 3 * * *', '-w', 'wa'], 4, /no template nope/],
      [['bad', 'quick', '--cron', '0 3 * * *', '-w', 'nowhere'], 4, /no workspace nowhere/],
      [['Bad/Name', 'quick', '--cron', '0 3 * * *', '-w', 'wa'], 2, /invalid schedule name/],
      [['bad', 'quick', '--cron', '0 3 * * *', '-w', 'wa', '-i', 'nope=1'], 2, /has no input 'nope'/],
      [['bad', 'quick', '--cron', '0 3 * * *', '-w', 'wa', '--missed', 'twice'], 2, /missed/],
    ];
    for (const [args, code, message] of cases) {
      const r = expectExit(await h.cli(['schedule', 'add', ...args]), code);
      assert.match(r.stderr, message, args.join(' '));
    }
    assert.deepEqual(await h.json<ScheduleInfo[]>(['schedule', 'list']), []);
    await h.ok(['schedule', 'add', 'dup', 'quick', '--cron', '0 3 * * *', '-w', 'wa']);
    assert.match(expectExit(await h.cli(['schedule', 'add', 'dup', 'quick', '--cron', '0 4 * * *', '-w', 'wa']), 2).stderr, /schedule dup already exists/);
    await h.ok(['schedule', 'remove', 'dup']);
  });

  test('kill -9 between recording a fire and creating its task, and at random moments: every slot fires exactly once', async () => {
    setClock('2026-03-02T00:00:30Z');
    await h.ok(['schedule', 'add', 'minutely', 'quick', '--cron', '* * * * *', '--tz', 'UTC', '-w', 'wa']);
    const file = path.join(h.home, 'schedules', 'minutely.json');
    const onDisk = () => JSON.parse(fs.readFileSync(file, 'utf8')) as { fires: Array<{ slot: string; state: string; task_id: string }> };
    const faults = ['schedule.claimed', 'schedule.task_created'];
    // Ten rounds, two kills each (the armed or randomly killed daemon, then the clean one).
    const rounds = 10;
    let faulted = 0;
    let running = (await h.json<{ pid: number }>(['daemon', 'status'])).pid;
    for (let i = 1; i <= rounds; i++) {
      const slot = `2026-03-02T00:${String(i).padStart(2, '0')}:00.000Z`;
      const fault = i <= 6 ? faults[i % 2]! : undefined;
      // The running daemon dies now (kill -9); the next one is armed with this round's fault.
      process.kill(running, 'SIGKILL');
      await assertGone(running, 'the daemon killed between rounds');
      const pid = await h.startDaemon({ env: { ...env, ...(fault ? { ATLAS_FAULTS: fault } : {}) } });
      setClock(slot.replace(':00.000Z', ':01Z'));
      if (fault) {
        await assertGone(pid, `the daemon to die at ${fault}`, 30_000);
        const fire = onDisk().fires.find((f) => f.slot === slot);
        assert.equal(fire?.state, 'claimed', `the fire of ${slot} was recorded before the crash`);
        const made = fs.existsSync(h.taskDir('wa', fire.task_id));
        assert.equal(made, fault === 'schedule.task_created', `${fault}: task written before the crash: ${made}`);
        faulted++;
      } else {
        // Anywhere: before the pass saw the new time, mid-claim, mid-create, after.
        await sleep(Math.floor(Math.random() * 300));
        process.kill(pid, 'SIGKILL');
        await assertGone(pid, 'the daemon killed at a random moment');
      }
      // A clean daemon finishes whatever the crash left: the slot ends with exactly one task.
      running = await h.startDaemon({ env });
      await waitFor(`the fire of ${slot} to be settled`, () => onDisk().fires.find((f) => f.slot === slot)?.state === 'created', 30_000);
    }
    assert.equal(faulted, 6, 'every faulted round died at its fault point');
    const fires = onDisk().fires.filter((f) => f.state !== 'skipped');
    const expected = Array.from({ length: rounds }, (_, i) => `2026-03-02T00:${String(i + 1).padStart(2, '0')}:00.000Z`);
    assert.deepEqual(fires.map((f) => f.slot), expected, 'each slot recorded once, none skipped');
    assert.ok(fires.every((f) => f.state === 'created'));
    const mine = (await tasks()).filter((t) => fireOf(t).startsWith('minutely@'));
    const bySlot = new Map<string, number>();
    for (const t of mine) bySlot.set(fireOf(t), (bySlot.get(fireOf(t)) ?? 0) + 1);
    assert.deepEqual([...bySlot.keys()].sort(), expected.map((s) => `minutely@${s}`), 'a task for every slot');
    assert.ok([...bySlot.values()].every((n) => n === 1), `no slot twice: ${JSON.stringify([...bySlot])}`);
    assert.deepEqual(new Set(mine.map((t) => t.id)), new Set(fires.map((f) => f.task_id)), 'the tasks are the ones the fires recorded');
    for (const t of mine) await h.waitSettled(t.id);
    await h.ok(['schedule', 'remove', 'minutely']);
  });

  test('daemon down across slots: --missed skip skips them, --missed run-once runs once; a short restart misses nothing', async () => {
    setClock('2026-03-03T00:00:30Z');
    await h.ok(['schedule', 'add', 'sk', 'quick', '--cron', '0 * * * *', '--tz', 'UTC', '-w', 'wa', '--missed', 'skip']);
    await h.ok(['schedule', 'add', 'once', 'quick', '--cron', '0 * * * *', '--tz', 'UTC', '-w', 'wa', '--missed', 'run-once']);
    await h.stopDaemon();
    setClock('2026-03-03T03:30:00Z'); // 01:00, 02:00, 03:00 pass while no daemon runs
    await h.startDaemon({ env });
    const sk = await waitFor('sk to record its skipped slots', async () => {
      const s = await show('sk');
      return s.fires.length > 0 && s;
    }, 30_000);
    assert.deepEqual(sk.fires.map((f) => [f.state, f.slot, f.skipped?.count, f.skipped?.first]), [['skipped', '2026-03-03T03:00:00.000Z', 3, '2026-03-03T01:00:00.000Z']]);
    const once = await waitFor('once to run its catch-up fire', async () => {
      const s = await show('once');
      return s.fires.some((f) => f.state === 'created') && s;
    }, 30_000);
    assert.deepEqual(once.fires.map((f) => [f.state, f.kind, f.slot]), [
      ['created', 'catch_up', '2026-03-03T03:00:00.000Z'],
      ['skipped', 'skipped', '2026-03-03T02:00:00.000Z'],
    ]);
    assert.match((await h.ok(['schedule', 'show', 'sk'])).stdout, /skipped 3 missed slot\(s\) 2026-03-03 01:00 \.\. 2026-03-03 03:00/);

    // Down for less than a minute across a slot: it is on time, for both policies.
    await h.stopDaemon();
    setClock('2026-03-03T04:00:40Z');
    await h.startDaemon({ env });
    for (const name of ['sk', 'once']) {
      const s = await waitFor(`${name} to fire 04:00`, async () => {
        const d = await show(name);
        return d.fires[0]?.slot === '2026-03-03T04:00:00.000Z' && d.fires[0].state === 'created' && d;
      }, 30_000);
      assert.equal(s.fires[0]!.kind, 'on_time');
    }
    const all = await tasks();
    const slotsOf = (name: string) => all.filter((t) => fireOf(t).startsWith(`${name}@`)).map((t) => fireOf(t).slice(name.length + 1)).sort();
    assert.deepEqual(slotsOf('sk'), ['2026-03-03T04:00:00.000Z']);
    assert.deepEqual(slotsOf('once'), ['2026-03-03T03:00:00.000Z', '2026-03-03T04:00:00.000Z']);
    for (const t of all) await h.waitSettled(t.id);
  });
});
