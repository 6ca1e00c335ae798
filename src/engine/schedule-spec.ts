// Cron slots of a schedule (DESIGN §13), computed with croner in the schedule's IANA time zone
// (so "0 3 * * *" in Europe/Paris is 03:00 Paris time on both sides of a DST change: a slot in
// the hour skipped in spring runs at the first time after it, a slot in the hour repeated in
// autumn runs once).
//
// When is a slot due, and when is it missed? A schedule keeps a cursor: every slot up to it
// is decided. A pass at time `now` looks at the slots after the cursor up to `now`:
//   - a slot at most ON_TIME_MS old is on time: it fires (each its own task), even when a
//     daemon restart or a busy moment made the pass a little late;
//   - an older slot was missed (no daemon ran when it came); `--missed skip` records it as
//     skipped, `--missed run-once` fires the latest of them once, however many there were.
// The pass moves the cursor to `now`. Everything here is pure: the runner persists the plan.
import { Cron } from 'croner';
import { AtlasError } from '../errors.js';
import type { MissedPolicy } from '../store/schedules.js';

/** How late a slot may be seen and still count as on time. */
export const ON_TIME_MS = 60_000;
/** Slots counted one by one before a long outage is summed up with `at least`. */
const COUNT_CAP = 1000;


export function checkTimeZone(tz: string): string {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return tz;
  } catch {
    throw new AtlasError('invalid_input', `unknown time zone ${JSON.stringify(tz)}: give an IANA zone such as Europe/Paris, America/New_York or UTC`, { details: { tz } });
  }
}

/** The cron of a schedule, checked: a bad expression or time zone is refused with the reason. */
export function parseCron(expr: string, tz: string): Cron {
  checkTimeZone(tz);
  let cron: Cron;
  try {
    cron = new Cron(expr, { timezone: tz, paused: true, mode: '5-or-6-parts' });
  } catch (err) {
    const why = (err as Error).message.replace(/^CronPattern:\s*/, '');
    throw new AtlasError('invalid_input', `bad cron expression ${JSON.stringify(expr)}: ${why} (5 fields: minute hour day-of-month month day-of-week, e.g. "0 3 * * *"; a 6th field in front for seconds)`, {
      details: { cron: expr },
    });
  }
  if (cron.nextRun(new Date()) === null) throw new AtlasError('invalid_input', `cron expression ${JSON.stringify(expr)} never fires`, { details: { cron: expr } });
  return cron;
}

/** The next `n` slots strictly after `after`. */
export function nextSlots(cron: Cron, after: Date, n: number): Date[] {
  return cron.nextRuns(n, after);
}

export interface PlannedFire {
  slot: string;
  kind: 'on_time' | 'catch_up';
}

export interface FirePlan {
  /** The new cursor: every slot up to it is decided by this plan. */
  cursor: string;
  fires: PlannedFire[];
  /** Missed slots not fired (with `skip`, all of them; with `run-once`, all but the latest). */
  skipped: { count: number; at_least: boolean; first: string; last: string } | null;
}

/** What a pass at `now` decides for the slots after `cursor`; undefined when no slot is due. */
export function planFires(cron: Cron, cursor: Date, now: Date, missed: MissedPolicy): FirePlan | undefined {
  const onTimeFrom = new Date(now.getTime() - ON_TIME_MS);
  const missedSlots: Date[] = [];
  let missedCount = 0;
  let atLeast = false;
  let lastMissed: Date | undefined;
  let firstMissed: Date | undefined;
  let from = cursor;
  if (cursor < onTimeFrom) {
    for (let s = cron.nextRun(cursor); s && s < onTimeFrom; s = cron.nextRun(s)) {
      firstMissed ??= s;
      lastMissed = s;
      if (++missedCount >= COUNT_CAP) {
        atLeast = true;
        // A long outage: the latest missed slot is found backwards from where on-time begins.
        const prev = cron.previousRuns(1, onTimeFrom)[0];
        if (prev && prev > lastMissed) lastMissed = prev;
        break;
      }
    }
    if (lastMissed) missedSlots.push(lastMissed);
    from = new Date(onTimeFrom.getTime() - 1);
  }
  const onTime: Date[] = [];
  for (let s = cron.nextRun(from); s && s <= now && onTime.length < COUNT_CAP; s = cron.nextRun(s)) if (s > cursor) onTime.push(s);
  if (!lastMissed && onTime.length === 0) return undefined;
  const fires: PlannedFire[] = [];
  let skipped: FirePlan['skipped'] = null;
  if (lastMissed && firstMissed) {
    let count = missedCount;
    let lastSkipped: Date | undefined = lastMissed;
    if (missed === 'run-once') {
      fires.push({ slot: lastMissed.toISOString(), kind: 'catch_up' });
      count -= 1;
      lastSkipped = count > 0 ? cron.previousRuns(1, lastMissed)[0] : undefined;
    }
    if (count > 0) skipped = { count, at_least: atLeast, first: firstMissed.toISOString(), last: (lastSkipped ?? firstMissed).toISOString() };
  }
  for (const s of onTime) fires.push({ slot: s.toISOString(), kind: 'on_time' });
  const last = onTime.at(-1) ?? lastMissed!;
  return { cursor: (last > now ? last : now).toISOString(), fires, skipped };
}
