// Schedules (DESIGN §13): `atlas schedule add|list|show|pause|resume|remove`. A schedule is
// checked whole when it is added (its name, cron, time zone, missed policy, and a start of its
// template in its workspace with its inputs, as `atlas start` would check it), so a schedule
// that is accepted can fire; what changes later (a template deleted) makes its fires 'failed'
// with the reason, shown by `schedule show`. Firing is the runner's (scheduler-cron.ts).
//
// Pausing stops fires; resuming starts again from the moment of the resume: the slots that
// passed while paused are neither fired nor counted as missed.
import type { Logger } from 'pino';
import { AtlasError } from '../errors.js';
import { assertName } from '../store/names.js';
import { SCHEMA_VERSION, type TaskStatus } from '../store/records.js';
import { MISSED_POLICIES, type FireRecord, type MissedPolicy, type ScheduleRecord, type StoreSchedules } from '../store/schedules.js';
import { now } from '../util/clock.js';
import type { Engine } from './engine.js';
import { nextSlots, parseCron } from './schedule-spec.js';
import { ScheduleRunner } from './scheduler-cron.js';

export interface ScheduleAdd {
  name: string;
  cron: string;
  tz?: string;
  template: string;
  workspace: string;
  inputs?: Record<string, string>;
  description?: string;
  missed?: string;
}

export interface ScheduleInfo extends ScheduleRecord {
  state: 'active' | 'paused';
  /** The next fire times (ISO 8601 UTC): one in a list, five in show; none while paused. */
  next_fires: string[];
  last_fire: FireRecord | null;
}

export interface ScheduleDetail extends ScheduleInfo {
  /** The newest fires first (at most 10), each with its task's status now. */
  fires: Array<FireRecord & { task_status: TaskStatus | null }>;
}

export class Schedules {
  private readonly runner: ScheduleRunner;

  constructor(
    private readonly engine: Engine,
    log: Logger | undefined,
  ) {
    this.runner = new ScheduleRunner(engine, engine.store.schedules, engine.store.kind === 'postgres', log);
  }

  async start(): Promise<void> {
    await this.runner.start();
  }

  async stop(): Promise<void> {
    await this.runner.stop();
  }

  async add(p: ScheduleAdd): Promise<ScheduleInfo> {
    const store = this.store();
    const name = assertName('schedule', p.name);
    const tz = p.tz ?? 'UTC';
    parseCron(p.cron, tz);
    const missed = (p.missed ?? 'skip') as MissedPolicy;
    if (!MISSED_POLICIES.includes(missed)) throw new AtlasError('invalid_input', `--missed ${JSON.stringify(p.missed)}: expected one of ${MISSED_POLICIES.join(', ')}`, { details: { missed: p.missed } });
    // Checked as `atlas start` would: the workspace, the template, the inputs.
    const prepared = await this.engine.prepareTask({ template: p.template, workspace: p.workspace, inputs: p.inputs ?? {}, ...(p.description !== undefined ? { description: p.description } : {}) });
    const at = now().toISOString();
    const rec: ScheduleRecord = {
      schema_version: SCHEMA_VERSION,
      name,
      cron: p.cron,
      tz,
      template: prepared.task.template,
      workspace: prepared.task.workspace,
      inputs: p.inputs ?? {},
      description: p.description ?? null,
      missed,
      paused: false,
      cursor: at,
      created_at: at,
      updated_at: at,
    };
    await store.create(rec);
    this.runner.wake();
    return this.info(rec, 1);
  }

  async list(): Promise<ScheduleInfo[]> {
    const out: ScheduleInfo[] = [];
    for (const s of await this.store().list()) out.push(await this.info(s, 1));
    return out;
  }

  async show(name: string): Promise<ScheduleDetail> {
    const store = this.store();
    const s = await store.get(assertName('schedule', name));
    const fires = await store.fires(s.name, 10);
    const withStatus = await Promise.all(
      fires.map(async (f) => ({ ...f, task_status: f.task_id && f.state === 'created' ? ((await this.engine.store.tasks.getTask(f.task_id).catch(() => undefined))?.status ?? null) : null })),
    );
    return { ...(await this.info(s, 5, fires)), fires: withStatus };
  }

  async pause(name: string): Promise<ScheduleInfo> {
    return this.info(await this.store().update(assertName('schedule', name), (s) => void (s.paused = true)), 1);
  }

  async resume(name: string): Promise<ScheduleInfo> {
    const s = await this.store().update(assertName('schedule', name), (s) => {
      if (!s.paused) return;
      s.paused = false;
      const at = now().toISOString();
      if (at > s.cursor) s.cursor = at;
    });
    this.runner.wake();
    return this.info(s, 1);
  }

  async remove(name: string): Promise<{ removed: string }> {
    await this.store().remove(assertName('schedule', name));
    return { removed: name };
  }

  private store(): StoreSchedules {
    return this.engine.store.schedules;
  }

  private async info(s: ScheduleRecord, next: number, fires?: FireRecord[]): Promise<ScheduleInfo> {
    const cron = parseCron(s.cron, s.tz);
    const from = new Date(Math.max(now().getTime(), Date.parse(s.cursor)));
    const last = (fires ?? (await this.store().fires(s.name, 1)))[0] ?? null;
    return { ...s, state: s.paused ? 'paused' : 'active', next_fires: s.paused ? [] : nextSlots(cron, from, next).map((d) => d.toISOString()), last_fire: last };
  }
}
