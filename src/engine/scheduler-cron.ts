// The schedule runner: turns due cron slots into tasks, each slot exactly once.
//
// The protocol, per pass over the schedules (store/schedules.ts has the store's side):
//   1. plan: which slots after the schedule's cursor are due, which were missed (schedule-spec.ts);
//   2. claim: one durable atomic write moves the cursor and records every fire of the plan,
//      each with the id its task will get, unless another pass moved the cursor first;
//   3. create: each claimed fire's task is written under its recorded id and queued;
//   4. settle: the fire is marked 'created' (or 'failed', with the reason, when its template
//      or workspace is gone).
// A crash after 1 repeats the pass; after 2, recovery (at the next start, before the first
// pass) finishes every fire still 'claimed': the task is created under the recorded id, or
// found already there (a crash between 3 and 4; engine recovery has queued it). A recorded id
// that an unrelated task took meanwhile is swapped for a new one with a compare-and-set on
// the fire, so only one writer ever creates a fire's task. Fault points `schedule.claimed`
// and `schedule.task_created` let the crash tests stop the daemon exactly there.
import type { Cron } from 'croner';
import type { Logger } from 'pino';
import { isAtlasError } from '../errors.js';
import { fireKey, type FireRecord, type ScheduleRecord, type StoreSchedules } from '../store/schedules.js';
import { now, testClock } from '../util/clock.js';
import { faultPoint } from '../util/fault.js';
import type { Engine } from './engine.js';
import { parseCron, planFires, type FirePlan } from './schedule-spec.js';

/** Errors that no retry can cure: the fire is settled as 'failed' with the message. */
const PERMANENT = new Set(['invalid_input', 'invalid_name', 'not_found', 'template_invalid', 'config_invalid', 'corrupt']);
/** The longest sleep between passes (a system clock change is noticed within it). */
const MAX_SLEEP_MS = 60_000;
/** With a shared store, a fire claimed this long ago and still open is finished by any daemon. */
const STALE_CLAIM_MS = 30_000;
/** With a test clock, how often time is looked at. */
const TEST_POLL_MS = 50;

export class ScheduleRunner {
  private timer: NodeJS.Timeout | undefined;
  private passing: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private readonly crons = new Map<string, { key: string; cron: Cron }>();
  /** Fires whose task is being created now, by key. */
  private readonly inFlight = new Set<string>();
  /** Claimed fires whose creation failed for a reason that may pass (a full disk). */
  private retryOpen = false;

  constructor(
    private readonly engine: Engine,
    private readonly store: StoreSchedules,
    /** Several daemons share the store: a daemon that cannot start a schedule's task (the
     *  workspace's directory or the template is not on this machine) leaves its slots to one
     *  that can, rather than recording them failed. */
    private readonly shared: boolean,
    private readonly log: Logger | undefined,
  ) {}

  /** Finishes the fires a crash left claimed, then starts passing. */
  async start(): Promise<void> {
    await this.finishOpenFires();
    this.wake();
  }

