// Cron slots (DESIGN §13), computed, never waited for: time zones across both DST changes,
// which slots of a pass are on time and which were missed, and what `--missed skip` and
// `--missed run-once` make of them.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ON_TIME_MS, nextSlots, parseCron, planFires } from '../../src/engine/schedule-spec.js';

const iso = (d: Date[]) => d.map((x) => x.toISOString());

describe('schedule slots', () => {
  test('03:00 in Europe/Paris is 02:00 UTC in winter and 01:00 UTC in summer, across both changes', () => {
    const cron = parseCron('0 3 * * *', 'Europe/Paris');
    assert.deepEqual(iso(nextSlots(cron, new Date('2026-03-27T12:00:00Z'), 4)), ['2026-03-28T02:00:00.000Z', '2026-03-29T01:00:00.000Z', '2026-03-30T01:00:00.000Z', '2026-03-31T01:00:00.000Z']);
    assert.deepEqual(iso(nextSlots(cron, new Date('2026-10-24T12:00:00Z'), 3)), ['2026-10-25T02:00:00.000Z', '2026-10-26T02:00:00.000Z', '2026-10-27T02:00:00.000Z']);
  });

  test('a slot in the hour skipped in spring runs once, at the first time after it; one in the repeated hour in autumn runs once', () => {
    const cron = parseCron('30 2 * * *', 'Europe/Paris');
    // 2026-03-29 02:30 does not exist in Paris (02:00 -> 03:00): it fires at 03:00 CEST = 01:00Z.
    assert.deepEqual(iso(nextSlots(cron, new Date('2026-03-28T12:00:00Z'), 2)), ['2026-03-29T01:00:00.000Z', '2026-03-30T00:30:00.000Z']);
    // 2026-10-25 02:30 happens twice (CEST then CET): one fire.
    const oct = iso(nextSlots(cron, new Date('2026-10-24T12:00:00Z'), 2));
    assert.equal(oct.length, 2);
    assert.equal(oct[0], '2026-10-25T00:30:00.000Z');
    assert.equal(oct[1], '2026-10-26T01:30:00.000Z');
  });

  test('America/New_York: 09:00 on weekdays follows its own DST dates', () => {
    const cron = parseCron('0 9 * * 1-5', 'America/New_York');
    assert.deepEqual(iso(nextSlots(cron, new Date('2026-03-06T00:00:00Z'), 2)), ['2026-03-06T14:00:00.000Z', '2026-03-09T13:00:00.000Z']);
  });

  test('bad expressions and zones are refused with the reason', () => {
    assert.throws(() => parseCron('61 * * * *', 'UTC'), (e: Error & { code?: string }) => e.code === 'invalid_input' && /bad cron expression "61 \* \* \* \*".*minute/.test(e.message));
    assert.throws(() => parseCron('* * *', 'UTC'), /bad cron expression/);
    assert.throws(() => parseCron('0 3 * * *', 'Mars/Olympus'), /unknown time zone "Mars\/Olympus"/);
    assert.throws(() => parseCron('0 0 30 2 *', 'UTC'), /never fires/);
  });

  test('a pass fires every slot up to a minute late, each once; the cursor moves to now', () => {
    const cron = parseCron('* * * * * *', 'UTC');
    const cursor = new Date('2026-01-01T00:00:00.000Z');
    const plan = planFires(cron, cursor, new Date('2026-01-01T00:00:03.400Z'), 'skip')!;
    assert.deepEqual(plan.fires.map((f) => f.slot), ['2026-01-01T00:00:01.000Z', '2026-01-01T00:00:02.000Z', '2026-01-01T00:00:03.000Z']);
    assert.ok(plan.fires.every((f) => f.kind === 'on_time'));
    assert.equal(plan.skipped, null);
    assert.equal(plan.cursor, '2026-01-01T00:00:03.400Z');
    assert.equal(planFires(cron, new Date(plan.cursor), new Date('2026-01-01T00:00:03.900Z'), 'skip'), undefined, 'nothing twice');
  });

  test('missed slots: skip records them, run-once fires the latest of them once; on-time slots fire either way', () => {
    const cron = parseCron('0 * * * *', 'UTC');
    const cursor = new Date('2026-01-01T00:00:30Z');
    const now = new Date('2026-01-01T04:00:20Z');
    const skip = planFires(cron, cursor, now, 'skip')!;
    assert.deepEqual(skip.fires, [{ slot: '2026-01-01T04:00:00.000Z', kind: 'on_time' }]);
    assert.deepEqual(skip.skipped, { count: 3, at_least: false, first: '2026-01-01T01:00:00.000Z', last: '2026-01-01T03:00:00.000Z' });
    const once = planFires(cron, cursor, now, 'run-once')!;
    assert.deepEqual(once.fires, [
      { slot: '2026-01-01T03:00:00.000Z', kind: 'catch_up' },
      { slot: '2026-01-01T04:00:00.000Z', kind: 'on_time' },
    ]);
    assert.deepEqual(once.skipped, { count: 2, at_least: false, first: '2026-01-01T01:00:00.000Z', last: '2026-01-01T02:00:00.000Z' });
    // Exactly one missed slot under run-once: it runs, nothing is skipped.
    const one = planFires(cron, cursor, new Date('2026-01-01T01:30:00Z'), 'run-once')!;
    assert.deepEqual(one.fires, [{ slot: '2026-01-01T01:00:00.000Z', kind: 'catch_up' }]);
    assert.equal(one.skipped, null);
  });

  test(`a slot exactly ${ON_TIME_MS / 1000}s old is still on time; a long outage is summed up without enumerating it`, () => {
    const cron = parseCron('0 * * * *', 'UTC');
    const plan = planFires(cron, new Date('2026-01-01T00:30:00Z'), new Date(Date.parse('2026-01-01T01:00:00Z') + ON_TIME_MS), 'skip')!;
    assert.deepEqual(plan.fires.map((f) => f.kind), ['on_time']);
    const secs = parseCron('* * * * * *', 'UTC');
    const long = planFires(secs, new Date('2025-01-01T00:00:00Z'), new Date('2026-01-01T00:00:00Z'), 'run-once')!;
    assert.equal(long.skipped?.at_least, true);
    assert.equal(long.fires[0]!.kind, 'catch_up');
    assert.equal(long.fires[0]!.slot, new Date(Date.parse('2026-01-01T00:00:00Z') - ON_TIME_MS - 1000).toISOString());
  });
});