  /** Runs a pass as soon as possible (after a schedule was added or resumed). */
  wake(): void {
    if (this.stopped) return;
    if (this.passing) {
      this.again = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.passing = this.pass()
      .catch((err: unknown) => this.log?.warn({ err: { message: (err as Error).message } }, `schedules: ${(err as Error).message}`))
      .then((sleep) => {
        this.passing = undefined;
        if (this.stopped) return;
        if (this.again) {
          this.again = false;
          return this.wake();
        }
        this.timer = setTimeout(() => this.wake(), sleep ?? 1000);
        this.timer.unref();
      });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.passing;
  }

  /** The schedule's cron, parsed once per (cron, tz). */
  cronOf(s: ScheduleRecord): Cron {
    const key = `${s.cron}\u0000${s.tz}`;
    const hit = this.crons.get(s.name);
    if (hit?.key === key) return hit.cron;
    const cron = parseCron(s.cron, s.tz);
    this.crons.set(s.name, { key, cron });
    return cron;
  }

  /** One pass: fires what is due; returns how long to sleep until the next slot. */
  private async pass(): Promise<number> {
    if (this.retryOpen) {
      this.retryOpen = false;
      await this.finishOpenFires();
    } else if (this.shared) {
      // A daemon that died between recording a fire and creating its task: any other finishes it.
      await this.finishOpenFires(STALE_CLAIM_MS);
    }
    let sleep = MAX_SLEEP_MS;
    for (const s of await this.store.list()) {
      if (this.stopped) break;
      if (s.paused) continue;
      let cron: Cron;
      try {
        cron = this.cronOf(s);
      } catch (err) {
        this.log?.warn({ schedule: s.name }, `schedule ${s.name}: ${(err as Error).message}`);
        continue;
      }
      const at = now();
      const plan = planFires(cron, new Date(s.cursor), at, s.missed);
      if (plan) await this.fire(s, plan);
      const next = cron.nextRun(plan ? new Date(plan.cursor) : at);
      if (next) sleep = Math.min(sleep, Math.max(0, next.getTime() - at.getTime()) + 5);
    }
    return testClock ? TEST_POLL_MS : this.retryOpen ? Math.min(sleep, 2000) : sleep;
  }

  private async fire(s: ScheduleRecord, plan: FirePlan): Promise<void> {
    if (this.shared && plan.fires.length && !(await this.canStart(s))) return;
    const recorded_at = new Date().toISOString();
    const entries: FireRecord[] = [];
    if (plan.skipped) {
      const { count, at_least, first, last } = plan.skipped;
      entries.push({ slot: last, state: 'skipped', kind: 'skipped', task_id: null, recorded_at, skipped: { count, at_least, first } });
    }
    for (const f of plan.fires) entries.push({ slot: f.slot, state: 'claimed', kind: f.kind, task_id: await this.engine.store.tasks.newTaskId(new Date()), recorded_at });
    if (!(await this.store.claim(s.name, s.cursor, plan.cursor, entries))) return;
    if (plan.skipped) {
      const { count, at_least, first, last } = plan.skipped;
      this.log?.info({ schedule: s.name, skipped: plan.skipped }, `schedule ${s.name}: skipped ${at_least ? 'at least ' : ''}${count} slot(s) missed while no daemon ran (${first} .. ${last}; --missed ${s.missed})`);
    }
    faultPoint('schedule.claimed');
    for (const e of entries) if (e.state === 'claimed') await this.createTask(s, e);
  }

  /** Creates (or finds) the task of a claimed fire and settles the fire. */
  private async createTask(s: ScheduleRecord, fire: FireRecord): Promise<void> {
    const key = fireKey(s.name, fire.slot);
    if (this.inFlight.has(key) || fire.task_id === null) return;
    this.inFlight.add(key);
    let id = fire.task_id;
    try {
      for (;;) {
        let prepared;
        try {
          prepared = await this.engine.prepareTask({
            template: s.template,
            workspace: s.workspace,
            inputs: s.inputs,
            ...(s.description !== null ? { description: s.description } : {}),
            schedule_fire: key,
          });
        } catch (err) {
          if (!isAtlasError(err) || !PERMANENT.has(err.code)) throw err;
          // Shared store: this machine may lack the workspace or template; one that has them finishes it.
          if (this.shared) {
            this.log?.warn({ schedule: s.name, slot: fire.slot }, `schedule ${s.name}: cannot create the task of ${fire.slot} on this daemon: ${err.message}`);
            return;
          }
          await this.store.settle(s.name, fire.slot, { state: 'failed', error: err.message }, id);
          this.log?.warn({ schedule: s.name, slot: fire.slot }, `schedule ${s.name}: the fire of ${fire.slot} created no task: ${err.message}`);
          return;
        }
        try {
          const task = await this.engine.writeTask(prepared, id);
          faultPoint('schedule.task_created');
          this.engine.launchTask(task);
        } catch (err) {
          if (!isAtlasError(err, 'already_exists')) throw err;
          const existing = await this.engine.store.tasks.getTask(id).catch(() => undefined);
          if (existing?.schedule_fire !== key) {
            // An unrelated task took the recorded id (after a crash): move the fire to a new one.
            const next = await this.engine.store.tasks.newTaskId(new Date());
            if (!(await this.store.settle(s.name, fire.slot, { state: 'claimed', task_id: next }, id))) return;
            id = next;
            continue;
          }
          // Created before a crash: engine recovery has queued it already.
        }
        await this.store.settle(s.name, fire.slot, { state: 'created' }, id);
        this.log?.info({ schedule: s.name, slot: fire.slot, task: id }, `schedule ${s.name}: fired ${fire.slot} as ${id}`);
        return;
      }
    } catch (err) {
      this.retryOpen = true;
      this.log?.warn({ schedule: s.name, slot: fire.slot }, `schedule ${s.name}: could not create the task of ${fire.slot} (tried again shortly): ${(err as Error).message}`);
    } finally {
      this.inFlight.delete(key);
    }
  }

  /** Whether this daemon can start the schedule's task (a dry run of the start's checks). */
  private async canStart(s: ScheduleRecord): Promise<boolean> {
    try {
      await this.engine.prepareTask({ template: s.template, workspace: s.workspace, inputs: s.inputs });
      return true;
    } catch (err) {
      if (isAtlasError(err) && PERMANENT.has(err.code)) {
        this.log?.debug({ schedule: s.name }, `schedule ${s.name}: left to another daemon: ${err.message}`);
        return false;
      }
      throw err;
    }
  }

  /** Creates the task of every fire still claimed (left by a crash, or by a failure that may pass). */
  private async finishOpenFires(olderThanMs = 0): Promise<void> {
    const before = new Date(Date.now() - olderThanMs).toISOString();
    const open = (await this.store.openFires()).filter((o) => o.fire.recorded_at <= before);
    if (open.length) this.log?.info({ fires: open.length }, `schedules: finishing ${open.length} fire(s) recorded before their task was created`);
    for (const { schedule, fire } of open) {
      const s = await this.store.get(schedule).catch(() => undefined);
      if (s) await this.createTask(s, fire);
    }
  }
}
